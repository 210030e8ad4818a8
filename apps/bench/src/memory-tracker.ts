/**
 * Deterministic allocation accounting for one call (spec §3: "track JS-side buffer allocations
 * deterministically rather than relying on process RSS").
 *
 * While `countAllocations` runs, the global typed-array constructors are replaced by subclasses
 * that add each new buffer's byte length to a counter (views over an existing buffer are not
 * counted). Every method allocates its scores, selections and outputs as typed arrays, so the
 * total is the call's working memory, an upper bound on its peak. Plain JS arrays and
 * WebAssembly memory growth are not seen; the bench documents this next to the column. The
 * patched constructors are only installed around untimed runs, so timings never pay for them.
 */

type TypedArrayConstructor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

const names = ['Float32Array', 'Float64Array', 'Int32Array', 'Uint32Array', 'Int16Array', 'Uint16Array', 'Int8Array'] as const;

let counting = false;

/** Runs `fn` and returns its result with the typed-array bytes it allocated. Not reentrant. */
export function countAllocations<T>(fn: () => T): { result: T; allocatedBytes: number } {
  if (counting) return { result: fn(), allocatedBytes: 0 };
  const globals = globalThis as unknown as Record<string, TypedArrayConstructor>;
  const originals = names.map((name) => globals[name]!);
  let bytes = 0;
  counting = true;
  for (const [i, name] of names.entries()) {
    const Base = originals[i]! as unknown as new (...args: unknown[]) => ArrayBufferView;
    const Counted = class extends Base {
      constructor(...args: unknown[]) {
        super(...args);
        const first = args[0];
        if (!(first instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && first instanceof SharedArrayBuffer))) bytes += this.byteLength;
      }
      // Arrays made before the patch (inputs) must still pass `instanceof Float32Array` checks.
      static override [Symbol.hasInstance](value: unknown): boolean {
        return value instanceof Base;
      }
    };
    globals[name] = Counted as unknown as TypedArrayConstructor;
  }
  try {
    const result = fn();
    return { result, allocatedBytes: bytes };
  } finally {
    for (const [i, name] of names.entries()) globals[name] = originals[i]!;
    counting = false;
  }
}
