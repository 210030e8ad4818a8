// Shared vitest configuration. Tests run against the TypeScript sources of every
// workspace package (tRPC style): each `exports` entry `./dist/NAME.js` of a
// package under packages/ is aliased to `./src/NAME.ts`, so no build is needed
// before a test and a change in core is seen at once by every family's tests.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Aliases from every workspace package export to its source file. */
export function workspaceAliases() {
  const aliases = [];
  for (const group of ['packages', 'apps']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const manifestPath = join(dir, name, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
        const file = typeof target === 'string' ? target : target.import ?? target.default;
        if (typeof file !== 'string' || !file.startsWith('./dist/')) continue;
        const source = join(dir, name, file.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
        if (!existsSync(source)) continue;
        const specifier = subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
        aliases.push({ find: new RegExp(`^${specifier.replace(/[/.@-]/g, '\\$&')}$`), replacement: source });
      }
    }
  }
  return aliases;
}

/**
 * The config every package uses. `overrides.test` is merged into the defaults.
 * @param {{ test?: Record<string, unknown> }} [overrides]
 */
export function packageConfig(overrides = {}) {
  return defineConfig({
    resolve: { alias: workspaceAliases() },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 60_000,
      pool: 'forks',
      ...overrides.test,
    },
  });
}
