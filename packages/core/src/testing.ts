/**
 * `@sparse-attn/core/testing`: the conformance kit every method family runs, so every
 * method is held to the same bar. Call {@link describeConformance} from a vitest file.
 */
import { describe, expect, it } from 'vitest';
import type { AttentionInput } from './attention.js';
import { ConfigError, NumericError, ShapeError } from './errors.js';
import type { AttentionMethod } from './method.js';
import { referenceAttention } from './reference-attention.js';
import { forEachKeyRange, validateSelection } from './selection.js';
import { sparseAttention } from './sparse-executor.js';
import { concatSeq, relativeL2Error, sliceSeq, tensor, type Tensor } from './tensor.js';
import { createWorkload, type WorkloadKind } from './workloads.js';
import { needleRetrieval } from './metrics.js';

export { referenceAttention } from './reference-attention.js';

/** A test shape: `[batch, queryHeads, kvHeads, seq, headDim]` plus the workload to draw from. */
export interface ConformanceShape {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly seq: number;
  readonly headDim: number;
  readonly valueDim?: number;
  readonly workload?: WorkloadKind;
}

type Config = Record<string, unknown>;

export interface ConformanceOptions {
  /** Suite title, usually the method id. */
  readonly name: string;
  /** Builds the method from a partial config (defaults filled in by the method's schema). */
  readonly create: (config?: Config) => AttentionMethod;
  /** A config whose budget covers every key for sequences up to `seq`: output must equal dense. */
  readonly fullBudget: (seq: number) => Config;
  /** A config that is genuinely sparse at the test sizes (used for the selection invariants). */
  readonly sparse: (seq: number) => Config;
  /** Shapes for every invariant. Defaults cover S = 1, S not a multiple of common block sizes, GQA and B = 2. */
  readonly shapes?: readonly ConformanceShape[];
  /** Relative L2 tolerance for "equals dense" / "equals the executor". Default 1e-5. */
  readonly tolerance?: number;
  /** Planted-needle test: sequence length and depths; `false` for methods that cannot retrieve (e.g. pure local). */
  readonly needle?: false | { readonly seq?: number; readonly depths?: readonly number[]; readonly config?: (seq: number) => Config; readonly headDim?: number };
  /** Configs that must be rejected with a `ConfigError`. */
  readonly invalidConfigs?: readonly Config[];
  /** Skip the decode invariants (methods that have no decoder of their own). Default false. */
  readonly skipDecode?: boolean;
}

const defaultShapes: readonly ConformanceShape[] = [
  { batch: 1, queryHeads: 1, kvHeads: 1, seq: 1, headDim: 16 },
  { batch: 1, queryHeads: 2, kvHeads: 2, seq: 37, headDim: 16 },
  { batch: 1, queryHeads: 4, kvHeads: 2, seq: 130, headDim: 32, workload: 'structured' },
  { batch: 2, queryHeads: 4, kvHeads: 1, seq: 97, headDim: 16, valueDim: 24 },
  { batch: 1, queryHeads: 2, kvHeads: 1, seq: 300, headDim: 32, workload: 'structured' },
];

function makeInput(shape: ConformanceShape, seed: number): AttentionInput {
  return createWorkload(shape.workload ?? 'gaussian', {
    batch: shape.batch,
    queryHeads: shape.queryHeads,
    kvHeads: shape.kvHeads,
    seqLength: shape.seq,
    headDim: shape.headDim,
    valueDim: shape.valueDim ?? shape.headDim,
    seed,
  }).input;
}

function label(s: ConformanceShape): string {
  return `B${s.batch} Hq${s.queryHeads} Hkv${s.kvHeads} S${s.seq} D${s.headDim}${s.valueDim ? ` Dv${s.valueDim}` : ''}${s.workload ? ` ${s.workload}` : ''}`;
}

/** Runs every decode step one token at a time and concatenates the outputs along the sequence. */
export function decodeTokenByToken(method: AttentionMethod, input: AttentionInput, chunk = 1): Tensor {
  const [batch, queryHeads, seq, headDim] = input.q.shape as [number, number, number, number];
  const kvHeads = input.k.shape[1]!;
  const valueDim = input.v.shape[3]!;
  const decoder = method.createDecoder({ batch, queryHeads, kvHeads, headDim, valueDim, scale: input.scale });
  const outputs: Tensor[] = [];
  for (let t = 0; t < seq; t += chunk) {
    const end = Math.min(seq, t + chunk);
    const result = decoder.step({ q: sliceSeq(input.q, t, end), k: sliceSeq(input.k, t, end), v: sliceSeq(input.v, t, end) });
    outputs.push(result.output);
  }
  expect(decoder.length).toBe(seq);
  return concatSeq(outputs);
}

/**
 * Registers the shared invariants as vitest tests:
 * full budget == dense; output == exact attention over the reported selection; no future key
 * selected; decode == prefill (when the method declares itself causal-consistent); a planted
 * needle is selected at every depth; bad inputs and configs rejected with typed errors.
 */
export function describeConformance(options: ConformanceOptions): void {
  const shapes = options.shapes ?? defaultShapes;
  const tol = options.tolerance ?? 1e-5;

  describe(`${options.name} conformance`, () => {
    describe('full budget equals dense attention', () => {
      for (const [i, shape] of shapes.entries()) {
        it(label(shape), () => {
          const input = makeInput(shape, 100 + i);
          const method = options.create(options.fullBudget(shape.seq));
          const result = method.prefill(input);
          const reference = referenceAttention(input);
          expect(result.output.shape).toEqual(reference.output.shape);
          expect(relativeL2Error(result.output, reference.output)).toBeLessThanOrEqual(tol);
          expect(result.backend.backend).toBeDefined();
        });
      }
    });

    describe('output equals exact attention over the reported selection; no future key selected', () => {
      for (const [i, shape] of shapes.entries()) {
        it(label(shape), () => {
          const input = makeInput(shape, 200 + i);
          const method = options.create(options.sparse(shape.seq));
          const result = method.prefill(input);
          if (method.capabilities.selection === 'none') {
            expect(result.selection).toBeUndefined();
            return;
          }
          const selection = result.selection;
          expect(selection, 'method declares a selection but returned none').toBeDefined();
          if (!selection) return;
          expect(selection.kind).toBe(method.capabilities.selection);
          expect(selection.headScope).toBe(method.capabilities.sharesSelectionAcrossGroup ? 'kv' : 'query');
          validateSelection(selection);
          // A `grouped` method reports the keys it read, not keys it weighs by one softmax.
          if ((method.capabilities.selectionWeighting ?? 'softmax') === 'softmax') {
            const exact = sparseAttention(input, selection);
            expect(relativeL2Error(result.output, exact.output)).toBeLessThanOrEqual(tol);
          }
          // No selected key (or block start) lies after the last query position of its row.
          const seq = shape.seq;
          for (let row = 0; row < selection.batch * selection.heads * selection.rows; row++) {
            const r = row % selection.rows;
            const lastQuery = Math.min(seq - 1, (r + 1) * selection.queryBlockSize - 1);
            forEachKeyRange(selection, row, Infinity, (start) => {
              expect(start, `row ${row} selects keys from ${start}, after its last query ${lastQuery}`).toBeLessThanOrEqual(lastQuery);
            });
          }
          expect(result.stats.density).toBeGreaterThan(0);
          expect(result.stats.density).toBeLessThanOrEqual(1 + 1e-9);
        });
      }
    });

    if (!options.skipDecode) {
      describe('decode', () => {
        for (const [i, shape] of shapes.entries()) {
          it(`token-by-token ${options.create(options.sparse(shape.seq)).capabilities.causalConsistent ? 'equals prefill' : 'runs with the right shapes'}: ${label(shape)}`, () => {
            const input = makeInput(shape, 300 + i);
            const method = options.create(options.sparse(shape.seq));
            const decoded = decodeTokenByToken(method, input);
            expect(decoded.shape).toEqual([shape.batch, shape.queryHeads, shape.seq, shape.valueDim ?? shape.headDim]);
            for (const x of decoded.data) expect(Number.isFinite(x)).toBe(true);
            if (method.capabilities.causalConsistent) {
              const prefill = method.prefill(input);
              expect(relativeL2Error(decoded, prefill.output)).toBeLessThanOrEqual(Math.max(tol, 1e-5));
            }
          });
        }
        it('full budget decode equals dense', () => {
          const shape = shapes[Math.min(2, shapes.length - 1)]!;
          const input = makeInput(shape, 400);
          const method = options.create(options.fullBudget(shape.seq));
          const decoded = decodeTokenByToken(method, input);
          expect(relativeL2Error(decoded, referenceAttention(input).output)).toBeLessThanOrEqual(Math.max(tol, 1e-5));
        });
      });
    }

    if (options.needle !== false) {
      const needle = options.needle ?? {};
      const seq = needle.seq ?? 512;
      const depths = needle.depths ?? [0, 0.1, 0.25, 0.5, 0.75, 0.9];
      describe('planted needle is selected', () => {
        for (const depth of depths) {
          it(`depth ${depth} of ${seq}`, () => {
            const w = createWorkload('needle', { queryHeads: 4, kvHeads: 2, seqLength: seq, headDim: needle.headDim ?? 64, needleDepth: depth, needleQueries: 4, seed: 500 + Math.round(depth * 100) });
            const method = options.create((needle.config ?? options.sparse)(seq));
            const result = method.prefill(w.input);
            const retrieval = needleRetrieval(w.input, w.needle!, result.output, result.selection);
            expect(retrieval.selected, 'needle key selected').toBe(1);
            expect(retrieval.dominated, 'needle value dominates the output').toBeGreaterThanOrEqual(0.75);
          });
        }
      });
    }

    describe('bad input is rejected with typed errors', () => {
      const method = () => options.create(options.sparse(16));
      const good = () => makeInput({ batch: 1, queryHeads: 4, kvHeads: 2, seq: 16, headDim: 16 }, 9);
      it('NaN in q → NumericError', () => {
        const input = good();
        const q = tensor(input.q.shape, input.q.data.slice());
        q.data[5] = Number.NaN;
        expect(() => method().prefill({ ...input, q })).toThrow(NumericError);
      });
      it('Infinity in v → NumericError', () => {
        const input = good();
        const v = tensor(input.v.shape, input.v.data.slice());
        v.data[3] = Number.POSITIVE_INFINITY;
        expect(() => method().prefill({ ...input, v })).toThrow(NumericError);
      });
      it('query heads not divisible by kv heads → ShapeError', () => {
        const input = makeInput({ batch: 1, queryHeads: 3, kvHeads: 3, seq: 16, headDim: 16 }, 10);
        const k = tensor([1, 2, 16, 16], input.k.data.slice(0, 2 * 16 * 16));
        const v = tensor([1, 2, 16, 16], input.v.data.slice(0, 2 * 16 * 16));
        expect(() => method().prefill({ ...input, k, v })).toThrow(ShapeError);
      });
      it('empty sequence → ShapeError', () => {
        const empty = tensor([1, 2, 0, 16]);
        expect(() => method().prefill({ q: tensor([1, 4, 0, 16]), k: empty, v: empty })).toThrow(ShapeError);
      });
      it('mismatched head dims → ShapeError', () => {
        const input = good();
        expect(() => method().prefill({ ...input, k: tensor([1, 2, 16, 8]) })).toThrow(ShapeError);
      });
      it('rank-3 tensor → ShapeError', () => {
        const input = good();
        expect(() => method().prefill({ ...input, q: tensor([4, 16, 16]) })).toThrow(ShapeError);
      });
      for (const [i, config] of (options.invalidConfigs ?? []).entries()) {
        it(`invalid config #${i} → ConfigError: ${JSON.stringify(config)}`, () => {
          expect(() => options.create(config)).toThrow(ConfigError);
        });
      }
    });
  });
}
