/**
 * A minimal ONNX `ModelProto` encoder for the onnxruntime baselines every benchmark compares
 * against (dense `Attention`, `MatMul`), measured in the same run as our kernels.
 *
 * ONNX models are protobuf messages; the baseline needs only a handful of fields (opset import,
 * one graph with nodes, float inputs/outputs with fixed shapes, int/float attributes), so we write
 * the wire format directly (varints and length-delimited fields) instead of pulling in a protobuf
 * runtime and the full onnx.proto schema. Field numbers follow onnx/onnx.proto (IR version 11).
 */

/** ONNX `TensorProto.DataType.FLOAT`. */
const FLOAT = 1;

/** ONNX `AttributeProto.AttributeType` values used here. */
const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

/** Protobuf writer: accumulates bytes; nested messages are encoded first and embedded. */
class ProtoWriter {
  private readonly chunks: number[] = [];

  private varint(value: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(value));
    while (x >= 0x80n) {
      this.chunks.push(Number((x & 0x7fn) | 0x80n));
      x >>= 7n;
    }
    this.chunks.push(Number(x));
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** A varint field (int32, int64, enum). */
  int(field: number, value: number): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  /** A 32-bit float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, 5);
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    for (const b of bytes) this.chunks.push(b);
    return this;
  }

  /** A length-delimited field: bytes of a string or of an embedded message. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.length);
    for (const b of value) this.chunks.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** A node attribute: integers, integer lists and floats are all the baselines need. */
export type OnnxAttribute =
  | { readonly name: string; readonly int: number }
  | { readonly name: string; readonly ints: readonly number[] }
  | { readonly name: string; readonly float: number };

/** One graph node (`NodeProto`). */
export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: readonly OnnxAttribute[];
}

/** A float32 graph input or output with a fixed shape (`ValueInfoProto`). */
export interface OnnxValue {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Everything {@link encodeOnnxModel} writes: one graph in the default domain at one opset. */
export interface OnnxModelSpec {
  readonly opset: number;
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValue[];
  readonly outputs: readonly OnnxValue[];
  readonly graphName?: string;
}

function writeValueInfo(w: ProtoWriter, value: OnnxValue): void {
  w.string(1, value.name);
  // TypeProto { tensor_type (1): { elem_type (1), shape (2): { dim (1): { dim_value (1) } } } }
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int(1, FLOAT);
      tensorType.message(2, (shape) => {
        for (const d of value.shape) shape.message(1, (dim) => dim.int(1, d));
      });
    }),
  );
}

function writeAttribute(w: ProtoWriter, attribute: OnnxAttribute): void {
  w.string(1, attribute.name);
  if ('int' in attribute) {
    w.int(3, attribute.int).int(20, ATTRIBUTE_INT);
  } else if ('ints' in attribute) {
    for (const x of attribute.ints) w.int(8, x);
    w.int(20, ATTRIBUTE_INTS);
  } else {
    w.float(2, attribute.float).int(20, ATTRIBUTE_FLOAT);
  }
}

/**
 * Encodes a `ModelProto` (IR version 11, the one that pairs with opset 23) holding one graph.
 * The bytes load directly with `InferenceSession.create(bytes)`.
 */
export function encodeOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const model = new ProtoWriter();
  model.int(1, 11); // ir_version
  model.string(2, 'sparse-attn'); // producer_name
  model.message(7, (graph) => {
    for (const [i, node] of spec.nodes.entries()) {
      graph.message(1, (n) => {
        for (const input of node.inputs) n.string(1, input);
        for (const output of node.outputs) n.string(2, output);
        n.string(3, `${node.opType.toLowerCase()}_${i}`);
        n.string(4, node.opType);
        for (const attribute of node.attributes ?? []) n.message(5, (a) => writeAttribute(a, attribute));
      });
    }
    graph.string(2, spec.graphName ?? 'graph');
    for (const input of spec.inputs) graph.message(11, (v) => writeValueInfo(v, input));
    for (const output of spec.outputs) graph.message(12, (v) => writeValueInfo(v, output));
  });
  model.message(8, (opset) => opset.string(1, '').int(2, spec.opset)); // opset_import, default domain
  return model.finish();
}

/**
 * The model of one float32 `MatMul` node `y = a·b` over `a [m, k]` and `b [k, n]` (opset 13):
 * the GEMM baseline our `matmul` is compared to.
 */
export function onnxMatMulModel(m: number, k: number, n: number): Uint8Array {
  return encodeOnnxModel({
    opset: 13,
    nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
    inputs: [{ name: 'a', shape: [m, k] }, { name: 'b', shape: [k, n] }],
    outputs: [{ name: 'y', shape: [m, n] }],
  });
}
