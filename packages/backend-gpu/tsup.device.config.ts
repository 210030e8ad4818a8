import { defineConfig } from 'tsup';

/**
 * Self-contained bundle for the GPU machine (no pnpm there): core, zod and gpu.js (with acorn) are
 * inlined, only the native `webgpu` package stays external and travels beside the bundle in its
 * node_modules (`gl`, gpu.js's optional headless-GL dependency, is left out: gpu.js skips it).
 * The banner gives gpu.js's CommonJS `require` calls (os, worker_threads) a real `require`.
 */
export default defineConfig({
  entry: { 'gpu-check': 'src/gpu-check.ts' },
  outDir: '../../.node-bin/bundle',
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  bundle: true,
  noExternal: [/^@sparse-attn\//, 'zod', 'gpu.js', 'acorn', 'gpu-mock.js'],
  external: ['webgpu', 'gl'],
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  splitting: false,
  clean: false,
  dts: false,
  sourcemap: false,
});
