import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkKernelSpec, fold, type KernelSpec } from '../../src/gpu/kernel.ts';
import { reluBackwardSpec, reluForwardSpec } from '../../src/ops/relu.ts';

const test = suite('kernel descriptors');

function throwsWith(spec: KernelSpec, text: string) {
  assert.throws(() => checkKernelSpec(spec), (e: Error) => e.message.includes(text) && e.message.includes(spec.file));
}

test('accepts the real descriptors', () => {
  assert.equal(checkKernelSpec(reluForwardSpec), [256, 1, 1]);
  checkKernelSpec(reluBackwardSpec);
});

test('rejects a renamed binding', () => {
  throwsWith({ ...reluForwardSpec, bindings: { p: 'uniform', x: 'read', out: 'read_write' } }, 'binding 2 is "y" in WGSL but "out"');
});

test('rejects wrong access', () => {
  throwsWith({ ...reluForwardSpec, bindings: { p: 'uniform', x: 'read_write', y: 'read_write' } }, 'x is read in WGSL but read_write');
});

test('rejects a missing or extra binding', () => {
  throwsWith({ ...reluForwardSpec, bindings: { p: 'uniform', x: 'read' } }, 'shader uses [p, x, y]');
});

test('rejects mismatched uniform fields', () => {
  throwsWith({ ...reluForwardSpec, uniforms: { count: 'u32' } }, 'uniform p has fields {n:u32}');
});

test('rejects an unknown entry point', () => {
  throwsWith({ ...reluForwardSpec, entry: 'nope' }, 'no @compute entry point named "nope"');
});

test('fold keeps grids within 65535 and covers the count', () => {
  for (const n of [1, 65535, 65536, 1_000_000, 65535 * 65535]) {
    const [x, y] = fold(n);
    assert.ok(x <= 65535 && y <= 65535, `fold(${n})`);
    assert.ok(x * y >= n, `fold(${n}) covers`);
  }
});

test.run();
