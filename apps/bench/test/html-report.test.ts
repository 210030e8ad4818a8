import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/registry.js';
import { chartSpecs, renderHtmlReport } from '../src/html-report.js';
import { QUICK_SWEEP } from '../src/cli-options.js';
import { runSweep } from '../src/run-sweep.js';
import { temporaryDirectory } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('HTML report in headless Chromium', () => {
  it('loads without console errors or network requests and shows every chart as inline SVG', async () => {
    const results = await runSweep((await loadRegistry()).registry, [], {
      ...QUICK_SWEEP,
      methods: ['dense', 'nsa'],
      workloads: ['needle', 'structured'],
      decodeWorkloads: ['needle'],
      seqLengths: [64, 128],
      decodeLengths: [64, 128],
      suiteSeqLengths: [64],
      suiteQuick: true,
      backend: 'cpu',
      quick: true,
      seed: 1,
      suites: [],
      ort: true,
    });
    const dir = temporaryDirectory('bench-html-');
    const path = join(dir, 'report.html');
    writeFileSync(path, await renderHtmlReport(results));
    const expected = chartSpecs(results).map((c) => c.id);
    expect(expected.length).toBe(6);

    const context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      const response = await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
      expect(response?.ok() ?? true).toBe(true);
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      const charts = await page.$$eval('figure[data-chart]', (figures) =>
        figures.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          return { id: f.getAttribute('data-chart'), marks: svg?.querySelectorAll('path, circle, line').length ?? 0, width: box?.width ?? 0, height: box?.height ?? 0 };
        }),
      );
      expect(charts.map((c) => c.id)).toEqual(expected);
      for (const c of charts) {
        expect(c.width, c.id!).toBeGreaterThan(100);
        expect(c.height, c.id!).toBeGreaterThan(100);
        expect(c.marks, c.id!).toBeGreaterThan(3);
      }
      expect(await page.locator('table').first().locator('tbody tr').count()).toBe(results.rows.length);
    } finally {
      await context.close();
    }
  });
});
