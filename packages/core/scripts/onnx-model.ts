/**
 * Minimal ONNX ModelProto writer (hand-rolled protobuf, no dependencies) for the kernel
 * benchmark: one-node graphs — opset-23 `Attention` and `MatMul` — that onnxruntime-node runs
 * as the reference implementation in the same process and run.
 *
 * Field numbers follow onnx/onnx.proto: ModelProto{ir_version=1, graph=7, opset_import=8},
 * GraphProto{node=1, name=2, input=11, output=12}, NodeProto{input=1, output=2, name=3,
 * op_type=4, attribute=5, domain=7}, AttributeProto{name=1, i=3, type=20},
 * ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, TypeProto.Tensor{elem_type=1,
 * shape=2}, TensorShapeProto{dim=1}, Dimension{dim_value=1}.
 */

class ProtoWriter {
  private readonly bytes: number[] = [];

  varint(value: number): this {
    let v = BigInt(value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      this.bytes.push(byte);
    } while (v > 0n);
    return this;
  }

  /** A varint field (wire type 0). */
  int(field: number, value: number): this {
    return this.varint((field << 3) | 0).varint(value);
  }

  /** A length-delimited field (wire type 2): bytes, string or sub-message. */
  bytesField(field: number, payload: Uint8Array): this {
    this.varint((field << 3) | 2).varint(payload.length);
    for (const b of payload) this.bytes.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytesField(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** ONNX `TensorProto.DataType.FLOAT`. */
const FLOAT = 1;
/** ONNX `AttributeProto.AttributeType.INT`. */
const ATTRIBUTE_INT = 2;

function valueInfo(w: ProtoWriter, field: number, name: string, shape: readonly number[]): void {
  w.message(field, (vi) => {
    vi.string(1, name);
    vi.message(2, (type) =>
      type.message(1, (tensor) => {
        tensor.int(1, FLOAT);
        tensor.message(2, (s) => {
          for (const d of shape) s.message(1, (dim) => dim.int(1, d));
        });
      }),
    );
  });
}

interface NodeSpec {
  readonly opType: string;
  readonly inputs: readonly { name: string; shape: readonly number[] }[];
  readonly output: { name: string; shape: readonly number[] };
  readonly intAttributes?: Readonly<Record<string, number>>;
  readonly opset: number;
}

/** Serialises a one-node ONNX model (IR version 10, default domain). */
export function oneNodeModel(spec: NodeSpec): Uint8Array {
  return new ProtoWriter()
    .int(1, 10)
    .message(7, (graph) => {
      graph.message(1, (node) => {
        for (const input of spec.inputs) node.string(1, input.name);
        node.string(2, spec.output.name);
        node.string(3, `${spec.opType.toLowerCase()}0`);
        node.string(4, spec.opType);
        for (const [name, value] of Object.entries(spec.intAttributes ?? {})) {
          node.message(5, (attribute) => attribute.string(1, name).int(3, value).int(20, ATTRIBUTE_INT));
        }
      });
      graph.string(2, `${spec.opType}-benchmark`);
      for (const input of spec.inputs) valueInfo(graph, 11, input.name, input.shape);
      valueInfo(graph, 12, spec.output.name, spec.output.shape);
    })
    .message(8, (opset) => opset.string(1, '').int(2, spec.opset))
    .finish();
}

/** Shape of a one-node opset-23 `Attention` model. */
export interface AttentionModelShape {
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly querySeq: number;
  readonly keySeq: number;
  readonly headDim: number;
  /**
   * ONNX aligns `is_causal` to the upper-left corner, our contract to the end of the keys: they
   * agree for `querySeq == keySeq`; a one-query step sees every key, so it runs unmasked.
   */
  readonly causal: boolean;
}

/**
 * Opset-23 `Attention` over 4-D `[batch, heads, seq, headDim]` q, k, v; grouped-query attention
 * is expressed by k and v having fewer heads, as the operator allows.
 */
export function attentionModel(shape: AttentionModelShape): Uint8Array {
  const { batch, queryHeads, kvHeads, querySeq, keySeq, headDim } = shape;
  if (shape.causal && querySeq !== keySeq && querySeq !== 1) throw new Error(`ONNX is_causal cannot express ${querySeq} end-aligned queries over ${keySeq} keys`);
  const qShape = [batch, queryHeads, querySeq, headDim];
  const kvShape = [batch, kvHeads, keySeq, headDim];
  return oneNodeModel({
    opType: 'Attention',
    opset: 23,
    inputs: [{ name: 'q', shape: qShape }, { name: 'k', shape: kvShape }, { name: 'v', shape: kvShape }],
    output: { name: 'y', shape: qShape },
    intAttributes: { is_causal: shape.causal && querySeq === keySeq ? 1 : 0 },
  });
}

/** `MatMul` of `[m, k]` by `[k, n]`. */
export function matmulModel(m: number, k: number, n: number): Uint8Array {
  return oneNodeModel({
    opType: 'MatMul',
    opset: 13,
    inputs: [{ name: 'a', shape: [m, k] }, { name: 'b', shape: [k, n] }],
    output: { name: 'c', shape: [m, n] },
  });
}
