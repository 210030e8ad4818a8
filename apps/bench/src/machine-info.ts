import { availableParallelism, cpus, totalmem } from 'node:os';
import type { Machine } from './results-schema.js';

/**
 * The machine a run happened on (Node version, CPU model, cores, memory, peak RSS), stored in
 * every results file so figures from different machines are never compared by mistake.
 */
export function machineInfo(extra: { onnxruntime?: string; ortThreads?: number } = {}): Machine {
  const cpu = cpus()[0];
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpuModel: cpu?.model.trim() || 'unknown',
    cores: availableParallelism(),
    totalMemoryBytes: totalmem(),
    ...extra,
    // resourceUsage().maxRSS is in kilobytes.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}
