// Lets Node run the TypeScript sources directly: `node --import ./scripts/register.mjs file.ts`.
// .ts is transformed by esbuild; .wgsl is imported as text, exactly as the bundler does it.
import { register } from 'node:module';
register('./loader-hooks.mjs', import.meta.url);
