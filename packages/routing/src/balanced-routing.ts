/**
 * Kernel: balanced routing — each cluster takes the w tokens most similar to its centroid.
 *
 *   I_c = sortAsc(top_w({ x̂_i · μ_c : i < n }))      for c = 0..C−1   (spec routing.md §3.1)
 *
 * Every cluster gets exactly min(w, n) members; a token may be in several clusters or in none.
 * Cost O(C·n) for the selection (plus the O(n·C·D) similarities computed by the caller).
 */
import { selectTopKPositions } from './select-top-k-positions.js';

/** Members of each cluster, CSR: cluster c holds `members[offsets[c] .. offsets[c + 1])`, ascending. */
export interface ClusterMembership {
  readonly clusters: number;
  readonly offsets: Int32Array;
  readonly members: Int32Array;
}

/**
 * Balanced routing of `count` tokens given cluster-major similarities
 * (`similarities[c · count + i]`, see `centroidSimilarities`): top-`window` per cluster.
 */
export function balancedRouting(similarities: Float32Array, count: number, clusters: number, window: number): ClusterMembership {
  const w = Math.min(window, count);
  const offsets = new Int32Array(clusters + 1);
  const members = new Int32Array(clusters * w);
  const scratch = new Float32Array(count);
  const out = new Int32Array(w);
  for (let c = 0; c < clusters; c++) {
    const written = selectTopKPositions(similarities, c * count, count, w, out, scratch);
    members.set(out.subarray(0, written), offsets[c]!);
    offsets[c + 1] = offsets[c]! + written;
  }
  return { clusters, offsets, members };
}

/**
 * Adds every token to the clusters of its `nearest` most similar centroids (by
 * `similarities[c · count + i]`, ties → lower c) when balanced top-w left it out of them,
 * keeping each cluster's list ascending:
 *
 *   I_c ← I_c ∪ { i : c ∈ top-r_c' (x̂_i·μ_c') }
 *
 * Balanced top-w alone leaves about 1/e of the tokens of diffuse data in no cluster (a key
 * nobody can attend to; a query with nothing to attend to), and routes a query and a key with
 * the same direction to different clusters whenever their ranks in the two populations differ.
 * Nearest-centroid membership depends on the token alone, so equal directions meet; keys take
 * r = 1 and queries their top-r (multi-probe), which absorbs near-ties between centroids.
 */
export function withNearestMembership(membership: ClusterMembership, similarities: Float32Array, count: number, nearest = 1): ClusterMembership {
  const clusters = membership.clusters;
  const r = Math.min(nearest, clusters);
  const { offsets: oldOffsets, members: oldMembers } = membership;
  // Each token's top-r clusters, most similar first (ties → lower c). The similarities are
  // cluster-major, so walk them cluster by cluster (sequential reads) keeping a small sorted
  // list per token, instead of gathering each token's strided column.
  const chosen = new Int32Array(count * r);
  const bestValues = new Float32Array(count * r).fill(-Infinity);
  for (let c = 0; c < clusters; c++) {
    const o = c * count;
    for (let i = 0; i < count; i++) {
      const value = similarities[o + i]!;
      const base = i * r;
      if (!(value > bestValues[base + r - 1]!)) continue;
      let at = r - 1;
      while (at > 0 && value > bestValues[base + at - 1]!) {
        bestValues[base + at] = bestValues[base + at - 1]!;
        chosen[base + at] = chosen[base + at - 1]!;
        at--;
      }
      bestValues[base + at] = value;
      chosen[base + at] = c;
    }
  }
  // Additions per cluster, CSR, tokens ascending (tokens are visited in order).
  // Whether token i is already in cluster c (binary search in c's ascending list).
  const isMember = (c: number, i: number) => countBelow(oldMembers, oldOffsets[c]!, oldOffsets[c + 1]!, i + 1) > countBelow(oldMembers, oldOffsets[c]!, oldOffsets[c + 1]!, i);
  const addCounts = new Int32Array(clusters + 1);
  const add = new Uint8Array(count * r);
  for (let i = 0; i < count; i++) {
    for (let t = 0; t < r; t++) {
      const c = chosen[i * r + t]!;
      if (!isMember(c, i)) {
        add[i * r + t] = 1;
        addCounts[c + 1]!++;
      }
    }
  }
  for (let c = 0; c < clusters; c++) addCounts[c + 1]! += addCounts[c]!;
  const additions = new Int32Array(addCounts[clusters]!);
  const addFill = addCounts.slice(0, clusters);
  for (let i = 0; i < count; i++) for (let t = 0; t < r; t++) if (add[i * r + t]) additions[addFill[chosen[i * r + t]!]!++] = i;
  // Merge each cluster's two ascending lists.
  const offsets = new Int32Array(clusters + 1);
  for (let c = 0; c < clusters; c++) offsets[c + 1] = offsets[c]! + (oldOffsets[c + 1]! - oldOffsets[c]!) + (addCounts[c + 1]! - addCounts[c]!);
  const members = new Int32Array(offsets[clusters]!);
  for (let c = 0; c < clusters; c++) {
    let a = oldOffsets[c]!;
    const aEnd = oldOffsets[c + 1]!;
    let b = addCounts[c]!;
    const bEnd = addCounts[c + 1]!;
    let out = offsets[c]!;
    while (a < aEnd || b < bEnd) {
      if (b >= bEnd || (a < aEnd && oldMembers[a]! < additions[b]!)) members[out++] = oldMembers[a++]!;
      else members[out++] = additions[b++]!;
    }
  }
  return { clusters, offsets, members };
}

/** The clusters each token belongs to, CSR over tokens (clusters ascending). */
export interface TokenClusters {
  readonly offsets: Int32Array;
  readonly clusters: Int32Array;
}

/** Inverts a membership: for each of `count` tokens, the clusters that hold it. */
export function invertMembership(membership: ClusterMembership, count: number): TokenClusters {
  const offsets = new Int32Array(count + 1);
  const { members } = membership;
  for (let i = 0; i < members.length; i++) offsets[members[i]! + 1]!++;
  for (let i = 0; i < count; i++) offsets[i + 1]! += offsets[i]!;
  const fill = offsets.slice(0, count);
  const clusters = new Int32Array(members.length);
  for (let c = 0; c < membership.clusters; c++) {
    for (let m = membership.offsets[c]!; m < membership.offsets[c + 1]!; m++) clusters[fill[members[m]!]!++] = c;
  }
  return { offsets, clusters };
}

/** Number of leading entries of the ascending `list[start..end)` that are `< limit` (binary search). */
export function countBelow(list: Int32Array, start: number, end: number, limit: number): number {
  let lo = start;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo - start;
}
