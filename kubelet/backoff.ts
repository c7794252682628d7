// Crash-loop back-off, as client-go's flowcontrol.Backoff is used by the kubelet: the first
// restart of a container is immediate; each next one waits twice as long as the one before (10 s,
// 20 s, ... up to 300 s), counted from when the container finished. An entry not used for twice
// the maximum starts over.
export class Backoff {
  private readonly entries = new Map<string, { delayMs: number; lastUpdate: number }>();

  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private live(key: string): { delayMs: number; lastUpdate: number } | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.lastUpdate > 2 * this.maxMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Time left (ms) before `key` may restart, for a container that finished at `finishedAt`; 0 = go. */
  remaining(key: string, finishedAt: number): number {
    const e = this.live(key);
    if (!e) return 0;
    return Math.max(0, finishedAt + e.delayMs - this.now());
  }

  /** The current delay of `key` (for CrashLoopBackOff messages). */
  delay(key: string): number {
    return this.live(key)?.delayMs ?? 0;
  }

  /** Records a restart: the next one waits longer. */
  next(key: string): void {
    const e = this.live(key);
    const delayMs = e ? Math.min(e.delayMs * 2, this.maxMs) : this.baseMs;
    this.entries.set(key, { delayMs, lastUpdate: this.now() });
  }

  forgetPrefix(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}
