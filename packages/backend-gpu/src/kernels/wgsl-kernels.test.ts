import { describe, expect, it } from 'vitest';
import { WgslParser, WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { POOL_PARAMS, blockPoolWgsl } from './block-pool-wgsl.js';
import { SCORE_PARAMS, blockScoreWgsl } from './block-score-wgsl.js';
import { BLOCK_DECODE_PARAMS, blockLogitsWgsl, blockMassWgsl } from './block-score-decode-wgsl.js';
import { TOP_K_PARAMS, blockTopKWgsl } from './block-top-k-wgsl.js';
import { FILL_PARAMS, fillNormalWgsl } from './fill-normal-wgsl.js';
import { GATHER_LIST_PARAMS, gatherListsWgsl, gatherMergeWgsl, gatherScanWgsl, gatherSortWgsl, gatherTileMapWgsl } from './gather-lists-wgsl.js';
import { ATTENTION_PARAMS, GATHER_ATTENTION_PARAMS, flashAttentionWgsl, flashAttentionWorkgroupBytes, usesVectorLoads, type FlashAttentionKernelOptions } from './flash-attention-wgsl.js';
import { DECODE_DUMP_PARAMS, DECODE_PAGES_PARAMS, DECODE_PARTIAL_PARAMS, DECODE_SELECTION_PARAMS, decodePartialWgsl, splitKPartitions } from './decode-split-k-wgsl.js';
import { DECODE_MERGE_COLUMNS, DECODE_MERGE_COPY_PARAMS, DECODE_MERGE_LANES, DECODE_MERGE_PARAMS, DECODE_MERGE_THREADS, decodeMergeGrid, decodeMergeWgsl } from './decode-merge-wgsl.js';
import { dispatchGrid, vectorTileFits } from './score-tile-wgsl.js';

/** Bytes of every `var<workgroup>` the source declares (f32/u32/atomic<u32> scalars and arrays of f32, u32, vec4<f32>). */
function declaredWorkgroupBytes(code: string): number {
  let bytes = 0;
  for (const match of code.matchAll(/var<workgroup>\s+\w+\s*:\s*([^;]+);/g)) {
    const type = match[1]!.trim();
    const array = /^array<(vec4<f32>|f32|u32),\s*(\d+)>$/.exec(type);
    if (array) bytes += (array[1] === 'vec4<f32>' ? 16 : 4) * Number(array[2]);
    else if (type === 'u32' || type === 'f32' || type === 'atomic<u32>') bytes += 4;
    else throw new Error(`unexpected workgroup type ${type}`);
  }
  return bytes;
}

/** Parses the source (syntax) and returns its reflection (entry points, bindings, uniform struct). */
function reflect(code: string): WgslReflect {
  expect(() => new WgslParser().parse(code)).not.toThrow();
  return new WgslReflect(code);
}

/** Member names of the uniform `Params` struct, in order. */
function uniformFields(r: WgslReflect): string[] {
  const params = r.structs.find((s) => s.name === 'Params');
  return (params?.members ?? []).map((m) => m.name);
}

function bindings(r: WgslReflect): Array<[string, number, string]> {
  return r.storage.map((s) => [s.name, s.binding, s.access] as [string, number, string]).sort((a, b) => a[1] - b[1]);
}

const attentionOptions: FlashAttentionKernelOptions[] = [
  { mode: 'dense', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 16 }, valueChunk: 16 },
  { mode: 'csr', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 16 }, valueChunk: 16 },
  { mode: 'dense', headDim: 20, valueDim: 24, tile: { rows: 16, chunk: 16 }, valueChunk: 16 },
  { mode: 'csr', headDim: 16, valueDim: 200, tile: { rows: 16, chunk: 16 }, valueChunk: 16 },
  { mode: 'gather', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 16 }, valueChunk: 16 },
  { mode: 'gather', headDim: 18, valueDim: 10, tile: { rows: 64, chunk: 16 }, valueChunk: 16 },
  { mode: 'gather', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 16 }, valueChunk: 16, masked: true },
];

describe('key-block executor passes (WGSL)', () => {
  it('count, scan, scatter and merge parse, share the uniform layout and bind what the backend passes', () => {
    const kernels: Array<[string, Array<[string, number, string]>]> = [
      [gatherListsWgsl({ scatter: false }), [['bounds', 1, 'read'], ['indices', 2, 'read'], ['counter', 3, 'read_write']]],
      [gatherScanWgsl(), [['counts', 1, 'read'], ['listMeta', 2, 'read_write']]],
      [gatherTileMapWgsl(), [['listMeta', 1, 'read_write']]],
      [gatherSortWgsl(), [['listMeta', 1, 'read'], ['items', 2, 'read_write']]],
      [gatherListsWgsl({ scatter: true }), [['bounds', 1, 'read'], ['indices', 2, 'read'], ['counter', 3, 'read_write'], ['listMeta', 4, 'read'], ['items', 5, 'read_write']]],
      [gatherMergeWgsl(24), [['bounds', 1, 'read'], ['partOut', 2, 'read'], ['partLse', 3, 'read'], ['out', 4, 'read_write'], ['lse', 5, 'read_write']]],
    ];
    for (const [code, expected] of kernels) {
      const r = reflect(code);
      expect(uniformFields(r)).toEqual([...GATHER_LIST_PARAMS]);
      expect(bindings(r)).toEqual(expected);
    }
  });
});

describe('flash attention WGSL', () => {
  for (const o of attentionOptions) {
    it(`${o.mode}${o.masked ? ' masked' : ''} D${o.headDim} Dv${o.valueDim} rows ${o.tile.rows}: parses, binds q/k/v/out/lse (+ CSR), matches the uniform layout`, () => {
      const code = flashAttentionWgsl(o);
      const r = reflect(code);
      expect(r.entry.compute.map((e) => e.name)).toEqual(['main']);
      expect(r.uniforms.map((u) => [u.name, u.binding])).toEqual([['P', 0]]);
      const expected: Array<[string, number, string]> = [
        ['q', 1, 'read'],
        ['k', 2, 'read'],
        ['v', 3, 'read'],
        ['out', 4, 'read_write'],
        ['lse', 5, 'read_write'],
      ];
      if (o.mode === 'csr') expected.push(['bounds', 6, 'read'], ['indices', 7, 'read']);
      if (o.mode === 'gather') expected.push(['listMeta', 6, 'read'], ['items', 7, 'read']);
      if (o.masked) expected.push(['masks', 8, 'read']);
      expect(bindings(r)).toEqual(expected);
      expect(uniformFields(r)).toEqual(o.mode === 'gather' ? [...GATHER_ATTENTION_PARAMS] : [...ATTENTION_PARAMS]);
      expect(code).toContain(`const D: u32 = ${o.headDim}u;`);
      expect(code).toContain(`const DV: u32 = ${o.valueDim}u;`);
      expect(code).toContain(`@compute @workgroup_size(NT)`);
      expect(code).toContain(`const NT: u32 = ${(o.tile.rows / 4) * 16}u;`);
    });

    it(`${o.mode}${o.masked ? ' masked' : ''} D${o.headDim} Dv${o.valueDim} rows ${o.tile.rows}: the reported workgroup memory covers what the source declares`, () => {
      const declared = declaredWorkgroupBytes(flashAttentionWgsl(o));
      const reported = flashAttentionWorkgroupBytes(o);
      expect(reported).toBeGreaterThanOrEqual(declared);
      expect(reported - declared).toBeLessThan(16);
    });
  }

  it('reads q, k, v as vec4 when the head dims allow it, as f32 otherwise', () => {
    const vector = { mode: 'dense', headDim: 128, valueDim: 128, tile: { rows: 64, chunk: 32 }, valueChunk: 16 } as const;
    expect(usesVectorLoads(vector)).toBe(true);
    expect(flashAttentionWgsl(vector)).toContain('var<storage, read> k: array<vec4<f32>>;');
    const scalar = { ...vector, headDim: 18, valueDim: 10 };
    expect(usesVectorLoads(scalar)).toBe(false);
    expect(flashAttentionWgsl(scalar)).toContain('var<storage, read> k: array<f32>;');
    // The 16-row tile stages fewer values than it has threads × 4 at Dv = 4: scalar there.
    expect(usesVectorLoads({ ...vector, headDim: 4, valueDim: 4, tile: { rows: 64, chunk: 4 }, valueChunk: 4 })).toBe(false);
    for (const o of [vector, scalar, { ...vector, tile: { rows: 16, chunk: 16 } } as const]) expect(() => new WgslParser().parse(flashAttentionWgsl(o))).not.toThrow();
  });

  it('vectorTileFits: whole vec4 operand shares per thread and widths that are multiples of 4', () => {
    expect(vectorTileFits({ rows: 64, chunk: 16 }, 128)).toBe(true);
    expect(vectorTileFits({ rows: 16, chunk: 16 }, 128, 256)).toBe(true);
    expect(vectorTileFits({ rows: 64, chunk: 16 }, 128, 18)).toBe(false);
    // 64 rows × 4 channels is a quarter vec4 per thread of 256: scalar loads.
    expect(vectorTileFits({ rows: 64, chunk: 4 }, 128)).toBe(false);
  });

  it('one output accumulator vec4 per 64 value columns per row', () => {
    const code = flashAttentionWgsl({ mode: 'dense', headDim: 64, valueDim: 130, tile: { rows: 64, chunk: 16 }, valueChunk: 16 });
    // Dv 130 pads to 192: three vec4 accumulators for each of the thread's four rows.
    expect(code.match(/var o\d_\d = vec4<f32>\(0\.0\);/g)).toHaveLength(12);
    expect(code).toContain('const DVP: u32 = 192u;');
  });

  it('the largest D=128 tile fits the 32 KiB of workgroup memory WebGPU devices commonly give, the small tile the 16 KiB default', () => {
    expect(flashAttentionWorkgroupBytes(attentionOptions[0]!)).toBeLessThanOrEqual(32768);
    expect(flashAttentionWorkgroupBytes({ mode: 'csr', headDim: 64, valueDim: 64, tile: { rows: 16, chunk: 16 }, valueChunk: 16 })).toBeLessThanOrEqual(16384);
  });
});

describe('block pipeline WGSL', () => {
  it('pooling parses and writes mean, max and min', () => {
    const r = reflect(blockPoolWgsl());
    expect(bindings(r)).toEqual([
      ['k', 1, 'read'],
      ['meanOut', 2, 'read_write'],
      ['maxOut', 3, 'read_write'],
      ['minOut', 4, 'read_write'],
    ]);
    expect(uniformFields(r)).toEqual([...POOL_PARAMS]);
  });

  for (const scoring of ['quest', 'mean'] as const) {
    for (const rows of [64, 16] as const) {
      it(`scoring (${scoring}, rows ${rows}) parses; Quest's bound doubles the operand width`, () => {
        const code = blockScoreWgsl({ headDim: 96, scoring, tile: { rows, chunk: 16 } });
        const r = reflect(code);
        expect(bindings(r)).toEqual([
          ['q', 1, 'read'],
          ['pooledA', 2, 'read'],
          ['pooledB', 3, 'read'],
          ['scores', 4, 'read_write'],
        ]);
        expect(uniformFields(r)).toEqual([...SCORE_PARAMS]);
        expect(code).toContain(`const E: u32 = ${scoring === 'quest' ? 192 : 96}u;`);
        expect(declaredWorkgroupBytes(code)).toBeLessThanOrEqual(rows === 64 ? 32768 : 16384);
      });
    }
  }

  for (const scoring of ['quest', 'mean'] as const) {
    for (const headDim of [128, 18]) {
      it(`decode-shaped logits (${scoring}, D ${headDim}) parse, vec4 operands where D is a multiple of 4`, () => {
        const code = blockLogitsWgsl({ headDim, scoring });
        const r = reflect(code);
        expect(bindings(r)).toEqual([
          ['q', 1, 'read'],
          ['pooledA', 2, 'read'],
          ['pooledB', 3, 'read'],
          ['logits', 4, 'read_write'],
        ]);
        expect(uniformFields(r)).toEqual([...BLOCK_DECODE_PARAMS]);
        expect(code).toContain(headDim % 4 === 0 ? `array<vec4<f32>>` : 'array<f32>');
        // Mean scoring never reads the bounds' second half (its binding is left out of the layout).
        expect(code.includes('pooledB[')).toBe(scoring === 'quest');
      });
    }
  }

  it('the decode-shaped mass reduction parses', () => {
    const r = reflect(blockMassWgsl());
    expect(bindings(r)).toEqual([
      ['logits', 1, 'read'],
      ['scores', 2, 'read_write'],
    ]);
    expect(uniformFields(r)).toEqual([...BLOCK_DECODE_PARAMS]);
  });

  it('top-k parses and sizes its pick list by the CSR stride', () => {
    const code = blockTopKWgsl(21);
    const r = reflect(code);
    expect(bindings(r)).toEqual([
      ['scores', 1, 'read'],
      ['bounds', 2, 'read_write'],
      ['indices', 3, 'read_write'],
    ]);
    expect(uniformFields(r)).toEqual([...TOP_K_PARAMS]);
    expect(code).toContain('var<workgroup> picks: array<u32, 21>;');
    expect(code).toContain('min(min(visible, forced + P.topK), 21u)');
  });

  it('the normal fill parses', () => {
    const r = reflect(fillNormalWgsl());
    expect(bindings(r)).toEqual([['data', 1, 'read_write']]);
    expect(uniformFields(r)).toEqual([...FILL_PARAMS]);
  });

  it('every uniform block is a whole number of 16-byte rows', () => {
    for (const fields of [ATTENTION_PARAMS, POOL_PARAMS, SCORE_PARAMS, BLOCK_DECODE_PARAMS, TOP_K_PARAMS, FILL_PARAMS]) expect((fields.length * 4) % 16).toBe(0);
  });
});

describe('split-K decode partial WGSL: range keys, the page-list and selection modes, the score dump', () => {
  for (const [headDim, valueDim] of [[128, 128], [18, 10], [64, 160]] as const) {
    it(`D${headDim} Dv${valueDim}: every mode parses and binds what its host passes`, () => {
      const kernel = { headDim, valueDim };
      const head: Array<[string, number, string]> = [['q', 1, 'read'], ['k', 2, 'read'], ['v', 3, 'read']];
      const range = reflect(decodePartialWgsl(kernel));
      expect(uniformFields(range)).toEqual([...DECODE_PARTIAL_PARAMS]);
      expect(bindings(range)).toEqual([...head, ['partial', 4, 'read_write']]);
      expect(decodePartialWgsl({ ...kernel, keys: 'range', dumpScores: false })).toBe(decodePartialWgsl(kernel));

      const pages = reflect(decodePartialWgsl({ ...kernel, keys: 'pages' }));
      expect(uniformFields(pages)).toEqual([...DECODE_PAGES_PARAMS]);
      expect(bindings(pages)).toEqual([...head, ['bounds', 4, 'read'], ['pages', 5, 'read'], ['partial', 6, 'read_write']]);

      const rows = reflect(decodePartialWgsl({ ...kernel, keys: 'selection' }));
      expect(uniformFields(rows)).toEqual([...DECODE_SELECTION_PARAMS]);
      expect(bindings(rows)).toEqual([...head, ['bounds', 4, 'read'], ['indices', 5, 'read'], ['partial', 6, 'read_write']]);

      const dumpCode = decodePartialWgsl({ ...kernel, dumpScores: true });
      const dump = reflect(dumpCode);
      expect(uniformFields(dump)).toEqual([...DECODE_PARTIAL_PARAMS]);
      expect(bindings(dump)).toEqual([...head, ['partial', 4, 'read_write'], ['dumpLogits', 5, 'read_write']]);
      expect(dump.uniforms.map((u) => [u.name, u.binding])).toEqual([['P', 0], ['dump', 6]]);
      expect((dump.structs.find((x) => x.name === 'DumpParams')?.members ?? []).map((m) => m.name)).toEqual([...DECODE_DUMP_PARAMS]);
      // The logit is stored once it is scored, before the tile reduction reads it.
      expect(dumpCode.indexOf('dumpLogits[(')).toBeGreaterThan(dumpCode.indexOf('s = '));
      expect(dumpCode.indexOf('dumpLogits[(')).toBeLessThan(dumpCode.indexOf('red[lid] = s;'));
    });
  }

  it('the merge parses with and without the lse copy, and binds what its hosts pass', () => {
    for (const valueDim of [128, 10]) {
      const plain = reflect(decodeMergeWgsl(valueDim));
      expect(uniformFields(plain)).toEqual([...DECODE_MERGE_PARAMS]);
      expect(bindings(plain)).toEqual([['partial', 1, 'read'], ['out', 2, 'read_write'], ['lse', 3, 'read_write']]);
      expect(decodeMergeWgsl(valueDim, { copyLse: false })).toBe(decodeMergeWgsl(valueDim));
      const copy = reflect(decodeMergeWgsl(valueDim, { copyLse: true }));
      expect(uniformFields(copy)).toEqual([...DECODE_MERGE_COPY_PARAMS]);
      expect(bindings(copy)).toEqual([['partial', 1, 'read'], ['out', 2, 'read_write'], ['lse', 3, 'read_write'], ['lseAll', 4, 'read_write']]);
    }
    expect((DECODE_MERGE_COPY_PARAMS.length * 4) % 16).toBe(0);
  });

  it('the merge takes a workgroup per row and 32 output columns, within the dispatch limit', () => {
    expect(decodeMergeGrid(32, 128)).toEqual([128, 1]);
    expect(decodeMergeGrid(5, 10)).toEqual([5, 1]);
    expect(decodeMergeGrid(3, 33)).toEqual([6, 1]);
    const [x, y] = decodeMergeGrid(70_000, 128);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(280_000);
    expect(DECODE_MERGE_LANES * DECODE_MERGE_COLUMNS).toBe(DECODE_MERGE_THREADS);
  });

  it('rejects a dump in the page-list and selection modes and unknown key sources', () => {
    expect(() => decodePartialWgsl({ headDim: 64, valueDim: 64, keys: 'pages', dumpScores: true })).toThrow(/range keys/);
    expect(() => decodePartialWgsl({ headDim: 64, valueDim: 64, keys: 'selection', dumpScores: true })).toThrow(/range keys/);
    expect(() => decodePartialWgsl({ headDim: 64, valueDim: 64, keys: 'tokens' as never })).toThrow(/key source/);
  });
});

describe('splitKPartitions', () => {
  it('splits few rows over many 64-key partitions and gives many rows one partition, covering every key', () => {
    // 32 decode rows of 1536 selected keys (MoBA at 64k): 24 partitions of one tile each.
    expect(splitKPartitions(32, 1536)).toEqual({ partitions: 24, partitionSize: 64 });
    // 32 rows of 64k keys: 64 partitions (2048 workgroups) of 1024 keys.
    expect(splitKPartitions(32, 65536)).toEqual({ partitions: 64, partitionSize: 1024 });
    expect(splitKPartitions(8192, 1000)).toEqual({ partitions: 1, partitionSize: 1024 });
    expect(splitKPartitions(1, 0)).toEqual({ partitions: 1, partitionSize: 64 });
    for (const [rows, keys] of [[1, 1], [3, 65], [100, 5000], [4096, 64], [7, 123457]] as const) {
      const plan = splitKPartitions(rows, keys);
      expect(plan.partitionSize % 64).toBe(0);
      expect(plan.partitions * plan.partitionSize).toBeGreaterThanOrEqual(keys);
      expect((plan.partitions - 1) * plan.partitionSize).toBeLessThan(Math.max(1, keys));
    }
  });

  it('splits one row (a decoder cache view: one dispatch per KV slot) into at most 256 partitions', () => {
    // 1 row of 64k keys: 256 partitions of 256 keys (1 024 one-tile partitions took 2× the GPU time: their merge is one workgroup).
    expect(splitKPartitions(1, 65536)).toEqual({ partitions: 256, partitionSize: 256 });
    expect(splitKPartitions(1, 65537).partitions).toBeLessThanOrEqual(256);
    for (const keys of [1, 64, 16384, 1 << 20]) expect(splitKPartitions(1, keys).partitions).toBeLessThanOrEqual(256);
  });
});

describe('dispatchGrid', () => {
  it('keeps small dispatches one-dimensional and never dispatches zero workgroups', () => {
    expect(dispatchGrid(0)).toEqual([1, 1]);
    expect(dispatchGrid(1)).toEqual([1, 1]);
    expect(dispatchGrid(65535)).toEqual([65535, 1]);
  });

  it('folds large counts into y so that x·y covers the count and each side stays under the limit', () => {
    for (const count of [65536, 131071, 1 << 20, 32 * 1024 * 64, 4_000_000_007 % 100_000_000]) {
      const [x, y] = dispatchGrid(count);
      expect(x).toBeLessThanOrEqual(65535);
      expect(y).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(count);
      expect(x * (y - 1)).toBeLessThan(count);
    }
    expect(dispatchGrid(100, 8)).toEqual([8, 13]);
  });
});
