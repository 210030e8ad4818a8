import { ConfigError, ShapeError } from './errors.js';

/**
 * The keys each query attends to, stored CSR-style.
 *
 * Rows are laid out `[batch][head][queryRow]`: row `(b * heads + h) * rows + r` lists the
 * keys (token-level) or key blocks (block-level) for query row `r` of head `h` in batch `b`,
 * between `offsets[row]` and `offsets[row + 1]` of `indices`, sorted ascending and unique.
 *
 * - `headScope: 'query'`: one list per query head (`heads == queryHeads`).
 * - `headScope: 'kv'`: one list per KV head, shared by every query head of its GQA group
 *   (`heads == kvHeads`). NSA, Quest-style retrieval, DELTA and the KV-dropping methods share
 *   one selection across a group (they read each KV row once per group); Routing, MoBA and
 *   TidalDecode select per query head.
 * - `queryBlockSize`: queries `[r * queryBlockSize, (r + 1) * queryBlockSize)` share row `r`
 *   (1 = one list per query). Query indices are local to the call (0..querySeq-1).
 * - Block-level (`kind: 'block'`): index `j` stands for keys `[j * blockSize, min((j + 1) * blockSize, keySeq))`.
 *
 * A selection may name keys a causal query cannot see; the executor masks them, and the
 * stats count only the pairs actually scored.
 */
export interface Selection {
  readonly kind: 'token' | 'block';
  /** Keys per block; 1 for token-level selections. */
  readonly blockSize: number;
  readonly headScope: 'query' | 'kv';
  readonly batch: number;
  /** Heads the rows are given for (query heads or KV heads, per `headScope`). */
  readonly heads: number;
  /** Query rows per (batch, head). */
  readonly rows: number;
  /** Queries per row. */
  readonly queryBlockSize: number;
  /** Key sequence length the indices refer to. */
  readonly keySeq: number;
  /** `batch * heads * rows + 1` offsets into `indices`. */
  readonly offsets: Int32Array;
  /** Sorted, unique key (or block) indices of each row. */
  readonly indices: Int32Array;
}

/** Layout of a selection without its data, used to build one. */
export interface SelectionLayout {
  readonly kind: 'token' | 'block';
  readonly blockSize?: number;
  readonly headScope: 'query' | 'kv';
  readonly batch: number;
  readonly heads: number;
  readonly rows: number;
  readonly queryBlockSize?: number;
  readonly keySeq: number;
}

/**
 * Incremental CSR builder: push each row's indices in row order (`[batch][head][row]`).
 * Grows its index buffer geometrically; never allocates rows × keySeq.
 */
export class SelectionBuilder {
  private readonly layout: SelectionLayout;
  private readonly offsets: Int32Array;
  private indices: Int32Array;
  private count = 0;
  private row = 0;

  constructor(layout: SelectionLayout, expectedTotal = 1024) {
    this.layout = layout;
    const totalRows = layout.batch * layout.heads * layout.rows;
    this.offsets = new Int32Array(totalRows + 1);
    this.indices = new Int32Array(Math.max(16, expectedTotal));
  }

  /** Appends one row. `list[0..length)` must be sorted and unique (checked by {@link validateSelection}). */
  pushRow(list: ArrayLike<number>, length = list.length): void {
    if (this.row >= this.offsets.length - 1) throw new ShapeError('SelectionBuilder: more rows pushed than the layout holds');
    this.reserve(length);
    for (let i = 0; i < length; i++) this.indices[this.count + i] = list[i]!;
    this.count += length;
    this.row++;
    this.offsets[this.row] = this.count;
  }

  /** Appends one row holding the contiguous range `[start, end)`. */
  pushRange(start: number, end: number): void {
    if (this.row >= this.offsets.length - 1) throw new ShapeError('SelectionBuilder: more rows pushed than the layout holds');
    const length = Math.max(0, end - start);
    this.reserve(length);
    for (let i = 0; i < length; i++) this.indices[this.count + i] = start + i;
    this.count += length;
    this.row++;
    this.offsets[this.row] = this.count;
  }

  private reserve(extra: number): void {
    if (this.count + extra <= this.indices.length) return;
    let size = this.indices.length * 2;
    while (size < this.count + extra) size *= 2;
    const grown = new Int32Array(size);
    grown.set(this.indices.subarray(0, this.count));
    this.indices = grown;
  }

  /** The finished selection (every row must have been pushed). */
  finish(): Selection {
    if (this.row !== this.offsets.length - 1) {
      throw new ShapeError(`SelectionBuilder: ${this.row} rows pushed, layout needs ${this.offsets.length - 1}`);
    }
    const l = this.layout;
    return {
      kind: l.kind,
      blockSize: l.kind === 'token' ? 1 : (l.blockSize ?? 1),
      headScope: l.headScope,
      batch: l.batch,
      heads: l.heads,
      rows: l.rows,
      queryBlockSize: l.queryBlockSize ?? 1,
      keySeq: l.keySeq,
      offsets: this.offsets,
      indices: this.indices.slice(0, this.count),
    };
  }
}

/**
 * Checks a selection's structure: sizes, offsets monotone, indices sorted, unique and in range.
 * Throws a `ShapeError` naming the first bad row.
 */
export function validateSelection(s: Selection): void {
  if (s.kind !== 'token' && s.kind !== 'block') throw new ConfigError(`selection kind must be 'token' or 'block', got ${String(s.kind)}`);
  if (!(Number.isInteger(s.blockSize) && s.blockSize >= 1)) throw new ConfigError(`selection blockSize must be a positive integer, got ${s.blockSize}`);
  if (s.kind === 'token' && s.blockSize !== 1) throw new ConfigError(`token selections have blockSize 1, got ${s.blockSize}`);
  if (!(Number.isInteger(s.queryBlockSize) && s.queryBlockSize >= 1)) throw new ConfigError(`selection queryBlockSize must be a positive integer, got ${s.queryBlockSize}`);
  const totalRows = s.batch * s.heads * s.rows;
  if (s.offsets.length !== totalRows + 1) throw new ShapeError(`selection offsets: expected ${totalRows + 1} entries (batch ${s.batch} × heads ${s.heads} × rows ${s.rows} + 1), got ${s.offsets.length}`);
  if (s.offsets[0] !== 0) throw new ShapeError(`selection offsets must start at 0, got ${s.offsets[0]}`);
  if (s.offsets[totalRows] !== s.indices.length) throw new ShapeError(`selection offsets end at ${s.offsets[totalRows]}, indices has ${s.indices.length}`);
  const limit = s.kind === 'token' ? s.keySeq : Math.ceil(s.keySeq / s.blockSize);
  for (let r = 0; r < totalRows; r++) {
    const start = s.offsets[r]!;
    const end = s.offsets[r + 1]!;
    if (end < start) throw new ShapeError(`selection row ${r}: offsets decrease (${start} → ${end})`);
    let prev = -1;
    for (let i = start; i < end; i++) {
      const x = s.indices[i]!;
      if (x < 0 || x >= limit) throw new ShapeError(`selection row ${r}: index ${x} outside [0, ${limit})`);
      if (x <= prev) throw new ShapeError(`selection row ${r}: indices must be sorted and unique (${prev} then ${x})`);
      prev = x;
    }
  }
}

/** Expands a block-level selection into the token indices it covers (same rows). */
export function expandToTokens(s: Selection): Selection {
  if (s.kind === 'token') return s;
  const builder = new SelectionBuilder({ ...s, kind: 'token', blockSize: 1 }, s.indices.length * s.blockSize);
  const totalRows = s.batch * s.heads * s.rows;
  const scratch: number[] = [];
  for (let r = 0; r < totalRows; r++) {
    scratch.length = 0;
    for (let i = s.offsets[r]!; i < s.offsets[r + 1]!; i++) {
      const block = s.indices[i]!;
      const end = Math.min((block + 1) * s.blockSize, s.keySeq);
      for (let j = block * s.blockSize; j < end; j++) scratch.push(j);
    }
    builder.pushRow(scratch);
  }
  return builder.finish();
}

/**
 * Visits the key ranges of one row as `[start, end)` intervals, clipped to `limit`
 * (exclusive; pass the causal bound `queryPosition + 1`). Adjacent ranges are merged.
 */
export function forEachKeyRange(s: Selection, row: number, limit: number, visit: (start: number, end: number) => void): void {
  const startIndex = s.offsets[row]!;
  const endIndex = s.offsets[row + 1]!;
  const bs = s.blockSize;
  const cap = Math.min(limit, s.keySeq);
  let runStart = -1;
  let runEnd = -1;
  for (let i = startIndex; i < endIndex; i++) {
    const a = s.indices[i]! * bs;
    if (a >= cap) break;
    const b = Math.min(a + bs, cap);
    if (a === runEnd) {
      runEnd = b;
    } else {
      if (runEnd > runStart) visit(runStart, runEnd);
      runStart = a;
      runEnd = b;
    }
  }
  if (runEnd > runStart) visit(runStart, runEnd);
}

/** The selection row of query head `queryHead`, query `query` (local index), batch `b`. */
export function selectionRow(s: Selection, b: number, queryHead: number, groupSize: number, query: number): number {
  const head = s.headScope === 'query' ? queryHead : Math.floor(queryHead / groupSize);
  return (b * s.heads + head) * s.rows + Math.floor(query / s.queryBlockSize);
}

/** Selection rows as plain sorted key-index arrays (token-level), for tests and metrics. */
export function rowKeys(s: Selection, row: number, limit = Infinity): number[] {
  const out: number[] = [];
  forEachKeyRange(s, row, limit, (a, b) => {
    for (let j = a; j < b; j++) out.push(j);
  });
  return out;
}
