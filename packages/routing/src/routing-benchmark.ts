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
  type AttentionMethod,
  type AttentionResult,
  type BenchmarkContext,
  type BenchmarkRow,
  type BenchmarkSuite,
} from '@sparse-attn/core';
import { biformerMethod } from './biformer-attention.js';
import { causalRoutingMethod } from './causal-routing-method.js';
import { routingMethod } from './routing-method.js';

/** One configured method of the sweep. */
interface Variant {
  readonly method: AttentionMethod;
  readonly label: string;
  /** Part of the C ≈ √S family whose time exponent is fitted. */
  readonly fitted: boolean;
}

/** Decode steps timed per (method, length) after the prompt (the first {@link DECODE_WARMUP} untimed). */
const DECODE_STEPS = 32;
/** Untimed decode steps right after the prompt (JIT, and the garbage of the prompt step). */
const DECODE_WARMUP = 4;

function variantsFor(seq: number): Variant[] {
  const root = Math.max(1, Math.round(Math.sqrt(seq)));
  const calibrationTokens = Math.min(256, Math.max(8, seq >> 4));
  const regionSize = seq >= 1024 ? 64 : 16;
  const topK = Math.max(2, Math.round(root / regionSize));
  const clusterSweep = [...new Set([Math.max(2, Math.round(root / 2)), root, 2 * root])];
  return [
    ...clusterSweep.map((clusters) => ({
      method: routingMethod.create({ clusters }),
      label: clusters === root ? `C=${clusters} (√S)` : `C=${clusters}`,
      fitted: clusters === root,
    })),
    {
      method: routingMethod.create({ clusters: root, membership: 'balanced', local: 'never', sinkTokens: 0, combine: 'mean' }),
      label: `C=${root} reference`,
      fitted: false,
    },
    { method: causalRoutingMethod.create({ clusters: root, calibrationTokens }), label: `C=${root} (√S)`, fitted: true },
    { method: biformerMethod.create({ regionSize, topK }), label: `R=${regionSize} k=${topK}`, fitted: true },
  ];
}

/** Least-squares slope of log(y) against log(x): the measured exponent of time vs S. */
export function fitExponent(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i]! - mx) * (ly[i]! - my);
    den += (lx[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Median decode-step time over the timed steps after an untimed prompt step and warm-up steps. */
function timeDecode(method: AttentionMethod, input: AttentionInput): number {
  const [batch, queryHeads, seq, headDim] = input.q.shape as [number, number, number, number];
  const decoder = method.createDecoder({ batch, queryHeads, kvHeads: input.k.shape[1]!, headDim, valueDim: input.v.shape[3]! });
  const prompt = seq - DECODE_STEPS;
  decoder.step({ q: sliceSeq(input.q, 0, prompt), k: sliceSeq(input.k, 0, prompt), v: sliceSeq(input.v, 0, prompt) });
  const samples: number[] = [];
  for (let t = prompt; t < seq; t++) {
    const step = { q: sliceSeq(input.q, t, t + 1), k: sliceSeq(input.k, t, t + 1), v: sliceSeq(input.v, t, t + 1) };
    const started = performance.now();
    decoder.step(step);
    if (t >= prompt + DECODE_WARMUP) samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

/** Dense decode baseline: one query over a KV cache holding the whole sequence. */
function timeDenseDecode(input: AttentionInput, repeats: number): number {
  const [batch, , seq, headDim] = input.q.shape as [number, number, number, number];
  const cache = new KVCache({ batch, kvHeads: input.k.shape[1]!, headDim, valueDim: input.v.shape[3]!, initialCapacity: seq });
  cache.append(input.k, input.v);
  const q = sliceSeq(input.q, seq - 1, seq);
  return measure(() => denseAttention({ q, k: cache.keys(), v: cache.values(), causal: true }, { checkFinite: false }), { repeats: Math.max(3, repeats) }).medianMs;
}

/**
 * The benchmark: prefill and decode at each requested length (4k/16k/64k by default in
 * apps/bench), a C sweep around √S, the causal variant and BiFormer at comparable budgets;
 * speedup vs dense (core's dense attention; apps/bench adds onnxruntime), attention-mass recall,
 * relative output error, needle retrieval, the k-means share of prefill time, and the fitted
 * exponent of prefill time vs S (the O(S^1.5·D) claim) for the C = √S family and for dense.
 * Shapes: batch 1, one head, head dim 64 (32 in quick mode), so timings are per head.
 */
export const routingBenchmark: BenchmarkSuite = {
  id: 'routing-scaling',
  family: 'routing',
  description: 'Routing Transformer / BiFormer prefill and decode scaling: C sweep, speedup vs dense, mass recall, needle retrieval, k-means time share, fitted time exponent.',
  run(context: BenchmarkContext): BenchmarkRow[] {
    const lengths = context.quick ? [256, 512] : [...context.seqLengths];
    const headDim = context.quick ? 32 : 64;
    const rows: BenchmarkRow[] = [];
    const fit = new Map<string, { s: number[]; ms: number[]; backends: Set<string> }>();
    const record = (key: string, seq: number, ms: number, backend: string) => {
      const entry = fit.get(key) ?? { s: [], ms: [], backends: new Set<string>() };
      entry.s.push(seq);
      entry.ms.push(ms);
      entry.backends.add(backend);
      fit.set(key, entry);
    };
    for (const seq of lengths) {
      const large = seq >= 16384;
      const repeats = large ? 1 : context.repeats;
      const warmup = large ? 0 : 1;
      const shape = { batch: 1, queryHeads: 1, kvHeads: 1, seqLength: seq, headDim, seed: context.seed };
      const input = createWorkload('structured', shape).input;
      const needle = createWorkload('needle', { ...shape, needleQueries: 8, seed: context.seed + 1 });
      context.progress?.(`routing-scaling: dense prefill S=${seq}`);
      let denseResult: AttentionResult | undefined;
      const dense = measure(() => (denseResult = denseAttention(input)), { warmup, repeats });
      const denseOutput = denseResult!.output;
      const denseBackend = `${denseResult!.backend.backend}:${denseResult!.backend.kernel}`;
      const denseDecodeMs = timeDenseDecode(input, context.repeats);
      record('dense', seq, dense.medianMs, denseBackend);
      rows.push({ suite: 'routing-scaling', method: 'dense', workload: 'structured', seqLength: seq, backend: denseBackend, metrics: { prefillMs: dense.medianMs, decodeMs: denseDecodeMs } });
      for (const variant of variantsFor(seq)) {
        const id = variant.method.methodId;
        context.progress?.(`routing-scaling: ${id} ${variant.label} S=${seq}`);
        let result = variant.method.prefill(input);
        const timing = measure(() => (result = variant.method.prefill(input)), { warmup: 0, repeats });
        const retrieval = variant.method.prefill(needle.input);
        const found = needleRetrieval(needle.input, needle.needle!, retrieval.output, retrieval.selection);
        const decodeMs = timeDecode(variant.method, input);
        if (variant.fitted) record(`${id} ${variant.label.replace(/=\d+/g, '')}`, seq, timing.medianMs, `${result.backend.backend}:${result.backend.kernel}`);
        const diagnostics = result.diagnostics ?? {};
        rows.push({
          suite: 'routing-scaling',
          method: id,
          workload: 'structured',
          seqLength: seq,
          budget: variant.label,
          backend: `${result.backend.backend}:${result.backend.kernel}`,
          metrics: {
            prefillMs: timing.medianMs,
            speedupVsDense: dense.medianMs / timing.medianMs,
            selectionMs: result.stats.selectionMs,
            attentionMs: result.stats.attentionMs,
            kmeansMs: diagnostics['kmeansMs'] ?? 0,
            kmeansShare: diagnostics['kmeansShare'] ?? 0,
            density: result.stats.density,
            keysPerQuery: diagnostics['keysPerQuery'] ?? result.stats.pairs / seq,
            relativeError: relativeL2Error(result.output, denseOutput),
            massRecall: result.selection ? attentionMassRecall(input, result.selection, { maxQueries: 32, seed: context.seed }) : 1,
            needleSelected: found.selected,
            needleDominated: found.dominated,
            decodeMs,
            decodeSpeedupVsDense: denseDecodeMs / decodeMs,
          },
        });
      }
    }
    for (const [key, entry] of fit) {
      if (entry.s.length < 2) continue;
      const [method, ...rest] = key.split(' ');
      rows.push({
        suite: 'routing-scaling',
        method: method!,
        workload: 'structured',
        seqLength: Math.max(...entry.s),
        budget: rest.length ? `${rest.join(' ')} exponent fit` : 'exponent fit',
        backend: [...entry.backends].join('+'),
        metrics: { timeExponent: fitExponent(entry.s, entry.ms), lengths: entry.s.length },
      });
    }
    return rows;
  },
};
