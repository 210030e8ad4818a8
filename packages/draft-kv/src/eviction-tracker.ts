/**
 * Kernel: continuous per-KV-head eviction, one query at a time (H2O's heavy hitters,
 * StreamingLLM's sinks + recent window).
 *
 *   for each query t (in order), per KV head g:
 *     admit the keys that became visible (index ≤ t); while |S_g| > C: evict
 *       heavy-hitter: argmin_{j ∈ S_g, not among the last `recent`} acc_g[j]   (ties: the oldest)
 *       sink-recent:  the oldest entry after the first `sinks`
 *     attend over S_g;  heavy-hitter: acc_g[j] += Σ_{h ∈ group g} softmax_j(scale · q_{h,t} · k_j)
 *
 * Eviction happens before the query attends, so every query reads at most C entries (H2O's
 * reference evicts after attending with C + 1; see the README). The accumulator sums are float64
 * over the kept keys in cache order, so a prefill over the whole sequence and a decoder fed the
 * same tokens one by one make identical choices.
 */
import { ConfigError, rowOffset, type Dims4 } from '@sparse-attn/core';

/** Which entry a full cache drops. */
export type EvictionRule = 'heavy-hitter' | 'sink-recent';

/** Capacity and protected regions of an eviction policy. */
export interface EvictionPolicy {
  readonly rule: EvictionRule;
  /** Entries kept per KV head. */
  readonly capacity: number;
  /** Most recent entries never evicted (H2O's recent budget; StreamingLLM's window). */
  readonly recent: number;
  /** Oldest entries never evicted (StreamingLLM's attention sinks). */
  readonly sinks: number;
}

/** The kept entries of one (batch, KV head) and their accumulated attention. */
export class EvictionTracker {
  /** Kept slots (cache indices), ascending. */
  slots: number[] = [];
  /** Accumulated attention per kept slot (heavy-hitter only). */
  accumulated: number[] = [];
  /** Slots admitted so far (the next key to admit). */
  admitted = 0;
  private readonly policy: EvictionPolicy;

  constructor(policy: EvictionPolicy) {
    if (!(Number.isInteger(policy.capacity) && policy.capacity >= 1)) throw new ConfigError(`eviction capacity must be a positive integer, got ${policy.capacity}`);
    if (policy.recent + policy.sinks > policy.capacity || policy.recent < 0 || policy.sinks < 0) {
      throw new ConfigError(`eviction: sinks ${policy.sinks} + recent ${policy.recent} must fit in capacity ${policy.capacity}`);
    }
    this.policy = policy;
  }

  /**
   * Starts from a cache that already holds `count` kept entries (slots `0..count−1`, e.g. after a
   * prefill compression), with their accumulated attention when known.
   */
  seed(count: number, accumulated?: ArrayLike<number>): void {
    this.slots = Array.from({ length: count }, (_, i) => i);
    this.accumulated = Array.from({ length: count }, (_, i) => (accumulated ? accumulated[i]! : 0));
    this.admitted = count;
  }

  /** Adds `scores[slot]` (one KV head's attention of a step, indexed by cache slot) to every kept slot's accumulator. */
  addScores(scores: ArrayLike<number>, offset = 0): void {
    for (let s = 0; s < this.slots.length; s++) this.accumulated[s]! += scores[offset + this.slots[s]!]!;
  }

  /** Admits keys up to (excluding) `limit`, evicting as needed. */
  admitUpTo(limit: number): void {
    while (this.admitted < limit) {
      this.slots.push(this.admitted++);
      this.accumulated.push(0);
      if (this.slots.length > this.policy.capacity) this.evictOne();
    }
  }

  private evictOne(): void {
    const n = this.slots.length;
    let victim: number;
    if (this.policy.rule === 'sink-recent') {
      victim = Math.min(this.policy.sinks, n - 1);
    } else {
      const candidates = Math.max(1, n - this.policy.recent);
      victim = 0;
      for (let i = 1; i < candidates; i++) if (this.accumulated[i]! < this.accumulated[victim]!) victim = i;
    }
    this.slots.splice(victim, 1);
    this.accumulated.splice(victim, 1);
  }

  /** Adds the attention of the group's queries (rows of `q`) to the kept slots' accumulators. */
  accumulate(q: Float32Array, qDims: Dims4, batch: number, queryHeads: readonly number[], query: number, k: Float32Array, kDims: Dims4, kvHead: number, scale: number): void {
    // Scores only matter when a heavy-hitter slot can be evicted by them.
    if (this.policy.rule !== 'heavy-hitter' || this.policy.capacity <= this.policy.recent) return;
    const n = this.slots.length;
    const logits = new Float64Array(n);
    for (const h of queryHeads) {
      const qo = rowOffset(qDims, batch, h, query);
      let max = -Infinity;
      for (let s = 0; s < n; s++) {
        const ko = rowOffset(kDims, batch, kvHead, this.slots[s]!);
        let dot = 0;
        for (let c = 0; c < qDims.dim; c++) dot += q[qo + c]! * k[ko + c]!;
        logits[s] = dot * scale;
        if (logits[s]! > max) max = logits[s]!;
      }
      let sum = 0;
      for (let s = 0; s < n; s++) sum += (logits[s] = Math.exp(logits[s]! - max));
      for (let s = 0; s < n; s++) this.accumulated[s]! += logits[s]! / sum;
    }
  }

  /** After the cache kept exactly this tracker's slots in order: slots become 0..n−1. */
  compacted(): void {
    this.slots = this.slots.map((_, i) => i);
    this.admitted = this.slots.length;
  }
}
