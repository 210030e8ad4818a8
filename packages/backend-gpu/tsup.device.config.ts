import { defineConfig } from 'tsup';

/**
 * Self-contained bundle for the GPU machine (no pnpm there): core and zod are inlined, only the
 * native `webgpu` package stays external and travels beside the bundle in its node_modules.
 */
export default defineConfig({
  entry: { 'gpu-check': 'src/gpu-check.ts' },
  outDir: '../../.node-bin/bundle',
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  bundle: true,
  noExternal: [/^@sparse-attn\//, 'zod'],
  external: ['webgpu'],
  splitting: false,
  clean: false,
  dts: false,
  sourcemap: false,
});
