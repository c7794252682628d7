// Runs the sync function at most once per minInterval, coalescing bursts of changes into one
// sync (like kube-proxy's BoundedFrequencyRunner), never two at the same time, and retries
// after a failure.
export class SyncRunner {
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private lastStart = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly fn: () => Promise<boolean>,
    private readonly minIntervalMs: number,
    private readonly retryMs = 1000,
  ) {}

  /** Asks for a sync as soon as the rate limit allows. */
  request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const wait = Math.max(0, this.lastStart + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => void this.fire(), wait);
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    this.lastStart = Date.now();
    let ok = false;
    try {
      ok = await this.fn();
    } finally {
      this.running = false;
    }
    if (!ok && !this.stopped) {
      this.timer = setTimeout(() => void this.fire(), this.retryMs);
      return;
    }
    if (this.again) {
      this.again = false;
      this.request();
      return;
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no sync is running or scheduled. */
  idle(): Promise<void> {
    if (!this.running && !this.timer) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
