/**
 * The bench's package loader: every workspace package it registers, imported through a literal
 * `import()` each, so bundlers can follow them (the GPU device run is one self-contained bundle);
 * names outside this table are imported by name.
 */
const LOADERS: Readonly<Record<string, () => Promise<object>>> = {
  '@sparse-attn/nsa': () => import('@sparse-attn/nsa'),
  '@sparse-attn/landmark': () => import('@sparse-attn/landmark'),
  '@sparse-attn/routing': () => import('@sparse-attn/routing'),
  '@sparse-attn/backend-gpu': () => import('@sparse-attn/backend-gpu'),
  '@sparse-attn/model': () => import('@sparse-attn/model'),
  '@sparse-attn/delta': () => import('@sparse-attn/delta'),
  '@sparse-attn/draft-kv': () => import('@sparse-attn/draft-kv'),
};

/** Imports a package the bench registers (or any other package, by name). */
export function importPackage(name: string): Promise<object> {
  const load = LOADERS[name];
  return load ? load() : (import(name) as Promise<object>);
}
