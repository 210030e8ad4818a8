/**
 * `@sparse-attn/model/node`: load and save models on disk in the Hugging Face layout (a folder
 * with `config.json` and `model.safetensors`, or a sharded checkpoint with
 * `model.safetensors.index.json`). Kept out of the main entry so that never imports `node:fs`.
 */
import { ConfigError, FormatError } from '@sparse-attn/core';
import { readSafetensorsFile, readSafetensorsFileHeader, writeSafetensorsFile } from '@sparse-attn/core/node';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';
import type { LlamaModel } from './llama-model.js';
import { configFromMetadata, modelFromSafetensorsFiles, modelMetadata, modelTensors, wantedNames } from './model-safetensors.js';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Use this config instead of the folder's `config.json` or the file's metadata. */
  readonly config?: LlamaConfig | LlamaConfigInput;
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new FormatError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Loads a model from a folder (`config.json` + `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`) or from a single `.safetensors` file whose metadata carries
 * the config (as {@link saveModel} and `modelToSafetensors` write it). Only the tensors the
 * model uses are decoded; errors name the file and every missing or mis-shaped tensor.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LlamaModel> {
  const info = await stat(path);
  if (info.isFile()) {
    const header = await readSafetensorsFileHeader(path);
    const config = parseLlamaConfig(options.config ?? configFromMetadata(header.metadata));
    const file = await readSafetensorsFile(path, { names: wantedNames(config, header.entries.map((e) => e.name)) });
    return modelFromSafetensorsFiles(config, [file]);
  }
  const configPath = join(path, 'config.json');
  if (!options.config && !(await exists(configPath))) throw new ConfigError(`${path}: no config.json in the folder and no config given`);
  const config = parseLlamaConfig(options.config ?? (await readJson(configPath)));
  const indexPath = join(path, 'model.safetensors.index.json');
  const shards = new Map<string, string[]>();
  if (await exists(indexPath)) {
    const index = (await readJson(indexPath)) as { weight_map?: Record<string, string> };
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new FormatError(`${indexPath}: missing 'weight_map'`);
    for (const name of wantedNames(config, Object.keys(index.weight_map))) {
      const shard = index.weight_map[name]!;
      shards.set(shard, [...(shards.get(shard) ?? []), name]);
    }
  } else {
    const single = join(path, 'model.safetensors');
    const header = await readSafetensorsFileHeader(single);
    shards.set('model.safetensors', wantedNames(config, header.entries.map((e) => e.name)));
  }
  const files = [];
  for (const [shard, names] of shards) files.push(await readSafetensorsFile(join(path, shard), { names }));
  return modelFromSafetensorsFiles(config, files);
}

/**
 * Saves a model as a Hugging Face folder: `config.json` (the resolved config) and
 * `model.safetensors` (F32, HF names, written atomically by core). The folder is created if needed.
 */
export async function saveModel(model: LlamaModel, folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'config.json'), `${JSON.stringify(model.config, null, 2)}\n`);
  await writeSafetensorsFile(join(folder, 'model.safetensors'), modelTensors(model), modelMetadata(model));
}
