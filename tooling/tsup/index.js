// Shared tsup configuration: ESM only, declarations, source maps, one entry per
// `exports` subpath. Workspace dependencies stay external (they are packages of
// their own), so each package builds alone.
import { defineConfig } from 'tsup';

/** @param {{ entry?: string[], platform?: 'node' | 'neutral' | 'browser', banner?: Record<string,string> }} [options] */
export function libraryConfig(options = {}) {
  return defineConfig({
    entry: options.entry ?? ['src/index.ts'],
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    platform: options.platform ?? 'neutral',
    splitting: true,
    treeshake: true,
    banner: options.banner,
  });
}
