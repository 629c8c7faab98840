// The web client (issue 13): a Preact app in app/ (browser-only code: no Node module may reach
// it), bundled by esbuild at the first request (build.ts) and served at / with a strict CSP (route.ts).

export { buildWebBundle, lazyWebBundle } from './build.ts';
export type { WebAsset, WebBundle } from './build.ts';
export { acceptsGzip, ASSETS_PATH, contentSecurityPolicy, createWebRoute, describeBuildError } from './route.ts';
export type { WebRouteOptions } from './route.ts';
