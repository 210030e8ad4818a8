import { z } from 'zod';
import { parseListArgs } from './cli-options.js';
import type { CommandIo } from './command-io.js';
import { loadRegistry, type BenchRegistry } from './registry.js';

/** One method as `bench list` reports it: its zod schema as JSON Schema, and its defaults. */
export function describeMethods(registry: BenchRegistry['registry'], backend: 'cpu' | 'gpu' = 'cpu') {
  return registry
    .list(backend)
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
  const methods = describeMethods(loaded.registry, options.backend);
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
