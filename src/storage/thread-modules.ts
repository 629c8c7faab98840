// A worker thread's modules, their types stripped by the thread that starts it. Node strips
// TypeScript with a WebAssembly build of SWC that it loads into each isolate the first time a .ts
// file is imported: ~4 MiB of heap and ~9 MiB of WebAssembly memory (which never shrinks), a third
// of what the writer thread costs at rest (issue 20). The main thread has it loaded already, so it
// strips the modules a thread will import (`strippedModules`) and hands them over with the thread's
// start or a writer's join; the thread's loader (THREAD_LOADER) takes its modules from there. A
// module it is not given (one imported by a computed specifier) it strips itself, which loads the
// stripper there too: slower and bigger, not wrong.

import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';

/**
 * Relative specifiers of static imports and re-exports (`from '…'`, `import '…'`) and of dynamic
 * imports with a literal, in stripped source. A match inside a string or comment at worst strips
 * a module the thread will not load.
 */
const IMPORTED = /\bfrom\s*(['"])(\.{1,2}\/[^'"\n]+)\1|\bimport\s*\(?\s*(['"])(\.{1,2}\/[^'"\n]+)\3/g;

/**
 * `entry` and the TypeScript modules it imports, transitively, that are not in `sent` (which gets
 * them): URL → JavaScript. Files that cannot be read or stripped are left to the thread.
 */
export function strippedModules(entry: string, sent: Set<string>): Map<string, string> {
  const modules = new Map<string, string>();
  const pending = [entry];
  for (let url = pending.pop(); url !== undefined; url = pending.pop()) {
    if (sent.has(url) || !url.startsWith('file:') || !url.endsWith('.ts')) continue;
    sent.add(url);
    let js: string;
    try {
      js = strip(readFileSync(new URL(url), 'utf8'));
    } catch {
      continue;
    }
    modules.set(url, js);
    for (const m of js.matchAll(IMPORTED)) pending.push(new URL((m[2] ?? m[4]) as string, url).href);
  }
  return modules;
}

/** `stripTypeScriptTypes`, without the ExperimentalWarning it gives once per process (the thread's loader does the same). */
function strip(source: string): string {
  // Node itself runs every .ts module of Parley through the same function (`node src/cli.ts`);
  // the warning would only tell the operator of an implementation detail, at the first thread.
  const emit = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * The thread's first code (a CommonJS script, `new Worker(THREAD_LOADER, { eval: true })`): a
 * module loader that takes modules from `workerData.modules` (a Map of URL → JavaScript, which
 * the thread adds to as writers join, and from which each is deleted once loaded), strips
 * TypeScript itself for any other, then imports `workerData.main`.
 */
export const THREAD_LOADER = `
const { registerHooks, stripTypeScriptTypes } = require('node:module');
const { workerData } = require('node:worker_threads');
const modules = workerData.modules;
registerHooks({
  load(url, context, nextLoad) {
    const given = modules.get(url);
    if (given !== undefined) {
      modules.delete(url);
      return { format: 'module', source: given, shortCircuit: true };
    }
    if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
    const loaded = nextLoad(url, { ...context, format: 'module' });
    const emit = process.emitWarning;
    process.emitWarning = () => {};
    try {
      return { format: 'module', source: stripTypeScriptTypes(String(loaded.source), { mode: 'strip' }), shortCircuit: true };
    } finally {
      process.emitWarning = emit;
    }
  },
});
import(workerData.main).catch((err) => {
  process.nextTick(() => {
    throw err;
  });
});
`;
