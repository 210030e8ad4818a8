/**
 * The bench's method registry: core's dense baseline plus every family package's `methods`,
 * and every family's `benchmarks` suites. This is the one file that knows which packages exist;
 * a new family is one entry in {@link FAMILY_PACKAGES} (and a workspace dependency).
 *
 * Families are loaded with dynamic `import()`, one at a time, so a family that fails to load
 * (missing build output, a throw at module load, malformed exports, a duplicate method id) is
 * recorded as a {@link FamilyFailure} and reported, instead of taking the whole bench down.
 */
import { ConfigError, MethodRegistry, denseMethod, type BenchmarkSuite, type MethodDefinition } from '@sparse-attn/core';
import { gpuMethodsOf, gpuProviderOf, type GpuMethodHandle, type GpuProvider } from './gpu-sweep.js';
import { importPackage } from './package-loaders.js';

/** What a family package contributes: registrable methods and extra benchmark suites. */
export interface FamilyModule {
  readonly name: string;
  readonly methods?: readonly MethodDefinition[];
  readonly benchmarks?: readonly BenchmarkSuite[];
  /** The family runs on the GPU: its suites are the default ones of `--backend gpu`. */
  readonly gpu?: boolean;
  /** The family's GPU methods and backend factory, which `--backend gpu` sweeps. */
  readonly gpuProvider?: GpuProvider;
  /** GPU twins of the family's methods, from its `./gpu` entry (run on the GPU family's backend). */
  readonly gpuMethods?: readonly GpuMethodHandle[];
  /** GPU-vs-CPU checks the family ships (`gpuChecks`, and the GPU family's `gpuDecodeChecks`), run by `bench gpu-check`. */
  readonly gpuChecks?: readonly { readonly name: string; run(backend: never): Promise<void> }[];
}

/** A family package the bench could not register, with the one-line reason. */
export interface FamilyFailure {
  readonly family: string;
  readonly error: string;
}

/** A family package the bench loads: its npm name and whether it is a GPU family. */
export interface FamilyPackage {
  readonly name: string;
  readonly gpu?: boolean;
  /** The package also has a `./gpu` entry exporting `gpuMethods` (GPU twins of its methods). */
  readonly gpuEntry?: boolean;
}

/** Every family package the bench registers, in report order (each is a workspace dependency). */
export const FAMILY_PACKAGES: readonly FamilyPackage[] = [
  { name: '@sparse-attn/nsa', gpuEntry: true },
  { name: '@sparse-attn/landmark', gpuEntry: true },
  { name: '@sparse-attn/routing', gpuEntry: true },
  { name: '@sparse-attn/backend-gpu', gpu: true },
  { name: '@sparse-attn/model' },
  { name: '@sparse-attn/delta', gpuEntry: true },
  { name: '@sparse-attn/draft-kv', gpuEntry: true },
];

/** Core's own contribution: the fast dense baseline, which every speedup is measured against. */
export const coreFamily: FamilyModule = { name: '@sparse-attn/core', methods: [denseMethod as unknown as MethodDefinition] };

function firstLine(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.split('\n')[0]!;
}

/**
 * Reads a family module's optional `methods` / `benchmarks` exports (a family may export either)
 * and checks their shape, so a malformed export is a clear failure here, not a crash mid-sweep.
 */
export function familyFromModule(name: string, module: object, gpu = false): FamilyModule {
  const m = module as { methods?: unknown; benchmarks?: unknown };
  if (m.methods !== undefined) {
    if (!Array.isArray(m.methods)) throw new ConfigError(`${name}: export 'methods' is not an array`);
    for (const d of m.methods as unknown[]) {
      const definition = d as Partial<MethodDefinition> | null;
      if (!definition || typeof definition.id !== 'string' || typeof definition.create !== 'function') {
        throw new ConfigError(`${name}: export 'methods' holds an entry that is not a MethodDefinition (needs id and create)`);
      }
    }
  }
  if (m.benchmarks !== undefined) {
    if (!Array.isArray(m.benchmarks)) throw new ConfigError(`${name}: export 'benchmarks' is not an array`);
    for (const s of m.benchmarks as unknown[]) {
      const suite = s as Partial<BenchmarkSuite> | null;
      if (!suite || typeof suite.id !== 'string' || typeof suite.run !== 'function') {
        throw new ConfigError(`${name}: export 'benchmarks' holds an entry that is not a BenchmarkSuite (needs id and run)`);
      }
    }
  }
  const gpuProvider = gpu ? gpuProviderOf(name, module) : undefined;
  return {
    name,
    ...(gpu ? checksOf(module) : {}),
    ...(gpu ? { gpu } : {}),
    ...(gpuProvider ? { gpuProvider } : {}),
    ...(m.methods ? { methods: m.methods as MethodDefinition[] } : {}),
    ...(m.benchmarks ? { benchmarks: m.benchmarks as BenchmarkSuite[] } : {}),
  };
}

/** A module's GPU checks: `gpuChecks` plus `gpuDecodeChecks`, the arrays it exports. */
function checksOf(module: object): Pick<FamilyModule, 'gpuChecks'> {
  const m = module as { gpuChecks?: unknown; gpuDecodeChecks?: unknown };
  const checks = [m.gpuChecks, m.gpuDecodeChecks].flatMap((list) => (Array.isArray(list) ? list : []));
  return checks.length ? { gpuChecks: checks } : {};
}

/** The families the bench could load, and those it could not. */
export interface LoadedFamilies {
  /** Core first, then every family that loaded, in {@link FAMILY_PACKAGES} order. */
  readonly families: readonly FamilyModule[];
  readonly failures: readonly FamilyFailure[];
}

/** The loader `import()`s a package by name; tests pass their own. */
export type ModuleLoader = (name: string) => Promise<object>;

/** Loads every family package; a family that fails is recorded, never fatal. */
export async function loadFamilies(packages: readonly FamilyPackage[] = FAMILY_PACKAGES, load: ModuleLoader = importPackage): Promise<LoadedFamilies> {
  const families: FamilyModule[] = [coreFamily];
  const failures: FamilyFailure[] = [];
  for (const p of packages) {
    let family: FamilyModule;
    try {
      family = familyFromModule(p.name, await load(p.name), p.gpu);
    } catch (error) {
      failures.push({ family: p.name, error: `could not load: ${firstLine(error)}` });
      continue;
    }
    // The GPU entry is optional for the family's CPU methods: a failure drops only its GPU twins.
    if (p.gpuEntry) {
      try {
        const gpuModule = await load(`${p.name}/gpu`);
        // GPU-only suites (e.g. DELTA's layer-stack decode) join the family's suites.
        const gpuSuites = familyFromModule(`${p.name}/gpu`, { benchmarks: (gpuModule as { benchmarks?: unknown }).benchmarks }).benchmarks ?? [];
        const benchmarks = [...(family.benchmarks ?? []), ...gpuSuites];
        family = { ...family, gpuMethods: gpuMethodsOf(`${p.name}/gpu`, gpuModule), ...checksOf(gpuModule), ...(benchmarks.length ? { benchmarks } : {}) };
      } catch (error) {
        failures.push({ family: `${p.name}/gpu`, error: `could not load: ${firstLine(error)}` });
      }
    }
    families.push(family);
  }
  return { families, failures };
}

/** What every command works from: the registry, the suites, and the families that failed. */
export interface BenchRegistry {
  readonly registry: MethodRegistry;
  readonly suites: readonly BenchmarkSuite[];
  readonly families: readonly FamilyModule[];
  readonly failures: readonly FamilyFailure[];
}

/**
 * Registers every loaded family's methods (CPU backend) and collects their suites. A family whose
 * method or suite id collides with an earlier family's is skipped whole and recorded as failed,
 * so one bad export never hides the other families.
 */
export function buildRegistry(loaded: LoadedFamilies): BenchRegistry {
  const registry = new MethodRegistry();
  const suites: BenchmarkSuite[] = [];
  const families: FamilyModule[] = [];
  const failures: FamilyFailure[] = [...loaded.failures];
  for (const family of loaded.families) {
    const methods = family.methods ?? [];
    const clash = methods.find((d) => registry.has(d.id)) ?? methods.find((d, i) => methods.findIndex((e) => e.id === d.id) !== i);
    const suiteClash = (family.benchmarks ?? []).find((s) => suites.some((t) => t.id === s.id));
    if (clash || suiteClash) {
      const what = clash ? `method id '${clash.id}'` : `benchmark suite id '${suiteClash!.id}'`;
      failures.push({ family: family.name, error: `not registered: ${what} is already registered by another family` });
      continue;
    }
    registry.registerAll(methods);
    suites.push(...(family.benchmarks ?? []));
    families.push(family);
  }
  return withFamilyGpuMethods({ registry, suites, families, failures });
}

/**
 * Hands every family's GPU twins to the GPU family's backend: they join its sweep methods, and
 * its suites (`gpu-attention`, `gpu-decoders`) are rebuilt to time them all (where the GPU family
 * can build them). A
 * GPU method id that is already taken is recorded as a failure of the family that brought it.
 */
function withFamilyGpuMethods(built: BenchRegistry): BenchRegistry {
  const at = built.families.findIndex((f) => f.gpuProvider);
  if (at < 0) return built;
  const provider = built.families[at]!.gpuProvider!;
  const methods = [...provider.methods];
  const failures = [...built.failures];
  for (const family of built.families) {
    for (const method of family.gpuMethods ?? []) {
      if (methods.some((m) => m.id === method.id)) failures.push({ family: `${family.name}/gpu`, error: `GPU method id '${method.id}' is already registered` });
      else methods.push(method);
    }
  }
  const merged: GpuProvider = { ...provider, methods };
  const families = built.families.map((f, i) => (i === at ? { ...f, gpuProvider: merged } : f));
  const rebuilt = merged.createSuites?.(methods) ?? [];
  const suites = built.suites.map((s) => rebuilt.find((r) => r.id === s.id) ?? s);
  return { ...built, families, suites, failures };
}

/** Loads and registers every family (the CLI's entry point to the registry). */
export async function loadRegistry(packages: readonly FamilyPackage[] = FAMILY_PACKAGES, load: ModuleLoader = importPackage): Promise<BenchRegistry> {
  return buildRegistry(await loadFamilies(packages, load));
}

/**
 * Suites a run selects when `--suites` is not given: every suite on `cpu`; on `gpu`, only the GPU
 * families' suites (the CPU families' suites would report CPU numbers in a GPU run).
 */
export function defaultSuiteIds(backend: 'cpu' | 'gpu', families: readonly FamilyModule[]): string[] {
  return families.filter((m) => backend === 'cpu' || m.gpu).flatMap((m) => (m.benchmarks ?? []).map((s) => s.id));
}

/**
 * The definition of `id` on `backend`. An unknown id is core's `ConfigError` (which lists the
 * registered ids), extended with the families that failed to load, since the method may be theirs.
 */
export function resolveMethod(registry: MethodRegistry, failures: readonly FamilyFailure[], id: string, backend: 'cpu' | 'gpu' = 'cpu'): MethodDefinition {
  try {
    return registry.get(id, backend);
  } catch (error) {
    if (!(error instanceof ConfigError) || failures.length === 0) throw error;
    throw new ConfigError(`${error.message}; families that failed to load: ${failures.map((f) => f.family).join(', ')}`);
  }
}
