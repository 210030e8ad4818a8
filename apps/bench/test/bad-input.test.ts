import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWorkload, writeSafetensors } from '@sparse-attn/core';
import { describe, expect, it } from 'vitest';
import { runCli, temporaryDirectory } from './helpers.js';

const dir = temporaryDirectory();
const good = join(dir, 'good.safetensors');
const { input } = createWorkload('gaussian', { queryHeads: 2, kvHeads: 1, seqLength: 8, headDim: 4 });
writeFileSync(good, writeSafetensors({ q: input.q, k: input.k, v: input.v }));
const truncated = join(dir, 'truncated.safetensors');
writeFileSync(truncated, writeSafetensors({ q: input.q, k: input.k, v: input.v }).subarray(0, 60));
const noV = join(dir, 'no-v.safetensors');
writeFileSync(noV, writeSafetensors({ q: input.q, k: input.k }));
const out = join(dir, 'o.safetensors');

const cases: [string, string[], RegExp][] = [
  ['unknown flag', ['--frobnicate'], /frobnicate/],
  ['unknown command', ['explode'], /unknown command 'explode'/],
  ['bad --seq', ['--seq', '1k,abc'], /--seq: .*'abc'/],
  ['bad --backend', ['--backend', 'tpu'], /--backend: expected cpu or gpu, got 'tpu'/],
  ['gpu backend with a method that has no GPU version', ['--backend', 'gpu', '--methods', 'h2o'], /unknown method 'h2o' for backend gpu; registered: dense, block-top-k, .*\bnsa\b/],
  ['bad --time-budget', ['--time-budget', '-1'], /--time-budget: expected seconds/],
  ['bad --repeats', ['--repeats', '0'], /--repeats: expected a positive integer/],
  ['unknown workload', ['--workloads', 'gaussian,zipf'], /unknown workload 'zipf'/],
  ['unknown method in sweep', ['--methods', 'dense,nope'], /unknown method 'nope'/],
  ['unknown suite', ['--suites', 'nope'], /--suites: unknown suite 'nope'/],
  ['run without --in', ['run', '--method', 'dense', '--out', out], /--in is required/],
  ['run with unknown method', ['run', '--method', 'nope', '--in', good, '--out', out], /unknown method 'nope'/],
  ['run with --config that is not JSON', ['run', '--method', 'dense', '--config', '{bad', '--in', good, '--out', out], /--config: not valid JSON/],
  ['run with an invalid config', ['run', '--method', 'dense', '--config', '{"budget":3}', '--in', good, '--out', out], /ConfigError: dense: invalid config/],
  ['run with a missing file', ['run', '--method', 'dense', '--in', join(dir, 'missing.safetensors'), '--out', out], /cannot read .*missing\.safetensors \(ENOENT\)/],
  ['run with a truncated file', ['run', '--method', 'dense', '--in', truncated, '--out', out], /FormatError: .*truncated\.safetensors/],
  ['run with a file lacking v', ['run', '--method', 'dense', '--in', noV, '--out', out], /FormatError: .*'v'/],
  ['list with an unknown flag', ['list', '--yaml'], /yaml/],
  ['dense with a bad case', ['dense', '--case', 'gpu:12'], /--case: expected IMPLEMENTATION:SEQ/],
];

describe('bad input: one clear line on stderr, non-zero exit, no stack trace', () => {
  for (const [name, argv, message] of cases) {
    it(name, async () => {
      const r = await runCli(argv);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toHaveLength(1);
      expect(r.stderr[0]).toMatch(/^error: /);
      expect(r.stderr[0]).toMatch(message);
      expect(r.stderr[0]).not.toMatch(/\n|\s+at\s+\S+\s+\(/);
      expect(r.stdout.filter(Boolean)).toEqual([]);
    });
  }
});
