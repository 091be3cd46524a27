// What test files get for `import { suite } from 'uvu'` under scripts/run-tests.mjs (a resolve hook points them
// here): uvu's suite, with every hook wrapped so an exception is recorded before uvu sees it (uvu swallows one
// thrown by a `before` hook and counts its suite as passed), and each test's name published while it runs (so a
// helper can record the running test as skipped: test/helpers.ts requireShared).
import { suite as uvuSuite } from 'uvu';

/** Shared with the runner: hook errors in the order they happened, tests skipped by name, the running test. */
export const record = (globalThis.__painterlyTests ??= {});
record.hookErrors ??= [];
record.skips ??= [];

export function suite(name = '', state) {
  const t = uvuSuite(name, state);
  const named = (register) => (title, handler) => register(title, async (ctx) => {
    record.current = name ? `${name} > ${title}` : title;
    try { return await handler(ctx); } finally { record.current = undefined; }
  });
  const hook = (register, which) => (fn) => register(async (ctx) => {
    try { return await fn(ctx); } catch (e) {
      record.hookErrors.push({ suite: name, hook: which, error: e });
      throw e;
    }
  });
  const wrapped = named(t);
  wrapped.only = named(t.only);
  wrapped.skip = t.skip;
  wrapped.run = t.run;
  wrapped.before = Object.assign(hook(t.before, 'before'), { each: hook(t.before.each, 'before.each') });
  wrapped.after = Object.assign(hook(t.after, 'after'), { each: hook(t.after.each, 'after.each') });
  return wrapped;
}

export const test = suite();
