import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { causalFlops } from '../src/dense-command.js';
import { denseResultsSchema } from '../src/results-schema.js';
import { runCli, temporaryDirectory } from './helpers.js';

describe('bench dense --quick (issue 2 dense benchmark, tiny sizes)', () => {
  it('times reference, fast dense and onnxruntime, with GFLOP/s and the ratio vs onnxruntime', async () => {
    const dir = temporaryDirectory();
    const r = await runCli(['dense', '--quick', '--seq', '64,100', '--out', dir]);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const file = readdirSync(dir).find((f) => f.startsWith('dense-') && f.endsWith('.json'))!;
    const results = denseResultsSchema.parse(JSON.parse(readFileSync(join(dir, file), 'utf8')));
    expect(results.cases.map((c) => `${c.implementation}:${c.seqLength}`)).toEqual(['reference:64', 'fast-dense:64', 'onnxruntime:64', 'reference:100', 'fast-dense:100', 'onnxruntime:100']);
    for (const c of results.cases) {
      expect(c.status).toBe('ok');
      expect(c.gflops).toBeCloseTo(causalFlops(c.seqLength, 16, 2) / (c.timing!.medianMs * 1e6), 6);
      expect(c.ratioVsOrt).toBeGreaterThan(0);
      if (c.implementation !== 'fast-dense') expect(c.relativeL2ErrorVsFast).toBeLessThan(1e-5);
    }
    expect(results.cases.find((c) => c.implementation === 'onnxruntime')!.ratioVsOrt).toBe(1);
    expect(r.stdout.some((l) => l.startsWith('implementation'))).toBe(true);
  });
});
