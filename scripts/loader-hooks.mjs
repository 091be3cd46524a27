import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.ts')) {
    const path = fileURLToPath(url);
    const source = await readFile(path, 'utf8');
    const out = await transform(source, {
      loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: path,
    });
    return { format: 'module', source: out.code, shortCircuit: true };
  }
  if (url.startsWith('file:') && url.endsWith('.wgsl')) {
    const text = await readFile(fileURLToPath(url), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}
