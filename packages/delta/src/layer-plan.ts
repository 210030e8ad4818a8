import { ConfigError } from '@sparse-attn/core';

/**
 * What a layer does during a decode step of a layer-reuse method.
 *
 * - `full`: dense attention, no selection (DELTA's warm-up layers, HyLRA's rollback layers).
 * - `delta`: dense attention that also re-selects the keys later layers attend to
 *   (DELTA's Δ-layers, TidalDecode's selection and correction layers, HyLRA's "recompute").
 * - `sparse`: attention restricted to the selection made by its source layer in the same step.
 */
export type LayerRole = 'full' | 'delta' | 'sparse';

/**
 * A layer-reuse plan as data: one role per layer and, for every sparse layer, the Δ-layer whose
 * selection it reuses. Plans are built from DELTA's `fullCacheLayers`, from TidalDecode's two
 * selection layers, or by the HyLRA-style planner, and all run through the same policy.
 */
export interface LayerPlan {
  /** One role per decoder layer. */
  readonly roles: readonly LayerRole[];
  /**
   * For a sparse layer, the index of an earlier `delta` layer whose selection it reuses, or −1
   * when no Δ-layer precedes it (it then attends to the most recent pages, the reference's
   * placeholder subset). For `full` and `delta` layers: −1.
   */
  readonly sources: readonly number[];
}

/**
 * DELTA's reference placement `0 1 2 14 22` for 28-layer models, scaled to `layers` layers: the
 * first two layers stay dense (warm-up), layer 2 is the first Δ-layer, and the Δ-layers at 14/28
 * and 22/28 of the depth move proportionally. Duplicates collapse, so small models get fewer
 * Δ-layers; a model of at most 3 layers gets every layer dense.
 */
export function defaultFullCacheLayers(layers: number): number[] {
  checkLayerCount(layers);
  if (layers <= 3) return Array.from({ length: layers }, (_, i) => i);
  const scaled = [14, 22].map((l) => Math.min(layers - 1, Math.round((l * layers) / 28)));
  return [...new Set([0, 1, 2, ...scaled])].filter((l) => l < layers).sort((a, b) => a - b);
}

/**
 * DELTA's layer roles from its `fullCacheLayers` (warm-up layers ∪ Δ-layers), exactly as the
 * reference derives them (`model.py: Transformer.setup_caches`): a full layer followed by a
 * non-full layer is a Δ-layer, a full layer followed by a full layer (or the end of the model)
 * is plain dense, every other layer is sparse and reuses the most recent Δ-layer's pages. An
 * empty list means every layer is dense, as the reference's `use_full_cache`.
 *
 * @see arXiv:2510.09883 (DELTA)
 */
export function layerPlanFromFullCacheLayers(fullCacheLayers: readonly number[], layers: number): LayerPlan {
  checkLayerCount(layers);
  const full = new Set<number>();
  for (const l of fullCacheLayers) {
    if (!(Number.isInteger(l) && l >= 0 && l < layers)) throw new ConfigError(`fullCacheLayers: ${l} is not a layer index of a ${layers}-layer model`);
    if (full.has(l)) throw new ConfigError(`fullCacheLayers: layer ${l} is listed twice`);
    full.add(l);
  }
  if (full.size === 0) return layerPlanFromRoles(Array.from({ length: layers }, () => 'full'));
  const roles: LayerRole[] = [];
  for (let l = 0; l < layers; l++) {
    const nextFull = full.has(l + 1) || l + 1 === layers;
    roles.push(full.has(l) ? (nextFull ? 'full' : 'delta') : 'sparse');
  }
  return layerPlanFromRoles(roles);
}

/** A plan from roles alone: every sparse layer reuses the most recent Δ-layer before it. */
export function layerPlanFromRoles(roles: readonly LayerRole[]): LayerPlan {
  checkLayerCount(roles.length);
  const sources: number[] = [];
  let last = -1;
  for (const [l, role] of roles.entries()) {
    if (role !== 'full' && role !== 'delta' && role !== 'sparse') throw new ConfigError(`layer plan: role of layer ${l} must be 'full', 'delta' or 'sparse', got ${String(role)}`);
    sources.push(role === 'sparse' ? last : -1);
    if (role === 'delta') last = l;
  }
  return { roles: [...roles], sources };
}

/**
 * Checks a plan's structure: every role known, one source per layer, and each sparse layer's
 * source an earlier `delta` layer (or −1). Throws a `ConfigError` naming the first bad layer.
 */
export function validateLayerPlan(plan: LayerPlan, layers?: number): void {
  const n = plan.roles.length;
  checkLayerCount(n);
  if (layers !== undefined && n !== layers) throw new ConfigError(`layer plan has ${n} roles, the model has ${layers} layers`);
  if (plan.sources.length !== n) throw new ConfigError(`layer plan: ${plan.sources.length} sources for ${n} roles`);
  for (let l = 0; l < n; l++) {
    const role = plan.roles[l];
    const source = plan.sources[l]!;
    if (role !== 'full' && role !== 'delta' && role !== 'sparse') throw new ConfigError(`layer plan: role of layer ${l} must be 'full', 'delta' or 'sparse', got ${String(role)}`);
    if (role !== 'sparse') {
      if (source !== -1) throw new ConfigError(`layer plan: layer ${l} is '${role}' but names source ${source} (only sparse layers reuse a selection)`);
      continue;
    }
    if (source === -1) continue;
    if (!(Number.isInteger(source) && source >= 0 && source < l)) throw new ConfigError(`layer plan: sparse layer ${l} reuses layer ${source}, which does not run before it`);
    if (plan.roles[source] !== 'delta') throw new ConfigError(`layer plan: sparse layer ${l} reuses layer ${source}, which is '${plan.roles[source]}', not a 'delta' layer`);
  }
}

/** Counts of each role, for reports. */
export function roleCounts(plan: LayerPlan): Record<LayerRole, number> {
  const counts = { full: 0, delta: 0, sparse: 0 };
  for (const r of plan.roles) counts[r]++;
  return counts;
}

function checkLayerCount(layers: number): void {
  if (!(Number.isInteger(layers) && layers >= 1)) throw new ConfigError(`a layer plan needs a positive integer layer count, got ${layers}`);
}
