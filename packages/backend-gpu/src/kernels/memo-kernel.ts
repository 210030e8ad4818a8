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

/**
 * Member names of a WGSL kernel's uniform `struct Params`, in order (a plain parse of the struct's
 * body: enough for the flat u32 / f32 parameter blocks of this project's kernels). Tests compare
 * them with a kernel's exported parameter list, the order its uniforms are written in.
 */
export function uniformStructFields(code: string): string[] {
  const body = /struct Params\s*\{([^}]*)\}/.exec(code)?.[1];
  if (body === undefined) throw new Error('uniformStructFields: the kernel declares no struct Params');
  return body
    .split(',')
    .map((member) => member.trim().split(':')[0]!.trim())
    .filter((member) => member !== '');
}
