/**
 * `bench gpu-check [--json FILE] [--only TEXT]`: every GPU-vs-CPU check the packages ship — the
 * GPU backend's own and each family's `./gpu` entry's `gpuChecks` — on this machine's WebGPU
 * (Dawn in Node), one PASS/FAIL line each. Exit 1 when any fails, 2 when there is no adapter.
 * This is how the H100 device run verifies every family; CI runs the same checks in headless
 * Chromium (each package's `gpu-checks.test.ts`).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '@sparse-attn/core';
import type { CommandIo } from './command-io.js';
import { openGpuSession } from './gpu-sweep.js';
import { loadRegistry } from './registry.js';

/** A GPU check as the packages export them (`GpuCheck` of `@sparse-attn/backend-gpu`). */
interface CheckHandle {
  readonly name: string;
  run(backend: unknown): Promise<void>;
}

export async function gpuCheckCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { json: { type: 'string' }, only: { type: 'string' } }, strict: true, allowPositionals: false });
  const { families, failures } = await loadRegistry();
  const provider = families.find((f) => f.gpuProvider)?.gpuProvider;
  const sets = families.flatMap((f) => (f.gpuChecks?.length ? [{ family: f.name, checks: f.gpuChecks as readonly CheckHandle[] }] : []));
  if (sets.length === 0) throw new ConfigError('bench gpu-check: no package exports GPU checks');
  for (const f of failures) io.stderr(`warning: ${f.family}: ${f.error}`);
  const session = await openGpuSession(provider, failures.map((f) => `${f.family}: ${f.error}`).join('; ') || 'no GPU family loaded');
  const results: { family: string; name: string; ok: boolean; ms: number; error?: string }[] = [];
  try {
    io.stdout(`adapter: ${session.backend.info.device} (${session.backend.info.kernel})`);
    for (const { family, checks } of sets) {
      for (const check of checks) {
        if (values.only && !check.name.includes(values.only)) continue;
        const started = performance.now();
        try {
          await check.run(session.backend);
          const ms = performance.now() - started;
          results.push({ family, name: check.name, ok: true, ms });
          io.stdout(`PASS ${family}: ${check.name} (${ms.toFixed(0)} ms)`);
        } catch (error) {
          const ms = performance.now() - started;
          const message = error instanceof Error ? error.message : String(error);
          results.push({ family, name: check.name, ok: false, ms, error: message });
          io.stdout(`FAIL ${family}: ${check.name}\n     ${message.replace(/\n/g, '\n     ')}`);
        }
      }
    }
  } finally {
    session.backend.destroy();
  }
  const failed = results.filter((r) => !r.ok).length;
  io.stdout(`${results.length - failed}/${results.length} GPU checks passed on ${session.backend.info.device}`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ device: session.backend.info.device, kernel: session.backend.info.kernel, results }, null, 1)}\n`);
  return failed === 0 ? 0 : 1;
}
