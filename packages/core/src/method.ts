import { z } from 'zod';
import { validateAttentionInput, type AttentionInput, type AttentionResult, type BackendName } from './attention.js';
import { ConfigError, ShapeError } from './errors.js';

/**
 * What a method promises; the conformance kit and the bench read these instead of guessing.
 */
export interface MethodCapabilities {
  /** Token-by-token decode produces the same outputs as one causal prefill of the sequence. */
  readonly causalConsistent: boolean;
  /** Accepts `causal: false` (encoder-style attention). */
  readonly supportsNonCausal: boolean;
  /** Granularity of the reported selection, or `none` if the method reports none. */
  readonly selection: 'token' | 'block' | 'none';
  /** One selection per KV head, shared by the query heads of its GQA group. */
  readonly sharesSelectionAcrossGroup: boolean;
  /**
   * How the output weighs the selected keys. `softmax` (the default when absent): the output is
   * core's exact sparse attention over the selection. `grouped`: the selection is every key the
   * output reads, but the weights are not one softmax over them (Landmark Attention's grouped
   * softmax gates earlier blocks by landmark scores), so the conformance kit checks the
   * selection's layout and causality, not equality with the executor.
   */
  readonly selectionWeighting?: 'softmax' | 'grouped';
}

/** Shape of the stream a decoder will see. */
export interface DecoderShape {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Defaults to `headDim`. */
  readonly valueDim?: number;
  /** Softmax scale; default `1 / sqrt(headDim)`. */
  readonly scale?: number;
}

/**
 * Token-by-token generation with a KV cache. Each `step` appends the new tokens' keys and
 * values to the cache, then attends their queries causally (the queries are the last
 * `T` positions). The first call may carry the whole prompt (chunked prefill).
 */
export interface AttentionDecoder {
  /** Tokens in the cache. */
  readonly length: number;
  /** q `[B, Hq, T, D]`, k `[B, Hkv, T, D]`, v `[B, Hkv, T, Dv]` of the T new tokens. `causal`/`scale` are ignored. */
  step(input: AttentionInput): AttentionResult;
  /** Empties the cache and any per-sequence state. */
  reset(): void;
}

/**
 * The interface every method family implements (version 1 of the spec).
 * `prefill` and `createDecoder` are the entry points the bench and the model runtime call.
 */
export interface AttentionMethod<Config = unknown> {
  readonly specificationVersion: 'v1';
  /** Registry id, e.g. `nsa`, `quest`, `dense`. */
  readonly methodId: string;
  /** The fully-resolved config (defaults applied). */
  readonly config: Readonly<Config>;
  readonly capabilities: MethodCapabilities;
  /** Attention over a whole sequence (or a chunk aligned to the end of the keys). */
  prefill(input: AttentionInput): AttentionResult;
  /** A decoder with its own KV cache and per-sequence state. */
  createDecoder(shape: DecoderShape): AttentionDecoder;
}

/** One point of a budget sweep: a label and the config overrides that realise it. */
export interface BudgetPoint {
  readonly label: string;
  readonly config: Readonly<Record<string, unknown>>;
}

/**
 * A registrable method: id, description, config schema with defaults, and a factory.
 * The schema is a zod object whose fields carry `.default(...)` and `.describe(...)`, so the
 * bench can print it (`bench list`) and validate user JSON (`--config`).
 */
export interface MethodDefinition<Schema extends z.ZodType = z.ZodType> {
  readonly id: string;
  /** Package / family, e.g. `nsa`. */
  readonly family: string;
  readonly description: string;
  /** Paper reference, e.g. `arXiv:2502.11089`. */
  readonly paper?: string;
  readonly configSchema: Schema;
  /** Builds a method; `config` is validated against the schema (defaults filled in). */
  create(config?: z.input<Schema>): AttentionMethod<z.output<Schema>>;
  /** Budget sweep for the bench, from sparsest to densest, plus a point that covers every key if one exists. */
  budgets?(sequenceLength: number): readonly BudgetPoint[];
}

/**
 * Parses a config against a method's schema, turning zod issues into one `ConfigError`
 * that names every bad field.
 */
export function parseConfig<S extends z.ZodType>(methodId: string, schema: S, config: unknown): z.output<S> {
  const result = schema.safeParse(config ?? {});
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`${methodId}: invalid config: ${detail}`);
  }
  return result.data;
}

/** Defines a method with schema validation wired in (the families' common entry point). */
export function defineMethod<S extends z.ZodType>(definition: {
  id: string;
  family: string;
  description: string;
  paper?: string;
  configSchema: S;
  build: (config: z.output<S>) => Omit<AttentionMethod<z.output<S>>, 'specificationVersion' | 'methodId' | 'config'>;
  budgets?: (sequenceLength: number) => readonly BudgetPoint[];
}): MethodDefinition<S> {
  const { build, ...rest } = definition;
  return {
    ...rest,
    create(config) {
      const parsed = parseConfig(definition.id, definition.configSchema, config);
      const impl = build(parsed);
      return {
        specificationVersion: 'v1',
        methodId: definition.id,
        config: parsed,
        capabilities: impl.capabilities,
        prefill: impl.prefill.bind(impl),
        createDecoder: impl.createDecoder.bind(impl),
      };
    },
  };
}

/**
 * Method registry keyed `${backend}:${methodId}` (tfjs style). No global instance: the bench
 * and users build one and register the families they want. Registering a key twice throws.
 */
export class MethodRegistry {
  private readonly entries = new Map<string, MethodDefinition>();

  register(definition: MethodDefinition, backend: BackendName = 'cpu'): this {
    const key = `${backend}:${definition.id}`;
    if (this.entries.has(key)) throw new ConfigError(`method ${key} is already registered`);
    this.entries.set(key, definition);
    return this;
  }

  registerAll(definitions: readonly MethodDefinition[], backend: BackendName = 'cpu'): this {
    for (const d of definitions) this.register(d, backend);
    return this;
  }

  has(id: string, backend: BackendName = 'cpu'): boolean {
    return this.entries.has(`${backend}:${id}`);
  }

  get(id: string, backend: BackendName = 'cpu'): MethodDefinition {
    const found = this.entries.get(`${backend}:${id}`);
    if (!found) {
      const known = this.list(backend).map((d) => d.id).join(', ');
      throw new ConfigError(`unknown method '${id}' for backend ${backend}; registered: ${known || '(none)'}`);
    }
    return found;
  }

  list(backend: BackendName = 'cpu'): MethodDefinition[] {
    return [...this.entries.entries()].filter(([key]) => key.startsWith(`${backend}:`)).map(([, d]) => d);
  }
}

/** Checks that a decoder step's tensors match the decoder's shape. */
export function validateDecoderStep(shape: DecoderShape, input: AttentionInput, cacheLength: number) {
  const { q, k, v } = input;
  const valueDim = shape.valueDim ?? shape.headDim;
  const expect = (name: string, t: { shape: readonly number[] }, heads: number, dim: number) => {
    const s = t.shape;
    if (s.length !== 4 || s[0] !== shape.batch || s[1] !== heads || s[3] !== dim) {
      throw new ShapeError(`decoder step: ${name} must be [${shape.batch}, ${heads}, T, ${dim}], got [${s.join(', ')}]`);
    }
  };
  expect('q', q, shape.queryHeads, shape.headDim);
  expect('k', k, shape.kvHeads, shape.headDim);
  expect('v', v, shape.kvHeads, valueDim);
  if (q.shape[2] !== k.shape[2]) throw new ShapeError(`decoder step: q has ${q.shape[2]} tokens, k has ${k.shape[2]}`);
  // Validate as an attention call over the cache + new tokens (finite values, head divisibility).
  return validateAttentionInput({ q, k, v, causal: true, scale: shape.scale }, { allowEmpty: cacheLength === 0 });
}
