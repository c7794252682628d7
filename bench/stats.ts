// Figures of a benchmark: samples in milliseconds, summarised as min / median / max.
export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

export function summarise(samples: number[]): Summary {
  if (samples.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN };
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, min: s[0]!, median, max: s[s.length - 1]! };
}

export interface Comparison {
  part: string;
  name: string;
  unit: string;
  ours: Summary;
  reference?: Summary;
  /** ours.median / reference.median */
  ratio?: number;
  /** A target from the issue, checked against the figure it is about. */
  target?: { text: string; met: boolean };
  note?: string;
}

export function compare(part: string, name: string, unit: string, ours: number[], reference?: number[]): Comparison {
  const o = summarise(ours);
  const c: Comparison = { part, name, unit, ours: o };
  if (reference) {
    c.reference = summarise(reference);
    c.ratio = o.median / c.reference.median;
  }
  return c;
}

/** Median of the per-round ratios a[i] / b[i] of interleaved samples: steadier than the ratio of medians when the load swings between rounds. */
export function pairedRatio(a: number[], b: number[]): number {
  return summarise(a.map((x, i) => x / b[i]!)).median;
}

/** Runs `a` and `b` alternately (order flipped every round) after `warmup` rounds; returns their samples. */
export async function interleave(rounds: number, warmup: number, a: () => Promise<number>, b: () => Promise<number>): Promise<[number[], number[]]> {
  const sa: number[] = [], sb: number[] = [];
  for (let i = 0; i < warmup + rounds; i++) {
    const first = i % 2 === 0;
    const x = first ? await a() : await b();
    const y = first ? await b() : await a();
    if (i < warmup) continue;
    (first ? sa : sb).push(x);
    (first ? sb : sa).push(y);
  }
  return [sa, sb];
}

export const fmt = (v: number, unit: string) => (Number.isNaN(v) ? "-" : unit === "ms" ? v.toFixed(1) : unit === "MB" ? v.toFixed(0) : v >= 100 ? v.toFixed(0) : v.toFixed(2));
