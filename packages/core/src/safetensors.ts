/**
 * safetensors read/write: the format PyTorch users dump tensors in
 * (https://github.com/huggingface/safetensors, "Format" section).
 *
 * Layout: 8 bytes little-endian u64 `N`; `N` bytes of UTF-8 JSON (the header, starting with
 * `{`, maybe right-padded with spaces); then the data section. The header maps each tensor name
 * to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the data section) and may
 * hold `__metadata__`, a string → string map.
 *
 * Why our own parser: the only npm package of that name (`safetensors@0.0.1`) is a single
 * unmaintained release without validation, and Hugging Face's JS hub client only fetches remote
 * headers. Files come from untrusted places, so every structural claim is checked against the
 * bytes before anything is allocated, following the Rust reference (`safetensors/src/tensor.rs`):
 *
 * - header length ≤ 100 MB (the reference's `MAX_HEADER_SIZE`) and ≤ file size − 8;
 * - header is valid UTF-8, starts with `{`, is one JSON object without duplicate keys
 *   (the spec disallows them; `JSON.parse` would silently keep the last one, hence a small strict
 *   JSON parser below that also bounds nesting depth and keeps integers exact);
 * - every entry has exactly `dtype`, `shape`, `data_offsets` of the right types; every dimension
 *   and offset is a non-negative safe integer; shape × dtype size equals the offsets' span;
 * - tensors, sorted by offset, tile the data section exactly: no overlap, no gap, nothing
 *   after the last tensor (the reference's `InvalidOffset` / `MetadataIncompleteBuffer`, which
 *   also prevents polyglot files).
 *
 * Every failure is a {@link FormatError} naming the tensor and the problem. Memory stays bounded
 * by the input size: no declared size is trusted before it is checked against the bytes present.
 *
 * Deliberate differences from the reference: unknown keys inside a tensor entry are rejected
 * (serde ignores them), and BOOL bytes other than 0/1 are rejected.
 */
import { FormatError, NumericError, ShapeError, formatShape } from './errors.js';
import { sizeOf, sliceSeq, type Tensor } from './tensor.js';

/** The Rust reference's header limit (`MAX_HEADER_SIZE`): larger headers are rejected as hostile. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** Dtypes this module decodes and encodes. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'BOOL';

/**
 * Bits per element of every dtype the format defines. Dtypes outside {@link SafetensorsDtype}
 * are still validated structurally (so a file holding an FP8 tensor parses), but decoding one
 * is a `FormatError`; pass `names` to read the others.
 */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, C64: 64,
};

const SUPPORTED: ReadonlySet<string> = new Set<SafetensorsDtype>(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'BOOL']);

/**
 * One decoded tensor. Floating dtypes F16/BF16 are widened to float32 on read (and narrowed,
 * rounding to nearest even, on write); I64 is narrowed to int32 and rejected when a value does
 * not fit; BOOL is bytes holding 0 or 1.
 */
export type SafetensorsTensor =
  | { readonly dtype: 'F32' | 'F16' | 'BF16'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'F64'; readonly shape: readonly number[]; readonly data: Float64Array }
  | { readonly dtype: 'I32' | 'I64'; readonly shape: readonly number[]; readonly data: Int32Array }
  | { readonly dtype: 'I16'; readonly shape: readonly number[]; readonly data: Int16Array }
  | { readonly dtype: 'I8'; readonly shape: readonly number[]; readonly data: Int8Array }
  | { readonly dtype: 'U8' | 'BOOL'; readonly shape: readonly number[]; readonly data: Uint8Array }
  | { readonly dtype: 'U16'; readonly shape: readonly number[]; readonly data: Uint16Array }
  | { readonly dtype: 'U32'; readonly shape: readonly number[]; readonly data: Uint32Array };

/** A parsed file: tensors in data-offset order, and the free-form `__metadata__` strings. */
export interface SafetensorsFile {
  readonly tensors: Map<string, SafetensorsTensor>;
  /** `__metadata__` (empty when absent). A null-prototype object, so keys like `__proto__` are plain data. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** One validated header entry (nothing decoded yet). */
export interface SafetensorsHeaderEntry {
  readonly name: string;
  /** The dtype string as written; may be a format dtype this module does not decode (e.g. `F8_E4M3`). */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** `[begin, end)` byte offsets relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
}

/** A validated header: where the data starts and what each tensor claims (checked against the file). */
export interface SafetensorsHeader {
  /** `N`, the JSON header length in bytes. */
  readonly headerBytes: number;
  /** Byte offset of the data section in the file (`8 + N`). */
  readonly dataStart: number;
  /** Entries sorted by data offset. */
  readonly entries: readonly SafetensorsHeaderEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** Options of {@link parseSafetensorsHeader}. */
export interface ParseSafetensorsHeaderOptions {
  /** Largest header accepted, in bytes. Default {@link SAFETENSORS_MAX_HEADER_BYTES}. */
  readonly maxHeaderBytes?: number;
  /**
   * Total size of the file when `bytes` holds only its beginning (header-only reads of large
   * files). Default `bytes.length`.
   */
  readonly fileBytes?: number;
}

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions extends Omit<ParseSafetensorsHeaderOptions, 'fileBytes'> {
  /**
   * Decode only these tensors (every entry is still validated). Lets a caller read the tensors
   * it needs from a file that also holds dtypes this module cannot decode. A missing name is a
   * `FormatError`.
   */
  readonly names?: readonly string[];
  /**
   * Always copy tensor data. By default F32/F64/I32/I16/U16/U32/U8/I8/BOOL tensors whose offset is
   * aligned for their element type are zero-copy views into `bytes` (they alias it: mutating
   * one mutates the other); misaligned ones are copied.
   */
  readonly copy?: boolean;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Header length and header JSON
// ---------------------------------------------------------------------------------------------

/**
 * Reads and bounds the 8-byte header length `N` from the first bytes of a file of `fileBytes`
 * bytes. Used by the in-memory reader and by file readers before they read the header, so a
 * lying length never causes a large read or allocation.
 */
export function readSafetensorsHeaderLength(first8: Uint8Array, fileBytes: number, maxHeaderBytes = SAFETENSORS_MAX_HEADER_BYTES): number {
  if (fileBytes < 8 || first8.length < 8) {
    throw new FormatError(`safetensors: file is ${Math.min(fileBytes, first8.length)} bytes, expected at least 8 (the header length)`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  // high * 2^32 + low, reported exactly even past 2^53 (BigInt only for the message).
  const declared = high === 0 ? String(low) : ((BigInt(high) << 32n) | BigInt(low)).toString();
  if (high !== 0 || low > maxHeaderBytes) {
    throw new FormatError(`safetensors: header length ${declared} bytes exceeds the limit of ${maxHeaderBytes} bytes`);
  }
  if (low > fileBytes - 8) {
    throw new FormatError(`safetensors: header length ${low} bytes runs past the end of the file (${fileBytes} bytes, at most ${fileBytes - 8} after the length)`);
  }
  if (low < 2) throw new FormatError(`safetensors: header length ${low} bytes is too short for a JSON object`);
  return low;
}

/**
 * Parses and validates the header of a safetensors file: see the module comment for every check.
 * `bytes` may be the whole file or just its first `8 + N` bytes (then pass `fileBytes`).
 */
export function parseSafetensorsHeader(bytes: Uint8Array, options: ParseSafetensorsHeaderOptions = {}): SafetensorsHeader {
  const fileBytes = options.fileBytes ?? bytes.length;
  const n = readSafetensorsHeaderLength(bytes, fileBytes, options.maxHeaderBytes);
  if (bytes.length < 8 + n) throw new FormatError(`safetensors: header needs bytes [8, ${8 + n}), only ${bytes.length} given`);
  const dataBytes = fileBytes - 8 - n;
  const entries: SafetensorsHeaderEntry[] = [];
  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  // Each top-level member is validated as soon as it is parsed, so only the compact entries
  // stay alive (not a JSON tree of the whole header): memory stays a small multiple of N.
  parseHeaderJson(bytes.subarray(8, 8 + n), (name, value) => {
    if (name === '__metadata__') metadata = parseMetadata(value);
    else entries.push(parseEntry(name, value, dataBytes));
  });
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let end = 0;
  let previous: SafetensorsHeaderEntry | undefined;
  for (const e of entries) {
    const [begin, stop] = e.dataOffsets;
    if (begin < end) {
      throw new FormatError(`safetensors: tensors '${previous!.name}' ${formatShape(previous!.dataOffsets)} and '${e.name}' ${formatShape(e.dataOffsets)} overlap`);
    }
    if (begin > end) {
      throw new FormatError(
        previous
          ? `safetensors: ${begin - end} unindexed bytes between tensors '${previous.name}' (ends at ${end}) and '${e.name}' (begins at ${begin}); the data section must have no holes`
          : `safetensors: ${begin} unindexed bytes before the first tensor '${e.name}' (begins at ${begin}); the data section must have no holes`,
      );
    }
    end = stop;
    previous = e;
  }
  if (end !== dataBytes) {
    throw new FormatError(`safetensors: ${dataBytes - end} trailing bytes after the last tensor (tensors cover ${end} of ${dataBytes} data bytes)`);
  }
  return { headerBytes: n, dataStart: 8 + n, entries, metadata };
}

function parseMetadata(value: JsonValue): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (value === null) return out; // the reference's Option<HashMap> accepts null
  if (!(value instanceof Map)) throw new FormatError(`safetensors: __metadata__ must be an object of strings, got ${describeJson(value)}`);
  for (const [key, v] of value) {
    if (typeof v !== 'string') throw new FormatError(`safetensors: __metadata__ '${key}' must be a string, got ${describeJson(v)}`);
    out[key] = v;
  }
  return out;
}

function parseEntry(name: string, value: JsonValue, dataBytes: number): SafetensorsHeaderEntry {
  if (!(value instanceof Map)) throw new FormatError(`safetensors: tensor '${name}' must be an object {dtype, shape, data_offsets}, got ${describeJson(value)}`);
  for (const key of value.keys()) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw new FormatError(`safetensors: tensor '${name}' has unknown key '${key}'; expected only dtype, shape, data_offsets`);
    }
  }
  const dtype = value.get('dtype');
  if (typeof dtype !== 'string') throw new FormatError(`safetensors: tensor '${name}' needs a string dtype, got ${describeJson(dtype)}`);
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined) throw new FormatError(`safetensors: tensor '${name}' has unknown dtype '${dtype}'; known: ${Object.keys(DTYPE_BITS).join(', ')}`);
  const shapeJson = value.get('shape');
  if (!Array.isArray(shapeJson)) throw new FormatError(`safetensors: tensor '${name}' needs a shape array, got ${describeJson(shapeJson)}`);
  const shape = shapeJson.map((d, i) => safeInteger(d, `tensor '${name}' shape[${i}]`));
  const offsetsJson = value.get('data_offsets');
  if (!Array.isArray(offsetsJson) || offsetsJson.length !== 2) {
    throw new FormatError(`safetensors: tensor '${name}' needs data_offsets [begin, end], got ${describeJson(offsetsJson)}`);
  }
  const begin = safeInteger(offsetsJson[0]!, `tensor '${name}' data_offsets[0]`);
  const end = safeInteger(offsetsJson[1]!, `tensor '${name}' data_offsets[1]`);
  if (end < begin) throw new FormatError(`safetensors: tensor '${name}' data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) throw new FormatError(`safetensors: tensor '${name}' data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes)`);
  let elements = 1;
  for (const d of shape) {
    if (d !== 0 && elements > Number.MAX_SAFE_INTEGER / d) {
      throw new FormatError(`safetensors: tensor '${name}' shape ${formatShape(shape)} has too many elements (overflows 2^53)`);
    }
    elements *= d;
  }
  if (elements > Number.MAX_SAFE_INTEGER / bits) throw new FormatError(`safetensors: tensor '${name}' shape ${formatShape(shape)} × ${dtype} overflows 2^53 bits`);
  const totalBits = elements * bits;
  if (totalBits % 8 !== 0) throw new FormatError(`safetensors: tensor '${name}' shape ${formatShape(shape)} × ${dtype} (${bits} bits) is not a whole number of bytes`);
  if (end - begin !== totalBits / 8) {
    throw new FormatError(`safetensors: tensor '${name}' shape ${formatShape(shape)} × ${dtype} needs ${totalBits / 8} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype, shape, dataOffsets: [begin, end] };
}

function safeInteger(value: JsonValue, what: string): number {
  if (!(value instanceof JsonNumber)) throw new FormatError(`safetensors: ${what} must be an integer, got ${describeJson(value)}`);
  const text = value.text;
  if (text.startsWith('-')) throw new FormatError(`safetensors: ${what} must be non-negative, got ${text}`);
  if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new FormatError(`safetensors: ${what} must be an integer, got ${text}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new FormatError(`safetensors: ${what} is ${text}, above the largest supported ${Number.MAX_SAFE_INTEGER}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/**
 * Parses a safetensors file held in memory. Validates the whole header first (see the module
 * comment), then decodes each tensor: zero-copy views where alignment allows, copies otherwise.
 * Every malformed input gives a {@link FormatError}; memory use is bounded by `bytes.length`.
 */
export function readSafetensors(bytes: Uint8Array, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new FormatError(`safetensors: expected the file as a Uint8Array, got ${describeValue(bytes)}`);
  const header = parseSafetensorsHeader(bytes, { maxHeaderBytes: options.maxHeaderBytes });
  let wanted: ReadonlySet<string> | undefined;
  if (options.names) {
    wanted = new Set(options.names);
    const present = new Set(header.entries.map((e) => e.name));
    for (const name of wanted) {
      if (!present.has(name)) throw new FormatError(`safetensors: no tensor named '${name}'; the file holds ${listNames(present)}`);
    }
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const entry of header.entries) {
    if (wanted && !wanted.has(entry.name)) continue;
    tensors.set(entry.name, decodeEntry(bytes, header.dataStart, entry, options.copy ?? false));
  }
  return { tensors, metadata: header.metadata };
}

type ViewConstructor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsTensor['data']; readonly BYTES_PER_ELEMENT: number };

/** Dtypes whose bytes are read as they are (a view or a copy), without conversion. */
const PLAIN_VIEWS: Readonly<Record<string, ViewConstructor>> = {
  F32: Float32Array, F64: Float64Array, I32: Int32Array, I16: Int16Array, U16: Uint16Array, U32: Uint32Array, I8: Int8Array, U8: Uint8Array,
};

function decodeEntry(bytes: Uint8Array, dataStart: number, entry: SafetensorsHeaderEntry, copy: boolean): SafetensorsTensor {
  const { name, dtype, shape } = entry;
  if (!SUPPORTED.has(dtype)) {
    throw new FormatError(`safetensors: tensor '${name}' has dtype ${dtype}, which this reader does not decode (supported: ${[...SUPPORTED].join(', ')}); pass options.names to skip it`);
  }
  const start = bytes.byteOffset + dataStart + entry.dataOffsets[0];
  const byteLength = entry.dataOffsets[1] - entry.dataOffsets[0];
  const elements = sizeOf(shape);
  /** A typed view of the raw bytes: zero-copy when aligned (and allowed), a copy otherwise. */
  const raw = <T>(ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number }, forceCopy = copy): T => {
    const size = ctor.BYTES_PER_ELEMENT;
    if (!forceCopy && LITTLE_ENDIAN_HOST && start % size === 0) return new ctor(bytes.buffer, start, byteLength / size);
    const owned = bytes.slice(start - bytes.byteOffset, start - bytes.byteOffset + byteLength);
    if (!LITTLE_ENDIAN_HOST) swapBytes(owned, size);
    return new ctor(owned.buffer, 0, byteLength / size);
  };
  const plain = PLAIN_VIEWS[dtype];
  if (plain) return { dtype, shape, data: raw(plain) } as SafetensorsTensor;
  // The dtypes that need converting or checking; SUPPORTED minus PLAIN_VIEWS.
  switch (dtype as 'BOOL' | 'F16' | 'BF16' | 'I64') {
    case 'BOOL': {
      const data = raw(Uint8Array);
      for (let i = 0; i < data.length; i++) {
        if (data[i]! > 1) throw new FormatError(`safetensors: tensor '${name}' (BOOL) holds byte ${data[i]} at element ${i}; booleans must be 0 or 1`);
      }
      return { dtype: 'BOOL', shape, data };
    }
    case 'F16': {
      const half = raw(Uint16Array, false);
      const table = halfTable();
      const data = new Float32Array(elements);
      for (let i = 0; i < elements; i++) data[i] = table[half[i]!]!;
      return { dtype: 'F16', shape, data };
    }
    case 'BF16': {
      const half = raw(Uint16Array, false);
      const data = new Float32Array(elements);
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < elements; i++) bits[i] = half[i]! << 16;
      return { dtype: 'BF16', shape, data };
    }
    case 'I64': {
      const words = raw(Int32Array, false);
      const data = new Int32Array(elements);
      for (let i = 0; i < elements; i++) {
        const low = words[2 * i]!;
        const high = words[2 * i + 1]!;
        // In int32 range iff the high word is the sign extension of the low word.
        if (high !== low >> 31) {
          const value = (BigInt(high) << 32n) | BigInt(low >>> 0);
          throw new FormatError(`safetensors: tensor '${name}' (I64) holds ${value} at element ${i}, outside the int32 range this reader converts to`);
        }
        data[i] = low;
      }
      return { dtype: 'I64', shape, data };
    }
  }
}

let halfToFloat: Float32Array | undefined;

/** float16 → float32 lookup table (256 KiB, built on first use). */
function halfTable(): Float32Array {
  if (halfToFloat) return halfToFloat;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) table[h] = sign * fraction * 2 ** -24;
    else if (exponent === 31) table[h] = fraction ? Number.NaN : sign * Infinity;
    else table[h] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  halfToFloat = table;
  return table;
}

function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Typed access helpers
// ---------------------------------------------------------------------------------------------

function lookup(file: SafetensorsFile, name: string): SafetensorsTensor {
  const found = file.tensors.get(name);
  if (!found) throw new FormatError(`safetensors: no tensor named '${name}'; the file holds ${listNames(file.tensors.keys())}`);
  return found;
}

function checkExpectedShape(name: string, shape: readonly number[], expected: readonly number[] | undefined): void {
  if (!expected) return;
  if (expected.length !== shape.length || expected.some((d, i) => d !== -1 && d !== shape[i])) {
    throw new ShapeError(`tensor '${name}': expected shape ${formatShape(expected)}${expected.includes(-1) ? ' (-1 = any)' : ''}, got ${formatShape(shape)}`);
  }
}

/**
 * The float tensor `name` as a core {@link Tensor} (float32). F32 data is returned as is (a view
 * when the read was zero-copy); F16/BF16 were widened on read; F64 is narrowed to float32, and a
 * finite value that overflows float32 is a `NumericError`. `expectedShape` entries of `-1` match
 * any size. Integer dtypes are a `FormatError` (use {@link getInt32Tensor}).
 */
export function getTensor(file: SafetensorsFile, name: string, expectedShape?: readonly number[]): Tensor {
  const t = lookup(file, name);
  checkExpectedShape(name, t.shape, expectedShape);
  if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') return { data: t.data, shape: [...t.shape] };
  if (t.dtype === 'F64') {
    const data = Float32Array.from(t.data);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!) && Number.isFinite(t.data[i]!)) {
        throw new NumericError(`tensor '${name}': F64 value ${t.data[i]} at element ${i} overflows float32`);
      }
    }
    return { data, shape: [...t.shape] };
  }
  throw new FormatError(`tensor '${name}': expected a float dtype (F32, F16, BF16, F64), got ${t.dtype}`);
}

/**
 * The integer tensor `name` as int32 data with its shape (for index tensors: selections, token
 * ids, golden fixtures). I32/I64 (range-checked on read), I16, U16, I8, U8 and BOOL convert
 * exactly; U32 values above 2^31 − 1 and float dtypes are a `FormatError`.
 */
export function getInt32Tensor(file: SafetensorsFile, name: string, expectedShape?: readonly number[]): { readonly shape: readonly number[]; readonly data: Int32Array } {
  const t = lookup(file, name);
  checkExpectedShape(name, t.shape, expectedShape);
  switch (t.dtype) {
    case 'I32':
    case 'I64':
      return { shape: [...t.shape], data: t.data };
    case 'U32': {
      const index = t.data.findIndex((x) => x > 0x7fffffff);
      if (index >= 0) throw new FormatError(`tensor '${name}': U32 value ${t.data[index]} at element ${index} does not fit int32`);
      return { shape: [...t.shape], data: Int32Array.from(t.data) };
    }
    case 'I16':
    case 'U16':
    case 'I8':
    case 'U8':
    case 'BOOL':
      return { shape: [...t.shape], data: Int32Array.from(t.data) };
    default:
      throw new FormatError(`tensor '${name}': expected an integer dtype, got ${t.dtype}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** What {@link writeSafetensors} accepts per name: a core float32 `Tensor` (written as F32) or a typed tensor. */
export type SafetensorsInput = Tensor | SafetensorsTensor;

/**
 * Per dtype: the array type that carries it, its size in bytes, and its rank in the Rust
 * reference's `Dtype` enum (the writer sorts by descending rank then name, as the reference does,
 * so files match `safetensors.torch.save_file` byte for byte and every tensor is aligned).
 */
const ARRAY_OF: Readonly<Record<SafetensorsDtype, { readonly ctor: Function; readonly bytes: number; readonly rank: number }>> = {
  BOOL: { ctor: Uint8Array, bytes: 1, rank: 0 },
  U8: { ctor: Uint8Array, bytes: 1, rank: 1 },
  I8: { ctor: Int8Array, bytes: 1, rank: 2 },
  I16: { ctor: Int16Array, bytes: 2, rank: 5 },
  U16: { ctor: Uint16Array, bytes: 2, rank: 6 },
  F16: { ctor: Float32Array, bytes: 2, rank: 7 },
  BF16: { ctor: Float32Array, bytes: 2, rank: 8 },
  I32: { ctor: Int32Array, bytes: 4, rank: 9 },
  U32: { ctor: Uint32Array, bytes: 4, rank: 10 },
  F32: { ctor: Float32Array, bytes: 4, rank: 11 },
  F64: { ctor: Float64Array, bytes: 8, rank: 12 },
  I64: { ctor: Int32Array, bytes: 8, rank: 13 },
};

interface Planned {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number> & { readonly buffer: ArrayBufferLike; readonly byteOffset: number; readonly byteLength: number };
  readonly bytes: number;
}

/**
 * Serialises tensors (and optional `__metadata__` strings) to safetensors bytes, laid out as the
 * Rust reference does: tensors sorted by dtype (descending, so by non-increasing element size) then name, header padded with
 * spaces to a multiple of 8, so every tensor is aligned for zero-copy reads. A rank-4 `Tensor`
 * with a padded `seqCapacity` (a KV-cache view) is compacted first.
 */
export function writeSafetensors(
  tensors: Readonly<Record<string, SafetensorsInput>> | ReadonlyMap<string, SafetensorsInput>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const items = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const planned = items.map(([name, t]) => planTensor(name, t));
  planned.sort((a, b) => ARRAY_OF[b.dtype].rank - ARRAY_OF[a.dtype].rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new FormatError(`safetensors: metadata '${key}' must be a string, got ${describeValue(value)}`);
    }
    parts.push(`${JSON.stringify('__metadata__')}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const p of planned) {
    parts.push(`${JSON.stringify(p.name)}:${JSON.stringify({ dtype: p.dtype, shape: p.shape, data_offsets: [offset, offset + p.bytes] })}`);
    offset += p.bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const p of planned) {
    encodeInto(out, at, p);
    if (!LITTLE_ENDIAN_HOST) swapBytes(out.subarray(at, at + p.bytes), p.dtype === 'I64' ? 8 : ARRAY_OF[p.dtype].bytes);
    at += p.bytes;
  }
  return out;
}

function planTensor(name: string, t: SafetensorsInput): Planned {
  if (name === '__metadata__') throw new FormatError(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
  if (!t || typeof t !== 'object' || !Array.isArray(t.shape)) throw new FormatError(`safetensors: tensor '${name}' must be { shape, data }, got ${describeValue(t)}`);
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`tensor '${name}': every dimension must be a non-negative integer, got ${formatShape(t.shape)}`);
  }
  const elements = sizeOf(t.shape);
  const dtype: SafetensorsDtype = 'dtype' in t ? t.dtype : 'F32';
  const spec = ARRAY_OF[dtype];
  if (!spec) throw new FormatError(`safetensors: tensor '${name}' has unsupported dtype '${String(dtype)}'; supported: ${Object.keys(ARRAY_OF).join(', ')}`);
  if (!(t.data instanceof spec.ctor)) {
    throw new FormatError(`safetensors: tensor '${name}' with dtype ${dtype} needs its data as a ${spec.ctor.name}, got ${describeValue(t.data)}`);
  }
  let data = t.data as Planned['data'];
  if (!('dtype' in t) && t.seqCapacity !== undefined && t.seqCapacity !== t.shape[2]) data = sliceSeq(t, 0, t.shape[2]!).data;
  if (data.length < elements || ('dtype' in t && data.length !== elements)) {
    throw new ShapeError(`tensor '${name}': shape ${formatShape(t.shape)} needs ${elements} elements, data has ${data.length}`);
  }
  if (dtype === 'BOOL') {
    for (let i = 0; i < elements; i++) {
      if (data[i]! > 1) throw new FormatError(`safetensors: tensor '${name}' (BOOL) holds ${data[i]} at element ${i}; booleans must be 0 or 1`);
    }
  }
  return { name, dtype, shape: [...t.shape], data, bytes: elements * spec.bytes };
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → float16 bits, rounding to nearest even; overflow → ±Infinity; NaN stays NaN. */
function floatToHalf(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to Infinity: exactly IEEE rounding.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** float32 → bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN. */
function floatToBfloat16(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function encodeInto(out: Uint8Array, at: number, p: Planned): void {
  const n = p.bytes / ARRAY_OF[p.dtype].bytes;
  switch (p.dtype) {
    case 'F16':
    case 'BF16': {
      const target = new Uint16Array(out.buffer, at, n);
      const convert = p.dtype === 'F16' ? floatToHalf : floatToBfloat16;
      for (let i = 0; i < n; i++) target[i] = convert(p.data[i]!);
      return;
    }
    case 'I64': {
      const target = new Int32Array(out.buffer, at, 2 * n);
      for (let i = 0; i < n; i++) {
        const x = p.data[i]!;
        target[2 * i] = x;
        target[2 * i + 1] = x < 0 ? -1 : 0;
      }
      return;
    }
    default:
      out.set(new Uint8Array(p.data.buffer, p.data.byteOffset, p.bytes), at);
  }
}

// ---------------------------------------------------------------------------------------------
// A strict, bounded JSON parser for the header
// ---------------------------------------------------------------------------------------------

/** A JSON number kept as its source text, so integers past 2^53 are reported exactly. */
class JsonNumber {
  constructor(readonly text: string) {}
}

/** Objects parse to `Map`s: no prototype keys, duplicate keys detected, insertion order kept. */
type JsonValue = string | JsonNumber | boolean | null | JsonValue[] | Map<string, JsonValue>;

const MAX_DEPTH = 64;

function parseHeaderJson(headerBytes: Uint8Array, visit: (key: string, value: JsonValue) => void): void {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new FormatError('safetensors: header is not valid UTF-8');
  }
  if (text.charCodeAt(0) !== 0x7b) throw new FormatError(`safetensors: header must start with '{', starts with ${JSON.stringify(text.slice(0, 16))}`);
  new JsonParser(text).parseRootObject(visit);
}

class JsonParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  /** Parses the whole text as one object, handing each member to `visit` as soon as it is parsed. */
  parseRootObject(visit: (key: string, value: JsonValue) => void): void {
    const seen = new Set<string>();
    this.members(0, (key) => seen.has(key), (key, value) => {
      seen.add(key);
      visit(key, value);
    });
    this.whitespace();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
  }

  private fail(what: string): never {
    throw new FormatError(`safetensors: header is not valid JSON: ${what} at character ${this.pos}`);
  }

  private whitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  private value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    this.whitespace();
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T extends JsonValue>(word: string, result: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`invalid literal`);
    this.pos += word.length;
    return result;
  }

  private object(depth: number): Map<string, JsonValue> {
    const out = new Map<string, JsonValue>();
    this.members(depth, (key) => out.has(key), (key, value) => out.set(key, value));
    return out;
  }

  /** The members of the object starting at `pos` (`{`), rejecting a key for which `has` is true. */
  private members(depth: number, has: (key: string) => boolean, visit: (key: string, value: JsonValue) => void): void {
    this.pos++; // {
    this.whitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.whitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      if (has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`);
      this.whitespace();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after key ${JSON.stringify(key)}`);
      this.pos++;
      visit(key, this.value(depth + 1));
      this.whitespace();
      const c = this.text[this.pos++];
      if (c === '}') return;
      if (c !== ',') this.fail("expected ',' or '}' in object");
    }
  }

  private array(depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.pos++; // [
    this.whitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.whitespace();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail("expected ',' or ']' in array");
    }
  }

  private number(): JsonNumber {
    const match = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.text);
    if (!m) this.fail('invalid number');
    this.pos += m[0].length;
    return new JsonNumber(m[0]);
  }

  private string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = '';
    let runStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(runStart, this.pos);
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const unit = this.hex4();
          if (unit >= 0xd800 && unit <= 0xdbff) {
            if (t[this.pos] !== '\\' || t[this.pos + 1] !== 'u') this.fail('lone surrogate in string');
            this.pos += 2;
            const low = this.hex4();
            if (low < 0xdc00 || low > 0xdfff) this.fail('lone surrogate in string');
            out += String.fromCharCode(unit, low);
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            this.fail('lone surrogate in string');
          } else {
            out += String.fromCharCode(unit);
          }
          break;
        }
        default:
          this.pos -= 2;
          this.fail('invalid escape in string');
      }
      runStart = this.pos;
    }
  }

  private hex4(): number {
    const digits = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail('invalid \\u escape');
    this.pos += 4;
    return Number.parseInt(digits, 16);
  }
}

function describeJson(value: JsonValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (value instanceof Map) return 'an object';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof JsonNumber) return `the number ${value.text}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return String(value);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}

function listNames(names: Iterable<string>): string {
  const all = [...names];
  if (all.length === 0) return 'no tensors';
  const shown = all.slice(0, 20).map((n) => `'${n}'`).join(', ');
  return all.length > 20 ? `${shown} and ${all.length - 20} more` : shown;
}
