/**
 * Kernel + method: MoBA, Mixture of Block Attention (arXiv:2502.13189; spec §13, `moba_naive.py`).
 *
 *   gate      s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for past blocks j < IC = floor(t / B)
 *   forced    s_t^h[IC] = +∞  (the current block, causally masked inside)
 *   routing   I_t^h = top-k_{j ≤ IC} s_t^h[j],  k' = min(k, IC + 1)       (per query head: no GQA sharing)
 *   attention o_t^h = Σ_{j ∈ ∪ I_t^h blocks, j ≤ t} softmax_j(scale · q_t^h·k_j) v_j   (one softmax over the union)
 *
 * Block means are pooled once per completed block (also incrementally in the decoder), so a query
 * scores IC block keys, never every token. Differences from the reference: MoBA's own decode falls
 * back to dense attention ("TODO release paged attn"); ours routes every decode step like prefill,
 * which is what makes decode equal prefill.
 */
import { z } from 'zod';
import { SelectionBuilder, defineMethod, rowOffset, sparseAttention, type AttentionResult, type DecoderShape } from '@sparse-attn/core';
import { blockPooling, createCachedDecoder, runPrefill, type ForwardCall } from './cached-decoder.js';
import { dot } from './dot-product.js';
import { selectionShare, sweep } from './method-helpers.js';
import { TopKSelector } from './select-top-k.js';

/** MoBA's options; defaults follow the paper's block size 512 and top-k 3. */
export const mobaConfigSchema = z
  .object({
    blockSize: z.number().int().min(1).default(512).describe('Keys per block B (moba_chunk_size); each block is gated by its mean key.'),
    topK: z.number().int().min(1).default(3).describe('Blocks attended per query and query head, the current block included (moba_topk).'),
  })
  .strict();

/** MoBA options with defaults filled in. */
export type MobaConfig = z.output<typeof mobaConfigSchema>;


function mobaForward(config: MobaConfig, call: ForwardCall): AttentionResult {
  const { q, k, v, dims: d, means } = call;
  const started = performance.now();
  const B = config.blockSize;
  const blocks = Math.max(1, Math.ceil(d.keySeq / B));
  const scores = new Float64Array(blocks);
  const chosen = new Int32Array(blocks);
  const selector = new TopKSelector(blocks);
  const builder = new SelectionBuilder(
    { kind: 'block', blockSize: B, headScope: 'query', batch: d.batch, heads: d.queryHeads, rows: d.querySeq, keySeq: d.keySeq },
    d.batch * d.queryHeads * d.querySeq * config.topK,
  );
  let selected = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      for (let i = 0; i < d.querySeq; i++) {
        const t = d.queryOffset + i;
        const current = Math.floor(t / B);
        const qo = rowOffset(d.qDims, b, h, i);
        for (let j = 0; j < current; j++) scores[j] = dot(q.data, qo, means.keyData, means.keyOffset(b, kvh, j), d.headDim);
        scores[current] = Infinity;
        const count = selector.select(scores, current + 1, Math.min(config.topK, current + 1), chosen);
        selected += count;
        builder.pushRow(chosen, count);
      }
    }
  }
  const selection = builder.finish();
  const selectionMs = performance.now() - started;
  const result = sparseAttention({ q, k, v, causal: true, scale: d.scale }, selection, { checkFinite: false, selectionMs });
  return {
    output: result.output,
    selection,
    stats: result.stats,
    backend: result.backend,
    diagnostics: {
      meanSelectedBlocks: selected / (d.batch * d.queryHeads * d.querySeq),
      selectionShare: selectionShare(selectionMs, result.stats.attentionMs),
    },
  };
}

/**
 * MoBA as a registrable method. Budget sweep: top-k ∈ {2, 4, 8, 16}, then every block.
 *
 * @see arXiv:2502.13189
 */
export const mobaMethod = defineMethod({
  id: 'moba',
  family: 'nsa',
  description: 'MoBA: each query head routes to its top-k key blocks by q · mean(block keys), current block always included, one causal softmax over the union.',
  paper: 'arXiv:2502.13189',
  configSchema: mobaConfigSchema,
  build: (config) => ({
    capabilities: { causalConsistent: true, supportsNonCausal: false, selection: 'block', sharesSelectionAcrossGroup: false },
    prefill: (input) => runPrefill('moba', input, blockPooling(config.blockSize), (call) => mobaForward(config, call)),
    createDecoder: (shape: DecoderShape) => createCachedDecoder(shape, blockPooling(config.blockSize), (call) => mobaForward(config, call)),
  }),
  budgets: (sequenceLength) => sweep(sequenceLength, 512, [2, 4, 8, 16], 'topK', 'k'),
});
