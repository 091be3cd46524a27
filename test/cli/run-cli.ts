// Runs `painterly` in-process (src/cli/main.ts) with stderr captured and stdout silenced.
import { main } from '../../src/cli/main.ts';

export async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const [e, l] = [console.error, console.log];
  const w = process.stderr.write;
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  console.log = () => {};
  process.stderr.write = ((s: string) => { err.push(String(s)); return true; }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), err: err.join('\n') };
  } finally {
    console.error = e; console.log = l; process.stderr.write = w;
  }
}
