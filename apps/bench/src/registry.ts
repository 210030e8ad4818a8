/**
 * The bench's method registry: core's dense baseline plus every family package's `methods`,
 * and every family's `benchmarks` suites. This is the one file that knows which packages exist;
 * a new family is added here (import + one entry in `families`).
 */
import { ConfigError, MethodRegistry, denseMethod, type BenchmarkSuite, type MethodDefinition } from '@sparse-attn/core';
import * as backendGpu from '@sparse-attn/backend-gpu';
import * as landmark from '@sparse-attn/landmark';
import * as model from '@sparse-attn/model';
import * as nsa from '@sparse-attn/nsa';
import * as routing from '@sparse-attn/routing';

/** What a family package contributes: registrable methods and extra benchmark suites. */
export interface FamilyModule {
  readonly name: string;
  readonly methods?: readonly MethodDefinition[];
  readonly benchmarks?: readonly BenchmarkSuite[];
  /** The family runs on the GPU: its suites are the default ones of `--backend gpu`. */
  readonly gpu?: boolean;
}

/** Core's own contribution: the fast dense baseline, which every speedup is measured against. */
const coreFamily: FamilyModule = { name: '@sparse-attn/core', methods: [denseMethod as unknown as MethodDefinition] };

/**
 * Reads a family module's optional `methods` / `benchmarks` exports (a family may export either),
 * so a family adding its suites later needs no change here.
 */
function familyExports(module: object): Omit<FamilyModule, 'name'> {
  const m = module as { methods?: readonly MethodDefinition[]; benchmarks?: readonly BenchmarkSuite[] };
  return { ...(m.methods ? { methods: m.methods } : {}), ...(m.benchmarks ? { benchmarks: m.benchmarks } : {}) };
}

/** Every family the bench registers, in report order. */
export const families: readonly FamilyModule[] = [
  coreFamily,
  { name: '@sparse-attn/nsa', ...familyExports(nsa) },
  { name: '@sparse-attn/landmark', ...familyExports(landmark) },
  { name: '@sparse-attn/routing', ...familyExports(routing) },
  { name: '@sparse-attn/backend-gpu', gpu: true, ...familyExports(backendGpu) },
  { name: '@sparse-attn/model', ...familyExports(model) },
];

/** A registry holding every family's methods on the CPU backend (throws on duplicate ids). */
export function createRegistry(modules: readonly FamilyModule[] = families): MethodRegistry {
  const registry = new MethodRegistry();
  for (const module of modules) registry.registerAll(module.methods ?? []);
  return registry;
}

/**
 * Suites a run selects when `--suites` is not given: every suite on `cpu`; on `gpu`, only the GPU
 * families' suites (the CPU families' suites would report CPU numbers in a GPU run).
 */
export function defaultSuiteIds(backend: 'cpu' | 'gpu', modules: readonly FamilyModule[] = families): string[] {
  return modules.filter((m) => backend === 'cpu' || m.gpu).flatMap((m) => (m.benchmarks ?? []).map((s) => s.id));
}

/** Every benchmark suite the families export, keyed by suite id (duplicate ids are an error). */
export function benchmarkSuites(modules: readonly FamilyModule[] = families): BenchmarkSuite[] {
  const seen = new Set<string>();
  const suites: BenchmarkSuite[] = [];
  for (const module of modules) {
    for (const suite of module.benchmarks ?? []) {
      if (seen.has(suite.id)) throw new ConfigError(`benchmark suite ${suite.id} is exported twice (${module.name})`);
      seen.add(suite.id);
      suites.push(suite);
    }
  }
  return suites;
}
