// The esbuild options that bundle the client SDK (src/client/browser.ts, or an app importing it)
// for browsers: Node modules that src/sip and src/client use are replaced by the shims of
// src/client/browser/, and the global Buffer is injected. Node-side: the web app's build spreads
// these into its own esbuild call, and the SDK's bundle test uses them.

import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

const shim = (name: string): string => fileURLToPath(new URL(`./browser/${name}`, import.meta.url));

/** Browsers with ES2022 (class private fields, top-level await), as every evergreen browser since 2021. */
export const BROWSER_TARGETS: readonly string[] = ['chrome100', 'firefox100', 'safari15.4', 'edge100'];

/**
 * Options to spread into esbuild.build(): platform browser, ESM, the shims aliased for
 * node:buffer, node:crypto and node:net (with and without the `node:` prefix), Buffer injected.
 * Add entryPoints, outdir/write, minify… on top; to add `alias` or `inject` entries of your own,
 * merge them with these rather than replacing them.
 */
export function browserBuildOptions(): BuildOptions & { alias: Record<string, string>; inject: string[] } {
  const alias: Record<string, string> = {};
  for (const [module, file] of [['buffer', 'buffer.ts'], ['crypto', 'crypto.ts'], ['net', 'net.ts']] as const) {
    alias[`node:${module}`] = shim(file);
  }
  // bare `crypto`/`net` too, should a dependency use them; bare `buffer` is the npm package itself
  alias.crypto = shim('crypto.ts');
  alias.net = shim('net.ts');
  return {
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: [...BROWSER_TARGETS],
    alias,
    inject: [shim('globals.ts')],
    // src/ is TypeScript run by type stripping: imports name the .ts files themselves
    resolveExtensions: ['.ts', '.js', '.mjs'],
    define: { 'process.env.NODE_ENV': '"production"' },
  };
}
