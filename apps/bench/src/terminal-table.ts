/**
 * The compact terminal summary of a sweep: one line per method × budget × length, prefill and
 * decode side by side, quality averaged over the workloads (every per-workload figure is in the
 * JSON and HTML report). Columns are right-aligned so figures line up.
 */
import type { DenseResults, SuiteRow, SweepResults, SweepRow } from './results-schema.js';

/** Formats a table: first row is the header; numbers-looking cells are right-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]) =>
    row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  const [header, ...body] = rows;
  return [line(header!), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

const fixed = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** Milliseconds with 3 significant figures. */
export function formatMs(x: number | undefined): string {
  if (x === undefined) return '–';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
}

/** Bytes as KB/MB/GB. */
export function formatBytes(x: number | undefined): string {
  if (x === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x >= 100 || i === 0 ? x.toFixed(0) : x.toFixed(1)}${units[i]}`;
}

function mean(xs: readonly (number | undefined)[]): number | undefined {
  const present = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  return present.length ? present.reduce((a, b) => a + b, 0) / present.length : undefined;
}

/** The metric names of suite rows, finite or not, in first-seen order. */
export function suiteMetricKeys(rows: readonly SuiteRow[]): string[] {
  return [...new Set(rows.flatMap((r) => [...Object.keys(r.metrics), ...(r.nonFiniteMetrics ?? []).map((m) => m.split('=')[0]!)]))];
}

/** One suite metric as text: 4 significant figures, `NaN`/`Infinity` where the suite reported one, `–` when absent. */
export function suiteMetricText(row: SuiteRow, key: string): string {
  const value = row.metrics[key];
  if (value !== undefined) return Number(value.toPrecision(4)).toString();
  const nonFinite = row.nonFiniteMetrics?.find((m) => m.startsWith(`${key}=`));
  return nonFinite ? nonFinite.slice(key.length + 1) : '–';
}

/** A group's status: `ok`, or counts per non-ok status (`2 error, 1 skipped`). */
function statusText(group: readonly SweepRow[]): string {
  const counts = new Map<string, number>();
  for (const r of group) if (r.status !== 'ok') counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return counts.size ? [...counts].map(([status, n]) => `${n} ${status}`).join(', ') : 'ok';
}

/** The sweep summary table. */
export function sweepTable(results: SweepResults): string {
  const groups = new Map<string, SweepRow[]>();
  for (const r of results.rows) {
    const key = `${r.method}\u0000${r.budget}\u0000${r.seqLength}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const header = ['method', 'budget', 'S', 'prefill ms', '×dense', '×ORT', 'decode ms/tok', '×dense', '×ORT', 'rel.err', 'recall', 'needle', 'density', 'KV/step', 'kernel', 'status'];
  const body: string[][] = [];
  // Length, then method (in run order), then budget (sparsest first, as the sweep lists them).
  const methodOrder = [...new Set(results.rows.map((r) => r.method))];
  const budgetOrder = (r: SweepRow) => results.rows.findIndex((x) => x.method === r.method && x.budget === r.budget);
  const ordered = [...groups.values()].sort(
    (a, b) => a[0]!.seqLength - b[0]!.seqLength || methodOrder.indexOf(a[0]!.method) - methodOrder.indexOf(b[0]!.method) || budgetOrder(a[0]!) - budgetOrder(b[0]!),
  );
  for (const group of ordered) {
    const first = group[0]!;
    const prefill = group.filter((r) => r.phase === 'prefill' && r.status === 'ok');
    const decode = group.filter((r) => r.phase === 'decode' && r.status === 'ok');
    const ok = group.filter((r) => r.status === 'ok');
    const needle = ok.find((r) => r.quality?.needleSelected !== undefined)?.quality;
    body.push([
      first.method,
      first.budget,
      String(first.seqLength),
      formatMs(mean(prefill.map((r) => r.timing?.medianMs))),
      fixed(mean(prefill.map((r) => r.speedupVsDense)), 2),
      fixed(mean(prefill.map((r) => r.speedupVsOrt)), 2),
      formatMs(mean(decode.map((r) => r.timing?.medianMs))),
      fixed(mean(decode.map((r) => r.speedupVsDense)), 2),
      fixed(mean(decode.map((r) => r.speedupVsOrt)), 2),
      fixed(mean(prefill.map((r) => r.quality?.relativeL2Error)), 4),
      fixed(mean(prefill.map((r) => r.quality?.massRecall)), 3),
      needle ? `${fixed(needle.needleSelected, 2)}/${fixed(needle.needleDominated, 2)}` : '–',
      fixed(mean(prefill.map((r) => r.cost?.density)), 3),
      formatBytes(mean(decode.map((r) => r.cost?.kvBytesRead))),
      (ok[0]?.backend?.kernel ?? '–').replace('onnxruntime-node-', 'ort-'),
      statusText(group),
    ]);
  }
  const lines = [formatTable([header, ...body])];
  lines.push('rel.err / recall / density: means over workloads (prefill); needle: key selected / output dominated; ×: speedup, >1 is faster.');
  // One table per family suite, each with its own figures (suites report different metrics).
  for (const suite of [...new Set(results.suiteRows.map((r) => r.suite))]) {
    const rows = results.suiteRows.filter((r) => r.suite === suite);
    const keys = suiteMetricKeys(rows);
    const shown = keys.slice(0, 10);
    lines.push('', `suite ${suite}${keys.length > shown.length ? ` (${keys.length - shown.length} more figures in the JSON and HTML)` : ''}`);
    lines.push(formatTable([['method', 'workload', 'S', 'budget', ...shown, 'backend'], ...rows.map((r) => [r.method, r.workload, String(r.seqLength), r.budget ?? '–', ...shown.map((k) => suiteMetricText(r, k)), r.backend])]));
  }
  for (const f of results.familyFailures) lines.push(`family ${f.family} FAILED (none of its methods or suites ran): ${f.error}`);
  for (const f of results.suiteFailures) lines.push(`suite ${f.suite} failed: ${f.error}`);
  const failed = results.rows.filter((x) => x.status !== 'ok' && x.status !== 'skipped');
  for (const r of failed.slice(0, 10)) lines.push(`${r.phase} ${r.method} ${r.budget} ${r.workload} S=${r.seqLength}: ${r.status}: ${r.error ?? ''}`);
  if (failed.length > 10) lines.push(`… and ${failed.length - 10} more failed cells (see the JSON or HTML report)`);
  const skipped = results.rows.filter((x) => x.status === 'skipped');
  if (skipped.length) lines.push(`${skipped.length} cells skipped: ${skipped[0]!.error ?? ''}`);
  return lines.join('\n');
}

/** The `bench dense` table (issue 2's columns). */
export function denseTable(results: DenseResults): string {
  const header = ['implementation', 'kernel', 'S', 'median ms', 'p20–p80 ms', 'GFLOP/s', '×ORT', 'peak RSS', 'status'];
  const body = results.cases.map((c) => [
    c.implementation,
    c.backend?.kernel ?? '–',
    String(c.seqLength),
    formatMs(c.timing?.medianMs),
    c.timing ? `${formatMs(c.timing.p20Ms)}–${formatMs(c.timing.p80Ms)}` : '–',
    fixed(c.gflops, 2),
    fixed(c.ratioVsOrt, 2),
    formatBytes(c.peakRssBytes),
    c.status === 'ok' ? 'ok' : `${c.status}: ${c.error ?? ''}`,
  ]);
  return `${formatTable([header, ...body])}\n×ORT: onnxruntime median / this median (>1 is faster than onnxruntime).`;
}
