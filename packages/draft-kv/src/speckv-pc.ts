/**
 * SpecKV-PC (spec §4): SpecPC compresses the prompt with a draft that writes its whole lookahead
 * from the full prompt; SpecKV then runs on the kept tokens, reusing that lookahead instead of
 * drafting again. Paper configuration: SpecPC C = 2048, W = 64, kernel = neighbours = 32,
 * lookahead = the answer length, starting layer 8; SpecKV C = 256, w = 32, kernel 7, max/max.
 */
import type { LlamaModel } from '@sparse-attn/model';
import type { DraftModel } from './draft-model.js';
import type { DecodeOptions } from './press-policy.js';
import { specKvFromLookahead, type SpecKvConfigInput, type SpecKvRun } from './speckv.js';
import { specPcCompress, type SpecPcConfigInput } from './specpc.js';

/** The two stages' options (each defaulting to the paper's cascade configuration). */
export interface SpecKvPcConfig {
  readonly promptCompression?: SpecPcConfigInput;
  readonly kvCompression?: SpecKvConfigInput;
}

/** The cascade's paper defaults. */
export const specKvPcDefaults = {
  promptCompression: { capacity: 2048, window: 64, kernel: 32, neighbors: 32, lookahead: null, startLayer: 8 },
  kvCompression: { capacity: 256, window: 32, kernel: 7, pooling: 'max', reduction: 'max' },
} as const satisfies Required<SpecKvPcConfig>;

/**
 * SpecKV-PC: SpecPC (forced, full-length lookahead) then SpecKV on the compressed prompt with the
 * same lookahead. Positions are those of the compressed prompt (re-indexed), as in the reference.
 *
 * @see arXiv:2506.08373 §3.3
 */
export function specKvPcGenerate(target: LlamaModel, draft: DraftModel, prompt: ArrayLike<number>, maxNewTokens: number, config: SpecKvPcConfig = {}, decode: DecodeOptions = {}): SpecKvRun & { keptIndices: Int32Array } {
  draft.checkPairedWith(target);
  const started = performance.now();
  const compression = specPcCompress(draft, prompt, maxNewTokens, { ...specKvPcDefaults.promptCompression, ...config.promptCompression }, true);
  const kept = Int32Array.from(compression.indices, (i) => prompt[i]!);
  const lookahead = compression.observation?.tokens ?? new Int32Array(0);
  const draftMs = performance.now() - started;
  const result = specKvFromLookahead(target, kept, lookahead, maxNewTokens, { ...specKvPcDefaults.kvCompression, ...config.kvCompression }, draftMs, decode);
  return { ...result, keptIndices: compression.indices };
}
