import type { MethodDefinition } from '@sparse-attn/core';
import { z } from 'zod';
import { parseListArgs } from './cli-options.js';
import type { CommandIo } from './command-io.js';
import { loadRegistry, type BenchRegistry } from './registry.js';

/**
 * One method as `bench list` reports it: its zod schema as JSON Schema, and its defaults. On
 * `gpu`, the GPU methods of the loaded GPU backend (every family's `./gpu` twins), described by
 * the CPU definitions they mirror.
 */
export function describeMethods(loaded: Pick<BenchRegistry, 'registry' | 'families'>, backend: 'cpu' | 'gpu' = 'cpu') {
  const definitions: MethodDefinition[] =
    backend === 'gpu'
      ? (loaded.families.find((f) => f.gpuProvider)?.gpuProvider?.methods ?? []).map((m) => ({ ...m.cpu, id: m.id, family: m.family }) as MethodDefinition)
      : loaded.registry.list(backend);
  return definitions
    .map((d) => ({
      id: d.id,
      family: d.family,
      description: d.description,
      ...(d.paper ? { paper: d.paper } : {}),
      defaults: d.configSchema.parse({}) as Record<string, unknown>,
      schema: z.toJSONSchema(d.configSchema, { io: 'input', unrepresentable: 'any' }),
    }));
}

/** `bench list [--json]`: every registered method with its config schema and defaults, and every suite. */
export async function listCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const options = parseListArgs(args);
  const loaded = await loadRegistry();
  const methods = describeMethods(loaded, options.backend);
  const suites = loaded.suites.map((s) => ({ id: s.id, family: s.family, description: s.description }));
  if (options.json) {
    io.stdout(JSON.stringify({ methods, suites, familyFailures: loaded.failures }, null, 2));
    return 0;
  }
  const lines: string[] = [];
  for (const m of methods) {
    lines.push(`${m.id}  (${m.family}${m.paper ? `, ${m.paper}` : ''})`, `  ${m.description}`);
    const properties = (m.schema as { properties?: Record<string, { description?: string; type?: unknown }> }).properties ?? {};
    for (const [key, prop] of Object.entries(properties)) {
      lines.push(`  --config ${key}: ${JSON.stringify(m.defaults[key])}${prop.type ? ` (${String(prop.type)})` : ''}${prop.description ? ` — ${prop.description}` : ''}`);
    }
    if (Object.keys(properties).length === 0) lines.push('  (no options)');
  }
  if (suites.length) lines.push('', 'benchmark suites (--suites):', ...suites.map((s) => `  ${s.id}  (${s.family}) ${s.description}`));
  for (const f of loaded.failures) lines.push(`family ${f.family} FAILED: ${f.error}`);
  io.stdout(lines.join('\n'));
  return 0;
}
