/**
 * Kernel benchmark of @sparse-attn/core against onnxruntime-node, measured in the same run:
 *
 * - `prefill`: causal dense attention — reference (S ≤ 1k), fast dense (`denseAttention`),
 *   onnxruntime-node's opset-23 `Attention`, and the exact sparse executor over a ~10% block
 *   selection — for B=1 H=8 D=64 at S = 1k, 4k, 16k and GQA Hq=32/Hkv=8 D=128 at S = 4k.
 * - `decode`: one query over S cached keys (S = 4k, 16k), same implementations and shapes.
 * - `scaling`: sparse decode steps with a fixed 1024 selected keys at S = 4k … 64k (the cost
 *   must follow the selected keys, not S), next to dense decode.
 * - `gemm`: a 2048² GEMM (`matmul` vs onnxruntime `MatMul`).
 *
 * Every (case, implementation) runs in child processes, so its peak RSS is its own; each child
 * warms up, then times `reps` runs. Implementations of a case alternate order over two rounds
 * (A B C, then C B A) so drift on a shared machine hits them alike; medians and ratios are over
 * both rounds. GFLOP/s counts 4·D per visible query–key pair (2·S²·D·H for causal prefill).
 *
 *   pnpm --filter @sparse-attn/core bench:kernels [--only prefill,decode,scaling,gemm] [--quick]
 *     [--case 'GQA 32/8 D128 S=4096'] [--json out.json]
 *
 * onnxruntime-node is a devDependency of core for this script only (its install script is off:
 * the CPU binaries ship in the package). Set ORT_DIR to load it from elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  denseAttention,
  KVCache,
  matmul,
  referenceAttention,
  Rng,
  SelectionBuilder,
  sparseAttention,
  tensor,
  type AttentionInput,
  type Selection,
} from '../src/index.js';
import { onnxMatMulModel as matmulModel } from '../src/onnx-model.js';
import { attentionModel } from './onnx-model.js';

/** One benchmark case: an attention call shape, or the GEMM. */
interface Case {
  readonly id: string;
  readonly group: 'prefill' | 'decode' | 'scaling' | 'gemm';
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly querySeq: number;
  readonly keySeq: number;
  /** Sparse executor: share of visible key blocks selected, or a fixed number of keys. */
  readonly sparse?: { readonly density?: number; readonly keys?: number };
  readonly impls: readonly Impl[];
  readonly reps: number;
}

/**
 * `fast`/`sparse` read K/V from plain tensors (copied into kernel memory per call);
 * `fast-cache`/`sparse-cache` read them from a `kernel`-storage KVCache in place, as decoders do.
 */
type Impl = 'reference' | 'fast' | 'fast-1t' | 'fast-cache' | 'ort' | 'sparse' | 'sparse-cache' | 'gemm-fast' | 'gemm-ort';

interface Measurement {
  readonly caseId: string;
  readonly impl: Impl;
  readonly ms: number[];
  readonly maxRssMb: number;
  readonly backend?: string;
  readonly density?: number;
  readonly pairs?: number;
}

type OrtSession = { run(feeds: object): Promise<Record<string, { data: Float32Array }>> };
type OrtModule = {
  InferenceSession: { create(model: Uint8Array, options?: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => object;
};

const BLOCK = 64;
const GEMM_SIZE = 2048;

function loadOrt(): OrtModule | undefined {
  const here = fileURLToPath(import.meta.url);
  for (const from of [process.env['ORT_DIR'] ? join(process.env['ORT_DIR'], 'package.json') : undefined, here]) {
    if (!from) continue;
    try {
      return createRequire(from)('onnxruntime-node') as OrtModule;
    } catch {
      // try the next location
    }
  }
  return undefined;
}

function cases(quick: boolean): Case[] {
  const mha = { queryHeads: 8, kvHeads: 8, headDim: 64 };
  const gqa = { queryHeads: 32, kvHeads: 8, headDim: 128 };
  const list: Case[] = [];
  const prefillSizes = quick ? [1024, 4096] : [1024, 4096, 16384];
  for (const s of prefillSizes) {
    const reps = s <= 1024 ? 5 : s <= 4096 ? 3 : 1;
    list.push({ id: `prefill MHA 8/8 D64 S=${s}`, group: 'prefill', ...mha, querySeq: s, keySeq: s, sparse: { density: 0.1 }, impls: [...(s <= 1024 ? ['reference' as const] : []), 'fast', ...(s <= 4096 ? ['fast-1t' as const] : []), 'ort', 'sparse'], reps });
  }
  list.push({ id: 'prefill GQA 32/8 D128 S=4096', group: 'prefill', ...gqa, querySeq: 4096, keySeq: 4096, sparse: { density: 0.1 }, impls: ['fast', 'ort', 'sparse'], reps: quick ? 1 : 2 });
  for (const s of quick ? [4096] : [4096, 16384]) {
    for (const [name, shape] of [['MHA 8/8 D64', mha], ['GQA 32/8 D128', gqa]] as const) {
      list.push({ id: `decode ${name} S=${s}`, group: 'decode', ...shape, querySeq: 1, keySeq: s, sparse: { density: 0.1 }, impls: ['fast', 'fast-cache', 'ort', 'sparse-cache'], reps: 30 });
    }
  }
  for (const s of quick ? [4096, 16384] : [4096, 16384, 65536]) {
    list.push({ id: `scaling GQA 32/8 D128 S=${s}, 1024 keys`, group: 'scaling', ...gqa, querySeq: 1, keySeq: s, sparse: { keys: 1024 }, impls: ['sparse-cache', 'fast-cache'], reps: 30 });
  }
  list.push({ id: `gemm ${GEMM_SIZE}³`, group: 'gemm', queryHeads: 0, kvHeads: 0, headDim: 0, querySeq: GEMM_SIZE, keySeq: GEMM_SIZE, impls: ['gemm-fast', 'gemm-ort'], reps: 3 });
  return list;
}

function randomData(rng: Rng, n: number): Float32Array {
  return rng.fillNormal(new Float32Array(n));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * A block selection (blocks of 64 keys, one row per 64 queries, shared by each GQA group): the
 * diagonal block and block 0 always, then random visible blocks up to `density` of the visible
 * blocks (or up to `keys` keys).
 */
function blockSelection(c: Case, rng: Rng): Selection {
  const queryBlock = c.querySeq === 1 ? 1 : BLOCK;
  const rows = Math.ceil(c.querySeq / queryBlock);
  const builder = new SelectionBuilder({ kind: 'block', blockSize: BLOCK, headScope: 'kv', batch: 1, heads: c.kvHeads, rows, queryBlockSize: queryBlock, keySeq: c.keySeq });
  const offset = c.keySeq - c.querySeq;
  for (let h = 0; h < c.kvHeads; h++) {
    for (let r = 0; r < rows; r++) {
      const lastPosition = offset + Math.min(c.querySeq, (r + 1) * queryBlock) - 1;
      const visible = Math.floor(lastPosition / BLOCK) + 1;
      const want = Math.min(visible, c.sparse?.keys !== undefined ? Math.ceil(c.sparse.keys / BLOCK) : Math.max(1, Math.round((c.sparse?.density ?? 1) * visible)));
      const picked = new Set([visible - 1, 0]);
      while (picked.size < want) picked.add(rng.int(visible));
      builder.pushRow([...picked].sort((a, b) => a - b).slice(0, Math.max(want, 1)));
    }
  }
  return builder.finish();
}

/** Child process: one implementation of one case, `reps` timed runs after a warm-up. */
async function runOne(c: Case, impl: Impl, reps: number): Promise<Measurement> {
  const rng = new Rng(c.keySeq + c.queryHeads);
  const ms: number[] = [];
  const time = async (run: () => unknown): Promise<void> => {
    await run();
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      await run();
      ms.push(performance.now() - t);
    }
  };
  let backend: string | undefined;
  let storage = '';
  let density: number | undefined;
  let pairs: number | undefined;
  if (c.group === 'gemm') {
    const n = c.querySeq;
    const [a, b] = [randomData(rng, n * n), randomData(rng, n * n)];
    if (impl === 'gemm-fast') {
      const out = new Float32Array(n * n);
      await time(() => matmul(a, b, n, n, n, out));
      backend = 'wasm-simd';
    } else {
      const ort = loadOrt()!;
      const session = await ort.InferenceSession.create(matmulModel(n, n, n));
      const feeds = { a: new ort.Tensor('float32', a, [n, n]), b: new ort.Tensor('float32', b, [n, n]) };
      await time(() => session.run(feeds));
      backend = `onnxruntime-node MatMul, ${availableParallelism()} intra-op threads (default)`;
    }
  } else {
    const qShape = [1, c.queryHeads, c.querySeq, c.headDim];
    const kvShape = [1, c.kvHeads, c.keySeq, c.headDim];
    const q = randomData(rng, c.queryHeads * c.querySeq * c.headDim);
    const k = randomData(rng, c.kvHeads * c.keySeq * c.headDim);
    const v = randomData(rng, c.kvHeads * c.keySeq * c.headDim);
    let input: AttentionInput = { q: tensor(qShape, q), k: tensor(kvShape, k), v: tensor(kvShape, v), causal: true };
    if (impl.endsWith('-cache')) {
      const cache = new KVCache({ batch: 1, kvHeads: c.kvHeads, headDim: c.headDim, valueDim: c.headDim, initialCapacity: c.keySeq, storage: 'kernel' });
      cache.append(input.k, input.v);
      input = { ...input, k: cache.keys(), v: cache.values() };
      storage = `, ${cache.storage} KV cache`;
    }
    if (impl === 'ort') {
      const ort = loadOrt()!;
      const model = attentionModel({ batch: 1, queryHeads: c.queryHeads, kvHeads: c.kvHeads, querySeq: c.querySeq, keySeq: c.keySeq, headDim: c.headDim, causal: true });
      const session = await ort.InferenceSession.create(model);
      const feeds = { q: new ort.Tensor('float32', q, qShape), k: new ort.Tensor('float32', k, kvShape), v: new ort.Tensor('float32', v, kvShape) };
      await time(() => session.run(feeds));
      backend = `onnxruntime-node opset-23 Attention, ${availableParallelism()} intra-op threads (default)`;
    } else if (impl === 'reference') {
      await time(() => referenceAttention(input));
      backend = 'reference (float64 accumulation)';
    } else if (impl === 'sparse' || impl === 'sparse-cache') {
      const selection = blockSelection(c, rng);
      // The kernel alone: the selection is built and validated once, inputs are known finite.
      const run = () => sparseAttention(input, selection, { checkFinite: false, validateSelection: false });
      const result = run();
      await time(run);
      backend = `${result.backend.kernel}${storage}`;
      density = result.stats.density;
      pairs = result.stats.pairs;
    } else {
      const threads = impl === 'fast-1t' ? 1 : undefined;
      const run = () => denseAttention(input, { checkFinite: false, ...(threads ? { threads } : {}) });
      const result = run();
      await time(run);
      backend = `${result.backend.kernel}, ${result.backend.device ?? ''}${storage}`;
    }
  }
  return { caseId: c.id, impl, ms, maxRssMb: process.resourceUsage().maxRSS / 1024, ...(backend ? { backend } : {}), ...(density !== undefined ? { density } : {}), ...(pairs !== undefined ? { pairs } : {}) };
}

function spawnOne(c: Case, impl: Impl, reps: number): Measurement | undefined {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, '--one', JSON.stringify({ c, impl, reps })], { encoding: 'utf8', maxBuffer: 1 << 22 });
  const line = child.stdout.trim().split('\n').pop();
  if (child.status !== 0 || !line) {
    console.error(`${c.id} ${impl} failed (status ${child.status}):\n${child.stderr.slice(-2000)}`);
    return undefined;
  }
  return JSON.parse(line) as Measurement;
}

/** FLOPs of one call: 4·D per visible pair (QKᵀ and PV), or 2·n³ for the GEMM. */
function flopsOf(c: Case, m: Measurement): number {
  if (c.group === 'gemm') return 2 * c.querySeq ** 3;
  const offset = c.keySeq - c.querySeq;
  const densePairs = c.queryHeads * (c.querySeq * offset + (c.querySeq * (c.querySeq + 1)) / 2);
  return 4 * c.headDim * (m.pairs ?? densePairs);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--one') {
    const { c, impl, reps } = JSON.parse(args[1]!) as { c: Case; impl: Impl; reps: number };
    console.log(JSON.stringify(await runOne(c, impl, reps)));
    return;
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : undefined;
  const match = args.includes('--case') ? args[args.indexOf('--case') + 1] : undefined;
  const jsonPath = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const hasOrt = loadOrt() !== undefined;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`# core kernel benchmark — ${cpu}, ${availableParallelism()} cores, Node ${process.version}, ${new Date().toISOString()}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  if (!hasOrt) console.log('onnxruntime-node not found: ORT rows skipped (install devDependencies or set ORT_DIR)');
  console.log('ratios: "vs ORT" = ORT median / ours (> 1: we are faster), "(min)" the same over the fastest runs;');
  console.log('"vs fast" = fast dense median / this row; GFLOP/s from the median');
  console.log('');
  console.log('| case | impl | median ms | min–max ms | GFLOP/s | vs ORT | vs ORT (min) | vs fast | density | peak RSS MB | backend |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const all: Measurement[] = [];
  for (const c of cases(args.includes('--quick'))) {
    if ((only && !only.includes(c.group)) || (match && !c.id.includes(match))) continue;
    const impls = c.impls.filter((impl) => hasOrt || !impl.endsWith('ort'));
    const runs = new Map<Impl, Measurement>();
    for (const order of [impls, [...impls].reverse()]) {
      for (const impl of order) {
        const reps = impl === 'reference' ? 1 : Math.max(1, Math.ceil(c.reps / 2));
        const m = spawnOne(c, impl, reps);
        if (!m) continue;
        const previous = runs.get(impl);
        runs.set(impl, previous ? { ...m, ms: [...previous.ms, ...m.ms], maxRssMb: Math.max(previous.maxRssMb, m.maxRssMb) } : m);
      }
    }
    const ort = runs.get('ort') ?? runs.get('gemm-ort');
    const fast = runs.get('fast') ?? runs.get('fast-cache');
    console.error(`${new Date().toISOString()} ${c.id} done (load ${loadavg()[0]!.toFixed(1)})`);
    for (const m of runs.values()) {
      const t = median(m.ms);
      const vsOrt = ort && m !== ort ? `${(median(ort.ms) / t).toFixed(2)}x` : '';
      const vsOrtMin = ort && m !== ort ? `${(Math.min(...ort.ms) / Math.min(...m.ms)).toFixed(2)}x` : '';
      const vsFast = fast && m !== fast && m.impl !== 'ort' ? `${(median(fast.ms) / t).toFixed(2)}x` : '';
      const range = `${Math.min(...m.ms).toFixed(1)}–${Math.max(...m.ms).toFixed(1)}`;
      console.log(`| ${c.id} | ${m.impl} | ${t.toFixed(t < 10 ? 2 : 1)} | ${range} | ${(flopsOf(c, m) / t / 1e6).toFixed(1)} | ${vsOrt} | ${vsOrtMin} | ${vsFast} | ${m.density?.toFixed(3) ?? ''} | ${m.maxRssMb.toFixed(0)} | ${m.backend ?? ''} |`);
      all.push(m);
    }
  }
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify({ cpu, cores: availableParallelism(), node: process.version, results: all }, null, 2));
}

await main();
