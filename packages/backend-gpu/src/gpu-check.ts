/**
 * The GPU test and benchmark program for machines with an adapter but no pnpm/vitest (the H100
 * device): `node gpu-check.js [--bench 4096,16384,65536] [--out results.json] [--latency]`. Runs every
 * {@link gpuChecks} entry, then optionally the GPU benchmark, printing a table and exiting 1 on any
 * failure. Built into a self-contained bundle by `pnpm build:device`.
 */
import { writeFileSync } from 'node:fs';
import { gpuChecks } from './gpu-checks.js';
import { runGpuBenchmark } from './gpu-benchmarks.js';
import { EXECUTOR_VARIANTS, syntheticSelection } from './executor-profile.js';
import { lastQueryView, runDecodeAttention } from './gpu-decode.js';
import { measureAsync } from './measure-async.js';
import { createNodeGpuBackend } from './node.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  // Default: Node's default Dawn flags (robustness off); `--robust` keeps Dawn's robustness
  // (what browsers run); `--dawn-features a,b` sets the toggles explicitly.
  const features = flag('--dawn-features');
  const robust = args.includes('--robust');
  const backend = await createNodeGpuBackend(features ? { dawnFlags: [`enable-dawn-features=${features}`] } : { robust });
  console.log(`Dawn toggles: ${backend.context.toggles?.join(', ') || 'none (robust)'}`);
  console.log(`adapter: ${backend.info.device}; max binding ${backend.context.maxBinding} B; workgroup memory ${backend.context.maxWorkgroupBytes} B`);
  console.log(`gpu.js: ${backend.gpuJs.bridge ? `attached (${backend.gpuJs.bridge.version}), block pooling runs through it` : `not attached: ${backend.gpuJs.reason}`}`);
  const parseTuning = (spec: string) => {
    const [chunk, valueChunk] = spec.split('x').map(Number) as [number, number];
    return { chunk, valueChunk };
  };
  const tunings = flag('--tuning');
  // Checks and the benchmark run with the last tuning listed (the variants are timed in between).
  if (tunings) backend.tuning = parseTuning(tunings.split('@')[0]!.split(',').at(-1)!);
  console.log(`attention tuning: chunk ${backend.tuning.chunk}, value chunk ${backend.tuning.valueChunk}`);
  let failed = 0;
  if (!args.includes('--no-checks')) {
    for (const check of gpuChecks) {
      const started = performance.now();
      try {
        await check.run(backend);
        console.log(`PASS ${check.name} (${(performance.now() - started).toFixed(0)} ms)`);
      } catch (error) {
        failed++;
        console.log(`FAIL ${check.name}\n     ${(error as Error).message.replace(/\n/g, '\n     ')}`);
      }
    }
    console.log(`${gpuChecks.length - failed}/${gpuChecks.length} GPU checks passed`);
  }
  if (tunings) {
    const last = backend.tuning;
    // Dense kernel variants at one size, each timed after a warm-up: `--tuning 16x16,32x32@16384`.
    const [list, at] = tunings.split('@');
    const seq = Number(at ?? 16384);
    for (const spec of list!.split(',')) {
      backend.tuning = parseTuning(spec);
      const rows = await runGpuBenchmark(backend, { quick: false, seqLengths: [seq], repeats: 3, seed: 1, backend: 'gpu', progress: (m) => console.log(`${m} tuning ${spec}`) }, undefined, { denseOnly: true });
      for (const row of rows) console.log(JSON.stringify({ ...row, tuning: spec, dawnToggles: backend.context.toggles ?? [] }));
    }
    backend.tuning = last;
  }
  const executorSeq = flag('--executor');
  if (executorSeq) {
    // `--executor 65536`: the sparse executor on synthetic per-query block rows, both modes, vs dense.
    const seq = Number(executorSeq);
    const qDims = { batch: 1, heads: 32, seq, dim: 128, capacity: seq };
    const d = { batch: 1, queryHeads: 32, kvHeads: 32, groupSize: 1, querySeq: seq, keySeq: seq, headDim: 128, valueDim: 128, causal: true, scale: 1 / Math.sqrt(128), queryOffset: 0, qDims, kDims: qDims, vDims: qDims };
    const resident = await backend.randomResident(d, 7);
    const time = async (run: () => Promise<number>) => {
      await run();
      const samples = [await run(), await run(), await run()].sort((a, b) => a - b);
      return samples[1]!;
    };
    console.log(JSON.stringify({ executor: 'dense', seq, ms: await time(() => backend.runDense(resident)) }));
    // `--window-mib 256,1024`: the key-block executor's window cap, each value timed in turn (the last one stays).
    const windows = (flag('--window-mib') ?? '').split(',').filter(Boolean).map((mib) => Number(mib) * 2 ** 20);
    for (const [w, variant] of (windows.length > 0 ? windows : [backend.keyBlockWindowBytes]).flatMap((bytes) => EXECUTOR_VARIANTS.filter((v) => v.name.includes(flag('--variant') ?? '')).map((v) => [bytes, v] as const))) {
      backend.keyBlockWindowBytes = w;
      backend.releaseScratch();
      const selection = syntheticSelection(backend, resident, variant);
      for (const mode of ['key-blocks', 'rows'] as const) {
        if (mode === 'rows' && seq > 16384) continue;
        backend.sparseExecutor = mode;
        const ms = await time(() => backend.runSparse(resident, selection));
        // One more run with each pass submitted on its own: where the time goes.
        const passes: Record<string, number> = {};
        if (mode === 'key-blocks') {
          backend.keyBlockProfile = passes;
          await backend.runSparse(resident, selection);
          backend.keyBlockProfile = undefined;
        }
        console.log(JSON.stringify({ executor: mode, variant: variant.name, seq, windowMiB: w / 2 ** 20, ms, passes }));
      }
      backend.releaseSelection(selection);
    }
    backend.sparseExecutor = 'auto';
    backend.release(resident);
  }
  if (args.includes('--latency')) {
    // The host round trip every timed GPU call pays (submit, then await the queue): an empty
    // submission, and one dispatch of a single one-thread workgroup. A decode step timed from
    // the host cannot be faster than this, whatever its kernels do.
    const { device } = backend.context;
    const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> x: array<u32>;\n@compute @workgroup_size(1) fn main() { x[0] = x[0] + 1u; }' });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const buffer = device.createBuffer({ size: 16, usage: WEBGPU_FLAGS.STORAGE });
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] });
    const roundTrip = async (o: { dispatch?: boolean; scope?: boolean; fresh?: boolean }) => {
      const started = performance.now();
      if (o.scope) device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder();
      const target = o.fresh ? device.createBuffer({ size: 1 << 20, usage: WEBGPU_FLAGS.STORAGE }) : buffer;
      if (o.dispatch) {
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, o.fresh ? device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: target } }] }) : group);
        pass.dispatchWorkgroups(1);
        pass.end();
      }
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
      if (o.fresh) target.destroy();
      if (o.scope && (await device.popErrorScope())) throw new Error('validation error');
      return performance.now() - started;
    };
    const variants = [
      ['empty command buffer, submitted and awaited', {}],
      ['one 1-thread dispatch, submitted and awaited', { dispatch: true }],
      ['the same inside a validation error scope (as every backend call)', { dispatch: true, scope: true }],
      ['the same on a fresh 1 MiB buffer, destroyed after', { dispatch: true, fresh: true }],
    ] as const;
    for (const [name, o] of variants) {
      const t = await measureAsync(() => roundTrip(o), { warmup: 20, repeats: 200 });
      console.log(JSON.stringify({ latency: name, medianMs: t.medianMs, minMs: t.minMs, madMs: t.madMs }));
    }
    buffer.destroy();
    // A whole backend call with nothing to compute: split-K decode of one query over 64 keys.
    const qDims = { batch: 1, heads: 1, seq: 64, dim: 128, capacity: 64 };
    const tiny = await backend.randomResident({ batch: 1, queryHeads: 1, kvHeads: 1, groupSize: 1, querySeq: 64, keySeq: 64, headDim: 128, valueDim: 128, causal: true, scale: 1 / Math.sqrt(128), queryOffset: 0, qDims, kDims: qDims, vDims: qDims }, 3);
    const { view, release } = await lastQueryView(backend, tiny);
    const t = await measureAsync(() => runDecodeAttention(backend, view), { warmup: 20, repeats: 200 });
    console.log(JSON.stringify({ latency: 'runDecodeAttention, one query over 64 keys (a whole backend call)', medianMs: t.medianMs, minMs: t.minMs, madMs: t.madMs }));
    release();
    backend.release(tiny);
  }
  const bench = flag('--bench');
  if (bench) {
    const seqLengths = bench.split(',').map(Number);
    const rows = await runGpuBenchmark(backend, { quick: false, seqLengths, repeats: Number(flag('--repeats') ?? 5), seed: 1, backend: 'gpu', progress: (m) => console.log(m) });
    for (const row of rows) console.log(JSON.stringify(row));
    const out = flag('--out');
    if (out) writeFileSync(out, JSON.stringify({ device: backend.info.device, tuning: backend.tuning, dawnToggles: backend.context.toggles ?? [], rows }, null, 2));
  }
  backend.destroy();
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
