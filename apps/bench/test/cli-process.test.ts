import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/registry.js';

// The built CLI (turbo builds before it tests: `pnpm test` runs `turbo run build test`).
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(args: string[]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build the package first (pnpm --filter @sparse-attn/bench build)`);
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('the built CLI as a process', () => {
  it('a bad flag exits 2 with one line on stderr and no stack trace', () => {
    const r = run(['--seq', 'abc']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual(["error: ConfigError: --seq: expected positive lengths like 1024 or 4k, got 'abc'"]);
  });

  it('`list --json` describes every registered method with its JSON schema and defaults', async () => {
    const listed = JSON.parse(execFileSync(process.execPath, [cli, 'list', '--json'], { encoding: 'utf8' })) as { methods: { id: string; defaults: object; schema: { type: string } }[] };
    expect(listed.methods.map((m) => m.id)).toEqual((await loadRegistry()).registry.list().map((d) => d.id));
    for (const m of listed.methods) {
      expect(m.schema.type).toBe('object');
      expect(typeof m.defaults).toBe('object');
    }
  });
});
