import { ConfigError, expandToTokens, getTensor, type AttentionResult, type SafetensorsInput } from '@sparse-attn/core';
import { readSafetensorsFile, writeSafetensorsFile } from '@sparse-attn/core/node';
import { parseRunArgs } from './cli-options.js';
import type { CommandIo } from './command-io.js';
import { loadRegistry, resolveMethod } from './registry.js';

/** Selection layout written to the output file's `__metadata__` so the CSR arrays can be read back. */
function selectionMetadata(result: AttentionResult): Record<string, string> {
  const s = result.selection;
  if (!s) return {};
  return {
    selection_kind: s.kind,
    selection_block_size: String(s.blockSize),
    selection_head_scope: s.headScope,
    selection_batch: String(s.batch),
    selection_heads: String(s.heads),
    selection_rows: String(s.rows),
    selection_query_block_size: String(s.queryBlockSize),
    selection_key_seq: String(s.keySeq),
  };
}

/**
 * `bench run --method ID [--config JSON] --in q_k_v.safetensors --out result.safetensors`:
 * runs one method's prefill on tensors from a file (q, k, v float32 `[B, H, S, D]`; k/v may have
 * fewer heads: GQA) and writes `o` plus, when the method selects keys, `sel_offsets` /
 * `sel_indices` (int32, core's CSR layout, block selections expanded to token indices with
 * `expandToTokens`). Prints the stats as one JSON line.
 */
export async function runCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const options = parseRunArgs(args);
  const { registry, failures } = await loadRegistry();
  const definition = resolveMethod(registry, failures, options.method);
  const method = definition.create(options.config as Record<string, unknown>);
  let file;
  try {
    file = await readSafetensorsFile(options.input);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') throw new ConfigError(`--in: cannot read ${options.input} (${code})`);
    throw error;
  }
  const q = getTensor(file, 'q', [-1, -1, -1, -1]);
  const k = getTensor(file, 'k', [-1, -1, -1, -1]);
  const v = getTensor(file, 'v', [-1, -1, -1, -1]);
  const result = method.prefill({ q, k, v, causal: options.causal });
  const tensors: Record<string, SafetensorsInput> = { o: result.output };
  let selectionEntries = 0;
  if (result.selection) {
    const tokens = expandToTokens(result.selection);
    tensors['sel_offsets'] = { dtype: 'I32', shape: [tokens.offsets.length], data: tokens.offsets };
    tensors['sel_indices'] = { dtype: 'I32', shape: [tokens.indices.length], data: tokens.indices };
    selectionEntries = tokens.indices.length;
  }
  await writeSafetensorsFile(options.output, tensors, { method: definition.id, config: JSON.stringify(method.config), ...selectionMetadata(result) });
  io.stdout(
    JSON.stringify({
      method: definition.id,
      config: method.config,
      shape: { q: q.shape, k: k.shape, v: v.shape, o: result.output.shape },
      causal: options.causal,
      backend: result.backend,
      stats: result.stats,
      selection: result.selection ? { ...selectionMetadata(result), tokenEntries: selectionEntries } : null,
      diagnostics: result.diagnostics ?? {},
      out: options.output,
    }),
  );
  return 0;
}
