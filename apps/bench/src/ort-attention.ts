/**
 * Dense-attention baseline on onnxruntime-node, measured in the same run as our kernels.
 *
 * Primary graph: one ONNX opset-23 `Attention` node with 4-D inputs
 *   Y = softmax(scale · Q Kᵀ + causal mask) V,  Q [B, Hq, Sq, D], K/V [B, Hkv, Sk, D]
 * (grouped-query attention is expressed by K/V having fewer heads, as the operator allows).
 * ONNX aligns `is_causal` to the upper-left corner, while our contract aligns queries to the
 * end of the keys; the two agree when Sq == Sk (prefill), and a one-query decode step sees every
 * key, so decode runs with `is_causal = 0`. Other Sq < Sk causal calls use the fallback graph.
 *
 * Fallback graph (used when the CPU provider rejects opset-23 `Attention`, or on request):
 *   MatMul(Q, Transpose(K)) · scale + mask → Softmax → MatMul(·, V), with K/V heads repeated in
 * JS for GQA and an additive end-aligned causal mask [Sq, Sk] fed as an input. It materialises
 * S×S scores, as a plain ONNX graph must. Every result records which graph ran and why.
 */
import { availableParallelism } from 'node:os';
import { ConfigError, encodeOnnxModel, tensor, validateAttentionInput, type AttentionDims, type AttentionInput, type OnnxModelSpec, type Tensor } from '@sparse-attn/core';

/** Which ONNX graph computes the baseline. */
export type OrtGraph = 'attention-opset23' | 'matmul-softmax';

/** Fixed shape of an ORT baseline session (ONNX models here have static shapes): core's dims. */
export type OrtAttentionShape = Pick<AttentionDims, 'batch' | 'queryHeads' | 'kvHeads' | 'querySeq' | 'keySeq' | 'headDim' | 'valueDim' | 'causal' | 'scale'>;

/** Options of {@link OrtDenseAttention.create}. */
export interface OrtAttentionOptions {
  /** `auto` tries opset-23 `Attention` and falls back to MatMul/Softmax. Default `auto`. */
  readonly graph?: OrtGraph | 'auto';
  /** Intra-op threads; default every available core (onnxruntime's own default), recorded in results. */
  readonly threads?: number;
}

type Ort = typeof import('onnxruntime-node');
let ortModule: Promise<Ort> | undefined;

/**
 * Loads onnxruntime-node lazily, so commands that never touch the baseline (`list`, `run`)
 * do not pay for loading its native library.
 */
function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/** Reads the validated shape of an attention call in the form ORT sessions are keyed by. */
export function ortShapeOf(input: AttentionInput): OrtAttentionShape {
  const d = validateAttentionInput(input, { checkFinite: false });
  return {
    batch: d.batch,
    queryHeads: d.queryHeads,
    kvHeads: d.kvHeads,
    querySeq: d.querySeq,
    keySeq: d.keySeq,
    headDim: d.headDim,
    valueDim: d.valueDim,
    causal: d.causal,
    scale: d.scale,
  };
}

function qkvShapes(s: OrtAttentionShape, kvHeads: number) {
  return {
    q: [s.batch, s.queryHeads, s.querySeq, s.headDim],
    k: [s.batch, kvHeads, s.keySeq, s.headDim],
    v: [s.batch, kvHeads, s.keySeq, s.valueDim],
    y: [s.batch, s.queryHeads, s.querySeq, s.valueDim],
  };
}

/** The one-node opset-23 `Attention` model for a shape, or a reason it cannot express it. */
export function attentionModel(s: OrtAttentionShape): { model: Uint8Array } | { reason: string } {
  if (s.causal && s.querySeq !== s.keySeq && s.querySeq !== 1) {
    return { reason: `opset-23 Attention aligns is_causal to the upper-left corner; a causal call with ${s.querySeq} queries over ${s.keySeq} keys needs an end-aligned mask` };
  }
  const shapes = qkvShapes(s, s.kvHeads);
  const spec: OnnxModelSpec = {
    opset: 23,
    graphName: 'dense_attention',
    nodes: [
      {
        opType: 'Attention',
        inputs: ['q', 'k', 'v'],
        outputs: ['y'],
        // One query over all keys is causal by construction, so decode steps run without the mask.
        attributes: [{ name: 'is_causal', int: s.causal && s.querySeq === s.keySeq ? 1 : 0 }, { name: 'scale', float: s.scale }],
      },
    ],
    inputs: [
      { name: 'q', shape: shapes.q },
      { name: 'k', shape: shapes.k },
      { name: 'v', shape: shapes.v },
    ],
    outputs: [{ name: 'y', shape: shapes.y }],
  };
  return { model: encodeOnnxModel(spec) };
}

/** The MatMul/Softmax/MatMul fallback model (K/V already expanded to the query heads). */
export function matmulSoftmaxModel(s: OrtAttentionShape): Uint8Array {
  const shapes = qkvShapes(s, s.queryHeads);
  return encodeOnnxModel({
    opset: 23,
    graphName: 'dense_attention_matmul_softmax',
    nodes: [
      { opType: 'Transpose', inputs: ['k'], outputs: ['kt'], attributes: [{ name: 'perm', ints: [0, 1, 3, 2] }] },
      { opType: 'MatMul', inputs: ['q', 'kt'], outputs: ['scores'] },
      { opType: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
      { opType: 'Add', inputs: ['scaled', 'mask'], outputs: ['masked'] },
      { opType: 'Softmax', inputs: ['masked'], outputs: ['probs'], attributes: [{ name: 'axis', int: -1 }] },
      { opType: 'MatMul', inputs: ['probs', 'v'], outputs: ['y'] },
    ],
    inputs: [
      { name: 'q', shape: shapes.q },
      { name: 'k', shape: shapes.k },
      { name: 'v', shape: shapes.v },
      { name: 'scale', shape: [] },
      { name: 'mask', shape: [s.querySeq, s.keySeq] },
    ],
    outputs: [{ name: 'y', shape: shapes.y }],
  });
}

/**
 * Compact `[B, H·groupSize, S, D]` data of a rank-4 tensor: drops KV-cache padding and repeats
 * each head `groupSize` times (so a plain MatMul graph sees one K/V per query head). Returns the
 * tensor's own buffer when it is already compact and no repeat is needed.
 */
function expandHeads(t: Tensor, groupSize: number): Float32Array {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const capacity = t.seqCapacity ?? seq;
  if (groupSize === 1 && capacity === seq) return t.data.subarray(0, batch * heads * seq * dim);
  const out = new Float32Array(batch * heads * groupSize * seq * dim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const src = t.data.subarray(((b * heads + h) * capacity) * dim, ((b * heads + h) * capacity + seq) * dim);
      for (let g = 0; g < groupSize; g++) out.set(src, ((b * heads + h) * groupSize + g) * seq * dim);
    }
  }
  return out;
}

/**
 * A dense-attention session on onnxruntime-node for one fixed shape. `graph` says which ONNX
 * graph runs; `fallbackReason` why it is not opset-23 `Attention`, when it is not.
 */
export class OrtDenseAttention {
  readonly graph: OrtGraph;
  readonly fallbackReason: string | undefined;
  readonly threads: number;
  readonly shape: OrtAttentionShape;
  private readonly ort: Ort;
  private readonly session: import('onnxruntime-node').InferenceSession;
  private readonly mask: Float32Array | undefined;

  private constructor(ort: Ort, session: import('onnxruntime-node').InferenceSession, shape: OrtAttentionShape, graph: OrtGraph, threads: number, fallbackReason?: string) {
    this.ort = ort;
    this.session = session;
    this.shape = shape;
    this.graph = graph;
    this.threads = threads;
    this.fallbackReason = fallbackReason;
    if (graph === 'matmul-softmax') {
      // Additive causal mask, queries aligned to the end of the keys (the project's convention).
      const mask = new Float32Array(shape.querySeq * shape.keySeq);
      if (shape.causal) {
        const offset = shape.keySeq - shape.querySeq;
        for (let i = 0; i < shape.querySeq; i++) mask.fill(-Infinity, i * shape.keySeq + offset + i + 1, (i + 1) * shape.keySeq);
      }
      this.mask = mask;
    }
  }

  /** Builds the session for `shape`; with `graph: 'auto'`, falls back when `Attention` is rejected. */
  static async create(shape: OrtAttentionShape, options: OrtAttentionOptions = {}): Promise<OrtDenseAttention> {
    const ort = await loadOrt();
    const threads = options.threads ?? availableParallelism();
    if (!(Number.isInteger(threads) && threads >= 1)) throw new ConfigError(`ort threads must be a positive integer, got ${threads}`);
    const sessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
    const wanted = options.graph ?? 'auto';
    let reason: string | undefined;
    if (wanted !== 'matmul-softmax') {
      const built = attentionModel(shape);
      if ('model' in built) {
        try {
          const session = await ort.InferenceSession.create(built.model, sessionOptions);
          const attention = new OrtDenseAttention(ort, session, shape, 'attention-opset23', threads);
          // Some providers load the node but fail at the first run; probe once on zeros.
          await attention.runRaw(new Float32Array(shape.batch * shape.queryHeads * shape.querySeq * shape.headDim), new Float32Array(shape.batch * shape.kvHeads * shape.keySeq * shape.headDim), new Float32Array(shape.batch * shape.kvHeads * shape.keySeq * shape.valueDim));
          return attention;
        } catch (error) {
          reason = `opset-23 Attention failed on onnxruntime-node ${ort.env.versions.common}: ${firstLine(error)}`;
        }
      } else {
        reason = built.reason;
      }
      if (wanted === 'attention-opset23') throw new ConfigError(`ort baseline: ${reason}`);
    }
    const session = await ort.InferenceSession.create(matmulSoftmaxModel(shape), sessionOptions);
    return new OrtDenseAttention(ort, session, shape, 'matmul-softmax', threads, reason ?? 'matmul-softmax graph requested');
  }

  /** Runs attention on compact q/k/v data laid out as this session's shape. */
  async runRaw(q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
    const s = this.shape;
    const { Tensor: OrtTensor } = this.ort;
    const expand = this.graph === 'matmul-softmax';
    const kvHeads = expand ? s.queryHeads : s.kvHeads;
    const shapes = qkvShapes(s, kvHeads);
    const group = s.queryHeads / s.kvHeads;
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {
      q: new OrtTensor('float32', q, shapes.q),
      k: new OrtTensor('float32', expand ? expandHeads(tensor([s.batch, s.kvHeads, s.keySeq, s.headDim], k), group) : k, shapes.k),
      v: new OrtTensor('float32', expand ? expandHeads(tensor([s.batch, s.kvHeads, s.keySeq, s.valueDim], v), group) : v, shapes.v),
    };
    if (expand) {
      feeds['scale'] = new OrtTensor('float32', new Float32Array([s.scale]), []);
      feeds['mask'] = new OrtTensor('float32', this.mask!, [s.querySeq, s.keySeq]);
    }
    const results = await this.session.run(feeds);
    const y = results['y'];
    if (!y) throw new ConfigError('ort baseline: the session returned no output y');
    return y.data as Float32Array;
  }

  /** Runs attention on an input of this session's shape and returns `[B, Hq, Sq, Dv]`. */
  async run(input: AttentionInput): Promise<Tensor> {
    const got = ortShapeOf(input);
    const s = this.shape;
    for (const key of Object.keys(s) as (keyof OrtAttentionShape)[]) {
      if (got[key] !== s[key]) throw new ConfigError(`ort baseline: session built for ${key} = ${s[key]}, input has ${got[key]}`);
    }
    const y = await this.runRaw(expandHeads(input.q, 1), expandHeads(input.k, 1), expandHeads(input.v, 1));
    return tensor([s.batch, s.queryHeads, s.querySeq, s.valueDim], y);
  }

  /** Frees the native session. */
  async release(): Promise<void> {
    await this.session.release();
  }

  /** `onnxruntime-node <version> <graph>`: the kernel label recorded in every ORT row. */
  get kernel(): string {
    return `onnxruntime-node-${this.ort.env.versions.common}:${this.graph}`;
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.slice(0, 300);
}
