// Builds `pytorch-save-file.safetensors` byte by byte from the safetensors format spec, the way
// `safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})` lays a file out:
// u64 little-endian header length; compact JSON header with `__metadata__` first and tensors
// sorted by dtype (the Rust `Dtype` enum order, descending) then name; header padded with spaces
// to a multiple of 8; then the raw little-endian data, tensor after tensor, with no gaps.
// It deliberately uses none of the package's code. Run: node build-pytorch-fixture.mjs
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const le = {
  i64: (lo, hi) => [lo & 255, (lo >>> 8) & 255, (lo >>> 16) & 255, lo >>> 24, hi & 255, (hi >>> 8) & 255, (hi >>> 16) & 255, hi >>> 24],
  u16: (x) => [x & 255, x >>> 8],
};
const f32 = (x) => [...new Uint8Array(new Float32Array([x]).buffer)];
const f64 = (x) => [...new Uint8Array(new Float64Array([x]).buffer)];

// name, dtype, shape, data bytes (hand-encoded)
const tensors = [
  // I64 [2, 2]: 0, 1, -2, 2147483647
  ['ids', 'I64', [2, 2], [...le.i64(0, 0), ...le.i64(1, 0), ...le.i64(-2, -1), ...le.i64(0x7fffffff, 0)]],
  // F64 rank-0 scalar: pi
  ['scalar', 'F64', [], f64(3.141592653589793)],
  // F32 [3]: 0.5, -1.25, 3
  ['bias', 'F32', [3], [...f32(0.5), ...f32(-1.25), ...f32(3)]],
  // F32 [0, 4]: empty, no bytes
  ['empty', 'F32', [0, 4], []],
  // BF16 [4]: 1 (0x3f80), -3.5 (0xc060), 256 (0x4380), 0.0078125 (0x3c00)
  ['norm.weight', 'BF16', [4], [0x3f80, 0xc060, 0x4380, 0x3c00].flatMap(le.u16)],
  // F16 [2, 3]: 1 (0x3c00), -2 (0xc000), 0.5 (0x3800), 65504 (0x7bff), 2^-24 (0x0001), -0 (0x8000)
  ['embed.weight', 'F16', [2, 3], [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000].flatMap(le.u16)],
  // BOOL [3]: true, false, true
  ['mask', 'BOOL', [3], [1, 0, 1]],
];

let offset = 0;
const entries = tensors.map(([name, dtype, shape, bytes]) => {
  const entry = `"${name}":{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`;
  offset += bytes.length;
  return entry;
});
let header = `{"__metadata__":{"format":"pt"},${entries.join(',')}}`;
while (header.length % 8 !== 0) header += ' ';
const n = header.length;
const file = [...le.i64(n, 0), ...Buffer.from(header, 'ascii'), ...tensors.flatMap((t) => t[3])];
writeFileSync(join(dirname(fileURLToPath(import.meta.url)), 'pytorch-save-file.safetensors'), Uint8Array.from(file));
console.log(`wrote ${file.length} bytes (header ${n})`);
