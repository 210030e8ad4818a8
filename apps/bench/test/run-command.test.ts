import { join } from 'node:path';
import { createWorkload, getInt32Tensor, getTensor, referenceAttention, relativeL2Error, sparseAttention, validateSelection, type Selection } from '@sparse-attn/core';
import { readSafetensorsFileSync, writeSafetensorsFileSync } from '@sparse-attn/core/node';
import { describe, expect, it } from 'vitest';
import { runCli, temporaryDirectory } from './helpers.js';

const dir = temporaryDirectory();
// GQA (4 query heads over 2 KV heads) at a length that is not a multiple of any block size.
const { input } = createWorkload('structured', { queryHeads: 4, kvHeads: 2, seqLength: 150, headDim: 16, seed: 11 });
const inPath = join(dir, 'qkv.safetensors');
writeSafetensorsFileSync(inPath, { q: input.q, k: input.k, v: input.v });

function selectionFrom(path: string): Selection {
  const file = readSafetensorsFileSync(path);
  const m = file.metadata;
  const num = (key: string) => Number(m[key]);
  const selection: Selection = {
    kind: 'token',
    blockSize: 1,
    headScope: m['selection_head_scope'] as 'query' | 'kv',
    batch: num('selection_batch'),
    heads: num('selection_heads'),
    rows: num('selection_rows'),
    queryBlockSize: num('selection_query_block_size'),
    keySeq: num('selection_key_seq'),
    offsets: getInt32Tensor(file, 'sel_offsets').data,
    indices: getInt32Tensor(file, 'sel_indices').data,
  };
  validateSelection(selection);
  return selection;
}

describe('bench run: one method on tensors from a safetensors file', () => {
  it('--method dense writes o equal to the reference and prints the stats as one JSON line', async () => {
    const outPath = join(dir, 'dense.safetensors');
    const r = await runCli(['run', '--method', 'dense', '--in', inPath, '--out', outPath]);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    expect(r.stdout).toHaveLength(1);
    const stats = JSON.parse(r.stdout[0]!);
    expect(stats.method).toBe('dense');
    expect(stats.stats.density).toBe(1);
    expect(stats.backend.kernel.length).toBeGreaterThan(0);
    const file = readSafetensorsFileSync(outPath);
    expect([...file.tensors.keys()]).toEqual(['o']);
    const o = getTensor(file, 'o', [1, 4, 150, 16]);
    expect(relativeL2Error(o, referenceAttention(input).output)).toBeLessThan(1e-5);
  });

  it('a block-selecting method (nsa) writes its selection expanded to tokens; o is exact attention over it', async () => {
    const outPath = join(dir, 'nsa.safetensors');
    const r = await runCli(['run', '--method', 'nsa', '--config', JSON.stringify({}), '--in', inPath, '--out', outPath]);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const stats = JSON.parse(r.stdout[0]!);
    expect(stats.selection.selection_kind).toBe('block');
    expect(stats.stats.density).toBeLessThanOrEqual(1);
    const selection = selectionFrom(outPath);
    expect(selection.indices.length).toBe(stats.selection.tokenEntries);
    const o = getTensor(readSafetensorsFileSync(outPath), 'o');
    expect(relativeL2Error(o, sparseAttention(input, selection).output)).toBeLessThan(1e-5);
  });

  it('a token-selecting method with a --config round-trips too (hierarchical-indexer)', async () => {
    const outPath = join(dir, 'indexer.safetensors');
    const r = await runCli(['run', '--method', 'hierarchical-indexer', '--in', inPath, '--out', outPath]);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    const selection = selectionFrom(outPath);
    const o = getTensor(readSafetensorsFileSync(outPath), 'o');
    expect(relativeL2Error(o, sparseAttention(input, selection).output)).toBeLessThan(1e-5);
  });
});
