/**
 * Kernel generators that hand back the same source string for the same options. Decode steps ask
 * for every kernel's source on every call: generating a few KiB of WGSL, and hashing a fresh
 * string again for the backend's pipeline lookup, was a visible part of a step's host time
 * (a V8 string keeps its hash, so a kept string is looked up at once).
 */

/**
 * Wraps a WGSL generator whose arguments are plain data (numbers, strings, booleans, and objects
 * or arrays of them: they are keyed by `JSON.stringify`), keeping each source it generated. A
 * generator that throws for its arguments keeps nothing and throws again next time.
 */
export function memoKernel<A extends readonly unknown[]>(generate: (...args: A) => string): (...args: A) => string {
  const sources = new Map<string, string>();
  return (...args: A): string => {
    const key = JSON.stringify(args);
    let code = sources.get(key);
    if (code === undefined) sources.set(key, (code = generate(...args)));
    return code;
  };
}
