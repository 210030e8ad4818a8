/**
 * `@sparse-attn/bench` as a library: the pieces the CLI is made of, for scripts and tests.
 */
export * from './results-schema.js';
export { runSweep, selectBudgets, addSpeedups, suiteRowOf, budgetLabel, ORT_METHOD, type BudgetSelector, type ProgressSink, type SweepOptions } from './run-sweep.js';
export {
  FAMILY_PACKAGES,
  buildRegistry,
  coreFamily,
  defaultSuiteIds,
  familyFromModule,
  loadFamilies,
  loadRegistry,
  resolveMethod,
  type BenchRegistry,
  type FamilyFailure,
  type FamilyModule,
  type FamilyPackage,
  type LoadedFamilies,
  type ModuleLoader,
} from './registry.js';
export { OrtDenseAttention, ortShapeOf, attentionModel, matmulSoftmaxModel, type OrtGraph, type OrtAttentionShape, type OrtAttentionOptions } from './ort-attention.js';
export { encodeOnnxModel, type OnnxModelSpec, type OnnxNode, type OnnxValue, type OnnxAttribute } from '@sparse-attn/core';
export { renderHtmlReport, renderCharts, chartSpecs, renderSvg, type RenderedChart } from './html-report.js';
export { sweepTable, denseTable, formatTable } from './terminal-table.js';
export { main, errorLine, USAGE, EXIT_USAGE, EXIT_FAILURE } from './main.js';
export { countAllocations } from './memory-tracker.js';
export { summarise, timeAsync, timeSync } from './timing.js';
export { machineInfo } from './machine-info.js';
export { describeMethods } from './list-command.js';
export { runDenseCase, causalFlops } from './dense-command.js';
export { DEFAULT_SWEEP, QUICK_SWEEP, LARGE_SEQ } from './cli-options.js';
export type { CommandIo } from './command-io.js';
