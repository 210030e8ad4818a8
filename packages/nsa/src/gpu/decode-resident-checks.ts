/**
 * GPU checks of the methods' `decodeResident` (decode steps with the decoder's kept pooled
 * windows, what the benchmark's decode rows time): on a resident call, the one-query view of its
 * last position decoded twice (the first step pools every window, the second reuses them) equals
 * the CPU method's prefill row of that position (the methods are causally consistent): output,
 * and lse against core's attention over the CPU's selection (one softmax: every combination but
 * NSA's 'gated'), with several complete windows, a partial last window, GQA and batch 2.
 */
import { sparseAttention, validateAttentionInput, type AttentionInput, type Tensor } from '@sparse-attn/core';
import { checkInput, describeCheckShape, expectClose, expectLseClose, lastQueryView, type CheckShape, type GpuCheck, type GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuMobaMethod } from './moba-gpu.js';
import { gpuNsaMethod } from './nsa-gpu.js';
import { gpuHierarchicalIndexerMethod } from './indexer-gpu.js';

/** The last query position's rows of a `[B, H, S, D]` output, as `[B, H, 1, D]` data. */
function lastRows(t: Tensor): Float32Array {
  const [batch, heads, seq, dim] = t.shape as [number, number, number, number];
  const out = new Float32Array(batch * heads * dim);
  for (let bh = 0; bh < batch * heads; bh++) out.set(t.data.subarray((bh * seq + seq - 1) * dim, (bh * seq + seq) * dim), bh * dim);
  return out;
}

const cases: readonly { definition: GpuMethodDefinition; config: Record<string, unknown>; shape: CheckShape }[] = [
  { definition: gpuMobaMethod, config: { blockSize: 16, topK: 3 }, shape: { batch: 2, queryHeads: 4, kvHeads: 2, seq: 203, headDim: 32 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 8, selectionBlock: 16, selectedBlocks: 4, window: 32 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 190, headDim: 32 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, compressionScore: 'quest' }, shape: { batch: 2, queryHeads: 2, kvHeads: 1, seq: 150, headDim: 16 } },
  { definition: gpuNsaMethod, config: { compressionBlock: 16, compressionStride: 16, selectionBlock: 16, selectedBlocks: 3, window: 24, combine: 'gated' }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 170, headDim: 16 } },
  { definition: gpuHierarchicalIndexerMethod, config: { blockSize: 16 }, shape: { batch: 1, queryHeads: 4, kvHeads: 2, seq: 230, headDim: 32 } },
];

/** One check per case: two kept-state decode steps equal the CPU prefill's last row. */
export const decodeResidentChecks: readonly GpuCheck[] = cases.map(({ definition, config, shape }, i): GpuCheck => ({
  name: `${definition.id} decodeResident (kept pooled windows, two steps) equals the CPU prefill's last row: ${JSON.stringify(config)} ${describeCheckShape(shape)}`,
  async run(backend) {
    const input: AttentionInput = checkInput(shape, 300 + i);
    const cpu = definition.cpu.create(config).prefill(input);
    const method = definition.create(backend, config);
    if (!method.decodeResident) throw new Error(`${definition.id} has no decodeResident`);
    const resident = backend.upload(input, validateAttentionInput(input));
    try {
      const { view, release } = await lastQueryView(backend, resident);
      try {
        const stepper = await method.decodeResident(view);
        try {
          for (const step of ['first (pools)', 'second (kept windows)']) {
            const run = await stepper.step();
            if (!(run.density! > 0 && run.density! <= 1)) throw new Error(`${step}: density ${run.density}`);
            const { output, lse } = await backend.readOutput(view);
            expectClose(`${step} output`, output.data, lastRows(cpu.output));
            // One softmax over the selection (not 'gated', whose output mixes three): its lse is core's over the CPU's selection.
            if (config['combine'] !== 'gated') {
              if (!cpu.selection) throw new Error(`the CPU ${definition.id} reported no selection`);
              const exact = sparseAttention(input, cpu.selection);
              expectLseClose(`${step} lse`, lse, lastRows({ data: exact.lse, shape: [shape.batch, shape.queryHeads, shape.seq, 1] } as unknown as Tensor));
            }
          }
        } finally {
          stepper.release();
        }
      } finally {
        release();
      }
    } finally {
      backend.release(resident);
    }
  },
}));
