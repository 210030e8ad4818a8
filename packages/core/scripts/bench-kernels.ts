/**
 * Kernel benchmark: dense causal attention (B=1, H=8, D=64) at S = 1k, 4k, 16k — reference,
 * fast dense (`denseAttention`) and onnxruntime-node's opset-23 `Attention` — and a 2048² GEMM
 * (`matmul` vs onnxruntime `MatMul`). Each measurement runs in its own child process so its
 * peak RSS is its own; ratios compare runs of the same invocation.
 *
 *   npx tsx scripts/bench-kernels.ts [--sizes 1024,4096,16384] [--skip-gemm]
 *
 * onnxruntime-node is not a dependency of core: install it in a scratch directory with
 * `ONNXRUNTIME_NODE_INSTALL=skip npm i onnxruntime-node --prefix /tmp/ort` and point `ORT_DIR`
 * at that directory (default `/tmp/ort`). Without it the ORT rows are skipped.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { denseAttention, matmul, referenceAttention, Rng, tensor, type Tensor } from '../src/index.js';
import { attentionModel, matmulModel } from './onnx-model.js';

const HEADS = 8;
const HEAD_DIM = 64;
const GEMM_SIZE = 2048;

interface Measurement {
  readonly impl: string;
  readonly size: number;
  readonly ms: number[];
  readonly maxRssMb: number;
  readonly kernel?: string;
}

type OrtModule = {
  InferenceSession: { create(model: Uint8Array, options?: object): Promise<{ run(feeds: object): Promise<Record<string, { data: Float32Array }>> }> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => object;
};

function loadOrt(): OrtModule | undefined {
  const dir = process.env['ORT_DIR'] ?? '/tmp/ort';
  try {
    return createRequire(join(dir, 'package.json'))('onnxruntime-node') as OrtModule;
  } catch {
    return undefined;
  }
}

function randomData(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Child process: one implementation at one size, `reps` timed runs after a warm-up. */
async function runOne(impl: string, size: number, reps: number): Promise<Measurement> {
  const rng = new Rng(size);
  const ms: number[] = [];
  let kernel: string | undefined;
  if (impl === 'gemm-fast' || impl === 'gemm-ort') {
    const a = randomData(rng, size * size);
    const b = randomData(rng, size * size);
    if (impl === 'gemm-fast') {
      const c = new Float32Array(size * size);
      matmul(a, b, size, size, size, c);
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        matmul(a, b, size, size, size, c);
        ms.push(performance.now() - t);
      }
      kernel = 'wasm-simd';
    } else {
      const ort = loadOrt()!;
      const session = await ort.InferenceSession.create(matmulModel(size, size, size));
      const feeds = { a: new ort.Tensor('float32', a, [size, size]), b: new ort.Tensor('float32', b, [size, size]) };
      await session.run(feeds);
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        await session.run(feeds);
        ms.push(performance.now() - t);
      }
    }
  } else {
    const shape = [1, HEADS, size, HEAD_DIM];
    const n = HEADS * size * HEAD_DIM;
    const [q, k, v] = [randomData(rng, n), randomData(rng, n), randomData(rng, n)];
    const input = { q: tensor(shape, q), k: tensor(shape, k), v: tensor(shape, v), causal: true };
    if (impl === 'ort') {
      const ort = loadOrt()!;
      const session = await ort.InferenceSession.create(attentionModel(1, HEADS, size, HEAD_DIM, true));
      const feeds = { q: new ort.Tensor('float32', q, shape), k: new ort.Tensor('float32', k, shape), v: new ort.Tensor('float32', v, shape) };
      if (size <= 4096) await session.run(feeds);
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        await session.run(feeds);
        ms.push(performance.now() - t);
      }
    } else {
      const run = (): { output: Tensor; backend: { kernel: string } } => (impl === 'reference' ? referenceAttention(input) : denseAttention(input));
      if (size <= 4096) run();
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        kernel = run().backend.kernel;
        ms.push(performance.now() - t);
      }
    }
  }
  return { impl, size, ms, maxRssMb: process.resourceUsage().maxRSS / 1024, ...(kernel ? { kernel } : {}) };
}

function spawnOne(impl: string, size: number, reps: number): Measurement | undefined {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, '--one', impl, String(size), String(reps)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  const line = child.stdout.trim().split('\n').pop();
  if (child.status !== 0 || !line) {
    console.error(`${impl} S=${size} failed:\n${child.stderr}`);
    return undefined;
  }
  return JSON.parse(line) as Measurement;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--one') {
    console.log(JSON.stringify(await runOne(args[1]!, Number(args[2]), Number(args[3]))));
    return;
  }
  const sizesArg = args.indexOf('--sizes');
  const sizes = sizesArg >= 0 ? args[sizesArg + 1]!.split(',').map(Number) : [1024, 4096, 16384];
  const hasOrt = loadOrt() !== undefined;
  if (!hasOrt) console.log('onnxruntime-node not found (set ORT_DIR): ORT rows skipped');
  console.log(`dense causal attention, B=1 H=${HEADS} D=${HEAD_DIM}; GFLOP/s counts 2·S²·D·H (causal)`);
  console.log('impl       |      S | median ms |  GFLOP/s | vs ORT | peak RSS MB | kernel');
  for (const size of sizes) {
    const reps = size <= 1024 ? 5 : size <= 4096 ? 3 : 1;
    const impls = [...(size <= 1024 ? ['reference'] : []), 'fast', ...(hasOrt ? ['ort'] : [])];
    const results = impls.map((impl) => spawnOne(impl, size, impl === 'reference' ? 1 : reps));
    const ort = results.find((r) => r?.impl === 'ort');
    const flops = 2 * size * size * HEAD_DIM * HEADS;
    for (const r of results) {
      if (!r) continue;
      const t = median(r.ms);
      const ratio = ort ? (median(ort.ms) / t).toFixed(2) + 'x' : '-';
      console.log(`${r.impl.padEnd(10)} | ${String(size).padStart(6)} | ${t.toFixed(1).padStart(9)} | ${(flops / t / 1e6).toFixed(2).padStart(8)} | ${ratio.padStart(6)} | ${r.maxRssMb.toFixed(0).padStart(11)} | ${r.kernel ?? ''}`);
    }
  }
  if (!args.includes('--skip-gemm')) {
    console.log(`GEMM ${GEMM_SIZE}×${GEMM_SIZE}×${GEMM_SIZE} (2·n³ FLOPs)`);
    const gemm = ['gemm-fast', ...(hasOrt ? ['gemm-ort'] : [])].map((impl) => spawnOne(impl, GEMM_SIZE, 3));
    const ort = gemm.find((r) => r?.impl === 'gemm-ort');
    for (const r of gemm) {
      if (!r) continue;
      const t = median(r.ms);
      const ratio = ort ? (median(ort.ms) / t).toFixed(2) + 'x' : '-';
      console.log(`${r.impl.padEnd(10)} | ${t.toFixed(1).padStart(9)} ms | ${((2 * GEMM_SIZE ** 3) / t / 1e6).toFixed(1).padStart(7)} GFLOP/s | vs ORT ${ratio}`);
    }
  }
}

await main();
