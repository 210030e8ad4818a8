/**
 * Runs GPU checks inside headless Chromium through `navigator.gpu`: the browser path, exercised
 * with the same kernels and the same `GpuCheck` lists the Node (Dawn) path runs. On hosts without
 * a GPU Chromium's WebGPU runs on SwiftShader (a CPU Vulkan implementation shipped with
 * Chromium), so every kernel is compiled by Tint and executed for real in CI, on any x86-64 Linux
 * with Chromium installed.
 *
 * The check module is bundled for the browser with esbuild (which also proves the kernels and the
 * backend import nothing Node-only), served from 127.0.0.1 (a secure context, as WebGPU requires)
 * and driven with playwright-core. Node-only: this file is the `./testing` entry, never imported
 * by the library itself.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** One check's outcome in the page. */
export interface BrowserCheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly ms: number;
}

/** The outcome of {@link runChecksInBrowser}. */
export interface BrowserCheckRun {
  /** The adapter the page got (`google swiftshader` without a GPU). */
  readonly adapter: string;
  /** The backend's `info.kernel` in the page. */
  readonly kernel: string;
  readonly results: readonly BrowserCheckResult[];
  /** Console errors and page errors seen while the checks ran. */
  readonly pageErrors: readonly string[];
}

/** Options of {@link runChecksInBrowser}. */
export interface BrowserCheckOptions {
  /** Absolute path of the module that exports the checks (TypeScript or JavaScript). */
  readonly module: string;
  /** Its export holding a `GpuCheck[]` (default `checks`). */
  readonly exportName?: string;
  /**
   * Specifier the page imports `createGpuBackend` from, resolved from the check module's folder
   * (default `@sparse-attn/backend-gpu`; this package's own checks pass `./index.ts`).
   */
  readonly backendModule?: string;
  /** Chromium executable (default `$CHROMIUM_PATH`, else `/usr/bin/chromium`). */
  readonly chromium?: string;
  /** Only checks whose name passes run. */
  readonly names?: readonly string[];
  /** Milliseconds the whole run may take (default 20 minutes). */
  readonly timeoutMs?: number;
}

/** Flags that give headless Chromium WebGPU on any Linux host (SwiftShader when there is no GPU). */
export const CHROMIUM_WEBGPU_FLAGS = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] as const;

/** The Chromium executable the harness would launch, or why there is none. */
export function findChromium(path = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'): { path: string } | { reason: string } {
  return existsSync(path) ? { path } : { reason: `no Chromium at ${path} (install it, e.g. apt-get install chromium, or set CHROMIUM_PATH)` };
}

/**
 * Bundles the check module for the browser and runs its checks in headless Chromium's WebGPU.
 * One Chromium at a time per machine (a lock in the temp folder): SwiftShader uses every core and
 * several GiB for the larger checks, and turbo runs the packages' tests in parallel.
 */
export async function runChecksInBrowser(options: BrowserCheckOptions): Promise<BrowserCheckRun> {
  const found = findChromium(options.chromium);
  if ('reason' in found) throw new Error(found.reason);
  const bundle = await bundleForBrowser(options);
  const unlock = await machineLock('sparse-attn-webgpu-chromium', 45 * 60_000);
  try {
    return await runBundle(found.path, bundle, options);
  } finally {
    unlock();
  }
}

async function runBundle(chromiumPath: string, bundle: string, options: BrowserCheckOptions): Promise<BrowserCheckRun> {
  const found = { path: chromiumPath };
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>sparse-attn GPU checks</title><link rel="icon" href="data:,"></head><body><script type="module" src="/checks.js"></script></body></html>';
  const server = await serve({ '/': ['text/html', html], '/checks.js': ['text/javascript', bundle] });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: found.path, headless: true, args: [...CHROMIUM_WEBGPU_FLAGS] });
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    const address = server.address() as { port: number };
    await page.goto(`http://127.0.0.1:${address.port}/`);
    const handle = await page.waitForFunction(() => (globalThis as { __gpuChecks?: unknown }).__gpuChecks, null, { timeout: options.timeoutMs ?? 20 * 60_000, polling: 250 });
    const outcome = (await handle.jsonValue()) as { fatal?: string; adapter?: string; kernel?: string; results?: BrowserCheckResult[] };
    if (outcome.fatal) throw new Error(`GPU checks could not start in Chromium: ${outcome.fatal}`);
    return { adapter: outcome.adapter ?? '', kernel: outcome.kernel ?? '', results: outcome.results ?? [], pageErrors };
  } finally {
    await browser.close();
    server.close();
  }
}

/** The page program: build the backend from `navigator.gpu`, run each check, publish the outcome. */
function pageProgram(options: BrowserCheckOptions): string {
  const names = options.names ? JSON.stringify(options.names) : 'null';
  return `
import { createGpuBackend } from ${JSON.stringify(options.backendModule ?? '@sparse-attn/backend-gpu')};
import * as checkModule from ${JSON.stringify(`./${basename(options.module)}`)};
const names = ${names};
(async () => {
  let backend;
  try {
    if (!navigator.gpu) throw new Error('navigator.gpu is missing in this page');
    backend = await createGpuBackend();
  } catch (error) {
    globalThis.__gpuChecks = { fatal: String(error && error.stack || error) };
    return;
  }
  const results = [];
  for (const check of checkModule[${JSON.stringify(options.exportName ?? 'checks')}]) {
    if (names && !names.includes(check.name)) continue;
    const started = performance.now();
    try {
      await check.run(backend);
      results.push({ name: check.name, ok: true, ms: performance.now() - started });
    } catch (error) {
      results.push({ name: check.name, ok: false, error: String(error && error.stack || error), ms: performance.now() - started });
    }
  }
  globalThis.__gpuChecks = { adapter: backend.info.device, kernel: backend.info.kernel, results };
  backend.destroy();
})();
`;
}

async function bundleForBrowser(options: BrowserCheckOptions): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: pageProgram(options), resolveDir: dirname(options.module), sourcefile: 'gpu-check-page.js', loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    // The Node-only pieces (`node:*` modules) must not reach a browser bundle: a build error here
    // means a kernel or the backend imported one.
  });
  return result.outputFiles[0]!.text;
}

/**
 * A machine-wide lock: an atomically created folder holding the owner's pid. A lock whose owner
 * process is gone is taken over. Resolves with the release function; rejects after `timeoutMs`.
 */
async function machineLock(name: string, timeoutMs: number): Promise<() => void> {
  const dir = join(tmpdir(), `${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      // Being created or removed right now: look again shortly.
    }
    if (Number.isInteger(owner) && !processAlive(owner)) rmSync(dir, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`waited ${Math.round(timeoutMs / 1000)} s for another headless Chromium run (lock ${dir})`);
    else await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function serve(files: Record<string, [string, string]>): Promise<Server> {
  const server = createServer((request, response) => {
    const file = files[request.url ?? ''];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
