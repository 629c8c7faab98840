// The web client's route and build: the page and its files with the security headers, gzip,
// ETag revalidation and long caching of hashed names; a failed build is one precise 500; the
// real build's inputs hold no Node module and its first-screen script stays within 150 KB gzipped.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtinModules } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { acceptsGzip, buildWebBundle, contentSecurityPolicy, createWebRoute, describeBuildError, lazyWebBundle, type WebBundle } from '../../src/web/index.ts';
import { Writable } from 'node:stream';

const quiet = createLogger('silent', new Writable({ write: (_c, _e, done) => done() }));

async function serve(bundle: () => Promise<WebBundle>): Promise<{ url: string; close: () => Promise<void> }> {
  const route = createWebRoute({ bundle, logger: quiet, product: 'Parley/test', ownAuthorities: () => ['im.example.com:8080'] });
  const server = http.createServer((req, res) => {
    if (!route.handle(req, res, new URL(req.url ?? '/', 'http://x'))) {
      res.writeHead(404);
      res.end('not mine');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let bundle: WebBundle;
let site: Awaited<ReturnType<typeof serve>>;
let builds = 0;
before(async () => {
  bundle = await buildWebBundle();
  site = await serve(lazyWebBundle(async () => (builds++, bundle)));
});
after(() => site.close());

describe('web route', () => {
  it('serves / with no-cache, the strict CSP and the other security headers; gzip when accepted', async () => {
    const res = await fetch(`${site.url}/`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('content-security-policy'), contentSecurityPolicy(['im.example.com:8080']));
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws:\/\/im\.example\.com:8080 wss:\/\/im\.example\.com:8080;.*base-uri 'none'; form-action 'self'; frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('content-encoding'), 'gzip'); // fetch decoded it
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)|<style|\sstyle=|\son\w+=/i, 'no inline script or style');
    assert.match(html, new RegExp(`<script type="module" src="/assets/${bundle.script.name}"></script>`));
  });

  it('serves the hashed files with a long cache, plain when gzip is refused, 304 on a matching ETag', async () => {
    const path = `/assets/${bundle.script.name}`;
    assert.match(bundle.script.name, /^main-[A-Z0-9]{8}\.js$/);
    const plain = await fetch(`${site.url}${path}`, { headers: { 'accept-encoding': 'gzip;q=0, br' } });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.equal(plain.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(plain.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.deepEqual(Buffer.from(await plain.arrayBuffer()), bundle.script.body);
    assert.deepEqual(gunzipSync(bundle.script.gzip), bundle.script.body);
    const again = await fetch(`${site.url}${path}`, { headers: { 'if-none-match': plain.headers.get('etag') ?? '' } });
    assert.equal(again.status, 304);
    const css = [...bundle.assets.keys()].find((n) => n.endsWith('.css'));
    assert.equal((await fetch(`${site.url}/assets/${css}`)).headers.get('content-type'), 'text/css; charset=utf-8');
  });

  it('answers an unknown asset 404 and other methods 405, as problem JSON with a code; leaves other paths alone', async () => {
    const missing = await fetch(`${site.url}/assets/main-OLDHASH1.js`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(((await missing.json()) as { code: string }).code, 'NOT_FOUND');
    const post = await fetch(`${site.url}/`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal(((await post.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
    assert.equal(await (await fetch(`${site.url}/api/session`)).text(), 'not mine');
    assert.equal(builds, 1, 'built once for every request');
  });

  it('answers 500 WEB_BUILD_FAILED naming esbuild\'s first error, every time, without building again', async () => {
    let attempts = 0;
    const failure = Object.assign(new Error('Build failed with 1 error'), { errors: [{ text: 'Could not resolve "nowhere"', location: { file: 'src/web/app/main.tsx', line: 3 } }] });
    const broken = await serve(lazyWebBundle(async () => {
      attempts++;
      throw failure;
    }));
    try {
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${broken.url}/`);
        assert.equal(res.status, 500);
        const problem = (await res.json()) as { code: string; detail: string };
        assert.equal(problem.code, 'WEB_BUILD_FAILED');
        assert.match(problem.detail, /src\/web\/app\/main\.tsx:3: Could not resolve "nowhere"/);
      }
      assert.equal(attempts, 1);
      assert.equal(describeBuildError(new Error('first\nsecond')), 'first');
    } finally {
      await broken.close();
    }
  });

  it('reads Accept-Encoding as RFC 9110 §12.5.3 says', () => {
    assert.equal(acceptsGzip(undefined), false);
    assert.equal(acceptsGzip('gzip, deflate, br'), true);
    assert.equal(acceptsGzip('br;q=1.0, gzip;q=0'), false);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip('identity'), false);
  });
});

describe('web build', () => {
  const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

  it('takes no Node module into the browser bundle', () => {
    const offending = bundle.inputs.filter((input) => input.startsWith('node:') || NODE_BUILTINS.has(input));
    assert.deepEqual(offending, []);
    assert.ok(bundle.inputs.some((i) => i.endsWith('src/web/app/main.tsx')));
    assert.ok(bundle.inputs.some((i) => i.endsWith('src/client/browser.ts')));
  });

  it(`ships at most 150 KB gzipped of JavaScript for the first screen`, (t) => {
    t.diagnostic(`web client first screen: ${bundle.script.body.length} bytes minified, ${bundle.script.gzip.length} bytes gzipped (script), CSS ${[...bundle.assets.values()].find((a) => a.name.endsWith('.css'))?.gzip.length} bytes gzipped`);
    assert.ok(bundle.script.gzip.length <= 150 * 1024, `${bundle.script.gzip.length} bytes gzipped`);
  });
});
