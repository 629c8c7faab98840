// Node strips TypeScript's types itself, but not from files under node_modules, which is where
// npm install -g, npx and a dependency put Parley: there this hook strips them the same way
// (erasable syntax only, positions kept, so stack traces keep their lines). bin/parley loads it.
import { registerHooks, stripTypeScriptTypes } from 'node:module';

const root = new URL('../', import.meta.url).href;

registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith(root) || !url.endsWith('.ts') || !url.includes('/node_modules/')) return nextLoad(url, context);
    const loaded = nextLoad(url, { ...context, format: 'module' });
    return { format: 'module', source: stripTypeScriptTypes(String(loaded.source), { mode: 'strip' }), shortCircuit: true };
  },
});
