/**
 * Typed errors. Every message names the tensor or option, what was expected and
 * what was found, so a user can fix the call without reading our source.
 */

/** Base class: lets callers catch every error this project throws with one `instanceof`. */
export class SparseAttnError extends Error {
  override readonly name: string = 'SparseAttnError';
}

/** A tensor has the wrong rank, shape, or a shape that disagrees with another tensor. */
export class ShapeError extends SparseAttnError {
  override readonly name = 'ShapeError';
}

/** An option is missing, out of range or inconsistent (budgets, block sizes, head counts). */
export class ConfigError extends SparseAttnError {
  override readonly name = 'ConfigError';
}

/** Input data holds NaN or Infinity, or a computation would produce one. */
export class NumericError extends SparseAttnError {
  override readonly name = 'NumericError';
}

/** A file (safetensors, JSON results) is malformed, truncated or lies about its sizes. */
export class FormatError extends SparseAttnError {
  override readonly name = 'FormatError';
}

/** Formats a shape as `[1, 8, 128, 64]` for error messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
