/**
 * `@sparse-attn/backend-gpu/testing` (Node, vitest): declares the suites that run a list of
 * `GpuCheck`s on every WebGPU this host has — Dawn in Node when an adapter exists (skipped with
 * the reason otherwise), and headless Chromium's `navigator.gpu` (SwiftShader without a GPU), so
 * the kernels run for real in CI. Families call it from one test file with their checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, runChecksInBrowser, type BrowserCheckOptions, type BrowserCheckRun } from './browser-harness.js';
import { createGpuBackend, type GpuBackend } from './gpu-backend.js';
import type { GpuCheck } from './gpu-checks.js';
import { GpuUnavailableError } from './gpu-device.js';

export * from './browser-harness.js';

/** Options of {@link gpuCheckSuites}: where the page finds the same checks (see {@link BrowserCheckOptions}). */
export type GpuCheckSuiteOptions = Omit<BrowserCheckOptions, 'names'> & {
  /** What the suites are called (default: the module's checks). */
  readonly title?: string;
};

/**
 * Declares two suites over `checks` (the list `options.module` exports as `options.exportName`):
 * Node's WebGPU (Dawn) and headless Chromium. Without Chromium the browser suite is skipped with
 * the reason, except under `CI`, where it fails: CI installs Chromium to run it.
 * `SPARSE_ATTN_GPU_CHECKS=<text>` narrows both suites to the checks whose name contains the text.
 */
export function gpuCheckSuites(allChecks: readonly GpuCheck[], options: GpuCheckSuiteOptions): void {
  const title = options.title ?? 'GPU checks';
  // SPARSE_ATTN_GPU_CHECKS=<text> runs only the checks whose name contains it (while iterating).
  const only = process.env['SPARSE_ATTN_GPU_CHECKS'];
  const checks = only ? allChecks.filter((c) => c.name.includes(only)) : allChecks;
  let backend: GpuBackend | undefined;
  let reason = '';
  describe(`${title} on Node's WebGPU (Dawn)`, () => {
    beforeAll(async () => {
      try {
        backend = await createGpuBackend();
      } catch (error) {
        if (!(error instanceof GpuUnavailableError)) throw error;
        reason = error.message;
      }
    });
    afterAll(() => backend?.destroy());
    for (const check of checks) {
      it(check.name, async (context) => {
        if (!backend) {
          context.skip(`no WebGPU adapter in Node: ${reason}`);
          return;
        }
        await check.run(backend);
      }, 300_000);
    }
  });

  const chromium = findChromium(options.chromium);
  const missing = 'reason' in chromium ? chromium.reason : undefined;
  describe(`${title} in headless Chromium (navigator.gpu)${missing ? ` — ${missing}` : ''}`, () => {
    let run: BrowserCheckRun | undefined;
    beforeAll(async () => {
      if (missing) return;
      run = await runChecksInBrowser({ ...options, names: checks.map((c) => c.name) });
    }, 70 * 60_000);

    it('runs on a WebGPU adapter without page errors', (context) => {
      if (missing) {
        if (process.env['CI']) throw new Error(`CI must run the browser GPU checks: ${missing}`);
        context.skip(missing);
        return;
      }
      expect(run!.adapter.length).toBeGreaterThan(0);
      expect(run!.pageErrors).toEqual([]);
      expect(run!.results.map((r) => r.name)).toEqual(checks.map((c) => c.name));
    });
    for (const check of checks) {
      it(check.name, (context) => {
        if (missing) {
          context.skip(missing);
          return;
        }
        const result = run!.results.find((r) => r.name === check.name);
        expect(result, 'the check ran in the page').toBeDefined();
        expect(result!.error ?? '', `on ${run!.adapter}`).toBe('');
        expect(result!.ok).toBe(true);
      });
    }
  });
}
