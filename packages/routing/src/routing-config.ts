import { z } from 'zod';

/**
 * Config fields shared by both Routing Transformer methods (`routing`, `routing-causal`).
 * Every field has a default, so `{}` is a valid config.
 */
const sharedFields = {
  clusters: z
    .number().int().min(0).default(0)
    .describe('Clusters C per routing head. 0 = auto: ceil(S / window) when `window` is set, else round(√S) of the routed sequence (the spec\'s C ≈ √n, which gives O(S^1.5·D) cost).'),
  normalization: z
    .enum(['l2', 'layernorm'])
    .default('l2')
    .describe('Normalisation of queries/keys before routing: `l2` (LUCID F.normalize) or `layernorm` (GR layer norm without scale).'),
  sharedQK: z
    .boolean().default(false)
    .describe('Shared-QK mode: attention keys are the normalised queries and a token attends to itself only when nothing else is visible (−5e4 rule). Off: separate Q/K routing over the real keys.'),
  queryClusters: z
    .number().int().min(1).default(2)
    .describe('Clusters r_q each query attends to: those of its r_q most similar centroids (decode, the causal variant, and added to the balanced top-w at prefill). 2 absorbs near-ties between training-free centroids (multi-probe).'),
  keyClusters: z
    .number().int().min(1).default(2)
    .describe('Clusters r_k each key joins: those of its r_k most similar centroids (decode, the causal variant, and added to the balanced top-w at prefill). A query and a key meet when their top-r sets intersect.'),
  combine: z
    .enum(['union', 'mean'])
    .default('union')
    .describe('How a query in several clusters combines them: `union` = one softmax over the union of their keys (exact attention over the reported selection); `mean` = reference scatter_mean of per-cluster softmaxes.'),
  kmeansIterations: z
    .number().int().min(0).default(10)
    .describe('Lloyd iterations of the training-free spherical k-means fitted on the normalised keys (LUCID KMEAN_INIT_ITERS = 10).'),
  kmeansSampleSize: z
    .number().int().min(0).default(0)
    .describe('At most this many keys (seeded subsample) fit the centroids, so fitting costs O(iterations·sample·C·D) whatever S is. 0 = auto: max(256, 16·C).'),
  sinkTokens: z
    .number().int().min(0).default(4)
    .describe('The first keys every query also attends (attention sinks, StreamingLLM arXiv:2309.17453): trained LLM heads park much of their mass there, and no content cluster reliably holds them. 0 = off (reference).'),
  seed: z
    .number().int().min(0).default(0)
    .describe('Seed of the k-means initialisation and subsample (per head: seed + 7919·head).'),
  onlineUpdate: z
    .boolean().default(false)
    .describe('Online EMA update of the centroid each new routed key joins (decode and the causal variant): μ ← normalise(decay·μ + (1−decay)·x̂).'),
  emaDecay: z
    .number().gt(0).lt(1).default(0.999)
    .describe('Decay of the online EMA update (LUCID kmeans_ema_decay / GR decay 0.999).'),
};

/** Config of the `routing` method: balanced (top-w per cluster) routing, reference semantics. */
export const routingConfigSchema = z
  .object({
    ...sharedFields,
    window: z
      .number().int().min(0).default(0)
      .describe('Tokens w per cluster (balanced top-w). 0 = auto: ceil(S / C), so C·w ≈ S.'),
    membership: z
      .enum(['balanced+nearest', 'balanced'])
      .default('balanced+nearest')
      .describe('`balanced+nearest`: balanced top-w per cluster plus every key\'s top-`keyClusters` and every query\'s top-`queryClusters` centroids, so no key is unreachable and equal directions always meet (clusters grow past w). `balanced`: reference semantics, top-w only (about 1/e of the tokens of diffuse data land in no cluster).'),
    local: z
      .enum(['always', 'uncovered', 'never'])
      .default('always')
      .describe('When a query also attends to its last `localWindow` keys: `always` (a local head folded into the routing head; the Routing Transformer mixes local and routing heads, spec §1), `uncovered` (only queries routed to no visible key: the issue\'s fallback), `never` (reference: such queries output 0).'),
    localWindow: z
      .number().int().min(1).default(32)
      .describe('Keys of the local window (see `local`).'),
  })
  .strict();

/** Config of the `routing-causal` method: per-token argmax membership, so prefill equals decode. */
export const causalRoutingConfigSchema = z
  .object({
    ...sharedFields,
    calibrationTokens: z
      .number().int().min(1).default(256)
      .describe('Tokens attended densely before the centroids exist; the centroids are fitted on exactly these keys (then refitted per `refit`).'),
    refit: z
      .enum(['doubling', 'never'])
      .default('doubling')
      .describe('Refit the centroids (and reassign every key) whenever the sequence length doubles past calibration (C tracks √length when `clusters` is 0), or never.'),
    localWindow: z
      .number().int().min(0).default(32)
      .describe('Every query also attends to its last `localWindow` keys (a local head folded into the routing head, spec §1); 0 = off.'),
  })
  .strict();

/** Resolved `routing` config. */
export type RoutingConfig = z.output<typeof routingConfigSchema>;
/** Resolved `routing-causal` config. */
export type CausalRoutingConfig = z.output<typeof causalRoutingConfigSchema>;

/**
 * C for a routed sequence of `length` tokens: the configured value (at most `length`: more
 * clusters than tokens would only add empty ones, and C·S similarities must stay bounded); else,
 * with a configured window w, ceil(length / w) (LUCID `max_seq_len // window_size`); else round(√length).
 */
export function resolveClusters(clusters: number, length: number, window = 0): number {
  if (clusters > 0) return Math.max(1, Math.min(clusters, length));
  if (window > 0) return Math.max(1, Math.ceil(length / window));
  return Math.max(1, Math.round(Math.sqrt(length)));
}

/** k-means subsample for C clusters: the configured size or max(256, 16·C). */
export function resolveSampleSize(sampleSize: number, clusters: number): number {
  return sampleSize > 0 ? sampleSize : Math.max(256, 16 * clusters);
}
