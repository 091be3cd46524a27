// Every shader store into a read_write storage array of vec4s writes whole vec4s: a store of one component
// (`y[i][j] = v`, `y[i].x = v`) from invocations that share the vec4 is a data race by the WGSL memory model, which
// lavapipe tolerates and other backends need not (issue 13). No GPU run can show the race, so this reads the source.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('wgsl vec4 stores');
const shaders = fileURLToPath(new URL('../../shaders/', import.meta.url));

/** Comments removed (they quote formulas such as `acc[j][ch] = ...`). */
const code = (src: string) => src.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');

/** `name[...]` followed by a component access and an assignment: the component stores of read_write vec4 arrays. */
function componentStores(src: string): string[] {
  const text = code(src);
  const names = [...text.matchAll(/var<storage,\s*read_write>\s+(\w+)\s*:\s*array<\s*vec4(?:f|<\s*f32\s*>)\s*>/g)].map((m) => m[1]);
  const found: string[] = [];
  for (const name of names) {
    for (const m of text.matchAll(new RegExp(`\\b${name}\\s*\\[`, 'g'))) {
      let i = m.index! + m[0].length;
      for (let depth = 1; depth > 0 && i < text.length; i++) depth += text[i] === '[' ? 1 : text[i] === ']' ? -1 : 0;
      const rest = text.slice(i);
      const access = /^\s*(\[[^\]]*\]|\.[xyzwrgba]+)\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)/.exec(rest);
      if (access) found.push(`${text.slice(m.index!, i)}${access[0]}`.replace(/\s+/g, ' '));
    }
  }
  return found;
}

test('no shader stores a single component of a read_write array<vec4f>', () => {
  const files = readdirSync(shaders).filter((f) => f.endsWith('.wgsl'));
  assert.ok(files.length > 10, files.join(', '));
  const bad = files.flatMap((f) => componentStores(readFileSync(join(shaders, f), 'utf8')).map((s) => `${f}: ${s}`));
  assert.equal(bad, []);
});

test('the check finds component stores (the scalar-row store conv.wgsl had before issue 13) and passes whole ones', () => {
  const decl = '@group(0) @binding(4) var<storage, read_write> d_y: array<vec4f>;\n@group(0) @binding(5) var<storage, read_write> s: array<f32>;\n';
  assert.equal(componentStores(`${decl}if (c0 + j < dp.w) { d_y[(e0 + j) >> 2u][(e0 + j) & 3u] = v[j]; }`),
    ['d_y[(e0 + j) >> 2u][(e0 + j) & 3u] ='], 'indexed component');
  assert.equal(componentStores(`${decl}d_y[i].x += 1.0;`), ['d_y[i].x +='], 'swizzled component');
  assert.equal(componentStores(`${decl}d_y[(o * hw + c0) >> 2u] = vec4f(a, b, c, d); s[i] = d_y[i][j]; let t = d_y[i].x == 0.0;`), [], 'whole stores and reads');
  assert.equal(componentStores(`${decl}// d_y[i][j] = v;\n`), [], 'comments');
});

test.run();
