import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, NumericError, ShapeError } from './errors.js';
import { KVCache } from './kv-cache.js';
import { readSafetensorsFile, readSafetensorsFileHeader, readSafetensorsFileSync, writeSafetensorsFile, writeSafetensorsFileSync } from './node.js';
import {
  getInt32Tensor,
  getTensor,
  parseSafetensorsHeader,
  readSafetensors,
  writeSafetensors,
  type SafetensorsInput,
  type SafetensorsTensor,
} from './safetensors.js';
import { tensor } from './tensor.js';

const fixture = new URL('./__fixtures__/pytorch-save-file.safetensors', import.meta.url);

/** A file from a header string and a data section (or its length, zero-filled). */
function file(header: string, data: Uint8Array | number = 0): Uint8Array {
  const json = new TextEncoder().encode(header);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** A file whose first 8 bytes declare `length` (as a bigint) regardless of what follows. */
function withHeaderLength(length: bigint, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + rest.length);
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(rest, 8);
  return out;
}

function expectFormatError(bytes: Uint8Array, message: RegExp): void {
  let thrown: unknown;
  try {
    readSafetensors(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a FormatError').toBeInstanceOf(FormatError);
  expect((thrown as Error).message).toMatch(message);
}

const everyDtype: Record<string, SafetensorsTensor> = {
  f64: { dtype: 'F64', shape: [2, 2], data: Float64Array.from([Math.PI, -1e300, 5e-324, 0]) },
  f32: { dtype: 'F32', shape: [3], data: Float32Array.from([1.5, -2.25, 3e38]) },
  f16: { dtype: 'F16', shape: [5], data: Float32Array.from([1, -0.5, 65504, 2 ** -24, -0]) },
  bf16: { dtype: 'BF16', shape: [1, 4], data: Float32Array.from([1, -3.5, 2 ** 100, 0.0078125]) },
  i64: { dtype: 'I64', shape: [4], data: Int32Array.from([0, -1, 2147483647, -2147483648]) },
  i32: { dtype: 'I32', shape: [2, 1], data: Int32Array.from([-7, 2147483647]) },
  i16: { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) },
  i8: { dtype: 'I8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
  u8: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) },
  u16: { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
  u32: { dtype: 'U32', shape: [2], data: Uint32Array.from([4294967295, 1]) },
  bool: { dtype: 'BOOL', shape: [2, 2], data: Uint8Array.from([1, 0, 0, 1]) },
  scalar: { dtype: 'F32', shape: [], data: Float32Array.from([42]) },
  empty: { dtype: 'I32', shape: [3, 0], data: new Int32Array(0) },
};

describe('safetensors round trip', () => {
  it('every dtype reads back with its dtype, shape and values', () => {
    const bytes = writeSafetensors(everyDtype, { note: 'round trip', __proto__: 'plain data' } as Record<string, string>);
    const read = readSafetensors(bytes);
    expect([...read.tensors.keys()].sort()).toEqual(Object.keys(everyDtype).sort());
    for (const [name, t] of Object.entries(everyDtype)) {
      const back = read.tensors.get(name)!;
      expect(back.dtype, name).toBe(t.dtype);
      expect(back.shape, name).toEqual(t.shape);
      expect(back.data.constructor, name).toBe(t.data.constructor);
      expect([...back.data], name).toEqual([...t.data]);
    }
    expect(read.metadata['note']).toBe('round trip');
    expect(Object.getPrototypeOf(read.metadata)).toBeNull();
  });

  it('writes the reference layout: 8-aligned header, tensors sorted by dtype then name, aligned data', () => {
    const bytes = writeSafetensors(everyDtype);
    const header = parseSafetensorsHeader(bytes);
    expect(header.dataStart % 8).toBe(0);
    expect(header.entries.map((e) => e.name)).toEqual(['i64', 'f64', 'f32', 'scalar', 'u32', 'empty', 'i32', 'bf16', 'f16', 'u16', 'i16', 'i8', 'u8', 'bool']);
    for (const e of header.entries) {
      const size = { F64: 8, I64: 8, F32: 4, U32: 4, I32: 4 }[e.dtype] ?? 1;
      expect((header.dataStart + e.dataOffsets[0]) % size, e.name).toBe(0);
    }
  });

  it('F32 reads are zero-copy views when aligned, copies when misaligned or asked to copy', () => {
    const bytes = writeSafetensors({ x: tensor([2, 3], [1, 2, 3, 4, 5, 6]) });
    const aligned = readSafetensors(bytes).tensors.get('x')!;
    expect(aligned.data.buffer).toBe(bytes.buffer);
    const copied = readSafetensors(bytes, { copy: true }).tensors.get('x')!;
    expect(copied.data.buffer).not.toBe(bytes.buffer);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const misaligned = readSafetensors(shifted.subarray(1)).tensors.get('x')!;
    expect(misaligned.data.buffer).not.toBe(shifted.buffer);
    for (const t of [aligned, copied, misaligned]) expect([...t.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('every float16 value survives write → read bit for bit (all 65 536 patterns)', () => {
    const patterns = new Uint16Array(65536).map((_, i) => i);
    const raw = file(`{"h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}}`, new Uint8Array(patterns.buffer));
    const decoded = readSafetensors(raw).tensors.get('h')!.data as Float32Array;
    const again = readSafetensors(writeSafetensors({ h: { dtype: 'F16', shape: [65536], data: decoded } })).tensors.get('h')!.data as Float32Array;
    const mismatches: string[] = [];
    for (let i = 0; i < 65536; i++) {
      const same = Number.isNaN(decoded[i]!) ? Number.isNaN(again[i]!) : Object.is(again[i], decoded[i]);
      if (!same) mismatches.push(i.toString(16));
    }
    expect(mismatches).toEqual([]);
    expect(decoded[0x3c00]).toBe(1);
    expect(decoded[0x7c00]).toBe(Infinity);
    expect(decoded[0x0001]).toBe(2 ** -24);
  });

  it('narrowing to F16/BF16 rounds to nearest even and saturates to Infinity', () => {
    const f16 = Float32Array.from([65519, 65520, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -26, -1e6, Number.NaN]);
    const bf16 = Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, Number.NaN, -0]);
    const read = readSafetensors(writeSafetensors({ a: { dtype: 'F16', shape: [8], data: f16 }, b: { dtype: 'BF16', shape: [5], data: bf16 } }));
    expect([...read.tensors.get('a')!.data]).toEqual([65504, Infinity, 1, 1 + 2 ** -9, 0, 2 ** -24, -Infinity, Number.NaN]);
    expect([...read.tensors.get('b')!.data]).toEqual([1, 1 + 2 ** -6, Infinity, Number.NaN, -0]);
  });

  it('compacts a padded KV-cache view before writing', () => {
    const cache = new KVCache({ batch: 1, kvHeads: 2, headDim: 2, valueDim: 2, initialCapacity: 8 });
    cache.append(tensor([1, 2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), tensor([1, 2, 3, 2]));
    const back = getTensor(readSafetensors(writeSafetensors({ k: cache.keys() })), 'k', [1, 2, 3, 2]);
    expect([...back.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });
});

describe('safetensors file written by PyTorch (safetensors.torch.save_file layout)', () => {
  const bytes = new Uint8Array(readFileSync(fixture));

  it('reads every tensor and the metadata', () => {
    const read = readSafetensors(bytes);
    expect(read.metadata).toEqual(Object.assign(Object.create(null), { format: 'pt' }));
    expect([...read.tensors.keys()]).toEqual(['ids', 'scalar', 'bias', 'empty', 'norm.weight', 'embed.weight', 'mask']);
    const t = (name: string) => read.tensors.get(name)!;
    expect(t('ids')).toMatchObject({ dtype: 'I64', shape: [2, 2] });
    expect([...t('ids').data]).toEqual([0, 1, -2, 2147483647]);
    expect(t('scalar')).toMatchObject({ dtype: 'F64', shape: [] });
    expect([...t('scalar').data]).toEqual([Math.PI]);
    expect([...t('bias').data]).toEqual([0.5, -1.25, 3]);
    expect(t('empty').shape).toEqual([0, 4]);
    expect(t('empty').data.length).toBe(0);
    expect([...t('norm.weight').data]).toEqual([1, -3.5, 256, 0.0078125]);
    expect([...t('embed.weight').data]).toEqual([1, -2, 0.5, 65504, 2 ** -24, -0]);
    expect(Object.is(t('embed.weight').data[5], -0)).toBe(true);
    expect([...t('mask').data]).toEqual([1, 0, 1]);
  });

  it('writing the same tensors reproduces the file byte for byte', () => {
    const read = readSafetensors(bytes);
    const again = writeSafetensors(read.tensors as Map<string, SafetensorsInput>, { format: 'pt' });
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });

  it('typed helpers return core tensors and int32 data with checked shapes', () => {
    const read = readSafetensors(bytes);
    const embed = getTensor(read, 'embed.weight', [2, 3]);
    expect(embed.shape).toEqual([2, 3]);
    expect(embed.data).toBeInstanceOf(Float32Array);
    expect(getTensor(read, 'embed.weight', [-1, 3]).shape).toEqual([2, 3]);
    expect([...getTensor(read, 'scalar', []).data]).toEqual([Math.fround(Math.PI)]);
    expect([...getInt32Tensor(read, 'ids', [2, 2]).data]).toEqual([0, 1, -2, 2147483647]);
    expect([...getInt32Tensor(read, 'mask').data]).toEqual([1, 0, 1]);
    expect(() => getTensor(read, 'embed.weight', [3, 2])).toThrow(ShapeError);
    expect(() => getTensor(read, 'embed.weight', [3, 2])).toThrow(/tensor 'embed\.weight': expected shape \[3, 2\], got \[2, 3\]/);
    expect(() => getTensor(read, 'q')).toThrow(FormatError);
    expect(() => getTensor(read, 'q')).toThrow(/no tensor named 'q'; the file holds 'ids', 'scalar'/);
    expect(() => getTensor(read, 'ids')).toThrow(/tensor 'ids': expected a float dtype .* got I64/);
    expect(() => getInt32Tensor(read, 'bias')).toThrow(/tensor 'bias': expected an integer dtype, got F32/);
  });
});

describe('safetensors typed helpers', () => {
  it('rejects F64 values that overflow float32 and U32 values that overflow int32', () => {
    const read = readSafetensors(writeSafetensors({
      big: { dtype: 'F64', shape: [2], data: Float64Array.from([1, 1e300]) },
      u: { dtype: 'U32', shape: [1], data: Uint32Array.from([2 ** 31]) },
    }));
    expect(() => getTensor(read, 'big')).toThrow(NumericError);
    expect(() => getTensor(read, 'big')).toThrow(/tensor 'big': F64 value 1e\+300 at element 1 overflows float32/);
    expect(() => getInt32Tensor(read, 'u')).toThrow(/tensor 'u': U32 value 2147483648 at element 0 does not fit int32/);
  });

  it('the writer rejects bad tensors with typed errors naming them', () => {
    expect(() => writeSafetensors({ __metadata__: tensor([1]) })).toThrow(/'__metadata__' is reserved/);
    expect(() => writeSafetensors({ w: { dtype: 'I32', shape: [2], data: Float32Array.from([1, 2]) } as never })).toThrow(/tensor 'w' with dtype I32 needs its data as a Int32Array, got Float32Array/);
    expect(() => writeSafetensors({ w: { dtype: 'I32', shape: [3], data: Int32Array.from([1, 2]) } })).toThrow(ShapeError);
    expect(() => writeSafetensors({ w: { dtype: 'BOOL', shape: [1], data: Uint8Array.from([2]) } })).toThrow(/tensor 'w' \(BOOL\) holds 2/);
    expect(() => writeSafetensors({ w: { dtype: 'F8_E4M3', shape: [1], data: Uint8Array.from([2]) } as never })).toThrow(FormatError);
    expect(() => writeSafetensors({ w: tensor([1]) }, { n: 3 } as never)).toThrow(/metadata 'n' must be a string/);
  });
});

describe('malformed safetensors files give a FormatError', () => {
  const valid = writeSafetensors({ a: tensor([2, 2], [1, 2, 3, 4]), b: { dtype: 'I64', shape: [2], data: Int32Array.from([5, -6]) } }, { k: 'v' });
  const entry = (dtype: string, shape: string, offsets: string) => `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;

  it('every truncation of a valid file', () => {
    for (let length = 0; length < valid.length; length++) {
      expect(() => readSafetensors(valid.subarray(0, length)), `truncated to ${length}`).toThrow(FormatError);
    }
    expectFormatError(valid.subarray(0, 5), /file is 5 bytes, expected at least 8/);
    expectFormatError(valid.subarray(0, valid.length - 1), /tensor '(a|b)' data_offsets .* run past the end of the data section/);
  });

  it('header length larger than the file, absurd (2^60), or above the limit', () => {
    expectFormatError(withHeaderLength(1000n, new TextEncoder().encode('{}')), /header length 1000 bytes runs past the end of the file \(10 bytes/);
    expectFormatError(withHeaderLength(2n ** 60n, new Uint8Array(16)), /header length 1152921504606846976 bytes exceeds the limit of 100000000 bytes/);
    expectFormatError(withHeaderLength(2n ** 64n - 1n, new Uint8Array(16)), /header length 18446744073709551615 bytes exceeds the limit/);
    expect(() => readSafetensors(valid, { maxHeaderBytes: 16 })).toThrow(/exceeds the limit of 16 bytes/);
  });

  it('header that is not UTF-8, not JSON, or not an object', () => {
    const notUtf8 = file('{"a":"?"}');
    notUtf8[8 + 6] = 0xff; // the '?' becomes a byte that never occurs in UTF-8
    expectFormatError(notUtf8, /not valid UTF-8/);
    expectFormatError(file('{"a":'), /not valid JSON: unexpected end/);
    expectFormatError(file('{} x'), /not valid JSON: unexpected data after the JSON value/);
    expectFormatError(file('{"a":tru}'), /not valid JSON: invalid literal/);
    expectFormatError(file('{"a":"\u0001"}'), /control character/);
    expectFormatError(file('{"a":"\\ud800"}'), /lone surrogate/);
    expectFormatError(file('{"a":{"dtype":01}}'), /not valid JSON: expected ',' or '}' in object/);
    expectFormatError(file('[1, 2]'), /header must start with '\{'/);
    expectFormatError(file(' {}'), /header must start with '\{'/);
    expectFormatError(file(`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`), /nesting deeper than 64/);
  });

  it('bad entries: unknown dtype, bad shapes, bad offsets, unknown or missing keys', () => {
    expectFormatError(file(`{"a":${entry('F17', '[1]', '[0,4]')}}`, 4), /tensor 'a' has unknown dtype 'F17'/);
    expectFormatError(file(`{"a":${entry('F32', '[-1]', '[0,4]')}}`, 4), /tensor 'a' shape\[0\] must be non-negative, got -1/);
    expectFormatError(file(`{"a":${entry('F32', '[1.5]', '[0,4]')}}`, 4), /tensor 'a' shape\[0\] must be an integer, got 1.5/);
    expectFormatError(file(`{"a":${entry('F32', '[1e2]', '[0,400]')}}`, 400), /shape\[0\] must be an integer, got 1e2/);
    expectFormatError(file(`{"a":${entry('F32', '["2"]', '[0,8]')}}`, 8), /shape\[0\] must be an integer, got the string "2"/);
    expectFormatError(file(`{"a":${entry('F32', '[1152921504606846976]', '[0,4]')}}`, 4), /shape\[0\] is 1152921504606846976, above the largest supported/);
    expectFormatError(file(`{"a":${entry('F32', '[1073741824,1073741824,1073741824]', '[0,4]')}}`, 4), /shape \[1073741824, 1073741824, 1073741824\] has too many elements/);
    expectFormatError(file(`{"a":${entry('F32', '[16384,16384]', '[0,1073741824]')}}`, 4), /tensor 'a' data_offsets \[0, 1073741824\] run past the end of the data section \(4 bytes\)/);
    expectFormatError(file(`{"a":${entry('F32', '[3]', '[0,8]')}}`, 8), /tensor 'a' shape \[3\] × F32 needs 12 bytes, data_offsets \[0, 8\] span 8/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[4,0]')}}`, 4), /data_offsets \[4, 0\] end before they begin/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[0]')}}`, 4), /tensor 'a' needs data_offsets \[begin, end\], got an array of 1/);
    expectFormatError(file(`{"a":{"dtype":"F32","shape":[1]}}`, 4), /tensor 'a' needs data_offsets/);
    expectFormatError(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offsets":[0,4]}}`, 4), /tensor 'a' has unknown key 'offsets'/);
    expectFormatError(file(`{"a":[1]}`, 4), /tensor 'a' must be an object/);
    expectFormatError(file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), /tensor 'a' needs a string dtype, got nothing/);
  });

  it('overlapping, gapped or incomplete data sections; duplicate names; bad metadata', () => {
    expectFormatError(file(`{"a":${entry('F32', '[2]', '[0,8]')},"b":${entry('F32', '[2]', '[4,12]')}}`, 12), /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[0,4]')},"b":${entry('F32', '[1]', '[8,12]')}}`, 12), /4 unindexed bytes between tensors 'a' \(ends at 4\) and 'b' \(begins at 8\)/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[4,8]')}}`, 8), /4 unindexed bytes before the first tensor 'a'/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[0,4]')}}`, 12), /8 trailing bytes after the last tensor/);
    expectFormatError(file(`{"a":${entry('F32', '[1]', '[0,4]')},"a":${entry('F32', '[1]', '[4,8]')}}`, 8), /duplicate key "a"/);
    expectFormatError(file(`{"__metadata__":{"k":"v","k":"w"}}`), /duplicate key "k"/);
    expectFormatError(file(`{"__metadata__":{"k":1}}`), /__metadata__ 'k' must be a string, got the number 1/);
    expectFormatError(file(`{"__metadata__":["k"]}`), /__metadata__ must be an object of strings/);
  });

  it('values the decoder refuses: BOOL bytes, I64 outside int32, undecodable dtypes', () => {
    expectFormatError(file(`{"m":${entry('BOOL', '[2]', '[0,2]')}}`, Uint8Array.from([1, 7])), /tensor 'm' \(BOOL\) holds byte 7 at element 1/);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigInt64(0, 2n ** 40n, true);
    expectFormatError(file(`{"i":${entry('I64', '[1]', '[0,8]')}}`, big), /tensor 'i' \(I64\) holds 1099511627776 at element 0, outside the int32 range/);
    const fp8 = file(`{"a":${entry('F32', '[1]', '[0,4]')},"q":${entry('F8_E4M3', '[4]', '[4,8]')}}`, 8);
    expectFormatError(fp8, /tensor 'q' has dtype F8_E4M3, which this reader does not decode/);
    expect([...readSafetensors(fp8, { names: ['a'] }).tensors.keys()]).toEqual(['a']);
    expect(() => readSafetensors(fp8, { names: ['zz'] })).toThrow(/no tensor named 'zz'/);
  });

  it('declared sizes beyond the file are rejected before anything large is allocated', () => {
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 8; i++) {
      expectFormatError(file(`{"a":${entry('F32', '[16384,16384]', '[0,1073741824]')}}`, 16), /run past the end/);
      expectFormatError(file(`{"a":${entry('F64', '[8192,8192]', '[0,16]')}}`, 16), /needs 536870912 bytes/);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('fuzz: random byte mutations of a valid file parse or throw FormatError, never anything else', () => {
    const mutation = fc.record({
      edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
    });
    fc.assert(
      fc.property(mutation, ({ edits, cut }) => {
        const bytes = valid.slice();
        for (const { at, value } of edits) bytes[at % bytes.length] = value;
        const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
        try {
          const read = readSafetensors(input);
          for (const t of read.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        } catch (error) {
          if (!(error instanceof FormatError)) throw error;
        }
      }),
      { numRuns: 2000, seed: 20_261_123 },
    );
  });
});

describe('safetensors files (node entry)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const tensors = { w: tensor([2, 2], [1, 2, 3, 4]), ids: { dtype: 'I64', shape: [3], data: Int32Array.from([7, 8, -9]) } } as const;

  it('writes atomically and reads back (async and sync), header-only reads too', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensorsFile(path, tensors, { format: 'pt' });
    writeSafetensorsFileSync(join(dir, 'sync.safetensors'), tensors);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    for (const read of [await readSafetensorsFile(path), readSafetensorsFileSync(join(dir, 'sync.safetensors'))]) {
      expect([...getTensor(read, 'w', [2, 2]).data]).toEqual([1, 2, 3, 4]);
      expect([...getInt32Tensor(read, 'ids').data]).toEqual([7, 8, -9]);
    }
    const header = await readSafetensorsFileHeader(path);
    expect(header.metadata['format']).toBe('pt');
    expect(header.entries.map((e) => [e.name, e.dtype, e.shape])).toEqual([['ids', 'I64', [3]], ['w', 'F32', [2, 2]]]);
  });

  it('malformed files give a FormatError naming the path, checked before the body is read', async () => {
    const good = writeSafetensors(tensors);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, good.subarray(0, good.length - 3));
    await expect(readSafetensorsFile(truncated)).rejects.toThrow(FormatError);
    await expect(readSafetensorsFile(truncated)).rejects.toThrow(`${truncated}: safetensors: tensor`);
    expect(() => readSafetensorsFileSync(truncated)).toThrow(`${truncated}: safetensors: tensor`);
    const lying = join(dir, 'lying.safetensors');
    writeFileSync(lying, withHeaderLength(2n ** 60n, new Uint8Array(8)));
    await expect(readSafetensorsFile(lying)).rejects.toThrow(/lying\.safetensors: safetensors: header length 1152921504606846976 bytes exceeds the limit/);
    await expect(readSafetensorsFileHeader(lying)).rejects.toThrow(FormatError);
    expect(() => readSafetensorsFileSync(lying)).toThrow(FormatError);
    const tiny = join(dir, 'tiny.safetensors');
    writeFileSync(tiny, Uint8Array.from([1, 2, 3]));
    expect(() => readSafetensorsFileSync(tiny)).toThrow(/tiny\.safetensors: safetensors: file is 3 bytes, expected at least 8/);
    await expect(readSafetensorsFile(join(dir, 'model.safetensors'), { maxFileBytes: 64 })).rejects.toThrow(/above the 64-byte limit/);
  });

});

describe('browser safety', () => {
  it('safetensors.ts and the modules it imports never import node: builtins', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(new URL(file, import.meta.url), 'utf8');
      for (const [, spec] of source.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^node:|^(fs|path|os)$/);
        if (spec!.startsWith('./')) visit(spec!.replace(/\.js$/, '.ts'));
      }
    };
    visit('./safetensors.ts');
    expect(seen.size).toBeGreaterThan(2);
  });
});
