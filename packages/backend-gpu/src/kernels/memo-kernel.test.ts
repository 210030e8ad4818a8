import { describe, expect, it } from 'vitest';
import { memoKernel } from './memo-kernel.js';

describe('memoKernel', () => {
  it('generates once per distinct options and returns the kept string', () => {
    let calls = 0;
    const kernel = memoKernel((o: { readonly d: number; readonly quest?: boolean }) => `${++calls}: ${o.d} ${o.quest === true}`);
    const first = kernel({ d: 64 });
    expect(kernel({ d: 64 })).toBe(first);
    expect(kernel({ d: 64, quest: true })).toBe('2: 64 true');
    expect(kernel({ d: 128 })).toBe('3: 128 false');
    expect(calls).toBe(3);
  });

  it('keeps nothing for options the generator rejects', () => {
    let calls = 0;
    const kernel = memoKernel((n: number) => {
      calls++;
      if (n < 0) throw new Error('negative');
      return `n = ${n}`;
    });
    expect(() => kernel(-1)).toThrow('negative');
    expect(() => kernel(-1)).toThrow('negative');
    expect(calls).toBe(2);
  });
});
