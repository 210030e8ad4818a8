/**
 * `--backend gpu`: the sweep's prefill cells run on `@sparse-attn/backend-gpu` through its public
 * exports (`gpuMethods`, `createGpuBackend`). GPU methods have no decoder, so a GPU run has no
 * decode cells. With no WebGPU adapter the run fails with one line; it never reports CPU numbers
 * under a GPU label.
 */
import { ConfigError, type AttentionInput, type AttentionResult, type BackendInfo, type BenchmarkSuite, type MethodDefinition } from '@sparse-attn/core';

/** The part of backend-gpu's `GpuBackend` the bench uses. */
export interface GpuBackendHandle {
  readonly info: BackendInfo;
  destroy(): void;
}

/** The part of backend-gpu's `GpuMethodDefinition` the bench uses. */
export interface GpuMethodHandle {
  readonly id: string;
  readonly family: string;
  /** The CPU definition this one mirrors (its config schema and budget sweep). */
  readonly cpu: MethodDefinition;
  create(backend: GpuBackendHandle, config?: Record<string, unknown>): { prefill(input: AttentionInput): Promise<AttentionResult> };
}

/** What a GPU family exports for the sweep. */
export interface GpuProvider {
  readonly family: string;
  readonly methods: readonly GpuMethodHandle[];
  createBackend(): Promise<GpuBackendHandle>;
  /** Builds the family's GPU benchmark suites over `methods` (backend-gpu's `createGpuAttentionSuite` and `createGpuDecoderSuite`). */
  createSuites?(methods: readonly GpuMethodHandle[]): BenchmarkSuite[];
}

/** A GPU backend bound to the methods that run on it, for one sweep. */
export interface GpuSession {
  readonly provider: GpuProvider;
  readonly backend: GpuBackendHandle;
}

/** Reads `gpuMethods` / `createGpuBackend` from a family module, or `undefined` when it has neither. */
export function gpuProviderOf(family: string, module: object): GpuProvider | undefined {
  const m = module as { gpuMethods?: unknown; createGpuBackend?: unknown };
  if (m.gpuMethods === undefined && m.createGpuBackend === undefined) return undefined;
  if (!Array.isArray(m.gpuMethods) || typeof m.createGpuBackend !== 'function') {
    throw new ConfigError(`${family}: a GPU family must export both 'gpuMethods' (array) and 'createGpuBackend' (function)`);
  }
  const create = m.createGpuBackend as () => Promise<GpuBackendHandle>;
  const { createGpuAttentionSuite: attention, createGpuDecoderSuite: decoders } = module as { createGpuAttentionSuite?: unknown; createGpuDecoderSuite?: unknown };
  const builders: ((methods: readonly GpuMethodHandle[]) => BenchmarkSuite)[] = [];
  if (typeof attention === 'function') builders.push((methods) => (attention as (m: unknown) => BenchmarkSuite)(methods.map((definition) => ({ definition }))));
  if (typeof decoders === 'function') builders.push((methods) => (decoders as (m: unknown) => BenchmarkSuite)(methods));
  return {
    family,
    methods: gpuMethodsOf(family, module),
    createBackend: () => create(),
    ...(builders.length > 0 ? { createSuites: (methods: readonly GpuMethodHandle[]) => builders.map((build) => build(methods)) } : {}),
  };
}

/** A module's `gpuMethods` export, checked entry by entry (id, family, cpu definition, create). */
export function gpuMethodsOf(name: string, module: object): GpuMethodHandle[] {
  const methods = (module as { gpuMethods?: unknown }).gpuMethods;
  if (!Array.isArray(methods)) throw new ConfigError(`${name}: export 'gpuMethods' is not an array`);
  for (const m of methods as Partial<GpuMethodHandle>[]) {
    if (!m || typeof m.id !== 'string' || typeof m.family !== 'string' || typeof m.create !== 'function' || typeof m.cpu?.id !== 'string') {
      throw new ConfigError(`${name}: export 'gpuMethods' holds an entry that is not a GPU method definition (needs id, family, cpu and create)`);
    }
  }
  return methods as GpuMethodHandle[];
}

/**
 * Acquires the GPU backend for a sweep. No provider or no adapter is a `ConfigError` line naming
 * the reason (e.g. Dawn failing to load, `requestAdapter()` returning null).
 */
export async function openGpuSession(provider: GpuProvider | undefined, whyMissing: string): Promise<GpuSession> {
  if (!provider) throw new ConfigError(`--backend gpu: no GPU family is loaded (${whyMissing})`);
  try {
    return { provider, backend: await provider.createBackend() };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
    throw new ConfigError(`--backend gpu: no usable WebGPU adapter (${reason})`);
  }
}

/** The GPU method `id`, as a sweep definition: its CPU twin's budgets, with the GPU id and family. */
export function gpuDefinition(session: GpuSession, id: string): MethodDefinition {
  const method = session.provider.methods.find((m) => m.id === id);
  if (!method) {
    throw new ConfigError(`unknown method '${id}' for backend gpu; registered: ${session.provider.methods.map((m) => m.id).join(', ') || '(none)'}`);
  }
  return { ...method.cpu, id: method.id, family: method.family } as MethodDefinition;
}

/** Binds a GPU method's config to the session's backend: an async prefill. */
export function gpuPrefill(session: GpuSession, id: string, config: Record<string, unknown>): (input: AttentionInput) => Promise<AttentionResult> {
  const method = session.provider.methods.find((m) => m.id === id)!.create(session.backend, config);
  return (input) => method.prefill(input);
}
