/**
 * The bench's package loader: every workspace package it registers, imported through a literal
 * `import()` each, so bundlers can follow them (the GPU device run is one self-contained bundle);
 * names outside this table are imported by name.
 */
const LOADERS: Readonly<Record<string, () => Promise<object>>> = {
  '@sparse-attn/nsa': () => import('@sparse-attn/nsa'),
  '@sparse-attn/nsa/gpu': () => import('@sparse-attn/nsa/gpu'),
  '@sparse-attn/landmark': () => import('@sparse-attn/landmark'),
  '@sparse-attn/landmark/gpu': () => import('@sparse-attn/landmark/gpu'),
  '@sparse-attn/routing': () => import('@sparse-attn/routing'),
  '@sparse-attn/routing/gpu': () => import('@sparse-attn/routing/gpu'),
  '@sparse-attn/backend-gpu': () => import('@sparse-attn/backend-gpu'),
  '@sparse-attn/model': () => import('@sparse-attn/model'),
  '@sparse-attn/delta': () => import('@sparse-attn/delta'),
  '@sparse-attn/delta/gpu': () => import('@sparse-attn/delta/gpu'),
  '@sparse-attn/draft-kv': () => import('@sparse-attn/draft-kv'),
  '@sparse-attn/draft-kv/gpu': () => import('@sparse-attn/draft-kv/gpu'),
};

/** Imports a package the bench registers (or any other package, by name). */
export function importPackage(name: string): Promise<object> {
  const load = LOADERS[name];
  return load ? load() : (import(name) as Promise<object>);
}
