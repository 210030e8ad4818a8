/**
 * The self-contained HTML report (`results/<timestamp>.html`). Charts are Vega-Lite specs
 * compiled and rendered to SVG in Node at report time (`vega.View#toSVG` with the headless
 * `none` renderer) and inlined, so the page needs no script and no network when viewed.
 *
 * Charts (spec §5.4): speedup vs sequence length per method (prefill), mass recall and relative
 * error vs density per workload (the accuracy/efficiency frontier), decode latency vs context.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { SweepResults, SweepRow } from './results-schema.js';
import { formatBytes, formatMs, suiteMetricKeys, suiteMetricText } from './terminal-table.js';

/** One rendered chart: its id (the `data-chart` attribute), title and inline SVG. */
export interface RenderedChart {
  readonly id: string;
  readonly title: string;
  readonly svg: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Renders a Vega-Lite spec to an SVG string in Node. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const seriesOf = (r: SweepRow) => (r.budget === 'default' ? r.method : `${r.method} ${r.budget}`);

/** Mean of `value` over workloads for each (method, budget, seq) of the rows. */
function meanOverWorkloads(rows: readonly SweepRow[], value: (r: SweepRow) => number | undefined) {
  const groups = new Map<string, { series: string; method: string; seqLength: number; values: number[] }>();
  for (const r of rows) {
    const v = value(r);
    if (v === undefined || !Number.isFinite(v) || v <= 0) continue;
    const key = `${seriesOf(r)}|${r.seqLength}`;
    const g = groups.get(key) ?? { series: seriesOf(r), method: r.method, seqLength: r.seqLength, values: [] };
    g.values.push(v);
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ series: g.series, method: g.method, seqLength: g.seqLength, value: g.values.reduce((a, b) => a + b, 0) / g.values.length }));
}

const size = { width: 520, height: 300 } as const;

function lineChart(title: string, data: object[], x: { field: string; title: string; log?: boolean }, y: { field: string; title: string; scale?: object }): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    ...size,
    data: { values: data },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      // Log axes tick at the measured lengths (Vega's log ticks land between them).
      x: { field: x.field, type: 'quantitative', title: x.title, ...(x.log ? { scale: { type: 'log', base: 2 }, axis: { values: [...new Set(data.map((d) => (d as Record<string, number>)[x.field]))] } } : {}) },
      y: { field: y.field, type: 'quantitative', title: y.title, ...(y.scale ? { scale: y.scale } : {}) },
      color: { field: 'method', type: 'nominal', title: 'method' },
      detail: { field: 'series', type: 'nominal' },
      order: { field: x.field, type: 'quantitative' },
    },
  } as TopLevelSpec;
}

/** The chart specs for a sweep, in page order. */
export function chartSpecs(results: SweepResults): { id: string; title: string; spec: TopLevelSpec }[] {
  const ok = results.rows.filter((r) => r.status === 'ok');
  const prefill = ok.filter((r) => r.phase === 'prefill');
  const decode = ok.filter((r) => r.phase === 'decode');
  const charts: { id: string; title: string; spec: TopLevelSpec }[] = [];
  const speedup = meanOverWorkloads(prefill, (r) => r.speedupVsDense);
  charts.push({
    id: 'speedup-vs-length',
    title: 'Prefill speedup vs fast dense, by sequence length',
    spec: lineChart('Prefill speedup vs fast dense (mean over workloads; one line per method × budget)', speedup, { field: 'seqLength', title: 'sequence length', log: true }, { field: 'value', title: 'speedup vs fast dense (×)', scale: { type: 'log' } }),
  });
  for (const workload of results.config.workloads) {
    const points = prefill
      .filter((r) => r.workload === workload && r.cost)
      .map((r) => ({ method: r.method, series: `${r.method} S=${r.seqLength}`, density: r.cost!.density, massRecall: r.quality?.massRecall, error: Math.max(r.quality?.relativeL2Error ?? 0, 1e-7), seqLength: r.seqLength }));
    const withRecall = points.filter((p) => p.massRecall !== undefined);
    charts.push({
      id: `recall-frontier-${workload}`,
      title: `Mass recall vs density: ${workload}`,
      spec: lineChart(`Attention-mass recall vs density — ${workload} (one line per method × length, over budgets)`, withRecall, { field: 'density', title: 'density (attended / dense causal pairs)' }, { field: 'massRecall', title: 'attention-mass recall', scale: { domain: [0, 1] } }),
    });
    charts.push({
      id: `error-frontier-${workload}`,
      title: `Relative error vs density: ${workload}`,
      spec: lineChart(`Output relative L2 error vs density — ${workload}`, points, { field: 'density', title: 'density (attended / dense causal pairs)' }, { field: 'error', title: 'relative L2 error vs dense (floor 1e-7)', scale: { type: 'log' } }),
    });
  }
  const latency = meanOverWorkloads(decode, (r) => r.timing?.medianMs);
  charts.push({
    id: 'decode-latency-vs-context',
    title: 'Decode latency vs context length',
    spec: lineChart('Per-token decode latency vs context (median; mean over decode workloads)', latency, { field: 'seqLength', title: 'context length (tokens)', log: true }, { field: 'value', title: 'ms per token', scale: { type: 'log' } }),
  });
  return charts;
}

/** Renders every chart of a sweep to SVG. */
export async function renderCharts(results: SweepResults): Promise<RenderedChart[]> {
  const rendered: RenderedChart[] = [];
  for (const c of chartSpecs(results)) rendered.push({ id: c.id, title: c.title, svg: await renderSvg(c.spec) });
  return rendered;
}

function rowsTable(rows: readonly SweepRow[]): string {
  const head = ['phase', 'method', 'budget', 'workload', 'S', 'status', 'median ms', 'p20–p80', '×dense', '×ORT', 'rel.err', 'recall', 'top-64', 'needle sel/dom', 'density', 'KV read', 'alloc', 'kernel'];
  const num = (x: number | undefined, d: number) => (x === undefined ? '–' : x.toFixed(d));
  const body = rows.map((r) =>
    [
      r.phase,
      r.method,
      r.budget,
      r.workload,
      String(r.seqLength),
      r.status === 'ok' ? 'ok' : `${r.status}: ${r.error ?? ''}`,
      formatMs(r.timing?.medianMs),
      r.timing ? `${formatMs(r.timing.p20Ms)}–${formatMs(r.timing.p80Ms)}` : '–',
      num(r.speedupVsDense, 2),
      num(r.speedupVsOrt, 2),
      r.quality ? r.quality.relativeL2Error.toExponential(2) : '–',
      num(r.quality?.massRecall, 3),
      num(r.quality?.topKRecall, 3),
      r.quality?.needleSelected === undefined ? '–' : `${num(r.quality.needleSelected, 2)}/${num(r.quality.needleDominated, 2)}`,
      num(r.cost?.density, 3),
      formatBytes(r.cost?.kvBytesRead),
      formatBytes(r.cost?.allocatedBytes),
      r.backend ? `${r.backend.backend}:${r.backend.kernel}${r.backend.fallbackReason ? ` (fallback: ${r.backend.fallbackReason})` : ''}` : '–',
    ]
      .map((c) => `<td>${escapeHtml(c)}</td>`)
      .join(''),
  );
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${body.map((b) => `<tr>${b}</tr>`).join('\n')}</tbody></table>`;
}

function suiteTable(results: SweepResults): string {
  if (!results.suiteRows.length && !results.suiteFailures.length) return '<p>No family benchmark suite ran.</p>';
  const cell = (c: string) => `<td>${escapeHtml(c)}</td>`;
  // One table per suite: suites report different figures.
  const tables = [...new Set(results.suiteRows.map((r) => r.suite))].map((suite) => {
    const rows = results.suiteRows.filter((r) => r.suite === suite);
    const keys = suiteMetricKeys(rows);
    const head = ['method', 'workload', 'S', 'budget', 'backend', ...keys];
    const body = rows.map((r) => [r.method, r.workload, String(r.seqLength), r.budget ?? '–', r.backend, ...keys.map((k) => suiteMetricText(r, k))]);
    return `<h3>${escapeHtml(suite)}</h3><table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${body.map((b) => `<tr>${b.map(cell).join('')}</tr>`).join('\n')}</tbody></table>`;
  });
  const failures = results.suiteFailures.map((f) => `<p class="failure">suite ${escapeHtml(f.suite)} failed: ${escapeHtml(f.error)}</p>`).join('');
  return `${tables.join('\n')}${failures}`;
}

/** The whole page. */
export async function renderHtmlReport(results: SweepResults): Promise<string> {
  const charts = await renderCharts(results);
  const m = results.machine;
  const c = results.config;
  const meta = [
    ['created', results.createdAt],
    ['wall time', `${(results.wallMs / 1000).toFixed(1)} s`],
    ['node', m.node],
    ['cpu', `${m.cpuModel} × ${m.cores} cores`],
    ['onnxruntime-node', m.onnxruntime ? `${m.onnxruntime} (${m.ortThreads} threads)` : 'not run'],
    ['shape', `B=${c.batch} Hq=${c.queryHeads} Hkv=${c.kvHeads} D=${c.headDim}`],
    ['prefill lengths', c.seqLengths.join(', ')],
    ['decode contexts', `${c.decodeLengths.join(', ')} (${c.decodeSteps} steps on ${c.decodeWorkloads.join(', ')})`],
    ['budgets', c.budgets],
    ['repeats', String(c.repeats)],
    ['backend', c.backend],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sparse-attn benchmark ${escapeHtml(results.createdAt)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; margin: 1rem 0 0.3rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; border: 1px solid #ddd; padding: 0.5rem; }
figcaption { font-weight: 600; margin-bottom: 0.3rem; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
td:nth-child(-n+4) { text-align: left; }
.failure { color: #a00; }
</style>
</head>
<body>
<h1>sparse-attn benchmark</h1>
<dl>${meta.map(([k, v]) => `<dt>${escapeHtml(k!)}</dt><dd>${escapeHtml(v!)}</dd>`).join('')}</dl>
${results.familyFailures.map((f) => `<p class="failure">family ${escapeHtml(f.family)} FAILED (none of its methods or suites ran): ${escapeHtml(f.error)}</p>`).join('\n')}
<h2>Charts</h2>
<div class="charts">
${charts.map((ch) => `<figure data-chart="${escapeHtml(ch.id)}"><figcaption>${escapeHtml(ch.title)}</figcaption>${ch.svg}</figure>`).join('\n')}
</div>
<h2>Every cell</h2>
<p>Speedups compare medians on the same workload, length and phase. Decode rows time single-token steps at the given context; KV read is per step there. “alloc” counts typed-array bytes one call allocates.</p>
${rowsTable(results.rows)}
<h2>Family benchmark suites</h2>
${suiteTable(results)}
</body>
</html>
`;
}
