import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { after, describe, it } from 'node:test';
import { strippedModules, THREAD_LOADER } from '../../src/storage/thread-modules.ts';

const root = mkdtempSync(join(tmpdir(), 'parley-thread-modules-'));
after(() => rmSync(root, { recursive: true, force: true }));

const url = (file: string) => pathToFileURL(join(root, file)).href;

describe("a worker thread's modules, stripped by the thread that starts it", () => {
  writeFileSync(join(root, 'main.ts'), "import { a } from './a.ts';\nimport type { T } from './types.ts';\nexport { b } from './b.ts';\nconst n: T = a;\nexport const later = () => import('./c.ts');\nexport default n;\n");
  writeFileSync(join(root, 'a.ts'), "import { b } from './b.ts';\nexport const a: number = b + 1;\n");
  writeFileSync(join(root, 'b.ts'), 'export const b: number = 1;\n');
  writeFileSync(join(root, 'c.ts'), "export const c = 'c' as string;\n");
  writeFileSync(join(root, 'types.ts'), 'export type T = number;\n');

  it('follows static, re-exported and literal dynamic imports, once each; type-only imports are gone', () => {
    const sent = new Set<string>();
    const modules = strippedModules(url('main.ts'), sent);
    assert.deepEqual([...modules.keys()].sort(), ['a.ts', 'b.ts', 'c.ts', 'main.ts'].map(url));
    assert.doesNotMatch(modules.get(url('a.ts')) ?? '', /: number/);
    assert.equal(strippedModules(url('a.ts'), sent).size, 0, 'what was sent is not sent again');
    assert.equal(strippedModules(url('missing.ts'), new Set()).size, 0, 'a file that cannot be read is left to the thread');
  });

  it("the thread's loader takes the modules it is given, and strips any other itself", async () => {
    const modules = strippedModules(url('a.ts'), new Set());
    // given: b.ts as the main thread saw it, not as it is on disk now
    modules.set(url('b.ts'), 'export const b = 41;\n');
    writeFileSync(join(root, 'entry.ts'), "import { parentPort } from 'node:worker_threads';\nimport { a } from './a.ts';\nconst { c } = await import('./c.ts');\nparentPort!.postMessage([a, c]);\n");
    const worker = new Worker(THREAD_LOADER, { eval: true, workerData: { main: url('entry.ts'), modules } });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.deepEqual(message, [42, 'c']);
    await worker.terminate();
  });
});
