import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** The published manifest: what `npm publish` / `pnpm pack` would ship. */
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[]; exports: Record<string, { types: string; import: string }> };

describe('package manifest', () => {
  it('ships sources and build output but neither tests nor test fixtures', () => {
    expect(manifest.files).toEqual(expect.arrayContaining(['dist', 'src', '!src/**/*.test.ts', '!src/__fixtures__']));
    // The fixtures directory exists (so the exclusion matters) and holds only test data.
    expect(readdirSync(new URL('./__fixtures__', import.meta.url)).length).toBeGreaterThan(0);
  });

  it('lists types before import for every export', () => {
    for (const [entry, target] of Object.entries(manifest.exports)) expect(Object.keys(target), entry).toEqual(['types', 'import']);
  });
});
