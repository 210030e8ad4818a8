/**
 * The onnxruntime-node models of the kernel benchmark: one-node opset-23 `Attention` and `MatMul`
 * graphs, encoded by core's {@link encodeOnnxModel}, that onnxruntime runs as the reference
 * implementation in the same process and run.
 */
import type { AttentionDims } from '../src/attention.js';
import { encodeOnnxModel } from '../src/onnx-model.js';

/**
 * Shape of a one-node opset-23 `Attention` model. ONNX aligns `is_causal` to the upper-left
 * corner, our contract to the end of the keys: they agree for `querySeq == keySeq`; a one-query
 * step sees every key, so it runs unmasked.
 */
export type AttentionModelShape = Pick<AttentionDims, 'batch' | 'queryHeads' | 'kvHeads' | 'querySeq' | 'keySeq' | 'headDim' | 'causal'>;

/**
 * Opset-23 `Attention` over 4-D `[batch, heads, seq, headDim]` q, k, v; grouped-query attention
 * is expressed by k and v having fewer heads, as the operator allows.
 */
export function attentionModel(shape: AttentionModelShape): Uint8Array {
  const { batch, queryHeads, kvHeads, querySeq, keySeq, headDim } = shape;
  if (shape.causal && querySeq !== keySeq && querySeq !== 1) throw new Error(`ONNX is_causal cannot express ${querySeq} end-aligned queries over ${keySeq} keys`);
  const qShape = [batch, queryHeads, querySeq, headDim];
  const kvShape = [batch, kvHeads, keySeq, headDim];
  return encodeOnnxModel({
    opset: 23,
    nodes: [{ opType: 'Attention', inputs: ['q', 'k', 'v'], outputs: ['y'], attributes: [{ name: 'is_causal', int: shape.causal && querySeq === keySeq ? 1 : 0 }] }],
    inputs: [{ name: 'q', shape: qShape }, { name: 'k', shape: kvShape }, { name: 'v', shape: kvShape }],
    outputs: [{ name: 'y', shape: qShape }],
  });
}
