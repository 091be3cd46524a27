// Module hooks of the test runner: test files' `import ... from 'uvu'` gets scripts/uvu-guard.mjs.
const guard = new URL('./uvu-guard.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === 'uvu' && context.parentURL !== guard) return { url: guard, shortCircuit: true };
  return next(specifier, context);
}
