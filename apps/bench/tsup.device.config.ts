import { defineConfig } from 'tsup';

/**
 * The bench CLI as one self-contained file for the GPU machine (no pnpm or registry there): every
 * workspace package, zod, vega and gpu.js are inlined; only native or tool-only modules stay
 * external — `webgpu` (Dawn; travels beside the bundle in node_modules), `onnxruntime-node` (the
 * device run passes --no-ort) and the test-only packages. The banner gives CommonJS `require`
 * calls (gpu.js, cli-progress) a real `require`.
 */
export default defineConfig({
  entry: { bench: 'src/cli.ts' },
  outDir: '../../.node-bin/bench',
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  bundle: true,
  noExternal: [/^(?!webgpu$|onnxruntime-node$|gl$|playwright-core$|esbuild$|vitest$|fast-check$).*/],
  external: ['webgpu', 'onnxruntime-node', 'gl', 'playwright-core', 'esbuild', 'vitest', 'fast-check'],
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  splitting: false,
  clean: true,
  dts: false,
  sourcemap: false,
});
