// The browser build of the client SDK: src/client/browser.ts bundled with browserBuildOptions()
// reaches no Node module (its shims stand in for node:buffer, node:crypto and node:net), and the
// bundle's gzipped size is reported (the web client's whole first screen must stay ≤ 150 KB gz).

import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { browserBuildOptions } from '../../src/client/browser-build.ts';

const entry = fileURLToPath(new URL('../../src/client/browser.ts', import.meta.url));
const result = await esbuild.build({ ...browserBuildOptions(), entryPoints: [entry], write: false, metafile: true, minify: true, logLevel: 'silent' });
const bundle = result.outputFiles[0];
assert.ok(bundle !== undefined);
const gzipped = gzipSync(bundle.contents, { level: 9 }).length;
const kb = (n: number): string => (n / 1024).toFixed(1);

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

describe('client SDK browser bundle (src/client/browser.ts)', () => {
  it(`bundles: ${kb(bundle.contents.length)} KB minified, ${kb(gzipped)} KB gzipped`, (t) => {
    t.diagnostic(`browser SDK bundle: ${bundle.contents.length} bytes minified, ${gzipped} bytes gzipped, ${Object.keys(result.metafile.inputs).length} inputs`);
    assert.equal(result.errors.length, 0);
    // not a size budget of its own: a guard that the SDK alone does not eat the first screen's 150 KB
    assert.ok(gzipped < 100 * 1024, `the SDK alone is ${kb(gzipped)} KB gzipped`);
  });

  it('has no Node module among its inputs or their imports', () => {
    const offending: string[] = [];
    for (const [path, input] of Object.entries(result.metafile.inputs)) {
      if (path.startsWith('node:') || NODE_BUILTINS.has(path)) offending.push(path);
      for (const imported of input.imports) {
        // an aliased node:crypto resolves to the shim's file; a Node module would stay a bare name
        // (the injected globals.ts shows as an "external" import of every file: esbuild's way)
        const bare = imported.path.startsWith('node:') || NODE_BUILTINS.has(imported.path);
        const external = imported.external && !imported.path.endsWith('src/client/browser/globals.ts');
        if (bare || external) offending.push(`${path} imports ${imported.original ?? imported.path}${imported.external ? ' (external)' : ''}`);
      }
    }
    assert.deepEqual(offending, []);
  });

  it('reaches no server transport and no Node-only client file', () => {
    const inputs = Object.keys(result.metafile.inputs);
    assert.deepEqual(inputs.filter((p) => /src\/sip\/(transport|transaction)\/|src\/client\/transport-node\.ts|src\/client\/index\.ts|browser-build\.ts/.test(p)), []);
    // and the shims are what stands in for node:buffer, node:crypto, node:net
    for (const shim of ['buffer.ts', 'crypto.ts', 'net.ts']) assert.ok(inputs.some((p) => p.endsWith(`src/client/browser/${shim}`)), `${shim} is bundled`);
  });

  it('exports BrowserSipClient and the shared API', () => {
    const exports = new Set(result.metafile.outputs[Object.keys(result.metafile.outputs)[0] ?? '']?.exports ?? []);
    for (const name of ['BrowserSipClient', 'SipUserAgent', 'ClientError', 'ClientSubscription', 'parseServerUrl', 'connectWebSocket', 'MailboxReader']) {
      assert.ok(exports.has(name), `exports ${name}`);
    }
    assert.equal(exports.has('SipClient'), false, 'the Node SipClient is not in the browser entry');
  });
});
