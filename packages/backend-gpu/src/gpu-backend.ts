import {
  ConfigError,
  ShapeError,
  densePairCount,
  forEachKeyRange,
  parseConfig,
  rowOffset,
  sparseStats,
  tensor,
  validateAttentionInput,
  validateSelection,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type BackendInfo,
  type Selection,
  type SparseAttentionResult,
  type Tensor,
} from '@sparse-attn/core';
import { blockTopKConfigSchema, maxPicksPerRow, type BlockTopKConfig } from './block-top-k.js';
import { createGpuContext, platformGpu, type GpuContext } from './gpu-device.js';
import { attachGpuJs, type GpuJsBridge, type GpuJsBuffer } from './gpu-js-bridge.js';
import { poolKeyBlocksGpuJs, type PooledBuffers } from './kernels/block-pool-gpu-js.js';
import { POOL_PARAMS, POOL_THREADS, blockPoolWgsl } from './kernels/block-pool-wgsl.js';
import { SCORE_PARAMS, blockScoreWgsl } from './kernels/block-score-wgsl.js';
import { BLOCK_DECODE_PARAMS, BLOCK_DECODE_THREADS, blockLogitsWgsl, blockMassWgsl } from './kernels/block-score-decode-wgsl.js';
import { TOP_K_PARAMS, TOP_K_THREADS, blockTopKWgsl } from './kernels/block-top-k-wgsl.js';
import { FILL_PARAMS, FILL_THREADS, fillNormalWgsl } from './kernels/fill-normal-wgsl.js';
import { GATHER_MERGE_VECTORS, gatherMergeWgsl } from './kernels/gather-lists-wgsl.js';
import { blockListPipelines, recordBlockLists, type BlockListRecorder } from './block-lists.js';
import { ATTENTION_PARAMS, GATHER_ATTENTION_PARAMS, flashAttentionWgsl, flashAttentionWorkgroupBytes, type FlashAttentionKernelOptions, type FlashAttentionListHooks } from './kernels/flash-attention-wgsl.js';
import { dispatchGrid, TILE_COLUMNS, type TileShape } from './kernels/score-tile-wgsl.js';
import { DECODE_MERGE_PARAMS, decodeMergeGrid, decodeMergeWgsl } from './kernels/decode-merge-wgsl.js';
import { DECODE_SELECTION_PARAMS, decodePartialRecord, decodePartialWgsl, SPLIT_K_MAX_QUERIES, splitKPartitions } from './kernels/decode-split-k-wgsl.js';
import { GpuBufferPool } from './gpu-buffer-pool.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';
import type { KeptWindows } from './gpu-window-decoder.js';

const { STORAGE, UNIFORM, COPY_DST, COPY_SRC, MAP_READ, MAP_MODE_READ, QUERY_RESOLVE } = WEBGPU_FLAGS;

/**
 * One GPU-resident slice of an attention call: a run of consecutive (batch, KV head) slots with
 * their query heads. Calls whose tensors exceed the device's largest binding are split into
 * several chunks; each kernel runs once per chunk.
 */
export interface ResidentChunk {
  /** First (batch · kvHeads + kvHead) slot of the chunk. */
  readonly slot0: number;
  /** KV slots in the chunk (query slots = slots × groupSize). */
  readonly slots: number;
  readonly q: GPUBuffer;
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly out: GPUBuffer;
  readonly lse: GPUBuffer;
  /**
   * Rows between consecutive KV slots in `k` and `v`, at least `dims.keySeq`: a
   * {@link GpuKVCache}'s capacity, whose spare rows hold no keys. Absent: `dims.keySeq` (the
   * slots' keys are contiguous). Kernels read key t of the chunk's slot s at row
   * `s · keyStride + t`; take it with {@link chunkKeyStride}.
   */
  readonly keyStride?: number;
}

/**
 * A sparse call's result: its output and lse, the selection it attended, stats over the
 * selection's pairs (shared by a KV head's query heads where the selection is per KV head), the
 * backend that ran it and the method's diagnostics.
 */
export function selectionResult(
  d: AttentionDims,
  read: { readonly output: Tensor; readonly lse: Float32Array },
  selection: Selection,
  timings: GpuTimings,
  backend: BackendInfo,
  diagnostics?: Readonly<Record<string, number>>,
  /** The selection's attended pairs where the caller knows them (a closed form); counted from the selection otherwise. */
  pairs?: number,
): SparseAttentionResult & { lse: Float32Array } {
  return {
    output: read.output,
    lse: read.lse,
    selection,
    stats: sparseStats(d, pairs ?? countPairs(selection, d), selection.headScope === 'kv', timings.selectionMs, timings.attentionMs),
    backend,
    ...(diagnostics ? { diagnostics } : {}),
  };
}

/** Block top-k's diagnostics of a selection: blocks per row and key blocks of the call. */
export function blockTopKDiagnostics(selection: Selection, d: AttentionDims, config: Pick<BlockTopKConfig, 'blockSize'>): Record<string, number> {
  return { blocksPerRow: selection.indices.length / Math.max(1, selection.offsets.length - 1), keyBlocks: Math.ceil(d.keySeq / config.blockSize) };
}

/** `kernel on device`, plus the fallback reason where one applied: what a benchmark row records as its backend. */
export function describeBackend(info: BackendInfo): string {
  return `gpu: ${info.kernel} on ${info.device ?? 'unknown adapter'}${info.fallbackReason ? ` (fallback: ${info.fallbackReason})` : ''}`;
}

/** Rows between consecutive KV slots of a chunk's `k` and `v` (see {@link ResidentChunk.keyStride}). */
export function chunkKeyStride(chunk: ResidentChunk, d: AttentionDims): number {
  return chunk.keyStride ?? d.keySeq;
}

/** An attention call whose q, k, v (and output) live on the GPU, chunked by KV slot. */
export interface ResidentAttention {
  readonly dims: AttentionDims;
  readonly chunks: readonly ResidentChunk[];
}

/**
 * Per-chunk buffers of a selection that lives on the GPU: row r of the chunk (rows ordered like
 * core's `Selection`, (batch, head, query row)) covers `indices[bounds[2r] .. bounds[2r + 1])`,
 * u32 token indices or block indices. The sparse executor kernel reads exactly this layout.
 */
export interface GpuSelectionChunk {
  /** Selection rows held by this chunk. */
  readonly rows: number;
  readonly bounds: GPUBuffer;
  readonly indices: GPUBuffer;
  /**
   * Block selections only: per entry `maskWords` u32 (at `(row · stride + entry) · maskWords`),
   * bit j set where key j of the entry's block is attended; see {@link GpuSelection.maskWords}.
   */
  readonly masks?: GPUBuffer;
}

type SelectionBuffers = GpuSelectionChunk;

/**
 * A selection computed on the GPU: core's `Selection` layout (with empty `offsets`/`indices`; they
 * are filled by {@link GpuBackend.readSelection}) and its rows in per-chunk buffers of at most
 * `stride` entries per row.
 */
export interface GpuSelection {
  readonly layout: Selection;
  readonly stride: number;
  readonly chunks: readonly GpuSelectionChunk[];
  /**
   * Set on a masked block selection: every chunk has `masks` with this many u32 words per entry
   * (⌈blockSize / 32⌉), and each entry covers only the keys of its block whose bit is set, so a
   * token selection whose tokens fall in a few blocks per row runs on the key-block executor. Only
   * that executor runs it (`runSparse` throws a `ConfigError` otherwise), and it cannot be read
   * back as core's `Selection` (which has no masks): read the token selection it was made from.
   */
  readonly maskWords?: number;
}

/**
 * What a family's kernels get to record work for one chunk of a resident call, inside one
 * compute pass: the chunk's q/k/v/out/lse buffers, compiled pipelines, uniforms and scratch
 * buffers that are freed once the pass has run, and `dispatch`.
 */
export interface ChunkEncoder {
  readonly pass: GPUComputePassEncoder;
  readonly dims: AttentionDims;
  readonly chunk: ResidentChunk;
  /** Index of `chunk` in `resident.chunks`. */
  readonly index: number;
  /** The compiled (cached per source) pipeline of a WGSL compute shader whose entry point is `main`. */
  pipeline(code: string): Promise<GPUComputePipeline>;
  /** A uniform buffer of 4-byte fields in order: u32, or f32 for the names in `floats` (default `['scale']`). */
  uniform(fields: readonly string[], values: Readonly<Record<string, number>>, floats?: readonly string[]): GPUBuffer;
  /**
   * A zero-initialised storage buffer (also copyable), freed after the pass. Reused buffers are
   * zeroed on the GPU when the call's work starts: fill it with kernels, not `queue.writeBuffer`.
   */
  scratch(bytes: number): GPUBuffer;
  /** Binds `buffers[i]` (a buffer, or a range of one: offset a multiple of 256 B) at binding i (`undefined` leaves it out) and dispatches `x × y` workgroups. */
  dispatch(pipeline: GPUComputePipeline, buffers: readonly (GPUBuffer | GPUBufferBinding | undefined)[], x: number, y: number): void;
  /**
   * The bind group `dispatch` would make, for a kernel dispatched many times in a row on the same
   * buffers (`pass.setPipeline`, `pass.setBindGroup(0, group)`, `pass.dispatchWorkgroups`):
   * creating one bind group per dispatch costs host time.
   */
  bind(pipeline: GPUComputePipeline, buffers: readonly (GPUBuffer | GPUBufferBinding | undefined)[]): GPUBindGroup;
}

/**
 * A family's selection on the GPU: kernels that write one CSR row per selection row into the
 * chunk's `target` (at most `stride` entries per row), recorded chunk by chunk. The sparse
 * executor then runs over it without the selection leaving the GPU.
 */
export interface GpuSelectionStep {
  /** The selection's layout; batch, heads and keySeq follow from the call. */
  readonly layout: Pick<Selection, 'kind' | 'blockSize' | 'headScope' | 'rows' | 'queryBlockSize'>;
  /** Largest number of entries (tokens, or blocks) of one row. */
  readonly stride: number;
  /** Records the selection kernels of one chunk. */
  encodeChunk(encoder: ChunkEncoder & { readonly target: GpuSelectionChunk }): Promise<void> | void;
}

/** Milliseconds spent in the selection kernels and in attention, measured at queue completion. */
export interface GpuTimings {
  readonly selectionMs: number;
  readonly attentionMs: number;
}

/** Options of {@link createGpuBackend}. */
export interface GpuBackendOptions {
  /** A `GPU` object (`navigator.gpu`, or Dawn's from `./node`); default: the platform's. */
  readonly gpu?: GPU;
  /** An already-acquired context (device + description); overrides `gpu`. */
  readonly context?: GpuContext;
  /**
   * Run block pooling through gpu.js on the same device (default true). When gpu.js cannot be
   * attached the WGSL pooling kernel runs and results record why in `backend.fallbackReason`.
   */
  readonly gpuJs?: boolean;
}

/** Builds a backend on the platform's (or the given) WebGPU adapter, with gpu.js attached to its device. */
export async function createGpuBackend(options: GpuBackendOptions = {}): Promise<GpuBackend> {
  const context = options.context ?? (await createGpuContext(options.gpu ?? (await platformGpu())));
  if (options.gpuJs === false) return new GpuBackend(context, { reason: 'gpu.js disabled by the caller' });
  if (!context.adapter) return new GpuBackend(context, { reason: 'no adapter to share with gpu.js' });
  try {
    return new GpuBackend(context, { bridge: await attachGpuJs(context.adapter, context.device) });
  } catch (error) {
    return new GpuBackend(context, { reason: `gpu.js unavailable: ${(error as Error).message.split('\n')[0]}` });
  }
}

/** gpu.js attached to the backend's device, or why it is not. */
export interface GpuJsAttachment {
  readonly bridge?: GpuJsBridge;
  readonly reason?: string;
}

/**
 * The WebGPU backend: dense attention, the exact sparse executor over core's `Selection`, and the
 * pooled-block top-k pipeline (pool → score → top-k → sparse attention, all on the GPU), as async
 * counterparts of core's synchronous CPU entry points. Every result records
 * `backend: { backend: 'gpu', kernel: 'webgpu-wgsl', device }`.
 */
export class GpuBackend {
  readonly context: GpuContext;
  /** What every result of this backend records as `backend`. */
  readonly info: BackendInfo;
  /** gpu.js on this backend's device, when attached (dropped, with the reason, if a gpu.js kernel fails). */
  gpuJs: GpuJsAttachment;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  /** Attention kernel sources by shape (see `attentionKernel`). */
  private readonly kernelSources = new Map<string, { code: string; tile: TileShape }>();
  /**
   * Attention kernel tuning: operand width per staged chunk of q·k and keys per staged value
   * chunk (both divide 64). Wider chunks mean fewer barriers per key tile but more workgroup
   * memory; where the device lacks the memory 16 × 16 is used.
   */
  tuning: AttentionTuning = DEFAULT_TUNING;
  /**
   * How the sparse executor runs a selection: `'rows'` gives each selection row its own
   * workgroup, which re-reads the row's blocks for every query; `'key-blocks'` (block selections
   * whose rows hold few query vectors: one query, or a GQA group of one query) gathers, per
   * selected key block, the rows that chose it into 64-query tiles and merges the per-block
   * partials (see `gather-lists-wgsl.ts`); `'split-k'` splits each query row's selected keys over
   * many workgroups and merges their partials (a decode step: see `decode-split-k-wgsl.ts`).
   * `'auto'` (default) takes `'split-k'` for calls of at most `SPLIT_K_MAX_QUERIES` (16) queries
   * per head, then `'key-blocks'` for block selections of at least 64 rows, blocks of at least 16
   * keys and at most 16 query vectors per row, `'rows'` otherwise.
   */
  sparseExecutor: SparseExecutorMode = 'auto';
  /**
   * Diagnosis only: when set, the key-block executor submits each of its passes separately and
   * adds each pass's milliseconds here under its name (count, scan, tile map, scatter, sort,
   * attend, merge); the call gets slower by one round trip per pass.
   */
  keyBlockProfile: Record<string, number> | undefined;
  /**
   * Largest partial (out + lse) buffer of one row window of the key-block executor (default
   * 2 GiB, and never above the device's largest binding): a call whose partials need more runs
   * in several windows, each with its own list passes. The buffer is kept between calls (see
   * `releaseScratch()`). On the H100 at 64k MHA, 2 GiB rather than 1 GiB took NSA 146–150 →
   * 140 ms (18 → 9 windows) and MoBA 72.5–73.6 → 71.8 ms; 4 GiB gained nothing more.
   */
  keyBlockWindowBytes = KEY_BLOCK_PARTIAL_BYTES;
  /**
   * The key-block executor's large scratch (items, partial outputs and lse of one row window,
   * up to ~1 GiB on a big device), kept between calls: allocating and first touching a fresh
   * 1 GiB buffer cost ~30 ms per call on the H100. A call that finds it in use allocates its own.
   * `releaseScratch()` frees it.
   */
  private keyBlockScratch: { items: GPUBuffer; partOut: GPUBuffer; partLse: GPUBuffer; busy: boolean } | undefined;
  /** Families' buffer pools kept between calls ({@link borrowPool}), by owner. */
  private readonly keptPools = new Map<string, { pool: GpuBufferPool; busy: boolean }>();
  /** What {@link oneSubmission} has recorded so far (undefined outside it). */
  private recording: Recording | undefined;
  /** `readAll`'s kept staging buffer (small reads), and whether a read is using it. */
  private staging: GPUBuffer | undefined;
  private stagingBusy = false;
  private timer: PassTimer | undefined;
  /**
   * Time the passes of each `oneSubmission` on the GPU (`gpuMs`) where the device has
   * `timestamp-query` (default false: the timestamps' resolve and readback add to the call and
   * to the next; benchmarks turn it on for calls of their own).
   */
  gpuTiming = false;
  /**
   * The GPU milliseconds of each pass of the last `oneSubmission`, in order (its `gpuMs` is their
   * sum); undefined when it was not timed ({@link gpuTiming} off, or no timestamps). A pass per
   * dispatch (`submitEarlyMs = 0`) times each kernel on its own: how profiles split a step.
   */
  lastPassMs: readonly number[] | undefined;
  /**
   * Inside `oneSubmission`: host milliseconds of recording after which what was recorded is
   * submitted at the next dispatch, so the GPU runs it while the host records the rest (a decode
   * step records for ~0.1–0.3 ms and stays one submission; a 64k prefill records for 5–40 ms,
   * which the GPU then no longer waits out before it starts). `Infinity`: one submission at the end.
   */
  submitEarlyMs = 0.5;
  /**
   * Small per-call buffers (uniforms, CSR rows, split-K partials, list counters, up to
   * {@link SPARE_BUFFER_BYTES} each) kept after their call for the next one of the same size and
   * usage, instead of being destroyed: creating buffers and bind groups cost a decode step more
   * host time than its kernels take on the GPU (~0.2 ms of ~0.3 ms for MoBA's step at 64k on the
   * H100). A reused storage buffer is cleared on the GPU before the call that takes it, as a new
   * one would be. At most {@link SPARE_TOTAL_BYTES} are kept; `releaseScratch()` frees them.
   */
  private readonly spares = new Map<string, GPUBuffer[]>();
  private spareBytes = 0;
  /**
   * Most bytes of large per-call buffers (above {@link SPARE_BUFFER_BYTES}: token selections,
   * score ranges, branch outputs) kept after their call for the next call that asks for the same
   * size and usage (default 8 GiB; 0 keeps none). Creating a buffer costs Dawn on the H100 about
   * 30–35 ms per GiB (8 ms for 256 MiB, 83–267 ms for 4 GiB), more than most kernels of a 64k
   * call take, so repeated calls of one shape reuse them; a reused one is zeroed on the GPU
   * (`clearBuffer`, ~1 ms per GiB). The oldest kept buffers are freed first when the cap is
   * reached; `releaseScratch()` frees them all. Keeping them does not raise a call's peak (the
   * call held them anyway), only what stays allocated between calls.
   */
  keptBufferBytes = KEPT_BUFFER_BYTES;
  /**
   * Reads (`readAll`) of up to this many bytes go through one staging buffer the backend keeps
   * (0: every read creates and destroys its own mappable buffer).
   */
  keptStagingBytes = KEPT_STAGING_BYTES;
  /** The kept large buffers, oldest first. */
  private readonly largeSpares: GPUBuffer[] = [];
  private largeSpareBytes = 0;
  /** Buffers made to be kept as spares (small, per call). */
  private readonly recyclable = new WeakSet<GPUBuffer>();
  /** Reused storage buffers to clear before the next submission. */
  private readonly dirty = new Set<GPUBuffer>();
  /** Bind groups by pipeline and bound buffers (most recent last), and the ids they are keyed by. */
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  /** What each kept uniform buffer holds (see `uniform`). */
  private readonly uniformData = new WeakMap<GPUBuffer, Uint32Array>();

  constructor(context: GpuContext, gpuJs: GpuJsAttachment = { reason: 'gpu.js not attached' }) {
    this.context = context;
    this.gpuJs = gpuJs;
    const toggles = context.toggles?.length ? ` (Dawn toggles: ${context.toggles.join(', ')})` : '';
    this.info = { backend: 'gpu', kernel: `webgpu-wgsl${toggles}`, device: context.description };
  }

  /** What block top-k results record: WGSL kernels plus gpu.js pooling, or the WGSL fallback and why. */
  get blockInfo(): BackendInfo {
    const bridge = this.gpuJs.bridge;
    return bridge
      ? { ...this.info, kernel: `${this.info.kernel} + gpu.js ${bridge.version} (block pooling)` }
      : { ...this.info, fallbackReason: `block pooling ran as WGSL: ${this.gpuJs.reason}` };
  }

  /** Dense attention (causal or not, GQA), agreeing with core's `referenceAttention` to float32 rounding. */
  async denseAttention(input: AttentionInput): Promise<AttentionResult & { lse: Float32Array }> {
    const d = validateAttentionInput(input);
    const resident = this.upload(input, d);
    try {
      const ms = await this.timed(() => this.encodeDense(resident));
      const { output, lse } = await this.readOutput(resident);
      return { output, lse, stats: sparseStats(d, densePairCount(d), true, 0, ms), backend: this.info };
    } finally {
      this.release(resident);
    }
  }

  /**
   * The exact sparse executor on the GPU: each query attends to exactly its selected keys (token
   * or block selection, per query head or per KV head), causally masked, like core's
   * `sparseAttention` with which it agrees to float32 rounding.
   */
  async sparseAttention(input: AttentionInput, selection: Selection, options: { selectionMs?: number } = {}): Promise<SparseAttentionResult> {
    const d = validateAttentionInput(input);
    checkSelectionFits(selection, d);
    validateSelection(selection);
    const resident = this.upload(input, d);
    const buffers = resident.chunks.map((chunk) => this.uploadSelectionChunk(selection, d, chunk));
    try {
      const stride = maxRowLength(selection);
      const ms = await this.timed(() => this.encodeSparse(resident, selection, buffers, stride));
      const { output, lse } = await this.readOutput(resident);
      return { output, lse, selection, stats: sparseStats(d, countPairs(selection, d), selection.headScope === 'kv', options.selectionMs ?? 0, ms), backend: this.info };
    } finally {
      for (const b of buffers) destroyAll(b.bounds, b.indices);
      this.release(resident);
    }
  }

  /**
   * The pooled-block top-k method entirely on the GPU: block pooling, block scoring, top-k and
   * the sparse executor run back to back on resident buffers; only the output and the (small)
   * selection are read back. Chooses the same blocks as the CPU `block-top-k` method.
   */
  async blockTopKAttention(input: AttentionInput, config: Partial<BlockTopKConfig> = {}): Promise<SparseAttentionResult> {
    const resolved = parseConfig('block-top-k', blockTopKConfigSchema, config);
    const d = validateAttentionInput(input);
    if (input.causal === false) throw new ConfigError('block-top-k: causal must be true (selection rows follow causal positions), got false');
    const resident = this.upload(input, d, blockScratchBytesPerSlot(d, resolved));
    try {
      const { selection, timings } = await this.runBlockTopK(resident, resolved);
      return selectionResult(d, await this.readOutput(resident), selection, timings, this.blockInfo, blockTopKDiagnostics(selection, d, resolved));
    } finally {
      this.release(resident);
    }
  }

  /** Copies q, k, v to the GPU (compacting KV-cache views), chunked to fit the device's bindings. */
  upload(input: AttentionInput, dims?: AttentionDims, extraBytesPerSlot = 0): ResidentAttention {
    const d = dims ?? validateAttentionInput(input);
    return this.allocate(d, extraBytesPerSlot, (chunk) => {
      const { device } = this.context;
      device.queue.writeBuffer(chunk.q, 0, gatherSlots(input.q, d.qDims, chunk.slot0 * d.groupSize, chunk.slots * d.groupSize));
      device.queue.writeBuffer(chunk.k, 0, gatherSlots(input.k, d.kDims, chunk.slot0, chunk.slots));
      device.queue.writeBuffer(chunk.v, 0, gatherSlots(input.v, d.vDims, chunk.slot0, chunk.slots));
    });
  }

  /**
   * Allocates a resident call of the given dims filled on the GPU with seeded N(0, 1) values, for
   * benchmarks at sizes the host should not build (q, k, v of 1 GiB each at 64k × 32 × 128).
   */
  async randomResident(d: AttentionDims, seed: number, extraBytesPerSlot = 0): Promise<ResidentAttention> {
    const fill = await this.pipeline(fillNormalWgsl());
    const encoder = this.context.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const uniforms: GPUBuffer[] = [];
    const resident = this.allocate(d, extraBytesPerSlot, (chunk) => {
      for (const [i, buffer] of [chunk.q, chunk.k, chunk.v].entries()) {
        const count = buffer.size / 4;
        const [x, y] = dispatchGrid(Math.ceil(count / FILL_THREADS));
        const params = this.uniform(FILL_PARAMS, { count, seed: (seed * 977 + chunk.slot0 * 3 + i) >>> 0, tilesX: x }, uniforms);
        this.dispatch(pass, fill, [params, buffer], x, y);
      }
    });
    pass.end();
    this.context.device.queue.submit([encoder.finish()]);
    await this.context.device.queue.onSubmittedWorkDone();
    this.recycle(uniforms);
    return resident;
  }

  /** Runs dense attention on a resident call; resolves with the GPU time in milliseconds. */
  async runDense(resident: ResidentAttention): Promise<number> {
    return this.timed(() => this.encodeDense(resident));
  }

  /**
   * Runs the block top-k pipeline on a resident call. Selection kernels and attention are
   * submitted separately so each is timed; the data never leaves the GPU between them. The
   * selection is read back afterwards unless `readSelection` is false.
   */
  async runBlockTopK(resident: ResidentAttention, config: BlockTopKConfig, options?: BlockTopKRunOptions & { readonly readSelection?: true }): Promise<{ selection: Selection; timings: GpuTimings; read?: { output: Tensor; lse: Float32Array } }>;
  async runBlockTopK(resident: ResidentAttention, config: BlockTopKConfig, options: BlockTopKRunOptions): Promise<{ selection?: Selection; timings: GpuTimings; read?: { output: Tensor; lse: Float32Array } }>;
  async runBlockTopK(resident: ResidentAttention, config: BlockTopKConfig, options: BlockTopKRunOptions = {}): Promise<{ selection?: Selection; timings: GpuTimings; read?: { output: Tensor; lse: Float32Array } }> {
    const d = resident.dims;
    const blocks = Math.ceil(d.keySeq / config.blockSize);
    const rows = Math.ceil(d.querySeq / config.queryBlockSize);
    const stride = maxPicksPerRow(config, blocks);
    const buffers = resident.chunks.map((chunk) => ({
      rows: chunk.slots * rows,
      bounds: this.buffer(chunk.slots * rows * 2 * 4, STORAGE | COPY_SRC),
      indices: this.buffer(chunk.slots * rows * stride * 4, STORAGE | COPY_SRC),
    }));
    try {
      const selectionMs = await this.timed(() => this.encodeBlockSelection(resident, config, buffers, options.wgslPooling !== true && !options.pooled, options.pooled));
      const selection = blockSelectionLayout(d, config, rows);
      const attentionMs = await this.timed(() => this.encodeSparse(resident, selection, buffers, stride));
      const timings = { selectionMs, attentionMs };
      if (options.readOutput) {
        // Output, lse and the selection in one readback.
        const outputs = outputReads(resident);
        const data = await this.readAll([...outputs, ...selectionReads(buffers)]);
        return { selection: selectionFrom(selection, buffers, rows, data.slice(outputs.length)), timings, read: outputFrom(resident, data.slice(0, outputs.length)) };
      }
      return options.readSelection === false ? { timings } : { selection: await this.readSelectionRows(selection, buffers, rows), timings };
    } finally {
      // Inside oneSubmission the recorded passes still read them: freed after its submission.
      for (const b of buffers) this.discard(b.bounds, b.indices);
    }
  }

  /**
   * A family's selection followed by the exact sparse executor, on the GPU: uploads the call,
   * records `step`'s kernels (timed as selection), runs attention over the selection they wrote
   * (timed as attention) and reads back the output, lse and selection. `extraBytesPerSlot` is
   * the largest scratch buffer per KV slot the step allocates (for chunking).
   */
  async selectionAttention(
    input: AttentionInput,
    step: GpuSelectionStep,
    options: {
      extraBytesPerSlot?: number;
      diagnostics?: Readonly<Record<string, number>>;
      /** Attention over the selection instead of `runSparse(resident, selection)` (e.g. over a masked block form the step also wrote); resolves with its time. */
      attend?: (resident: ResidentAttention, selection: GpuSelection) => Promise<number>;
    } = {},
  ): Promise<SparseAttentionResult> {
    const d = validateAttentionInput(input);
    const resident = this.upload(input, d, options.extraBytesPerSlot ?? 0);
    try {
      const { selection: gpuSelection, ms: selectionMs } = await this.runSelection(resident, step);
      try {
        const attentionMs = await (options.attend ?? ((r, s) => this.runSparse(r, s)))(resident, gpuSelection);
        const { output, lse, selection } = await this.readResults(resident, gpuSelection);
        return selectionResult(d, { output, lse }, selection, { selectionMs, attentionMs }, this.info, options.diagnostics);
      } finally {
        this.releaseSelection(gpuSelection);
      }
    } finally {
      this.release(resident);
    }
  }

  /** Runs a selection step on a resident call; the selection stays on the GPU (free it with `releaseSelection`). */
  async runSelection(resident: ResidentAttention, step: GpuSelectionStep): Promise<{ selection: GpuSelection; ms: number }> {
    const d = resident.dims;
    const layout: Selection = {
      ...step.layout,
      batch: d.batch,
      heads: step.layout.headScope === 'kv' ? d.kvHeads : d.queryHeads,
      keySeq: d.keySeq,
      offsets: new Int32Array(d.batch * (step.layout.headScope === 'kv' ? d.kvHeads : d.queryHeads) * step.layout.rows + 1),
      indices: new Int32Array(0),
    };
    const perKvSlot = step.layout.headScope === 'kv' ? 1 : d.groupSize;
    const chunks = resident.chunks.map((chunk) => {
      const rows = chunk.slots * perKvSlot * step.layout.rows;
      return { rows, bounds: this.perCall(rows * 2 * 4, STORAGE | COPY_SRC), indices: this.perCall(rows * Math.max(1, step.stride) * 4, STORAGE | COPY_SRC) };
    });
    const selection: GpuSelection = { layout, stride: step.stride, chunks };
    try {
      const ms = await this.runKernels(resident, (encoder) => step.encodeChunk({ ...encoder, target: chunks[encoder.index]! }));
      return { selection, ms };
    } catch (error) {
      this.releaseSelection(selection);
      throw error;
    }
  }

  /**
   * Records `encodeChunk` for every chunk of a resident call in one compute pass, submits it and
   * resolves with its time (see `timed`): for a family's own kernels (branch merges, scoring
   * passes) between the backend's steps.
   */
  async runKernels(resident: ResidentAttention, encodeChunk: (encoder: ChunkEncoder) => Promise<void> | void): Promise<number> {
    return this.timed(() =>
      this.encode(async (pass, transient) => {
        for (const [index, chunk] of resident.chunks.entries()) {
          await encodeChunk({
            pass,
            dims: resident.dims,
            chunk,
            index,
            pipeline: (code) => this.pipeline(code),
            uniform: (fields, values, floats) => this.uniform(fields, values, transient, floats),
            scratch: (bytes) => {
              const buffer = this.perCall(bytes, STORAGE | COPY_SRC | COPY_DST);
              transient.push(buffer);
              return buffer;
            },
            dispatch: (pipeline, buffers, x, y) => this.dispatch(pass, pipeline, buffers, x, y),
            bind: (pipeline, buffers) => this.bindGroup(pipeline, buffers),
          });
        }
      }),
    );
  }

  /**
   * The exact sparse executor over a GPU selection on a resident call; writes the chunks' `out`
   * and `lse` (or `targets[i]`'s, to keep several branches' outputs). Resolves with its time.
   */
  async runSparse(resident: ResidentAttention, selection: GpuSelection, targets?: readonly { out: GPUBuffer; lse: GPUBuffer }[]): Promise<number> {
    checkSelectionFits(selection.layout, resident.dims);
    if (selection.maskWords !== undefined) {
      const need = Math.ceil(selection.layout.blockSize / 32);
      if (selection.layout.kind !== 'block' || selection.maskWords !== need || selection.chunks.some((c) => !c.masks)) {
        throw new ConfigError(`a masked selection needs block rows, ${need} mask words per entry and masks in every chunk (got ${selection.layout.kind} rows, ${selection.maskWords} words)`);
      }
      const executor = this.executorFor(selection.layout, resident.dims);
      if (executor !== 'key-blocks') throw new ConfigError(`a masked block selection runs on the key-block executor only; this call takes '${executor}'`);
    }
    return this.timed(() => this.encodeSparse(resident, selection.layout, selection.chunks, selection.stride, targets, selection.maskWords));
  }

  /** Reads a GPU selection back as core's `Selection` (CSR). */
  async readSelection(selection: GpuSelection): Promise<Selection> {
    if (selection.maskWords !== undefined) throw new Error('readSelection: a masked block selection has no Selection form; read the token selection it was made from');
    return this.readSelectionRows(selection.layout, selection.chunks, selection.layout.rows);
  }

  /**
   * A selection built on the host, uploaded for a resident call: the GPU selection `runSparse` and
   * `readSelection` take (a decoder's rows built from state it keeps, e.g. HiP's cached masks).
   * Checked against the call first (`ShapeError` / `ConfigError`); free it with {@link releaseSelection}.
   */
  uploadSelection(resident: ResidentAttention, selection: Selection): GpuSelection {
    const d = resident.dims;
    checkSelectionFits(selection, d);
    validateSelection(selection);
    return { layout: selection, stride: maxRowLength(selection), chunks: resident.chunks.map((chunk) => this.uploadSelectionChunk(selection, d, chunk)) };
  }

  /** Frees a GPU selection's buffers (after the submission inside {@link oneSubmission}). */
  releaseSelection(selection: GpuSelection): void {
    for (const b of selection.chunks) this.discard(b.bounds, b.indices, ...(b.masks ? [b.masks] : []));
  }

  /**
   * A storage buffer (zero, like a new one) for work spanning several calls, e.g. a branch's
   * output that a merge reads: give it back with {@link discard}. It is kept for reuse like the
   * backend's own per-call buffers (small ones, and large ones up to {@link keptBufferBytes}), and
   * a reused one is zeroed on the GPU at the next submission: fill it with kernels, not
   * `queue.writeBuffer`.
   */
  scratchBuffer(bytes: number): GPUBuffer {
    return this.perCall(bytes, STORAGE | COPY_SRC | COPY_DST);
  }

  /**
   * Frees buffers once the work recorded with them has run: at once outside {@link oneSubmission}
   * (every other call has waited for its work), after its submission inside it. Small per-call
   * buffers of this backend are kept for reuse instead (see `spares`).
   */
  discard(...buffers: GPUBuffer[]): void {
    if (this.recording) this.recording.transient.push(...buffers);
    else this.recycle(buffers);
  }

  /** Reads a resident call's output `[B, Hq, Sq, Dv]` and log-sum-exp `[B, Hq, Sq]`. */
  async readOutput(resident: ResidentAttention): Promise<{ output: Tensor; lse: Float32Array }> {
    return outputFrom(resident, await this.readAll(outputReads(resident)));
  }

  /**
   * A step's results in one readback: the output and lse as {@link readOutput}, and the selection
   * as {@link readSelection} (a decoder's step reads both: one round trip instead of two).
   */
  async readResults(resident: ResidentAttention, selection: GpuSelection): Promise<{ output: Tensor; lse: Float32Array; selection: Selection }> {
    if (selection.maskWords !== undefined) throw new Error('readResults: a masked block selection has no Selection form; read the token selection it was made from');
    const outputs = outputReads(resident);
    const data = await this.readAll([...outputs, ...selectionReads(selection.chunks)]);
    return { ...outputFrom(resident, data.slice(0, outputs.length)), selection: selectionFrom(selection.layout, selection.chunks, selection.layout.rows, data.slice(outputs.length)) };
  }

  /** Frees a resident call's buffers. */
  release(resident: ResidentAttention): void {
    for (const c of resident.chunks) destroyAll(c.q, c.k, c.v, c.out, c.lse);
  }

  /**
   * The buffer pool `owner` (a method id) keeps between calls, for a call's large scratch: the
   * next call of the same shape allocates nothing. A call that finds it borrowed (calls
   * overlapping in time) gets a fresh pool, freed when returned. Pair with {@link returnPool};
   * {@link releaseScratch} frees the kept pools.
   */
  borrowPool(owner: string): GpuBufferPool {
    const kept = this.keptPools.get(owner);
    if (kept?.busy) return new GpuBufferPool(this.context.device);
    if (kept) {
      kept.busy = true;
      return kept.pool;
    }
    const pool = new GpuBufferPool(this.context.device);
    this.keptPools.set(owner, { pool, busy: true });
    return pool;
  }

  /** Gives back a pool from {@link borrowPool}: the kept one stays for the next call, a fresh one is freed. */
  returnPool(owner: string, pool: GpuBufferPool): void {
    const kept = this.keptPools.get(owner);
    if (kept?.pool === pool) kept.busy = false;
    else pool.destroy();
  }

  /** Runs `use` with the pool `owner` keeps ({@link borrowPool}), given back when `use` settles, whether or not it throws. */
  async withPool<T>(owner: string, use: (pool: GpuBufferPool) => Promise<T>): Promise<T> {
    const pool = this.borrowPool(owner);
    try {
      return await use(pool);
    } finally {
      this.returnPool(owner, pool);
    }
  }

  /** Frees the scratch kept between calls (the key-block executor's, families' pools not borrowed now); allocated again when needed. */
  releaseScratch(): void {
    for (const list of this.spares.values()) destroyAll(...list);
    this.spares.clear();
    this.spareBytes = 0;
    for (const b of this.largeSpares) this.dirty.delete(b);
    destroyAll(...this.largeSpares.splice(0));
    this.largeSpareBytes = 0;
    this.bindGroups.clear();
    for (const [owner, kept] of this.keptPools) {
      if (kept.busy) continue;
      kept.pool.destroy();
      this.keptPools.delete(owner);
    }
    const kept = this.keyBlockScratch;
    if (!kept || kept.busy) return;
    destroyAll(kept.items, kept.partOut, kept.partLse);
    this.keyBlockScratch = undefined;
  }

  /** Frees the device. */
  destroy(): void {
    this.releaseScratch();
    this.context.device.destroy();
  }

  private allocate(d: AttentionDims, extraBytesPerSlot: number, fill: (chunk: ResidentChunk) => void): ResidentAttention {
    const g = d.groupSize;
    const perSlot = 4 * Math.max(g * d.querySeq * d.headDim, g * d.querySeq * d.valueDim, d.keySeq * d.headDim, d.keySeq * d.valueDim) + 0;
    const largest = Math.max(perSlot, extraBytesPerSlot);
    if (largest > this.context.maxBinding) {
      throw new ConfigError(`one KV head's tensors need ${largest} bytes, above the device's largest buffer binding (${this.context.maxBinding} bytes)`);
    }
    const slotsPerChunk = Math.max(1, Math.floor(this.context.maxBinding / largest));
    const total = d.batch * d.kvHeads;
    const chunks: ResidentChunk[] = [];
    for (let slot0 = 0; slot0 < total; slot0 += slotsPerChunk) {
      const slots = Math.min(slotsPerChunk, total - slot0);
      const chunk: ResidentChunk = {
        slot0,
        slots,
        q: this.buffer(slots * g * d.querySeq * d.headDim * 4, STORAGE | COPY_DST),
        k: this.buffer(slots * d.keySeq * d.headDim * 4, STORAGE | COPY_DST | COPY_SRC),
        v: this.buffer(slots * d.keySeq * d.valueDim * 4, STORAGE | COPY_DST | COPY_SRC),
        out: this.buffer(slots * g * d.querySeq * d.valueDim * 4, STORAGE | COPY_SRC),
        lse: this.buffer(slots * g * d.querySeq * 4, STORAGE | COPY_SRC),
      };
      fill(chunk);
      chunks.push(chunk);
    }
    return { dims: d, chunks };
  }

  /**
   * The flash-attention kernel in `lists` mode with a family's hooks (its own tiling of queries
   * and keys, see `FlashAttentionListHooks`), at the tile shape and value chunk this backend uses
   * for its own executors, checked against the device's workgroup memory.
   */
  listAttentionKernel(d: AttentionDims, hooks: FlashAttentionListHooks): { code: string; tile: TileShape } {
    return this.attentionKernel('lists', d, 64, hooks);
  }

  private attentionKernel(mode: FlashAttentionKernelOptions['mode'], d: AttentionDims, rowsNeeded: number, hooks?: FlashAttentionListHooks, masked = false): { code: string; tile: TileShape } {
    // Generating the source takes 30–50 µs, a good part of a decode step's host time: kept per
    // shape (the `lists` mode's hooks are the caller's; it generates each time).
    const key = hooks ? undefined : `${mode}:${d.headDim}:${d.valueDim}:${rowsNeeded > 16}:${this.tuning.chunk}x${this.tuning.valueChunk}:${masked}`;
    const known = key === undefined ? undefined : this.kernelSources.get(key);
    if (known) return known;
    const found = this.generateAttentionKernel(mode, d, rowsNeeded, hooks, masked);
    if (key !== undefined) this.kernelSources.set(key, found);
    return found;
  }

  private generateAttentionKernel(mode: FlashAttentionKernelOptions['mode'], d: AttentionDims, rowsNeeded: number, hooks?: FlashAttentionListHooks, masked = false): { code: string; tile: TileShape } {
    // Head dims that are not multiples of 4 take the scalar-load kernel, whose 16-row variant
    // stalls SwiftShader until Chromium drops the device (a 1-query-row block selection at D = 18
    // ran 170 s); they always use 64-row tiles, whose scalar variant runs everywhere (idle rows
    // are masked), at some cost for short calls.
    const scalar = d.headDim % 4 !== 0 || d.valueDim % 4 !== 0;
    for (const rows of rowsNeeded > 16 || scalar ? ([64, 16] as const) : ([16] as const)) {
      for (const { chunk, valueChunk } of [this.tuning, SMALL_TUNING]) {
        const options: FlashAttentionKernelOptions = { mode, headDim: d.headDim, valueDim: d.valueDim, tile: { rows, chunk }, valueChunk, ...(hooks ? { hooks } : {}), ...(masked ? { masked } : {}) };
        if (flashAttentionWorkgroupBytes(options) <= this.context.maxWorkgroupBytes) return { code: flashAttentionWgsl(options), tile: options.tile };
      }
    }
    throw new ConfigError(`valueDim ${d.valueDim} needs more workgroup memory than the device's ${this.context.maxWorkgroupBytes} bytes`);
  }

  private async encodeDense(resident: ResidentAttention): Promise<Encoded> {
    const d = resident.dims;
    const { code, tile } = this.attentionKernel('dense', d, d.querySeq);
    const pipeline = await this.pipeline(code);
    return this.encode(async (pass, uniforms) => {
      for (const chunk of resident.chunks) {
        const slots = chunk.slots * d.groupSize;
        const [x, y] = dispatchGrid(Math.ceil(d.querySeq / tile.rows) * slots);
        const params = this.uniform(ATTENTION_PARAMS, { ...attentionParams(d, chunk), slots, tilesX: x }, uniforms);
        this.dispatch(pass, pipeline, [params, chunk.q, chunk.k, chunk.v, chunk.out, chunk.lse], x, y);
      }
    });
  }

  /** Which executor runs a selection of this layout (see {@link sparseExecutor}). */
  executorFor(selection: Pick<Selection, 'kind' | 'blockSize' | 'headScope' | 'rows' | 'queryBlockSize'>, d: AttentionDims): SparseExecutor {
    if (this.sparseExecutor === 'split-k' || (this.sparseExecutor === 'auto' && d.querySeq <= SPLIT_K_MAX_QUERIES)) return 'split-k';
    const vectors = (selection.headScope === 'kv' ? d.groupSize : 1) * selection.queryBlockSize;
    if (selection.kind !== 'block' || vectors > 16 || this.sparseExecutor === 'rows') return 'rows';
    if (this.sparseExecutor === 'key-blocks') return 'key-blocks';
    return selection.rows >= 64 && selection.blockSize >= 16 && vectors <= 16 ? 'key-blocks' : 'rows';
  }

  private async encodeSparse(resident: ResidentAttention, selection: Selection, buffers: readonly SelectionBuffers[], stride: number, targets?: readonly { out: GPUBuffer; lse: GPUBuffer }[], maskWords?: number): Promise<Encoded> {
    const d = resident.dims;
    const executor = this.executorFor(selection, d);
    if (executor === 'key-blocks') return this.encodeKeyBlocks(resident, selection, buffers, stride, targets, maskWords);
    if (executor === 'split-k') return this.encodeSplitK(resident, selection, buffers, stride, targets);
    const scopeKv = selection.headScope === 'kv';
    const tileRows = (scopeKv ? d.groupSize : 1) * selection.queryBlockSize;
    const { code, tile } = this.attentionKernel('csr', d, tileRows);
    const pipeline = await this.pipeline(code);
    const subTiles = Math.ceil(Math.min(tileRows, (scopeKv ? d.groupSize : 1) * d.querySeq) / tile.rows);
    return this.encode(async (pass, uniforms) => {
      for (const [i, chunk] of resident.chunks.entries()) {
        const slots = chunk.slots * (scopeKv ? 1 : d.groupSize);
        const [x, y] = dispatchGrid(slots * selection.rows * subTiles);
        const params = this.uniform(
          ATTENTION_PARAMS,
          {
            ...attentionParams(d, chunk),
            slots,
            tilesX: x,
            selRows: selection.rows,
            queryBlockSize: selection.queryBlockSize,
            blockSize: selection.blockSize,
            scopeKv: scopeKv ? 1 : 0,
            kindBlock: selection.kind === 'block' ? 1 : 0,
            subTiles,
          },
          uniforms,
        );
        const b = buffers[i]!;
        const target = targets?.[i] ?? chunk;
        this.dispatch(pass, pipeline, [params, chunk.q, chunk.k, chunk.v, target.out, target.lse, b.bounds, b.indices], x, y);
      }
    });
  }

  /**
   * The split-K executor for a few queries per head (decode steps): every query row's selected
   * keys are split into partitions scored by separate workgroups (`decode-split-k-wgsl.ts`,
   * `keys: 'selection'`), then merged into the chunk's `out` and `lse`, so one decode query is
   * spread over many workgroups where the rows executor would give it one.
   */
  private async encodeSplitK(resident: ResidentAttention, selection: Selection, buffers: readonly SelectionBuffers[], stride: number, targets?: readonly { out: GPUBuffer; lse: GPUBuffer }[]): Promise<Encoded> {
    const d = resident.dims;
    const block = selection.kind === 'block';
    const rowKeys = Math.max(1, stride) * (block ? selection.blockSize : 1);
    const record = decodePartialRecord(d.valueDim);
    const [partialKernel, merge] = await Promise.all([
      this.pipeline(decodePartialWgsl({ headDim: d.headDim, valueDim: d.valueDim, keys: 'selection' })),
      this.pipeline(decodeMergeWgsl(d.valueDim)),
    ]);
    return this.encode(async (pass, transient) => {
      for (const [i, chunk] of resident.chunks.entries()) {
        const rows = chunk.slots * d.groupSize * d.querySeq;
        // Partitions for this chunk's rows, so that each dispatch fills the GPU (see `runDecodeAttention`).
        const plan = splitKPartitions(rows, rowKeys);
        // Every (row, partition) record is written by the partial kernel: no clear needed.
        const partial = this.perCall(rows * plan.partitions * record * 4, STORAGE, { cleared: false });
        transient.push(partial);
        const [px, py] = dispatchGrid(rows * plan.partitions);
        const params = this.uniform(
          DECODE_SELECTION_PARAMS,
          {
            ...attentionParams(d, chunk),
            slots: chunk.slots * d.groupSize,
            partitions: plan.partitions,
            partitionSize: plan.partitionSize,
            selRows: selection.rows,
            queryBlockSize: selection.queryBlockSize,
            scopeKv: selection.headScope === 'kv' ? 1 : 0,
            kindBlock: block ? 1 : 0,
            blockSize: selection.blockSize,
            tilesX: px,
          },
          transient,
        );
        const b = buffers[i]!;
        const target = targets?.[i] ?? chunk;
        this.dispatch(pass, partialKernel, [params, chunk.q, chunk.k, chunk.v, b.bounds, b.indices, partial], px, py);
        const [mx, my] = decodeMergeGrid(rows, d.valueDim);
        this.dispatch(pass, merge, [this.uniform(DECODE_MERGE_PARAMS, { rows, partitions: plan.partitions, tilesX: mx }, transient), partial, target.out, target.lse], mx, my);
      }
    });
  }

  /**
   * The key-block-major executor (`gather-lists-wgsl.ts`): per window of selection rows whose
   * partials fit one binding, count → scan → scatter the (row, entry) items into per-(slot, block)
   * lists, attend each list's 64-query tiles over its block, merge each query's partials.
   */
  private async encodeKeyBlocks(resident: ResidentAttention, selection: Selection, buffers: readonly SelectionBuffers[], stride: number, targets?: readonly { out: GPUBuffer; lse: GPUBuffer }[], maskWords?: number): Promise<Encoded> {
    const d = resident.dims;
    const scopeKv = selection.headScope === 'kv';
    const vectors = (scopeKv ? d.groupSize : 1) * selection.queryBlockSize;
    const blocks = Math.ceil(d.keySeq / selection.blockSize);
    const width = Math.max(1, stride);
    const { code, tile } = this.attentionKernel('gather', d, 64, undefined, maskWords !== undefined);
    const itemsPerTile = Math.max(1, Math.floor(tile.rows / vectors));
    const [attend, listPipelines, merge] = await Promise.all([this.pipeline(code), blockListPipelines((c) => this.pipeline(c)), this.pipeline(gatherMergeWgsl(d.valueDim))]);
    // Partials (out + lse) of one row: stride entries × vectors; a window's must fit one binding.
    const rowBytes = 4 * width * vectors * (d.valueDim + 1);
    const cap = Math.min(this.context.maxBinding, this.keyBlockWindowBytes);
    // The passes are recorded as steps so that `keyBlockProfile` can time each one on its own.
    const owned: GPUBuffer[] = [];
    const scratch = (bytes: number) => {
      const buffer = this.perCall(bytes, STORAGE);
      owned.push(buffer);
      return buffer;
    };
    // The window buffers, sized for the largest chunk's window, from the kept scratch when free.
    const largestWindow = Math.max(...resident.chunks.map((c) => Math.min(c.slots * (scopeKv ? 1 : d.groupSize) * selection.rows, Math.floor(cap / rowBytes), 1 << 22)), 1);
    const sizes = { items: largestWindow * width * 4, partOut: largestWindow * width * vectors * d.valueDim * 4, partLse: largestWindow * width * vectors * 4 };
    let pooled = false;
    let windowBuffers: { items: GPUBuffer; partOut: GPUBuffer; partLse: GPUBuffer };
    const kept = this.keyBlockScratch;
    if (kept && !kept.busy && kept.items.size >= sizes.items && kept.partOut.size >= sizes.partOut && kept.partLse.size >= sizes.partLse) {
      windowBuffers = kept;
      pooled = true;
    } else if (!kept?.busy) {
      if (kept) destroyAll(kept.items, kept.partOut, kept.partLse);
      windowBuffers = { items: this.buffer(sizes.items, STORAGE), partOut: this.buffer(sizes.partOut, STORAGE), partLse: this.buffer(sizes.partLse, STORAGE) };
      this.keyBlockScratch = { ...windowBuffers, busy: false };
      pooled = true;
    } else {
      windowBuffers = { items: scratch(sizes.items), partOut: scratch(sizes.partOut), partLse: scratch(sizes.partLse) };
    }
    if (pooled) this.keyBlockScratch!.busy = true;
    const release = () => {
      if (pooled && this.keyBlockScratch) this.keyBlockScratch.busy = false;
    };
    const steps: { readonly name: string; readonly record: (pass: GPUComputePassEncoder) => void }[] = [];
    const step = (name: string, pipeline: GPUComputePipeline, bindings: readonly (GPUBuffer | undefined)[], [x, y]: readonly [number, number]) => {
      steps.push({ name, record: (pass) => this.dispatch(pass, pipeline, bindings, x, y) });
    };
    const recorder: BlockListRecorder = { scratch, uniform: (fields, values) => this.uniform(fields, values, owned), run: step };
    for (const [i, chunk] of resident.chunks.entries()) {
      const selSlots = chunk.slots * (scopeKv ? 1 : d.groupSize);
      const chunkRows = selSlots * selection.rows;
      // At most 2²² rows a window, so the count/scatter permutation (rows · spread) fits a u32.
      const windowRows = Math.max(1, Math.min(chunkRows, Math.floor(cap / rowBytes), 1 << 22));
      const { items, partOut, partLse } = windowBuffers;
      const b = buffers[i]!;
      const target = targets?.[i] ?? chunk;
      for (let rowStart = 0; rowStart < chunkRows; rowStart += windowRows) {
        const rows = Math.min(windowRows, chunkRows - rowStart);
        const window = { rowStart, rows, stride: width, selRows: selection.rows, blocks, itemsPerTile, vectors, queryBlockSize: selection.queryBlockSize, querySeq: d.querySeq, groupSize: d.groupSize, scopeKv };
        // Sorted lists only pay off where a block spans several key tiles (the diagonal block's
        // tiles of consecutive queries stop at their last query); a block of ≤ 64 keys is one tile.
        const { listMeta, maxTiles, params } = recordBlockLists(recorder, listPipelines, b, items, window, { sort: selection.blockSize > TILE_COLUMNS });
        const tileGrid = dispatchGrid(maxTiles);
        const attendParams = params(tileGrid, GATHER_ATTENTION_PARAMS, { ...attentionParams(d, chunk), blockSize: selection.blockSize, maskWords: maskWords ?? 0 });
        step('attend', attend, [attendParams, chunk.q, chunk.k, chunk.v, partOut, partLse, listMeta, items, maskWords !== undefined ? b.masks : undefined], tileGrid);
        const vectorGrid = dispatchGrid(Math.ceil((rows * vectors) / GATHER_MERGE_VECTORS));
        step('merge', merge, [params(vectorGrid), b.bounds, partOut, partLse, target.out, target.lse], vectorGrid);
      }
    }
    if (!this.keyBlockProfile) {
      const encoded = await this.encode(async (pass, transient) => {
        for (const s of steps) s.record(pass);
        transient.push(...owned);
      });
      return { ...encoded, release };
    }
    // Profiling: every pass in its own timed submission (slower overall; for diagnosis only).
    const profile = this.keyBlockProfile;
    try {
      for (const s of steps) {
        const ms = await this.timed(async () => this.encode(async (pass) => s.record(pass)));
        profile[s.name] = (profile[s.name] ?? 0) + ms;
      }
    } catch (error) {
      release();
      throw error;
    }
    return { commands: [], transient: owned, release };
  }

  private async encodeBlockSelection(resident: ResidentAttention, config: BlockTopKConfig, buffers: readonly SelectionBuffers[], gpuJsPooling: boolean, kept?: KeptWindows<BlockPoolArray>): Promise<Encoded> {
    const d = resident.dims;
    const blocks = Math.ceil(d.keySeq / config.blockSize);
    const rows = Math.ceil(d.querySeq / config.queryBlockSize);
    const stride = maxPicksPerRow(config, blocks);
    // Always 64 rows: the scoring kernel loads scalars, and the scalar 16-row tile (64 threads)
    // stalls SwiftShader until Chromium drops the device (block top-k with groupSize ·
    // queryBlockSize ≤ 16 did); idle rows are masked.
    const scoreTile: TileShape = { rows: 64, chunk: 16 };
    const bridge = gpuJsPooling ? this.gpuJs.bridge : undefined;
    const quest = config.scoring === 'quest';
    // gpu.js submits its pooling kernels to the shared queue now, ahead of the pass encoded below.
    let pooledByGpuJs: PooledBuffers[] | undefined;
    if (bridge) {
      try {
        pooledByGpuJs = [];
        for (const chunk of resident.chunks) {
          pooledByGpuJs.push(await poolKeyBlocksGpuJs(bridge, chunk.k, { slots: chunk.slots, keySeq: d.keySeq, keyStride: chunkKeyStride(chunk, d), blockSize: config.blockSize, blocks, dim: d.headDim }, quest));
        }
      } catch (error) {
        // A gpu.js kernel that does not build on this device: the WGSL kernel takes over for good, and results say why.
        for (const p of pooledByGpuJs ?? []) for (const r of [p.mean, p.max, p.min]) r?.delete();
        pooledByGpuJs = undefined;
        this.gpuJs = { reason: `gpu.js pooling failed: ${(error as Error).message.split('\n')[0]}` };
      }
    }
    // Calls of a few queries (decode steps) score with the decode-shaped kernels (see block-score-decode-wgsl.ts).
    const decodeShaped = d.querySeq <= SPLIT_K_MAX_QUERIES;
    const [pool, score, topK, logitsKernel, massKernel] = await Promise.all([
      this.pipeline(blockPoolWgsl()),
      decodeShaped ? undefined : this.pipeline(blockScoreWgsl({ headDim: d.headDim, scoring: config.scoring, tile: scoreTile })),
      this.pipeline(blockTopKWgsl(stride)),
      decodeShaped ? this.pipeline(blockLogitsWgsl({ headDim: d.headDim, scoring: config.scoring })) : undefined,
      decodeShaped ? this.pipeline(blockMassWgsl()) : undefined,
    ]);
    const decode = logitsKernel && massKernel ? { logits: logitsKernel, mass: massKernel } : undefined;
    const encoded = await this.encode(async (pass, uniforms) => {
      for (const [i, chunk] of resident.chunks.entries()) {
        let mean: GPUBuffer, max: GPUBuffer | undefined, min: GPUBuffer | undefined;
        const fromGpuJs = pooledByGpuJs?.[i];
        if (fromGpuJs) {
          ({ buffer: mean } = fromGpuJs.mean);
          max = fromGpuJs.max?.buffer;
          min = fromGpuJs.min?.buffer;
        } else {
          // A decoder's kept blocks: only the blocks from `first` on are pooled (into its buffers).
          const first = kept ? Math.min(kept.first, blocks) : 0;
          if (kept) {
            mean = kept.buffers.mean[i]!;
            max = kept.buffers.max[i]!;
            min = kept.buffers.min[i]!;
          } else {
            const pooledBytes = chunk.slots * blocks * d.headDim * 4;
            mean = this.buffer(pooledBytes, STORAGE);
            max = this.buffer(pooledBytes, STORAGE);
            min = this.buffer(pooledBytes, STORAGE);
            uniforms.push(mean, max, min);
          }
          if (blocks > first) {
            const [px, py] = dispatchGrid(Math.ceil((chunk.slots * (blocks - first) * d.headDim) / POOL_THREADS));
            const poolParams = this.uniform(POOL_PARAMS, { keySeq: d.keySeq, keyStride: chunkKeyStride(chunk, d), blockSize: config.blockSize, blocks: blocks - first, first, slots: chunk.slots, tilesX: px, dim: d.headDim }, uniforms);
            this.dispatch(pass, pool, [poolParams, chunk.k, mean, max, min], px, py);
          }
        }
        const scores = this.buffer(chunk.slots * rows * blocks * 4, STORAGE);
        uniforms.push(scores);
        const [sx, sy] = dispatchGrid(chunk.slots * rows);
        const common = { querySeq: d.querySeq, queryOffset: d.queryOffset, slots: chunk.slots, selRows: rows, queryBlockSize: config.queryBlockSize, blockSize: config.blockSize, blocks };
        // Quest reads [max | min]; mean scoring reads only the means (binding 3 is unused there).
        const pooled = quest ? [max, min] : [mean, undefined];
        if (decode) {
          // Decode-shaped calls: logits spread over the GPU, then one reduction per row.
          const tileRows = d.groupSize * Math.min(config.queryBlockSize, d.querySeq);
          const logits = this.buffer(chunk.slots * rows * tileRows * blocks * 4, STORAGE);
          uniforms.push(logits);
          const [lx, ly] = dispatchGrid(Math.ceil((chunk.slots * rows * tileRows * blocks) / BLOCK_DECODE_THREADS));
          const values = { ...common, groupSize: d.groupSize, tileRows, scale: d.scale };
          this.dispatch(pass, decode.logits, [this.uniform(BLOCK_DECODE_PARAMS, { ...values, tilesX: lx }, uniforms), chunk.q, pooled[0], pooled[1], logits], lx, ly);
          this.dispatch(pass, decode.mass, [this.uniform(BLOCK_DECODE_PARAMS, { ...values, tilesX: sx }, uniforms), logits, scores], sx, sy);
        } else {
          const scoreParams = this.uniform(SCORE_PARAMS, { ...common, keySeq: d.keySeq, groupSize: d.groupSize, tilesX: sx, scale: d.scale }, uniforms);
          this.dispatch(pass, score!, [scoreParams, chunk.q, pooled[0], pooled[1], scores], sx, sy);
        }
        const topKParams = this.uniform(TOP_K_PARAMS, { ...common, tilesX: sx, topK: config.topK, sinkBlocks: config.sinkBlocks, stride }, uniforms);
        const b = buffers[i]!;
        this.dispatch(pass, topK, [topKParams, scores, b.bounds, b.indices], sx, sy);
      }
    });
    const results: GpuJsBuffer[] = (pooledByGpuJs ?? []).flatMap((p) => [p.mean, ...(p.max ? [p.max] : []), ...(p.min ? [p.min] : [])]);
    return { ...encoded, release: () => results.forEach((r) => r.delete()) };
  }

  private async readSelectionRows(layout: Selection, buffers: readonly SelectionBuffers[], rows: number): Promise<Selection> {
    return selectionFrom(layout, buffers, rows, await this.readAll(selectionReads(buffers)));
  }

  private uploadSelectionChunk(selection: Selection, d: AttentionDims, chunk: ResidentChunk): SelectionBuffers {
    const perKvSlot = selection.headScope === 'kv' ? 1 : d.groupSize;
    const rowStart = chunk.slot0 * perKvSlot * selection.rows;
    const rowCount = chunk.slots * perKvSlot * selection.rows;
    const base = selection.offsets[rowStart]!;
    const bounds = new Uint32Array(2 * rowCount);
    for (let r = 0; r < rowCount; r++) {
      bounds[2 * r] = selection.offsets[rowStart + r]! - base;
      bounds[2 * r + 1] = selection.offsets[rowStart + r + 1]! - base;
    }
    const indices = selection.indices.subarray(base, selection.offsets[rowStart + rowCount]!);
    const boundsBuffer = this.buffer(bounds.byteLength, STORAGE | COPY_DST | COPY_SRC);
    const indicesBuffer = this.buffer(indices.byteLength, STORAGE | COPY_DST | COPY_SRC);
    this.context.device.queue.writeBuffer(boundsBuffer, 0, bounds);
    if (indices.length > 0) this.context.device.queue.writeBuffer(indicesBuffer, 0, indices);
    return { rows: rowCount, bounds: boundsBuffer, indices: indicesBuffer };
  }

  /**
   * Runs `body` with every call it makes on this backend (`runSelection`, `runSparse`,
   * `runKernels`, `runDense`, ...) recorded into one compute pass and waited for once at the end,
   * instead of one submission and one wait per call: a decode step's selection and attention then
   * cost one round trip to the GPU, not one per call (each costs ~0.03–0.06 ms of host latency on the
   * H100, as much as a whole sparse decode step's kernels). Resolves with `body`'s value and
   * `ms`, from the start of `body` until the queue has run everything it recorded, and with
   * {@link gpuTiming} on a device with `timestamp-query` (`context.timestamps`) `gpuMs`: the GPU
   * time of the recorded passes, from each pass's first to its last timestamp, summed (no host
   * encoding, submission or wait: the figure CUDA-event timings give; read back after `ms` is taken).
   *
   * Inside `body`:
   * - the calls resolve with 0 ms: only the whole is timed;
   * - they record into one compute pass, in the order they are made: await each call before the
   *   next (calls started together would interleave their dispatches);
   * - a read (`read`, `readOutput`, `readSelection`) first submits what was recorded so far,
   *   and so does a dispatch once the host has recorded for {@link submitEarlyMs} since the last
   *   submit (the GPU then runs it while the host records the rest: a short body, such as a
   *   decode step, stays one submission);
   * - `device.queue.writeBuffer` takes effect at once, before the recorded commands: write what
   *   the recorded kernels read before recording them, and never rewrite a buffer a recorded
   *   kernel reads (the backend's own uniforms are fresh buffers per call);
   * - every call made on this backend is recorded, also by code that is not `body`'s: do not
   *   overlap other work on the backend with it. Calls do not nest.
   *
   * Validation errors of the recorded work become one exception at the end; a throwing `body`
   * submits nothing more, frees what it recorded and rethrows.
   */
  async oneSubmission<T>(body: () => Promise<T>): Promise<{ value: T; ms: number; gpuMs?: number }> {
    if (this.recording) throw new Error('oneSubmission: a submission is being recorded already (oneSubmission does not nest)');
    const { device } = this.context;
    const timer = this.gpuTiming ? this.passTimer() : undefined;
    const recording: Recording = { commands: [], transient: [], releases: [], submitted: performance.now(), passes: 0, ...(timer ? { timer } : {}) };
    this.recording = recording;
    device.pushErrorScope('validation');
    const started = performance.now();
    let value: T;
    let ms: number;
    let errors: Promise<GPUError | null> | undefined;
    try {
      value = await body();
      this.recording = undefined;
      closePass(recording);
      device.queue.submit([...this.clears(), ...recording.commands.splice(0), ...resolvePassTimes(device, recording)]);
      // Validation errors come from the calls themselves, all made by now: the scope closes here
      // and its answer arrives while the queue drains (one round trip less per call).
      errors = device.popErrorScope();
      await device.queue.onSubmittedWorkDone();
      ms = performance.now() - started;
    } catch (error) {
      await (errors ?? device.popErrorScope());
      throw error;
    } finally {
      this.recording = undefined;
      this.recycle(recording.transient);
      for (const release of recording.releases) release();
    }
    const error = await errors;
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
    const passMs = await readPassTimes(recording);
    this.lastPassMs = passMs;
    const gpuMs = passMs?.reduce((a, b) => a + b, 0);
    return { value, ms, ...(gpuMs === undefined ? {} : { gpuMs }) };
  }

  /** The timestamp query set and its buffers (made on first use), where the device has `timestamp-query`. */
  private passTimer(): PassTimer | undefined {
    if (!this.context.timestamps) return undefined;
    if (!this.timer) {
      const { device } = this.context;
      this.timer = {
        querySet: device.createQuerySet({ type: 'timestamp', count: 2 * TIMED_PASSES }),
        resolve: this.buffer(16 * TIMED_PASSES, QUERY_RESOLVE | COPY_SRC),
        read: this.buffer(16 * TIMED_PASSES, MAP_READ | COPY_DST),
      };
    }
    return this.timer;
  }

  /**
   * The pass a call records into inside {@link oneSubmission}: it forwards to the recording's open
   * compute pass (opened on first use) and, once the host has recorded for {@link submitEarlyMs}
   * since the last submit, ends that pass after a dispatch and submits what was recorded, so the
   * GPU runs it while the host records the rest; the next dispatch goes to a new pass with the
   * call's pipeline and bind groups set again. (Only the calls the backend's kernels make.)
   */
  private recordingPass(recording: Recording): GPUComputePassEncoder {
    let pipeline: GPUComputePipeline | undefined;
    const groups = new Map<number, GPUBindGroup | null>();
    const open = (): GPUComputePassEncoder => {
      if (recording.pass) return recording.pass;
      recording.encoder = this.context.device.createCommandEncoder();
      const pass = recording.encoder.beginComputePass(timedPass(recording));
      recording.pass = pass;
      if (pipeline) pass.setPipeline(pipeline);
      for (const [index, group] of groups) pass.setBindGroup(index, group);
      return pass;
    };
    const forward: Pick<GPUComputePassEncoder, 'setPipeline' | 'setBindGroup' | 'dispatchWorkgroups'> = {
      setPipeline: (next) => {
        pipeline = next;
        open().setPipeline(next);
      },
      setBindGroup: (index: number, group: GPUBindGroup | null) => {
        groups.set(index, group);
        open().setBindGroup(index, group);
      },
      dispatchWorkgroups: (x, y, z) => {
        open().dispatchWorkgroups(x, y, z);
        if (performance.now() - recording.submitted >= this.submitEarlyMs) {
          this.flushRecording();
          recording.submitted = performance.now();
        }
      },
    };
    return forward as GPUComputePassEncoder;
  }

  /** Submits what {@link oneSubmission} has recorded so far (before a read: the queue runs in order). */
  private flushRecording(): void {
    if (this.recording) closePass(this.recording);
    const commands = this.recording?.commands.splice(0);
    if (commands?.length) this.context.device.queue.submit([...this.clears(), ...commands]);
  }

  /** Records one compute pass; `transient` collects buffers to free once the queue has run it. */
  private async encode(body: (pass: GPUComputePassEncoder, transient: GPUBuffer[]) => Promise<void>): Promise<Encoded> {
    const recording = this.recording;
    if (recording) {
      // Inside oneSubmission every call records into one open compute pass (dispatches in a pass
      // run in order and see each other's writes): no command encoder, pass and command buffer per call.
      const transient: GPUBuffer[] = [];
      await body(this.recordingPass(recording), transient);
      return { commands: [], transient };
    }
    const encoder = this.context.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const transient: GPUBuffer[] = [];
    await body(pass, transient);
    pass.end();
    return { commands: [encoder.finish()], transient };
  }

  /**
   * Encodes, submits and resolves with the milliseconds from the start of encoding until the queue
   * drained (GPU time plus encoding and one round trip; no uploads or readbacks). Validation
   * errors become exceptions.
   */
  private async timed(encode: () => Promise<Encoded>): Promise<number> {
    const { device } = this.context;
    const recording = this.recording;
    if (recording) {
      // Inside oneSubmission: recorded for its one submission, freed after it (only the whole is timed).
      // Reused spares are cleared once, at the head of the submission (none is reused twice in it:
      // what is freed inside oneSubmission comes back only after it).
      const { commands, transient, release } = await encode();
      recording.commands.push(...commands);
      recording.transient.push(...transient);
      if (release) recording.releases.push(release);
      return 0;
    }
    device.pushErrorScope('validation');
    // From before encoding: gpu.js kernels submit while a step is being encoded.
    const started = performance.now();
    let encoded: Encoded;
    try {
      encoded = await encode();
    } catch (error) {
      await device.popErrorScope();
      throw error;
    }
    const { commands, transient, release } = encoded;
    device.queue.submit([...this.clears(), ...commands]);
    // As in oneSubmission: the scope closes after the submit, answered while the queue drains.
    const errors = device.popErrorScope();
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - started;
    this.recycle(transient);
    release?.();
    const error = await errors;
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
    return ms;
  }

  private pipeline(code: string): Promise<GPUComputePipeline> {
    let found = this.pipelines.get(code);
    if (!found) {
      found = (async () => {
        const { device } = this.context;
        const module = device.createShaderModule({ code });
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((m) => m.type === 'error');
        if (errors.length > 0) {
          const lines = code.split('\n');
          throw new Error(`WGSL compilation failed:\n${errors.map((m) => `line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`).join('\n')}`);
        }
        return device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      })();
      this.pipelines.set(code, found);
    }
    return found;
  }

  /** Binds `buffers[i]` at binding i (`undefined` leaves a binding out: the kernel does not use it) and dispatches. */
  private dispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, buffers: readonly (GPUBuffer | GPUBufferBinding | undefined)[], x: number, y: number): void {
    const group = this.bindGroup(pipeline, buffers);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y);
  }

  /**
   * The bind group of `buffers` for `pipeline`, made once and kept (the last
   * {@link BIND_GROUP_CACHE} by use): calls on kept buffers (resident tensors, spares, a
   * decoder's state) bind the same groups step after step. Keys are object ids, never reused, so a
   * group of a destroyed buffer is never handed out again.
   */
  private bindGroup(pipeline: GPUComputePipeline, buffers: readonly (GPUBuffer | GPUBufferBinding | undefined)[]): GPUBindGroup {
    const key = [this.objectId(pipeline), ...buffers.map((b) => (!b ? '-' : 'buffer' in b ? `${this.objectId(b.buffer)}@${b.offset ?? 0}+${b.size ?? ''}` : this.objectId(b)))].join(',');
    const kept = this.bindGroups.get(key);
    if (kept) {
      this.bindGroups.delete(key);
      this.bindGroups.set(key, kept);
      return kept;
    }
    const entries: GPUBindGroupEntry[] = [];
    buffers.forEach((buffer, binding) => {
      // A buffer, or a range of one (offset a multiple of the device's storage offset alignment, 256 B by default).
      if (buffer) entries.push({ binding, resource: 'buffer' in buffer ? buffer : { buffer } });
    });
    let layout = this.layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    const group = this.context.device.createBindGroup({ layout, entries });
    this.bindGroups.set(key, group);
    if (this.bindGroups.size > BIND_GROUP_CACHE) this.bindGroups.delete(this.bindGroups.keys().next().value!);
    return group;
  }

  private objectId(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) {
      id = this.nextObjectId++;
      this.objectIds.set(o, id);
    }
    return id;
  }

  /**
   * A buffer for one call, freed with `recycle`: a kept spare of the same size and usage when
   * there is one (storage spares are cleared before the next submission, as a new buffer is zero,
   * unless `cleared: false` says the call writes all of it first), else a new buffer, kept as a
   * spare afterwards when small. Storage buffers get COPY_DST for the clear.
   */
  private perCall(bytes: number, usage: number, o: { readonly cleared?: boolean } = {}): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 4) * 4);
    const full = usage & STORAGE ? usage | COPY_DST : usage;
    if (size > SPARE_BUFFER_BYTES) {
      const at = this.largeSpares.findIndex((b) => b.size === size && b.usage === full);
      if (at >= 0) {
        const [reused] = this.largeSpares.splice(at, 1);
        this.largeSpareBytes -= size;
        if (full & STORAGE && o.cleared !== false) this.dirty.add(reused!);
        return reused!;
      }
      const buffer = this.buffer(size, full);
      this.recyclable.add(buffer);
      return buffer;
    }
    // First in, first out: a call sequence repeated (decode steps) takes back the same buffer for
    // the same use, so its bind groups are found kept.
    const reused = this.spares.get(`${size}:${full}`)?.shift();
    if (reused) {
      this.spareBytes -= size;
      if (full & STORAGE && o.cleared !== false) this.dirty.add(reused);
      return reused;
    }
    const buffer = this.buffer(size, full);
    this.recyclable.add(buffer);
    return buffer;
  }

  /** Keeps per-call buffers as spares (small ones and large ones, each up to its total cap), destroys the rest. */
  private recycle(buffers: readonly GPUBuffer[]): void {
    for (const buffer of buffers) {
      if (this.recyclable.has(buffer) && buffer.size > SPARE_BUFFER_BYTES) {
        this.keepLarge(buffer);
      } else if (this.recyclable.has(buffer) && this.spareBytes + buffer.size <= SPARE_TOTAL_BYTES) {
        const key = `${buffer.size}:${buffer.usage}`;
        const list = this.spares.get(key);
        if (list) list.push(buffer);
        else this.spares.set(key, [buffer]);
        this.spareBytes += buffer.size;
      } else {
        this.dirty.delete(buffer);
        buffer.destroy();
      }
    }
  }

  /** Keeps a large per-call buffer, freeing the oldest kept ones beyond `keptBufferBytes`. */
  private keepLarge(buffer: GPUBuffer): void {
    if (buffer.size > this.keptBufferBytes) {
      this.dirty.delete(buffer);
      buffer.destroy();
      return;
    }
    this.largeSpares.push(buffer);
    this.largeSpareBytes += buffer.size;
    while (this.largeSpareBytes > this.keptBufferBytes) {
      const oldest = this.largeSpares.shift()!;
      this.largeSpareBytes -= oldest.size;
      this.dirty.delete(oldest);
      oldest.destroy();
    }
  }

  /** One command buffer clearing the reused storage spares taken since the last submission (none if there are none). */
  private clears(): GPUCommandBuffer[] {
    if (this.dirty.size === 0) return [];
    const encoder = this.context.device.createCommandEncoder();
    for (const buffer of this.dirty) encoder.clearBuffer(buffer);
    this.dirty.clear();
    return [encoder.finish()];
  }

  private uniform(fields: readonly string[], values: Readonly<Record<string, number>>, keep: GPUBuffer[], floats: readonly string[] = ['scale']): GPUBuffer {
    const data = new ArrayBuffer(Math.ceil((fields.length * 4) / 16) * 16);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    fields.forEach((name, i) => {
      const value = values[name] ?? 0;
      if (floats.includes(name)) f32[i] = value;
      else u32[i] = value;
    });
    const buffer = this.perCall(data.byteLength, UNIFORM | COPY_DST);
    // A reused uniform buffer that already holds these values (the same call again: a decode
    // step's kernels mostly keep their parameters) is not written again.
    const last = this.uniformData.get(buffer);
    if (!last || last.some((x, i) => x !== u32[i])) {
      this.context.device.queue.writeBuffer(buffer, 0, data);
      this.uniformData.set(buffer, u32);
    }
    keep.push(buffer);
    return buffer;
  }

  private buffer(bytes: number, usage: number): GPUBuffer {
    return this.context.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage });
  }

  /** Reads the first `bytes` of a buffer (buffers are padded to at least 16 bytes) as float32. */
  async read(buffer: GPUBuffer, bytes = buffer.size): Promise<Float32Array> {
    return (await this.readAll([{ buffer, bytes }]))[0]!;
  }

  /**
   * Reads the first `bytes` of each buffer (default: all of it) as float32, in one copy into one
   * staging buffer and one map: one round trip to the GPU whatever the number of buffers (a
   * decoder's step reads its output, lse and selection per KV slot: 4 · B · Hkv reads).
   */
  async readAll(reads: readonly { readonly buffer: GPUBuffer; readonly bytes?: number }[]): Promise<Float32Array[]> {
    if (reads.length === 0) return [];
    const { device } = this.context;
    this.flushRecording();
    const sizes = reads.map((r) => Math.max(4, Math.ceil((r.bytes ?? r.buffer.size) / 4) * 4));
    const starts: number[] = [];
    let total = 0;
    for (const size of sizes) {
      starts.push(total);
      total += size;
    }
    // Small reads (a decode step's output, lse and selection) go through one kept staging buffer,
    // not a mappable buffer created and destroyed per read; a read while it is in use, or a larger
    // one, gets its own.
    const keep = total <= this.keptStagingBytes && !this.stagingBusy;
    let staging: GPUBuffer;
    if (keep) {
      if (!this.staging || this.staging.size < total) {
        this.staging?.destroy();
        this.staging = device.createBuffer({ size: Math.max(STAGING_MIN_BYTES, 2 ** Math.ceil(Math.log2(total))), usage: MAP_READ | COPY_DST });
      }
      staging = this.staging;
      this.stagingBusy = true;
    } else {
      staging = device.createBuffer({ size: Math.max(4, total), usage: MAP_READ | COPY_DST });
    }
    try {
      // A buffer that cannot be copied (no COPY_SRC, a size past its end) is a validation error:
      // an exception here, not zeros read from a copy that never ran.
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder();
      reads.forEach((r, i) => encoder.copyBufferToBuffer(r.buffer, 0, staging, starts[i]!, sizes[i]!));
      device.queue.submit([encoder.finish()]);
      const [error] = await Promise.all([device.popErrorScope(), staging.mapAsync(MAP_MODE_READ)]);
      if (error) {
        staging.unmap();
        throw new Error(`WebGPU validation error reading back ${reads.length} buffer(s): ${error.message}`);
      }
      const all = staging.getMappedRange(0, total).slice(0);
      staging.unmap();
      return sizes.map((size, i) => new Float32Array(all, starts[i]!, size / 4));
    } catch (error) {
      // A kept buffer whose read failed (validation, a lost device) is not reused.
      if (keep) {
        this.staging = undefined;
        staging.destroy();
      }
      throw error;
    } finally {
      if (keep) this.stagingBusy = false;
      else staging.destroy();
    }
  }
}

/** The buffers {@link GpuBackend.readOutput} reads: each chunk's output rows and lse. */
function outputReads(resident: ResidentAttention): { buffer: GPUBuffer; bytes: number }[] {
  const d = resident.dims;
  return resident.chunks.flatMap((chunk) => {
    const queries = chunk.slots * d.groupSize * d.querySeq;
    return [
      { buffer: chunk.out, bytes: queries * d.valueDim * 4 },
      { buffer: chunk.lse, bytes: queries * 4 },
    ];
  });
}

/** The output `[B, Hq, Sq, Dv]` and lse `[B, Hq, Sq]` from the reads of {@link outputReads}. */
function outputFrom(resident: ResidentAttention, data: readonly Float32Array[]): { output: Tensor; lse: Float32Array } {
  const d = resident.dims;
  const output = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const lse = new Float32Array(d.batch * d.queryHeads * d.querySeq);
  for (const [i, chunk] of resident.chunks.entries()) {
    const querySlot0 = chunk.slot0 * d.groupSize;
    output.set(data[2 * i]!, querySlot0 * d.querySeq * d.valueDim);
    lse.set(data[2 * i + 1]!, querySlot0 * d.querySeq);
  }
  return { output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], output), lse };
}

/** The buffers a selection's rows are read from: each chunk's row bounds and entries. */
function selectionReads(buffers: readonly SelectionBuffers[]): { buffer: GPUBuffer; bytes?: number }[] {
  return buffers.flatMap((b) => [{ buffer: b.bounds, bytes: b.rows * 2 * 4 }, { buffer: b.indices }]);
}

/** Core's `Selection` (`layout` with its offsets and indices) from the reads of {@link selectionReads}. */
function selectionFrom(layout: Selection, buffers: readonly SelectionBuffers[], rows: number, data: readonly Float32Array[]): Selection {
  const offsets = new Int32Array(layout.offsets.length);
  const parts: Uint32Array[] = [];
  let count = 0;
  let row = 0;
  const u32 = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < buffers.length; i++) {
    const bounds = u32(data[2 * i]!);
    const indices = u32(data[2 * i + 1]!);
    for (let r = 0; r < bounds.length / 2; r++) {
      const part = indices.subarray(bounds[2 * r]!, bounds[2 * r + 1]!);
      parts.push(part);
      count += part.length;
      offsets[++row] = count;
    }
  }
  if (row !== layout.batch * layout.heads * rows) throw new ShapeError(`GPU selection has ${row} rows, expected ${layout.batch * layout.heads * rows}`);
  const indices = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    indices.set(p, at);
    at += p.length;
  }
  return { ...layout, offsets, indices };
}

/** Staging widths of the attention kernel (see {@link GpuBackend.tuning}). */
export interface AttentionTuning {
  readonly chunk: number;
  readonly valueChunk: number;
}

/**
 * Fastest measured on the H100 with vec4 loads (bench/results): 16-wide q·k chunks and 16-key value
 * chunks (≈ 31 KiB of workgroup memory at D = 128); 32 × 16 was 5% slower, 32 × 32 7%.
 */
/** Options of {@link GpuBackend.runBlockTopK}. */
export interface BlockTopKRunOptions {
  /** Read the selection back (default true). */
  readonly readSelection?: boolean;
  /**
   * Pool with the WGSL kernel even where gpu.js is attached. gpu.js inlines a kernel's geometry
   * (the key count among it) as constants, so a call of a new length compiles a new kernel: a
   * decoder, whose key count grows every step, takes the WGSL kernel (its geometry is a uniform).
   */
  readonly wgslPooling?: boolean;
  /** Also read the call's output and lse, with the selection in one readback (`read`; implies reading the selection). */
  readonly readOutput?: boolean;
  /**
   * A decoder's kept pooled blocks (its `GpuWindowStore`, laid out for ⌈S / B⌉ blocks per slot):
   * blocks below `first` are read from them as they are, blocks `first …` (those completed since the
   * decoder's last step and the incomplete last one) are pooled into them. Takes the WGSL pooling.
   */
  readonly pooled?: KeptWindows<BlockPoolArray>;
}

/** The arrays block pooling writes per block: the mean keys and the per-channel key bounds (Quest's metadata), D floats each. */
export type BlockPoolArray = 'mean' | 'max' | 'min';

/** An executor of the sparse path (see {@link GpuBackend.sparseExecutor}). */
export type SparseExecutor = 'rows' | 'key-blocks' | 'split-k';

/** How the sparse executor runs selections (see {@link GpuBackend.sparseExecutor}). */
export type SparseExecutorMode = 'auto' | SparseExecutor;

/** Default of {@link GpuBackend.keyBlockWindowBytes}. */
const KEY_BLOCK_PARTIAL_BYTES = 2 ** 31;

/** Largest entry count of a CSR selection's rows. */
function maxRowLength(s: Selection): number {
  let most = 0;
  for (let r = 0; r + 1 < s.offsets.length; r++) most = Math.max(most, s.offsets[r + 1]! - s.offsets[r]!);
  return most;
}

const DEFAULT_TUNING: AttentionTuning = { chunk: 16, valueChunk: 16 };
/** What devices with WebGPU's 16 KiB default of workgroup memory get (16-row tiles). */
const SMALL_TUNING: AttentionTuning = { chunk: 16, valueChunk: 16 };

/** Recorded commands and the buffers that may be freed once they ran. */
/** Largest per-call buffer the backend keeps for reuse (see `GpuBackend.spares`). */
const SPARE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Most bytes of per-call buffers kept for reuse. */
const SPARE_TOTAL_BYTES = 64 * 1024 * 1024;
/** Default of {@link GpuBackend.keptBufferBytes}. */
const KEPT_BUFFER_BYTES = 8 * 1024 * 1024 * 1024;
/** Bind groups the backend keeps (least recently used dropped first). */
const BIND_GROUP_CACHE = 1024;

/** Reads up to this size share `readAll`'s kept staging buffer (a decode step's reads are tens of KiB), which starts at the minimum. */
const KEPT_STAGING_BYTES = 4 * 1024 * 1024;
const STAGING_MIN_BYTES = 64 * 1024;

/** Commands, buffers and releases {@link GpuBackend.oneSubmission} collects until its submission. */
interface Recording {
  commands: GPUCommandBuffer[];
  readonly transient: GPUBuffer[];
  readonly releases: (() => void)[];
  /** The compute pass the recorded calls share, open until a read or the submission. */
  encoder?: GPUCommandEncoder;
  pass?: GPUComputePassEncoder;
  /** When the recording last went to the queue (`performance.now()`; its start before that). */
  submitted: number;
  /** With `gpuTiming` on a device with timestamps: the query set the passes write to. */
  readonly timer?: PassTimer;
  /** Passes begun so far (each writes two timestamps when timed). */
  passes: number;
}

/** A timestamp query set of {@link TIMED_PASSES} passes and the buffers its values travel through. */
interface PassTimer {
  readonly querySet: GPUQuerySet;
  readonly resolve: GPUBuffer;
  readonly read: GPUBuffer;
}

/** Passes of one `oneSubmission` whose times are kept (a read inside it starts a new pass); more leave `gpuMs` out. */
const TIMED_PASSES = 256;

/** The next pass's descriptor: timestamps at its start and end while the recording's query set has room. */
function timedPass(recording: Recording): GPUComputePassDescriptor | undefined {
  if (!recording.timer) return undefined;
  const index = recording.passes++;
  if (index >= TIMED_PASSES) return undefined;
  return { timestampWrites: { querySet: recording.timer.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 } };
}

/** A command buffer that resolves the recording's timestamps into the readable buffer (none without them). */
function resolvePassTimes(device: GPUDevice, recording: Recording): GPUCommandBuffer[] {
  const { passes } = recording;
  if (!recording.timer || passes === 0 || passes > TIMED_PASSES) return [];
  const encoder = device.createCommandEncoder();
  encoder.resolveQuerySet(recording.timer.querySet, 0, 2 * passes, recording.timer.resolve, 0);
  encoder.copyBufferToBuffer(recording.timer.resolve, 0, recording.timer.read, 0, 16 * passes);
  return [encoder.finish()];
}

/** The GPU milliseconds of each of the recording's passes; undefined without timestamps, past {@link TIMED_PASSES}, or for a time that runs backwards. */
async function readPassTimes(recording: Recording): Promise<number[] | undefined> {
  const { passes } = recording;
  if (!recording.timer || passes === 0 || passes > TIMED_PASSES) return undefined;
  const { read } = recording.timer;
  await read.mapAsync(MAP_MODE_READ, 0, 16 * passes);
  const stamps = new BigUint64Array(read.getMappedRange(0, 16 * passes).slice(0));
  read.unmap();
  const ms: number[] = [];
  for (let p = 0; p < passes; p++) {
    const span = stamps[2 * p + 1]! - stamps[2 * p]!;
    if (span < 0n) return undefined;
    ms.push(Number(span) / 1e6);
  }
  return ms;
}

/** Ends a recording's open pass and keeps its command buffer for the submission. */
function closePass(recording: Recording): void {
  if (!recording.pass || !recording.encoder) return;
  recording.pass.end();
  recording.commands.push(recording.encoder.finish());
  recording.pass = undefined;
  recording.encoder = undefined;
}

interface Encoded {
  readonly commands: GPUCommandBuffer[];
  readonly transient: GPUBuffer[];
  /** Frees what else the step allocated (gpu.js results), once the queue has run it. */
  readonly release?: () => void;
}

/** The attention kernels' common parameters for one chunk (its `keyStride` included). */
function attentionParams(d: AttentionDims, chunk: ResidentChunk): Record<string, number> {
  return { querySeq: d.querySeq, keySeq: d.keySeq, queryOffset: d.queryOffset, causal: d.causal ? 1 : 0, groupSize: d.groupSize, scale: d.scale, keyStride: chunkKeyStride(chunk, d) };
}

function destroyAll(...buffers: GPUBuffer[]): void {
  for (const b of buffers) b.destroy();
}

/**
 * Bytes per KV slot of the block path's largest scratch buffer: the block score matrix, or for a
 * decode-shaped call (≤ {@link SPLIT_K_MAX_QUERIES} queries) the logits of every query of a row's
 * tile (group size × queries per row times as large).
 */
export function blockScratchBytesPerSlot(d: AttentionDims, config: Pick<BlockTopKConfig, 'blockSize' | 'queryBlockSize'>): number {
  const scores = 4 * Math.ceil(d.querySeq / config.queryBlockSize) * Math.ceil(d.keySeq / config.blockSize);
  return d.querySeq <= SPLIT_K_MAX_QUERIES ? scores * d.groupSize * Math.min(config.queryBlockSize, d.querySeq) : scores;
}

/** The rows of a slot range of a rank-4 tensor, compacted (a zero-copy view when already dense). */
function gatherSlots(t: Tensor, dims: AttentionDims['qDims'], slot0: number, slots: number): Float32Array {
  const rowLength = dims.seq * dims.dim;
  if (dims.capacity === dims.seq) return t.data.subarray(slot0 * rowLength, (slot0 + slots) * rowLength);
  const out = new Float32Array(slots * rowLength);
  for (let s = 0; s < slots; s++) {
    const slot = slot0 + s;
    const start = rowOffset(dims, Math.floor(slot / dims.heads), slot % dims.heads, 0);
    out.set(t.data.subarray(start, start + rowLength), s * rowLength);
  }
  return out;
}

/** The empty CSR layout of the block top-k selection (offsets/indices filled from the GPU). */
function blockSelectionLayout(d: AttentionDims, config: BlockTopKConfig, rows: number): Selection {
  return {
    kind: 'block',
    blockSize: config.blockSize,
    headScope: 'kv',
    batch: d.batch,
    heads: d.kvHeads,
    rows,
    queryBlockSize: config.queryBlockSize,
    keySeq: d.keySeq,
    offsets: new Int32Array(d.batch * d.kvHeads * rows + 1),
    indices: new Int32Array(0),
  };
}

/**
 * Checks that a selection's layout matches the call (core's executor does the same check
 * internally but does not export it).
 */
export function checkSelectionFits(s: Selection, d: AttentionDims): void {
  const heads = s.headScope === 'query' ? d.queryHeads : d.kvHeads;
  if (s.batch !== d.batch || s.heads !== heads) {
    throw new ShapeError(`selection is for batch ${s.batch} × ${s.heads} ${s.headScope} heads, input has batch ${d.batch} × ${heads} ${s.headScope} heads`);
  }
  const rows = Math.ceil(d.querySeq / s.queryBlockSize);
  if (s.rows !== rows) throw new ShapeError(`selection has ${s.rows} query rows of ${s.queryBlockSize}; ${d.querySeq} queries need ${rows}`);
  if (s.keySeq !== d.keySeq) throw new ShapeError(`selection refers to ${s.keySeq} keys, input has ${d.keySeq}`);
}

/** Query–key pairs a selection scores under the call's causal mask, summed over batch and query heads. */
export function countPairs(s: Selection, d: AttentionDims): number {
  // Per query, the keys of its row's blocks below its causal cap: a binary search in the row
  // (entries ascend), so a row shared by many queries (a compress-once method's kept set, one
  // row for a 64k-query prefill) costs O(log n) per query instead of a walk of the row.
  const bs = s.blockSize;
  let pairs = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const head = s.headScope === 'query' ? h : Math.floor(h / d.groupSize);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * s.heads + head) * s.rows + Math.floor(i / s.queryBlockSize);
        const cap = Math.min(d.causal ? d.queryOffset + i + 1 : d.keySeq, s.keySeq);
        const first = s.offsets[row]!;
        // m: entries starting below the cap (blocks idx · bs < cap).
        let lo = first;
        let hi = s.offsets[row + 1]!;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (s.indices[mid]! * bs < cap) lo = mid + 1;
          else hi = mid;
        }
        const m = lo - first;
        if (m === 0) continue;
        // Every block below the cap is whole except the last, which the cap may cut.
        pairs += m * bs - Math.max(0, s.indices[lo - 1]! * bs + bs - cap);
      }
    }
  }
  return pairs;
}
