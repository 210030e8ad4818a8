/**
 * Worker threads that share flash-attention jobs with the calling thread while keeping the
 * public API synchronous: the kernels' memory is a shared WebAssembly memory, every thread
 * runs `flashBlocks` (which claims query blocks with an atomic counter), and the caller
 * blocks in `Atomics.wait` until the workers acknowledge the job.
 *
 * Only in Node (it needs `node:worker_threads`, reached through `process.getBuiltinModule`
 * so that bundlers for browsers see no Node import) and only with the shared-memory build.
 * The caller always works on the job too, so a job finishes even if no worker ever runs.
 */
import type { SimdArena } from './simd-runtime.js';

/** Control slots (Int32Array over a SharedArrayBuffer). */
const SEQUENCE = 0;
const READY = 1;
const JOB = 2;
/** Which export runs the job: its index in `KINDS`. */
const KIND = 3;
/** The sequence number of the job open to workers, 0 once the caller has closed it. */
const GATE = 4;
/** Workers inside the current job (entered and not yet left). */
const ACTIVE = 5;
/** Per-worker slots start here: [unused, scratch pointer]. */
const WORKER_SLOTS = 6;

/** A job kind: the kernel export every thread calls with (job, per-thread scratch). */
export type JobKind = 'flashBlocks' | 'gemmRows' | 'flashGathered' | 'attendChunks';
const KINDS: readonly JobKind[] = ['flashBlocks', 'gemmRows', 'flashGathered', 'attendChunks'];

/** How long the first use waits for the workers to start before giving up on them. */
const START_TIMEOUT_MS = 5000;

interface WorkerLike {
  unref(): void;
}
interface WorkerThreadsModule {
  Worker: new (source: string, options: { eval: true; workerData: unknown }) => WorkerLike;
}

/**
 * The worker's program: instantiate the module over the shared memory and serve jobs forever.
 * A worker enters a job (ACTIVE + 1) and only then checks that the job is still open (GATE);
 * the caller closes the gate once its own share is done and waits for ACTIVE to reach 0. So a
 * worker that wakes late (descheduled on a busy machine) never delays the caller, and never
 * touches a job's memory after the caller has moved on.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, slot } = workerData;
const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
const kinds = ${JSON.stringify(KINDS)};
Atomics.add(control, ${READY}, 1);
Atomics.notify(control, ${READY});
let seen = 0;
for (;;) {
  Atomics.wait(control, ${SEQUENCE}, seen);
  seen = Atomics.load(control, ${SEQUENCE});
  Atomics.add(control, ${ACTIVE}, 1);
  if (Atomics.load(control, ${GATE}) === seen) {
    kernels[kinds[Atomics.load(control, ${KIND})]](Atomics.load(control, ${JOB}), Atomics.load(control, slot + 1));
  }
  if (Atomics.sub(control, ${ACTIVE}, 1) === 1) Atomics.notify(control, ${ACTIVE});
}
`;

/** A started pool: `workers` threads besides the caller. */
export class WorkerPool {
  readonly workers: number;
  private readonly control: Int32Array;
  private sequence = 0;

  constructor(workers: number, control: Int32Array) {
    this.workers = workers;
    this.control = control;
  }

  /**
   * Runs `kind` on the job at `job` on every thread: the caller with scratch `callerScratch`,
   * worker `w` with `workerScratch[w]`. Returns when every thread has finished its share.
   */
  run(arena: SimdArena, kind: JobKind, job: number, callerScratch: number, workerScratch: readonly number[]): void {
    const c = this.control;
    for (let w = 0; w < this.workers; w++) Atomics.store(c, WORKER_SLOTS + 2 * w + 1, workerScratch[w] ?? 0);
    Atomics.store(c, JOB, job);
    Atomics.store(c, KIND, KINDS.indexOf(kind));
    const seq = ++this.sequence;
    Atomics.store(c, GATE, seq);
    Atomics.store(c, SEQUENCE, seq);
    Atomics.notify(c, SEQUENCE);
    arena.kernels[kind](job, callerScratch);
    // Every share is claimed once the caller's call returns; close the job to late workers and
    // wait only for those still inside it (finishing a share they claimed).
    Atomics.store(c, GATE, 0);
    for (let active = Atomics.load(c, ACTIVE); active !== 0; active = Atomics.load(c, ACTIVE)) Atomics.wait(c, ACTIVE, active);
  }
}

let pool: WorkerPool | undefined;
let poolTried = false;

/**
 * The worker pool for `arena` (started on first call, `threads − 1` workers), or `undefined`
 * when threads are unavailable: not Node, no shared memory, one thread requested, or the
 * workers did not start in time.
 */
export function workerPool(arena: SimdArena, threads: number): WorkerPool | undefined {
  if (threads <= 1 || !arena.sharedModule) return undefined;
  if (poolTried) return pool;
  poolTried = true;
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const threadsModule = getBuiltin?.('node:worker_threads') as WorkerThreadsModule | undefined;
  if (!threadsModule) return undefined;
  const workers = threads - 1;
  const control = new Int32Array(new SharedArrayBuffer(4 * (WORKER_SLOTS + 2 * workers)));
  try {
    for (let w = 0; w < workers; w++) {
      const worker = new threadsModule.Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: arena.sharedModule, memory: arena.memory, control, slot: WORKER_SLOTS + 2 * w },
      });
      worker.unref();
    }
  } catch {
    return undefined;
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let ready = Atomics.load(control, READY); ready < workers; ready = Atomics.load(control, READY)) {
    const left = deadline - Date.now();
    if (left <= 0 || Atomics.wait(control, READY, ready, left) === 'timed-out') return undefined;
  }
  pool = new WorkerPool(workers, control);
  return pool;
}

/** Threads worth using by default: the machine's cores, at most 4 (the caller plus workers). */
export function defaultThreads(): number {
  const os = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:os') as
    | { availableParallelism?: () => number }
    | undefined;
  return Math.max(1, Math.min(4, os?.availableParallelism?.() ?? 1));
}
