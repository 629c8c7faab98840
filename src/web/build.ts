// The web client's bundle, made in-process by esbuild when the first request asks for it (no
// generated bundle is committed: `npm ci && npm start` is enough). One build per process, kept in
// memory with a gzip copy of each file; a failed build is kept too, so every request gets the same
// precise 500 until the process restarts (a retry loop would only rebuild the same sources).

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
// esbuild is loaded by the first build: a server whose web client nobody opens never loads it
import type { BuildOptions, Metafile } from 'esbuild';
import { browserBuildOptions } from '../client/browser-build.ts';

/** One file of the bundle, served under /assets/ with its content hash in the name. */
export interface WebAsset {
  /** e.g. `main-5KZ2T4QX.js` */
  readonly name: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** the same bytes gzipped (level 9, once) */
  readonly gzip: Buffer;
  readonly etag: string;
}

export interface WebBundle {
  /** index.html: no inline script or style, only the hashed files */
  readonly index: WebAsset;
  /** by name */
  readonly assets: ReadonlyMap<string, WebAsset>;
  /** the script the first screen loads (its gzipped size is what the README quotes) */
  readonly script: WebAsset;
  /** every source file that went into the script: tests check that no Node module is among them */
  readonly inputs: readonly string[];
}

const APP_DIR = fileURLToPath(new URL('./app/', import.meta.url));
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Builds the app once (src/web/app/main.tsx and what it imports); throws the esbuild errors. */
export async function buildWebBundle(): Promise<WebBundle> {
  const base = browserBuildOptions();
  const options: BuildOptions = {
    ...base,
    entryPoints: [`${APP_DIR}main.tsx`],
    outdir: '/assets', // a name only: nothing is written
    write: false,
    minify: true,
    metafile: true,
    logLevel: 'silent',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    resolveExtensions: [...(base.resolveExtensions ?? []), '.tsx'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    // the app's licences are in the one LEGAL file, named from the script
    legalComments: 'linked',
  };
  const { build } = await import('esbuild');
  const result = await build(options);
  const assets = new Map<string, WebAsset>();
  let script: WebAsset | undefined;
  let style: WebAsset | undefined;
  for (const file of result.outputFiles ?? []) {
    const name = file.path.slice(file.path.lastIndexOf('/') + 1);
    if (name.endsWith('.map')) continue;
    const asset = makeAsset(name, Buffer.from(file.contents));
    assets.set(name, asset);
    if (name.endsWith('.js')) script = asset;
    if (name.endsWith('.css')) style = asset;
  }
  if (script === undefined || style === undefined) throw new Error('the web build made no script or no stylesheet');
  const iconBody = await readFile(`${APP_DIR}icon.svg`);
  const iconAsset = makeAsset(`icon-${createHash('sha256').update(iconBody).digest('hex').slice(0, 8)}.svg`, iconBody);
  assets.set(iconAsset.name, iconAsset);
  const html = indexHtml({ script: script.name, style: style.name, icon: iconAsset.name });
  return { index: makeAsset('index.html', Buffer.from(html), 'text/html; charset=utf-8'), assets, script, inputs: inputsOf(result.metafile) };
}

/** The page: the app mounts into <div id="app">; the noscript text is for a browser without JavaScript. */
function indexHtml(files: { script: string; style: string; icon: string }): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<title>Parley</title>',
    `<link rel="icon" href="/assets/${files.icon}" type="image/svg+xml">`,
    `<link rel="stylesheet" href="/assets/${files.style}">`,
    `<script type="module" src="/assets/${files.script}"></script>`,
    '</head>',
    '<body>',
    '<div id="app"></div>',
    '<noscript>Parley needs JavaScript to run in the browser.</noscript>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function makeAsset(name: string, body: Buffer, contentType?: string): WebAsset {
  const dot = name.lastIndexOf('.');
  const type = contentType ?? TYPES[name.slice(dot)] ?? 'application/octet-stream';
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { name, contentType: type, body, gzip: gzipSync(body, { level: 9 }), etag };
}

function inputsOf(metafile: Metafile | undefined): string[] {
  return Object.keys(metafile?.inputs ?? {});
}

/**
 * The bundle, built on the first call and kept: later calls share the first build's promise, a
 * failure included.
 */
export function lazyWebBundle(make: () => Promise<WebBundle> = buildWebBundle): () => Promise<WebBundle> {
  let pending: Promise<WebBundle> | undefined;
  return () => (pending ??= make());
}
