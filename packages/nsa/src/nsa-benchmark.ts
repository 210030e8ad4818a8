/**
 * The issue's own NSA benchmark (issue 4, "Benchmark"): prefill and decode at the bench's context
 * lengths (4k, 16k, 64k by default) with B = 1, Hq = 16, Hkv ∈ {2, 1} (GQA groups of 8 and 16),
 * D = 64; speedup against core's fast dense attention, density, attention-mass recall on the
 * structured workload, needle retrieval, and the budget sweep n ∈ {4, 8, 16, 32}; plus MoBA and the
 * hierarchical indexer at their defaults (with the indexer's IoU against the flat top-K). Targets at 64k
 * with the defaults: prefill ≥ 5× and decode ≥ 8× vs our dense, mass recall ≥ 0.95. apps/bench
 * adds the onnxruntime baseline.
 *
 * Dense prefill is quadratic and, above `sampleDenseAbove` tokens, is timed on evenly spaced query
 * chunks and extrapolated by the exact causal pair count (rows say so with `denseExtrapolated = 1`):
 * a full 64k dense prefill with 16 heads takes tens of minutes on one CPU core.
 */
import {
  KVCache,
  attentionMassRecall,
  createWorkload,
  denseAttention,
  measure,
  needleRetrieval,
  relativeL2Error,
  sliceSeq,
  type AttentionInput,
  type AttentionResult,
  type BenchmarkContext,
  type BenchmarkRow,
  type BenchmarkSuite,
  type DecoderShape,
  type MethodDefinition,
  type Tensor,
} from '@sparse-attn/core';
import type { CachedDecoder } from './cached-decoder.js';
import { hierarchicalIndexerMethod } from './hierarchical-indexer.js';
import { mobaMethod } from './moba.js';
import { createNsaDecoder, nsaAttention, type NsaConfigInput } from './nsa.js';

/** Sizes and sweeps of the NSA suite (defaults: the issue's). */
export interface NsaBenchmarkOptions {
  readonly queryHeads?: number;
  /** KV head counts to run (each a separate workload). Default [2, 1]. */
  readonly kvHeads?: readonly number[];
  readonly headDim?: number;
  /** NSA options shared by every row (the sweep overrides `selectedBlocks`). Default: paper defaults. */
  readonly config?: NsaConfigInput;
  /** Values of n for the budget sweep (run on the first KV head count). Default [4, 8, 16, 32]. */
  readonly sweep?: readonly number[];
  /** The n of the headline rows. Default 16. */
  readonly defaultBlocks?: number;
  /** Decode steps timed per row (after DECODE_WARMUP untimed steps). Default max(4, context.repeats). */
  readonly decodeSteps?: number;
  /** Needle depths checked at decode. Default [0.1, 0.5, 0.9]. */
  readonly needleDepths?: readonly number[];
  /** Above this length, dense prefill is timed on sampled query chunks and extrapolated. Default 16384. */
  readonly sampleDenseAbove?: number;
  /** Also run MoBA and the hierarchical indexer at their defaults (Hkv = 2). Default true. */
  readonly relatives?: boolean;
}

const QUICK: Required<Omit<NsaBenchmarkOptions, 'decodeSteps'>> = {
  queryHeads: 4,
  kvHeads: [2, 1],
  headDim: 16,
  config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, window: 32 },
  sweep: [3, 4],
  defaultBlocks: 4,
  needleDepths: [0.5],
  sampleDenseAbove: 128,
  relatives: true,
};

/** Keys `[0, length)` of a `[B, H, S, D]` tensor as a zero-copy view (what a KV cache would hand out). */
function prefixView(t: Tensor, length: number): Tensor {
  return { data: t.data, shape: [t.shape[0]!, t.shape[1]!, length, t.shape[3]!], seqCapacity: t.seqCapacity ?? t.shape[2]! };
}

/** Dense causal prefill: time (measured, or extrapolated), the kernel that ran, and the query rows it computed. */
interface DenseFigures {
  readonly ms: number;
  readonly extrapolated: boolean;
  readonly kernel: string;
  /** Dense outputs of query rows `[start, end)` (all rows, or the sampled chunks). */
  readonly chunks: readonly { readonly start: number; readonly end: number; readonly output: Tensor }[];
}

/** Dense causal prefill time: measured, or extrapolated from sampled query chunks above `sampleAbove`. */
function denseTime(input: AttentionInput, sampleAbove: number, repeats: number): DenseFigures {
  const seq = input.q.shape[2]!;
  if (seq <= sampleAbove) {
    const long = seq >= 16384;
    let result: AttentionResult | undefined;
    const ms = measure(() => (result = denseAttention(input, { checkFinite: false })), { warmup: long ? 0 : 1, repeats: long ? 1 : repeats }).medianMs;
    return { ms, extrapolated: false, kernel: result!.backend.kernel, chunks: [{ start: 0, end: seq, output: result!.output }] };
  }
  const count = 8;
  const width = Math.min(256, Math.floor(seq / count));
  let ms = 0;
  let pairs = 0;
  let kernel = 'none';
  const chunks: DenseFigures['chunks'][number][] = [];
  for (let c = 0; c < count; c++) {
    const end = Math.round((seq * (c + 1)) / count);
    const start = end - width;
    const chunk = { q: sliceSeq(input.q, start, end), k: prefixView(input.k, end), v: prefixView(input.v, end), causal: true };
    let result: AttentionResult | undefined;
    ms += measure(() => (result = denseAttention(chunk, { checkFinite: false })), { warmup: c === 0 ? 1 : 0, repeats: 1 }).medianMs;
    kernel = result!.backend.kernel;
    chunks.push({ start, end, output: result!.output });
    pairs += width * start + (width * (width + 1)) / 2;
  }
  const totalPairs = (seq * (seq + 1)) / 2;
  return { ms: (ms * totalPairs) / pairs, extrapolated: true, kernel, chunks };
}

/** Relative L2 error ‖õ − o‖ / ‖o‖ of a method's prefill output over the query rows dense computed. */
function prefillError(output: Tensor, dense: DenseFigures): number {
  let difference = 0;
  let norm = 0;
  for (const chunk of dense.chunks) {
    const rows = chunk.start === 0 && chunk.end === output.shape[2] ? output : sliceSeq(output, chunk.start, chunk.end);
    const a = rows.data;
    const b = chunk.output.data;
    for (let x = 0; x < b.length; x++) {
      difference += (a[x]! - b[x]!) ** 2;
      norm += b[x]! ** 2;
    }
  }
  return norm > 0 ? Math.sqrt(difference / norm) : 0;
}

/** Untimed decode steps before the timed ones. */
const DECODE_WARMUP = 8;

interface DecodeFigures {
  readonly ms: number;
  readonly denseMs: number;
  readonly density: number;
  readonly massRecall: number;
  readonly kvBytesRead: number;
  readonly denseKvBytesRead: number;
  readonly selectionShare: number;
  readonly outputRelError: number;
  readonly denseKernel: string;
}

/** Token `s` of the input as a one-token decode step. */
function token(input: AttentionInput, s: number): AttentionInput {
  return { q: sliceSeq(input.q, s, s + 1), k: sliceSeq(input.k, s, s + 1), v: sliceSeq(input.v, s, s + 1) };
}

/**
 * Decode figures at context ≈ seq: NSA and dense decoders are primed with the first
 * `seq − steps − DECODE_WARMUP` tokens, then DECODE_WARMUP untimed and `steps` timed steps run on
 * the remaining tokens (the first steps of a fresh decoder run cold code).
 */
function decodeFigures(input: AttentionInput, makeDecoder: (shape: DecoderShape) => CachedDecoder<unknown>, steps: number): DecodeFigures {
  const [batch, queryHeads, seq, headDim] = input.q.shape as [number, number, number, number];
  const kvHeads = input.k.shape[1]!;
  const prefix = seq - steps - DECODE_WARMUP;
  const shape = { batch, queryHeads, kvHeads, headDim, scale: input.scale };
  const decoder = makeDecoder(shape);
  decoder.prime(sliceSeq(input.k, 0, prefix), sliceSeq(input.v, 0, prefix));
  const results: { result: AttentionResult; at: number }[] = [];
  let s = prefix;
  const nsa = measure(() => {
    const at = s++;
    results.push({ result: decoder.step(token(input, at)), at });
  }, { warmup: DECODE_WARMUP, repeats: steps });
  const cache = new KVCache({ batch, kvHeads, headDim, valueDim: input.v.shape[3]!, initialCapacity: seq });
  cache.append(sliceSeq(input.k, 0, prefix), sliceSeq(input.v, 0, prefix));
  let d = prefix;
  let denseBytes = 0;
  let denseKernel = 'none';
  const denseOutputs: Tensor[] = [];
  const dense = measure(() => {
    const step = token(input, d++);
    cache.append(step.k, step.v);
    const result = denseAttention({ q: step.q, k: cache.keys(), v: cache.values(), causal: true, scale: input.scale }, { checkFinite: false });
    denseBytes = result.stats.kvBytesRead;
    denseKernel = result.backend.kernel;
    denseOutputs.push(result.output);
  }, { warmup: DECODE_WARMUP, repeats: steps });
  let recall = 0;
  let density = 0;
  let bytes = 0;
  let share = 0;
  let error = 0;
  for (const [x, { result, at }] of results.entries()) {
    error += relativeL2Error(result.output, denseOutputs[x]!);
    const call = { q: sliceSeq(input.q, at, at + 1), k: prefixView(input.k, at + 1), v: prefixView(input.v, at + 1), causal: true };
    recall += attentionMassRecall(call, result.selection!, { maxQueries: 1 });
    density += result.stats.density;
    bytes += result.stats.kvBytesRead;
    share += result.diagnostics?.['selectionShare'] ?? 0;
  }
  const n = results.length;
  return { ms: nsa.medianMs, denseMs: dense.medianMs, density: density / n, massRecall: recall / n, kvBytesRead: bytes / n, denseKvBytesRead: denseBytes, selectionShare: share / n, outputRelError: error / n, denseKernel };
}

/** Builds the NSA suite with the given sizes (the exported `nsaBenchmarkSuite` uses the issue's). */
export function createNsaBenchmarkSuite(options: NsaBenchmarkOptions = {}): BenchmarkSuite {
  return {
    id: 'nsa',
    family: 'nsa',
    description: 'NSA prefill and decode vs fast dense (B=1, Hq=16, Hkv 2 and 1, D=64): speedup, output error, density, mass recall (structured), needle retrieval, budget sweep n ∈ {4, 8, 16, 32}; MoBA and the hierarchical indexer (IoU vs flat top-K) at their defaults.',
    run(context: BenchmarkContext): BenchmarkRow[] {
      const o = context.quick ? { ...QUICK, ...options } : options;
      const queryHeads = o.queryHeads ?? 16;
      const headDim = o.headDim ?? 64;
      const kvHeadsList = o.kvHeads ?? [2, 1];
      const sweepValues = o.sweep ?? [4, 8, 16, 32];
      const defaultBlocks = o.defaultBlocks ?? 16;
      const steps = o.decodeSteps ?? Math.max(4, context.repeats);
      const lengths = context.quick ? [256] : context.seqLengths.length ? context.seqLengths : [4096, 16384, 65536];
      const rows: BenchmarkRow[] = [];
      for (const seq of lengths) {
        const heavy = seq > (o.sampleDenseAbove ?? 16384);
        for (const [index, kvHeads] of kvHeadsList.entries()) {
          const workload = `structured Hkv=${kvHeads}`;
          const input = createWorkload('structured', { queryHeads, kvHeads, seqLength: seq, headDim, seed: context.seed }).input;
          context.progress?.(`nsa: dense prefill ${seq} ${workload}`);
          const dense = denseTime(input, o.sampleDenseAbove ?? 16384, context.repeats);
          const budgets = index === 0 ? sweepValues : [defaultBlocks];
          for (const n of budgets) {
            const config = { ...o.config, selectedBlocks: n };
            context.progress?.(`nsa: prefill ${seq} ${workload} n=${n}`);
            let result: AttentionResult | undefined;
            const timing = measure(() => (result = nsaAttention(input, config)), { warmup: heavy ? 0 : 1, repeats: heavy ? 1 : context.repeats });
            const r = result!;
            rows.push({
              suite: 'nsa',
              method: 'nsa',
              workload: `${workload} prefill`,
              seqLength: seq,
              budget: `n=${n}`,
              backend: `${r.backend.kernel} vs dense ${dense.kernel}`,
              metrics: {
                prefillMs: timing.medianMs,
                outputRelError: prefillError(r.output, dense),
                densePrefillMs: dense.ms,
                speedupVsDense: dense.ms / timing.medianMs,
                denseExtrapolated: dense.extrapolated ? 1 : 0,
                density: r.stats.density,
                massRecall: attentionMassRecall(input, r.selection!, { maxQueries: 32, seed: context.seed }),
                selectionMs: r.stats.selectionMs,
                selectionShare: r.diagnostics?.['selectionShare'] ?? 0,
              },
            });
            context.progress?.(`nsa: decode ${seq} ${workload} n=${n}`);
            const dec = decodeFigures(input, (shape) => createNsaDecoder(shape, config), steps);
            rows.push({
              suite: 'nsa',
              method: 'nsa',
              workload: `${workload} decode`,
              seqLength: seq,
              budget: `n=${n}`,
              backend: `${r.backend.kernel} vs dense ${dec.denseKernel}`,
              metrics: {
                decodeMs: dec.ms,
                outputRelError: dec.outputRelError,
                denseDecodeMs: dec.denseMs,
                speedupVsDense: dec.denseMs / dec.ms,
                density: dec.density,
                massRecall: dec.massRecall,
                kvBytesRead: dec.kvBytesRead,
                kvBytesReadVsDense: dec.kvBytesRead / dec.denseKvBytesRead,
                selectionShare: dec.selectionShare,
              },
            });
          }
        }
        if (o.relatives ?? true) rows.push(...relativeRows(context, seq, queryHeads, headDim));
        rows.push(...needleRows(context, o, seq, queryHeads, headDim, defaultBlocks));
      }
      return rows;
    },
  };
}

/**
 * MoBA and the hierarchical token indexer at their default configs on the structured workload
 * (Hkv = 2): prefill and decode speedup vs dense, output error, mass recall, density, and the
 * indexer's `indexerIoU` (overlap with the flat top-K; HISA reports > 0.99) and `scannedShare`.
 */
function relativeRows(context: BenchmarkContext, seq: number, queryHeads: number, headDim: number): BenchmarkRow[] {
  const rows: BenchmarkRow[] = [];
  const input = createWorkload('structured', { queryHeads, kvHeads: 2, seqLength: seq, headDim, seed: context.seed }).input;
  const heavy = seq > 16384;
  const dense = denseTime(input, context.quick ? 128 : 16384, context.repeats);
  for (const definition of [mobaMethod, hierarchicalIndexerMethod] as unknown as MethodDefinition[]) {
    const method = definition.create(context.quick ? quickRelativeConfig(definition.id) : {});
    context.progress?.(`nsa: ${definition.id} prefill ${seq}`);
    let result: AttentionResult | undefined;
    const timing = measure(() => (result = method.prefill(input)), { warmup: heavy ? 0 : 1, repeats: heavy ? 1 : context.repeats });
    const r = result!;
    const workload = 'structured Hkv=2';
    rows.push({
      suite: 'nsa', method: definition.id, workload: `${workload} prefill`, seqLength: seq, budget: 'default', backend: `${r.backend.kernel} vs dense ${dense.kernel}`,
      metrics: {
        ...(r.diagnostics ?? {}),
        prefillMs: timing.medianMs,
        densePrefillMs: dense.ms,
        speedupVsDense: dense.ms / timing.medianMs,
        denseExtrapolated: dense.extrapolated ? 1 : 0,
        outputRelError: prefillError(r.output, dense),
        density: r.stats.density,
        massRecall: attentionMassRecall(input, r.selection!, { maxQueries: 32, seed: context.seed }),
        selectionMs: r.stats.selectionMs,
      },
    });
    context.progress?.(`nsa: ${definition.id} decode ${seq}`);
    const dec = decodeFigures(input, (shape) => method.createDecoder(shape) as CachedDecoder<unknown>, Math.max(4, context.repeats));
    rows.push({
      suite: 'nsa', method: definition.id, workload: `${workload} decode`, seqLength: seq, budget: 'default', backend: `${r.backend.kernel} vs dense ${dec.denseKernel}`,
      metrics: { decodeMs: dec.ms, denseDecodeMs: dec.denseMs, speedupVsDense: dec.denseMs / dec.ms, outputRelError: dec.outputRelError, density: dec.density, massRecall: dec.massRecall, kvBytesReadVsDense: dec.kvBytesRead / dec.denseKvBytesRead },
    });
  }
  return rows;
}

/** Small-block configs of the relatives for quick (CI) runs, so 256 tokens are genuinely sparse. */
function quickRelativeConfig(id: string): Record<string, unknown> {
  return id === 'moba' ? { blockSize: 16, topK: 3 } : { blockSize: 16, candidateBlocks: 4, topK: 32 };
}

/** Needle retrieval at decode: the needle query's step must select the needle and be dominated by its value. */
function needleRows(context: BenchmarkContext, o: NsaBenchmarkOptions, seq: number, queryHeads: number, headDim: number, n: number): BenchmarkRow[] {
  const rows: BenchmarkRow[] = [];
  for (const depth of o.needleDepths ?? [0.1, 0.5, 0.9]) {
    context.progress?.(`nsa: needle ${seq} depth ${depth}`);
    const needleQueries = 4;
    const w = createWorkload('needle', { queryHeads, kvHeads: 2, seqLength: seq, headDim, needleDepth: depth, needleQueries, seed: context.seed + Math.round(depth * 100) });
    // The default mean-pooled score, and the Quest-style window bounds (a lone needle is not diluted).
    for (const compressionScore of ['mean', 'quest'] as const) {
      const decoder = createNsaDecoder({ batch: 1, queryHeads, kvHeads: 2, headDim }, { ...o.config, selectedBlocks: n, compressionScore });
      const prefix = seq - needleQueries;
      decoder.prime(sliceSeq(w.input.k, 0, prefix), sliceSeq(w.input.v, 0, prefix));
      let selected = 0;
      let dominated = 0;
      let kernel = 'none';
      for (let at = prefix; at < seq; at++) {
        const result = decoder.step(token(w.input, at));
        kernel = result.backend.kernel;
        const call = { q: sliceSeq(w.input.q, at, at + 1), k: prefixView(w.input.k, at + 1), v: prefixView(w.input.v, at + 1), causal: true };
        const retrieval = needleRetrieval(call, w.needle!, result.output, result.selection);
        selected += retrieval.selected / needleQueries;
        dominated += retrieval.dominated / needleQueries;
      }
      const budget = compressionScore === 'mean' ? `n=${n}` : `n=${n} quest`;
      rows.push({ suite: 'nsa', method: 'nsa', workload: `needle depth ${depth}`, seqLength: seq, budget, backend: kernel, metrics: { needleSelected: selected, needleDominated: dominated, needlePosition: w.needle!.position } });
    }
  }
  return rows;
}

/** The NSA suite at its own sizes. */
export const nsaBenchmarkSuite: BenchmarkSuite = createNsaBenchmarkSuite();

/** Every suite of this package, for apps/bench. */
export const benchmarks: BenchmarkSuite[] = [nsaBenchmarkSuite];
