import { z } from 'zod';
import {
  ConfigError,
  NumericError,
  SelectionBuilder,
  ShapeError,
  assertFinite,
  defineMethod,
  densePairCount,
  parseConfig,
  sparseAttention,
  tensor,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Tensor,
} from '@sparse-attn/core';
import { createCachedDecoder, runPrefill, type CachedDecoder, type ForwardCall, type PoolingSpec } from './cached-decoder.js';
import { CompressedLogits } from './compressed-logits.js';
import { NsaBlockSelector, visibleWindows } from './nsa-block-selector.js';
import { compressionBranch, outputOffset, windowBranch } from './nsa-gated-branches.js';
import { selectionShare, sweep } from './method-helpers.js';

const gateValue = z.union([z.number(), z.array(z.number()).min(1)]);

/**
 * NSA's options. Defaults are the paper's training-free setting (spec §2, §3.7): l = l′ = d = 64,
 * n = 16 blocks including 1 initial and 2 local ones, w = 512, `union` combination.
 */
export const nsaConfigSchema = z
  .object({
    compressionBlock: z.number().int().min(1).default(64).describe('Compression window length l: keys mean-pooled into one compressed key.'),
    compressionStride: z.number().int().min(1).default(64).describe('Compression stride d (d ≤ l, d divides l and l′); d < l gives overlapping windows.'),
    selectionBlock: z.number().int().min(1).default(64).describe('Selection block length l′: the granularity of the selected (fine) keys.'),
    selectedBlocks: z.number().int().min(1).default(16).describe('Blocks selected per query and KV head, forced blocks included (n).'),
    window: z.number().int().min(0).default(512).describe('Sliding window w: the last w keys (the query included); 0 disables the branch.'),
    forceInitial: z.boolean().default(true).describe('Always select the first block (attention sinks).'),
    forceLocal: z.number().int().min(0).default(2).describe('Always select the current block and the forceLocal − 1 blocks before it.'),
    compressionScore: z
      .enum(['mean', 'quest'])
      .default('mean')
      .describe("What the selection scores each compression window by: 'mean' = the mean-pooled key (FLA, the paper with φ = mean); 'quest' = the window's per-channel key bounds Σ max(q·min, q·max), an upper bound on its best key (spec §6's optional variant; finds lone needles that mean pooling dilutes; union only)."),
    combine: z
      .enum(['union', 'gated'])
      .default('union')
      .describe("'union': one softmax over the selected blocks ∪ window (training-free default, the compression branch only scores); 'gated': g_cmp·o_cmp + g_slc·o_slc + g_win·o_win as in the paper."),
    gates: z
      .object({
        compression: gateValue.default(0).describe('g_cmp: one constant, or one per query head.'),
        selection: gateValue.default(0.5).describe('g_slc: one constant, or one per query head.'),
        window: gateValue.default(0.5).describe('g_win: one constant, or one per query head.'),
      })
      .strict()
      .default({ compression: 0, selection: 0.5, window: 0.5 })
      .describe("Per-head constant gates of the 'gated' combination (a per-token gate tensor can be passed to nsaAttention / the decoder step)."),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (c.compressionStride > c.compressionBlock) issue('compressionStride', `must be ≤ compressionBlock (${c.compressionBlock}), got ${c.compressionStride}`);
    if (c.compressionBlock % c.compressionStride !== 0) issue('compressionBlock', `must be a multiple of compressionStride (${c.compressionStride}), got ${c.compressionBlock}`);
    if (c.selectionBlock % c.compressionStride !== 0) issue('selectionBlock', `must be a multiple of compressionStride (${c.compressionStride}), got ${c.selectionBlock}`);
    const forced = (c.forceInitial ? 1 : 0) + c.forceLocal;
    if (c.selectedBlocks < forced) issue('selectedBlocks', `must be ≥ the ${forced} forced blocks (forceInitial + forceLocal), got ${c.selectedBlocks}`);
    if (c.compressionScore === 'quest' && c.combine !== 'union') issue('compressionScore', "'quest' scores are a selection heuristic for the union combination; 'gated' needs the mean-pooled compression branch");
    if (c.combine === 'union' && c.forceLocal === 0 && c.window === 0) issue('forceLocal', 'union needs forceLocal ≥ 1 or window ≥ 1, or a query could attend to no key');
  });

/** NSA options as written by a user (every field optional). */
export type NsaConfigInput = z.input<typeof nsaConfigSchema>;
/** NSA options with defaults filled in. */
export type NsaConfig = z.output<typeof nsaConfigSchema>;

/** Per-call options of {@link nsaAttention} and the NSA decoder's `step`. */
export interface NsaCallOptions {
  /**
   * Per-token gates `[batch, queryHeads, querySeq, 3]` in FLA's order (cmp, slc, win), e.g. the
   * sigmoid of a trained gate projection. Only used by the `gated` combination; overrides the
   * config's per-head constants.
   */
  readonly gates?: Tensor;
}

/** Queries whose compression logits are computed by one matrix product (bounds the logit buffer to 64·G·NC floats). */
const LOGIT_CHUNK = 64;

const POOL = (c: NsaConfig): PoolingSpec => ({ length: c.compressionBlock, stride: c.compressionStride, values: c.combine === 'gated', bounds: c.compressionScore === 'quest' });

/**
 * Native Sparse Attention over one call (prefill, or a chunk aligned to the end of the keys).
 * Validates the input, pools the compressed keys, selects blocks per query and KV head, and
 * runs the attention through core's exact sparse executor.
 *
 * @see arXiv:2502.11089 §3 (NSA), spec §3.7 (training-free algorithm implemented here)
 */
export function nsaAttention(input: AttentionInput, config: NsaConfigInput = {}, options: NsaCallOptions = {}): AttentionResult {
  const parsed = parseConfig('nsa', nsaConfigSchema, config);
  return runPrefill('nsa', input, POOL(parsed), (call, gates) => nsaForward(parsed, call, gates), options.gates);
}

/** An NSA decoder: full KV cache + compressed cache, a new compressed entry per completed window. */
export function createNsaDecoder(shape: DecoderShape, config: NsaConfigInput = {}): CachedDecoder<Tensor> {
  const parsed = parseConfig('nsa', nsaConfigSchema, config);
  return createCachedDecoder<Tensor>(shape, POOL(parsed), (call, gates) => nsaForward(parsed, call, gates));
}

/** The shared forward of prefill and decode: block selection, then union or gated attention. */
function nsaForward(config: NsaConfig, call: ForwardCall, gates?: Tensor): AttentionResult {
  const { q, k, v, dims: d, means } = call;
  const started = performance.now();
  const union = config.combine === 'union';
  const G = d.groupSize;
  const selector = new NsaBlockSelector(config, G, d.keySeq);
  const logits = new CompressedLogits();
  const perRow = config.selectedBlocks + (union ? Math.ceil(config.window / config.selectionBlock) + 1 : 0);
  const builder = new SelectionBuilder(
    { kind: 'block', blockSize: config.selectionBlock, headScope: 'kv', batch: d.batch, heads: d.kvHeads, rows: d.querySeq, keySeq: d.keySeq },
    d.batch * d.kvHeads * d.querySeq * perRow,
  );
  let windowsScored = 0;
  let blocksSelected = 0;
  const visible = (i: number) => Math.min(means.count, visibleWindows(d.queryOffset + i, config.compressionBlock, config.compressionStride));
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.kvHeads; h++) {
      for (let first = 0; first < d.querySeq; first += LOGIT_CHUNK) {
        const last = Math.min(d.querySeq, first + LOGIT_CHUNK);
        const columns = visible(last - 1);
        if (columns > 0) logits.compute(q.data, d.qDims, means, b, h, G, first, last, columns, config.compressionScore);
        for (let i = first; i < last; i++) {
          const t = d.queryOffset + i;
          const nc = visible(i);
          if (nc > 0) selector.scoreWindows(logits.logits, (i - first) * G, columns, nc, d.scale);
          const count = selector.select(t, nc);
          windowsScored += nc;
          blocksSelected += count;
          if (union) builder.pushRow(selector.merged, selector.unionWithWindow(t, count));
          else builder.pushRow(selector.blocks, count);
        }
      }
    }
  }
  const selection = builder.finish();
  const selectionMs = performance.now() - started;
  const rows = d.batch * d.kvHeads * d.querySeq;
  const diagnostics = {
    meanVisibleCompressed: windowsScored / rows,
    meanSelectedBlocks: blocksSelected / rows,
    compressedKvBytesRead: windowsScored * 4 * (d.headDim + (union ? 0 : d.valueDim)),
  };
  const attend = (sel: typeof selection) => sparseAttention({ q, k, v, causal: true, scale: d.scale }, sel, { checkFinite: false, selectionMs });
  if (union) {
    const result = attend(selection);
    return {
      output: result.output,
      selection,
      stats: result.stats,
      backend: result.backend,
      diagnostics: { ...diagnostics, selectionShare: selectionShare(selectionMs, result.stats.attentionMs) },
    };
  }
  const slc = attend(selection);
  const win = windowBranch(call, config.window);
  const cmp = compressionBranch(call, config.compressionBlock, config.compressionStride);
  const output = combineGated(config, call, gates, cmp.output, slc.output.data, win.output);
  const pairs = slc.stats.pairs + win.pairs;
  const densePairs = densePairCount(d);
  const attentionMs = slc.stats.attentionMs + win.attentionMs + cmp.attentionMs;
  return {
    output,
    selection,
    stats: { pairs, densePairs, density: pairs / densePairs, kvBytesRead: slc.stats.kvBytesRead + win.kvBytesRead, selectionMs, attentionMs },
    backend: slc.backend,
    diagnostics: { ...diagnostics, compressedPairs: cmp.pairs, selectionShare: selectionShare(selectionMs, attentionMs) },
  };
}

/** Resolves a gate option (constant or per query head) into one value per query head. */
function perHead(name: string, value: number | readonly number[], queryHeads: number): Float64Array {
  if (typeof value === 'number') return new Float64Array(queryHeads).fill(value);
  if (value.length !== queryHeads) throw new ConfigError(`nsa: gates.${name} has ${value.length} values, the input has ${queryHeads} query heads (give one constant or one per head)`);
  return Float64Array.from(value);
}

/** o = g_cmp·o_cmp + g_slc·o_slc + g_win·o_win, per query head (constant gates) or per token (gate tensor). */
function combineGated(config: NsaConfig, call: ForwardCall, gates: Tensor | undefined, cmp: Float32Array, slc: Float32Array, win: Float32Array): Tensor {
  const d = call.dims;
  if (gates) {
    const expected = [d.batch, d.queryHeads, d.querySeq, 3];
    if (gates.shape.length !== 4 || gates.shape.some((x, i) => x !== expected[i])) {
      throw new ShapeError(`nsa: gates must be [${expected.join(', ')}] (batch, queryHeads, querySeq, cmp/slc/win), got [${gates.shape.join(', ')}]`);
    }
    assertFinite(gates, 'gates');
  }
  const gc = perHead('compression', config.gates.compression, d.queryHeads);
  const gs = perHead('selection', config.gates.selection, d.queryHeads);
  const gw = perHead('window', config.gates.window, d.queryHeads);
  const out = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      for (let i = 0; i < d.querySeq; i++) {
        const o = outputOffset(d, b, h, i);
        const gi = ((b * d.queryHeads + h) * d.querySeq + i) * 3;
        const c0 = gates ? gates.data[gi]! : gc[h]!;
        const c1 = gates ? gates.data[gi + 1]! : gs[h]!;
        const c2 = gates ? gates.data[gi + 2]! : gw[h]!;
        for (let c = 0; c < d.valueDim; c++) out[o + c] = c0 * cmp[o + c]! + c1 * slc[o + c]! + c2 * win[o + c]!;
      }
    }
  }
  for (const x of out) if (!Number.isFinite(x)) throw new NumericError('nsa: gated output is not finite (check the gates)');
  return tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out);
}

/**
 * NSA as a registrable method. The budget sweep varies n ∈ {4, 8, 16, 32} (the issue's sweep) and
 * ends with the n that covers every block, where `union` equals dense attention.
 *
 * @see arXiv:2502.11089
 */
export const nsaMethod = defineMethod({
  id: 'nsa',
  family: 'nsa',
  description: 'Native Sparse Attention: mean-pooled compression scores pick top-n key blocks per KV group (1 initial + 2 local forced), joined with a sliding window; union or gated combination.',
  paper: 'arXiv:2502.11089',
  configSchema: nsaConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: true },
    prefill: (input: AttentionInput) => runPrefill('nsa', input, POOL(config), (call) => nsaForward(config, call)),
    createDecoder: (shape: DecoderShape) => createCachedDecoder<Tensor>(shape, POOL(config), (call, gates) => nsaForward(config, call, gates)),
  }),
  budgets: (sequenceLength) => sweep(sequenceLength, 64, [4, 8, 16, 32], 'selectedBlocks', 'n', 3),
});
