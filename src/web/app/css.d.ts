// esbuild bundles the stylesheet the entry imports (main.tsx); TypeScript only needs to know the import is fine.
declare module '*.css';
