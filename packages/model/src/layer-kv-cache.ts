import { ConfigError, KVCache, ShapeError, assertFinite, formatShape, type Tensor } from '@sparse-attn/core';

/**
 * One layer's KV cache as the model runtime owns it: core's {@link KVCache} (post-RoPE keys and
 * values, `[1, kvHeads, length, headDim]`, zero-copy views) plus the original RoPE position of
 * every entry, per KV head.
 *
 * The runtime, not the attention method, owns this cache so that KV-dropping methods can edit
 * it ({@link retain}, {@link crop}), forced selections can be run over it with core's
 * `sparseAttention`, and observers can read it. Positions are tracked because after an edit
 * the entry index no longer equals the position: SpecKV/SnapKV keep original positions and
 * decode continues at `N + t`, which the session's `nextPosition` does independently of
 * {@link length}.
 */
export class LayerKVCache {
  /** KV heads (entries are kept per KV head; every head holds the same count). */
  readonly kvHeads: number;
  readonly headDim: number;
  private readonly cache: KVCache;
  private positionData: Int32Array;
  private positionCapacity: number;
  private lockReason: string | undefined;

  constructor(kvHeads: number, headDim: number, initialCapacity = 256) {
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.cache = new KVCache({ batch: 1, kvHeads, headDim, valueDim: headDim, initialCapacity });
    this.positionCapacity = Math.max(1, initialCapacity);
    this.positionData = new Int32Array(kvHeads * this.positionCapacity);
  }

  /** Entries held per KV head. */
  get length(): number {
    return this.cache.length;
  }

  /** Bytes allocated for keys and values. */
  get allocatedBytes(): number {
    return this.cache.allocatedBytes;
  }

  /** Keys `[1, kvHeads, length, headDim]`: a zero-copy view, valid until the next append or edit. */
  keys(): Tensor {
    return this.cache.keys();
  }

  /** Values `[1, kvHeads, length, headDim]`: a zero-copy view, valid until the next append or edit. */
  values(): Tensor {
    return this.cache.values();
  }

  /** Original RoPE positions of KV head `head`'s entries (a copy, in cache order). */
  positions(head: number): Int32Array {
    if (!(Number.isInteger(head) && head >= 0 && head < this.kvHeads)) throw new ShapeError(`LayerKVCache.positions: head ${head} outside [0, ${this.kvHeads})`);
    const start = head * this.positionCapacity;
    return this.positionData.slice(start, start + this.length);
  }

  /**
   * Appends `k`, `v` (`[1, kvHeads, T, headDim]`, post-RoPE) for tokens at `positions` (T
   * entries, the same for every head). The model calls this once per layer per forward call;
   * tools may call it to plant a synthetic context (the benchmark does).
   */
  append(k: Tensor, v: Tensor, positions: ArrayLike<number>): void {
    // Every entry is checked once on the way in, so attention over the cache can skip the scan.
    assertFinite(k, 'k');
    assertFinite(v, 'v');
    const count = k.shape[2] ?? -1;
    if (positions.length !== count) throw new ShapeError(`LayerKVCache.append: ${positions.length} positions for k ${formatShape(k.shape)}`);
    const before = this.length;
    this.reservePositions(before + count);
    this.cache.append(k, v);
    for (let h = 0; h < this.kvHeads; h++) {
      const base = h * this.positionCapacity + before;
      for (let t = 0; t < count; t++) this.positionData[base + t] = positions[t]!;
    }
  }

  /**
   * Keeps only the listed entries of each KV head (`keep[h]` sorted, unique, in range; every
   * list the same length), compacting keys, values and positions in place: core's
   * `KVCache.retain` plus position bookkeeping. This is how KV-dropping methods evict.
   */
  retain(keep: readonly ArrayLike<number>[]): void {
    if (this.lockReason !== undefined) throw new ConfigError(`LayerKVCache.retain: this cache cannot be edited: ${this.lockReason}`);
    this.cache.retain(keep);
    for (let h = 0; h < this.kvHeads; h++) {
      const list = keep[h]!;
      const base = h * this.positionCapacity;
      for (let j = 0; j < list.length; j++) this.positionData[base + j] = this.positionData[base + list[j]!]!;
    }
  }

  /** Keeps the first `length` entries of every head (SpecKV's `cache.crop(C)`). */
  crop(length: number): void {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length)) {
      throw new ShapeError(`LayerKVCache.crop: length must be an integer in [0, ${this.length}], got ${length}`);
    }
    const keep = Int32Array.from({ length }, (_, i) => i);
    this.retain(Array.from({ length: this.kvHeads }, () => keep));
  }

  /**
   * Forbids edits from now on, with the reason given in the error. The session locks the caches
   * of layers driven by a method's own decoder: that decoder keeps a private copy an edit here
   * could not reach, so the two would silently disagree.
   */
  lock(reason: string): void {
    this.lockReason = reason;
  }

  /** Whether {@link retain} and {@link crop} are allowed. */
  get editable(): boolean {
    return this.lockReason === undefined;
  }

  /** Drops every entry (keeps the allocation). */
  reset(): void {
    this.cache.reset();
  }

  private reservePositions(needed: number): void {
    if (needed <= this.positionCapacity) return;
    let capacity = this.positionCapacity * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Int32Array(this.kvHeads * capacity);
    for (let h = 0; h < this.kvHeads; h++) {
      grown.set(this.positionData.subarray(h * this.positionCapacity, h * this.positionCapacity + this.length), h * capacity);
    }
    this.positionData = grown;
    this.positionCapacity = capacity;
  }
}
