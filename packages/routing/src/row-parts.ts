import { SelectionBuilder, type Selection } from '@sparse-attn/core';

/**
 * Per query row, the key lists ("parts") it attends to: one part per routed cluster (or the
 * local-window fallback). The same parts serve both ways of combining clusters:
 *
 * - union: one softmax over the union of the parts (one selection row, what the executor runs);
 * - mean: the Routing Transformer's `scatter_mean` — one softmax per part, outputs averaged —
 *   realised as one executor pass per part rank (pass p runs every row's p-th part).
 *
 * Rows may be filled in any order (`beginRow(row)`), since routing runs head by head while the
 * causal router walks tokens; each row's parts must be added right after its `beginRow`.
 * Empty parts are dropped, so `partCount(row)` counts the non-empty ones.
 */
export class RowParts {
  /** Rows in the layout (`batch · heads · rowsPerHead`). */
  readonly totalRows: number;
  private readonly firstPart: Int32Array;
  private readonly partCounts: Int32Array;
  private partStart = new Int32Array(1024);
  private partLength = new Int32Array(1024);
  private parts = 0;
  private data = new Int32Array(4096);
  private size = 0;
  private current = -1;

  constructor(totalRows: number) {
    this.totalRows = totalRows;
    this.firstPart = new Int32Array(totalRows);
    this.partCounts = new Int32Array(totalRows);
  }

  /** Starts row `row`; the parts added next belong to it. */
  beginRow(row: number): void {
    this.current = row;
    this.firstPart[row] = this.parts;
    this.partCounts[row] = 0;
  }

  /** Adds the ascending key list `list[from .. to)` as a part of the current row (ignored if empty). */
  addPart(list: Int32Array, from: number, to: number): void {
    if (to <= from) return;
    const start = this.openPart(to - from);
    this.data.set(list.subarray(from, to), start);
    this.closePart(start, to - from);
  }

  /**
   * Adds `list[from .. to)` (ascending) with `position` inserted if missing — "the cluster's keys
   * plus itself" (spec routing.md §5). With `selfRule` (shared QK) the position is then removed
   * again whenever the part holds another key: a token attends to itself only when nothing else
   * is visible (LUCID `TOKEN_SELF_ATTN_VALUE` = −5e4, whose softmax weight underflows to 0).
   */
  addPartWithSelf(list: Int32Array, from: number, to: number, position: number, selfRule: boolean): void {
    const start = this.openPart(to - from + 1);
    const data = this.data;
    let at = start;
    let inserted = false;
    for (let i = from; i < to; i++) {
      const x = list[i]!;
      if (!inserted && x >= position) {
        if (x !== position) data[at++] = position;
        inserted = true;
      }
      data[at++] = x;
    }
    if (!inserted) data[at++] = position;
    let length = at - start;
    if (selfRule && length > 1) {
      let w = start;
      for (let i = start; i < start + length; i++) if (data[i] !== position) data[w++] = data[i]!;
      length = w - start;
    }
    this.closePart(start, length);
  }

  /** Adds the contiguous keys `[start, end)` as a part of the current row (ignored if empty). */
  addRange(start: number, end: number): void {
    if (end <= start) return;
    const at = this.openPart(end - start);
    for (let j = start; j < end; j++) this.data[at + j - start] = j;
    this.closePart(at, end - start);
  }

  /** Non-empty parts of `row`. */
  partCount(row: number): number {
    return this.partCounts[row]!;
  }

  /** The largest part count over all rows (the number of passes `mean` needs). */
  maxParts(): number {
    let m = 0;
    for (let r = 0; r < this.totalRows; r++) m = Math.max(m, this.partCounts[r]!);
    return m;
  }

  /** Total keys over every part (with repeats across parts). */
  get totalKeys(): number {
    return this.size;
  }

  /**
   * The union of each row's parts as a token-level selection. With `selfRule`, a row's own
   * position (`queryOffset + row % rowsPerHead`) is dropped whenever the row holds another key
   * (the shared-QK −5e4 rule: a token attends to itself only when nothing else is visible).
   */
  toUnionSelection(layout: UnionLayout): Selection {
    const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: layout.batch, heads: layout.heads, rows: layout.rowsPerHead, keySeq: layout.keySeq }, this.size);
    let merged = new Int32Array(64);
    let spare = new Int32Array(64);
    for (let row = 0; row < this.totalRows; row++) {
      const count = this.partCounts[row]!;
      if (count === 0) {
        builder.pushRow(merged, 0);
        continue;
      }
      const first = this.firstPart[row]!;
      let total = 0;
      for (let p = first; p < first + count; p++) total += this.partLength[p]!;
      if (merged.length < total) {
        merged = new Int32Array(Math.max(total, merged.length * 2));
        spare = new Int32Array(merged.length);
      }
      // Every part is ascending: fold them in one by one with a linear merge that drops repeats
      // (O(total · parts), instead of sorting the concatenation).
      let length = this.partLength[first]!;
      merged.set(this.data.subarray(this.partStart[first]!, this.partStart[first]! + length));
      for (let p = first + 1; p < first + count; p++) {
        length = mergeUnique(merged, length, this.data, this.partStart[p]!, this.partLength[p]!, spare);
        [merged, spare] = [spare, merged];
      }
      if (layout.selfRule && length > 1) length = removeValue(merged, length, layout.queryOffset + (row % layout.rowsPerHead));
      builder.pushRow(merged, length);
    }
    return builder.finish();
  }

  /** Pass `pass` of the `mean` combination: each row's `pass`-th part (empty if it has fewer). */
  toPassSelection(pass: number, layout: UnionLayout): Selection {
    const builder = new SelectionBuilder({ kind: 'token', headScope: 'query', batch: layout.batch, heads: layout.heads, rows: layout.rowsPerHead, keySeq: layout.keySeq }, this.size);
    for (let row = 0; row < this.totalRows; row++) {
      if (this.partCounts[row]! <= pass) {
        builder.pushRow(this.data, 0);
        continue;
      }
      const p = this.firstPart[row]! + pass;
      builder.pushRow(this.data.subarray(this.partStart[p]!, this.partStart[p]! + this.partLength[p]!));
    }
    return builder.finish();
  }

  private openPart(length: number): number {
    if (this.parts === this.partStart.length) {
      this.partStart = grow(this.partStart, this.parts * 2);
      this.partLength = grow(this.partLength, this.parts * 2);
    }
    if (this.size + length > this.data.length) this.data = grow(this.data, Math.max(this.size + length, this.data.length * 2));
    return this.size;
  }

  private closePart(start: number, length: number): void {
    this.partStart[this.parts] = start;
    this.partLength[this.parts] = length;
    this.parts++;
    this.size += length;
    this.partCounts[this.current]!++;
  }
}

/** Layout of the selections {@link RowParts} produces. */
export interface UnionLayout {
  readonly batch: number;
  readonly heads: number;
  readonly rowsPerHead: number;
  readonly keySeq: number;
  /** Absolute position of local query row 0 (`keySeq − querySeq`). */
  readonly queryOffset: number;
  /** Apply the shared-QK self rule when taking the union. */
  readonly selfRule: boolean;
}

function grow(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

/**
 * Merges the ascending, repeat-free `a[0..aLength)` and ascending `b[bStart..bStart + bLength)`
 * into `out` without repeats; returns the merged length.
 */
export function mergeUnique(a: Int32Array, aLength: number, b: Int32Array, bStart: number, bLength: number, out: Int32Array): number {
  let i = 0;
  let j = bStart;
  const bEnd = bStart + bLength;
  let w = 0;
  while (i < aLength && j < bEnd) {
    const x = a[i]!;
    const y = b[j]!;
    if (x < y) {
      out[w++] = x;
      i++;
    } else if (y < x) {
      if (w === 0 || out[w - 1] !== y) out[w++] = y;
      j++;
    } else {
      out[w++] = x;
      i++;
      j++;
    }
  }
  while (i < aLength) out[w++] = a[i++]!;
  for (; j < bEnd; j++) if (w === 0 || out[w - 1] !== b[j]) out[w++] = b[j]!;
  return w;
}

/** Removes `value` from the ascending `a[0..length)` if present; returns the new length. */
function removeValue(a: Int32Array, length: number, value: number): number {
  let w = 0;
  for (let i = 0; i < length; i++) if (a[i] !== value) a[w++] = a[i]!;
  return w;
}
