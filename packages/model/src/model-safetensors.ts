import { FormatError, getTensor, parseSafetensorsHeader, readSafetensors, writeSafetensors, type SafetensorsFile, type SafetensorsInput } from '@sparse-attn/core';
import { parseLlamaConfig, type LlamaConfig, type LlamaConfigInput } from './llama-config.js';
import { LlamaModel } from './llama-model.js';
import { assembleWeights, weightOf, weightSpecs, type NamedTensor } from './model-weights.js';

/** `__metadata__` key under which {@link modelToSafetensors} stores the config JSON. */
export const CONFIG_METADATA_KEY = 'sparse_attn_config';

/**
 * Serialises a model's weights to safetensors bytes with Hugging Face parameter names (F32), the
 * config JSON under `__metadata__.sparse_attn_config` and `format: pt` as `save_file` writes it,
 * so the file loads with {@link loadModelFromSafetensors} and with `transformers`.
 */
export function modelToSafetensors(model: LlamaModel): Uint8Array {
  return writeSafetensors(modelTensors(model), modelMetadata(model));
}

/** Every weight of a model by Hugging Face name (views, no copies), ready for a safetensors writer. */
export function modelTensors(model: LlamaModel): Record<string, SafetensorsInput> {
  const tensors: Record<string, SafetensorsInput> = {};
  for (const spec of weightSpecs(model.config)) tensors[spec.name] = { data: weightOf(model.weights, spec), shape: spec.shape };
  return tensors;
}

/** The `__metadata__` written with a model: `format: pt` and the config JSON. */
export function modelMetadata(model: LlamaModel): Record<string, string> {
  return { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(model.config) };
}

/**
 * Loads a model from safetensors bytes (a Hugging Face `model.safetensors` or a file written by
 * {@link modelToSafetensors}) through core's hardened reader. `config` defaults to the one stored
 * in the file's metadata (HF files need their `config.json` passed). F16/BF16/F64 weights are
 * converted to float32; tensors the model does not use (e.g. `rotary_emb.inv_freq`) are ignored.
 *
 * Errors: a `FormatError` for a malformed file or listing every missing tensor, a `ShapeError`
 * listing every tensor whose shape disagrees with the config, a `ConfigError` for a bad config.
 */
export function loadModelFromSafetensors(bytes: Uint8Array, config?: LlamaConfig | LlamaConfigInput): LlamaModel {
  const header = parseSafetensorsHeader(bytes);
  const resolved = parseLlamaConfig(config ?? configFromMetadata(header.metadata));
  const file = readSafetensors(bytes, { names: wantedNames(resolved, header.entries.map((e) => e.name)) });
  return modelFromSafetensorsFiles(resolved, [file]);
}

/**
 * The model's tensor names that a file (or shard) holds: what to decode from it. Reading only
 * these lets a checkpoint carry tensors of dtypes core does not decode, or buffers we ignore.
 */
export function wantedNames(config: LlamaConfig, present: Iterable<string>): string[] {
  const have = new Set(present);
  return weightSpecs(config).map((s) => s.name).filter((n) => have.has(n));
}

/**
 * Builds a model from parsed safetensors files (one file, or the shards of a sharded
 * checkpoint), with the errors of {@link loadModelFromSafetensors}.
 */
export function modelFromSafetensorsFiles(config: LlamaConfig | LlamaConfigInput, files: readonly SafetensorsFile[]): LlamaModel {
  const resolved = parseLlamaConfig(config);
  const weights = assembleWeights(resolved, (name): NamedTensor | undefined => {
    const file = files.find((f) => f.tensors.has(name));
    return file ? getTensor(file, name) : undefined;
  });
  return new LlamaModel(resolved, weights);
}

/** The config stored by {@link modelToSafetensors} in a file's `__metadata__`. */
export function configFromMetadata(metadata: Readonly<Record<string, string>>): unknown {
  const json = metadata[CONFIG_METADATA_KEY];
  if (json === undefined) {
    throw new FormatError(`safetensors: no model config given and the file's __metadata__ has no '${CONFIG_METADATA_KEY}' entry; pass the model's config.json`);
  }
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw new FormatError(`safetensors: __metadata__.${CONFIG_METADATA_KEY} is not valid JSON (${(error as Error).message})`);
  }
}
