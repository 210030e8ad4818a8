/**
 * Seeded, deterministic random numbers (mulberry32 + Box–Muller). Every workload and
 * random initialisation takes a seed so results reproduce across runs and machines.
 */
export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = (seed >>> 0) ^ 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fills an array with N(0, std²). */
  fillNormal(out: Float32Array, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * std;
    return out;
  }

  /** A direction drawn uniformly on the unit sphere of `n` dimensions (a normalised normal draw). */
  unitVector(n: number): Float32Array {
    const u = this.fillNormal(new Float32Array(n));
    let norm = 0;
    for (const x of u) norm += x * x;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) u[i]! /= norm;
    return u;
  }
}
