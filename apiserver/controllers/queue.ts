// A work queue of keys for the in-process controllers, like client-go's: a key queued several
// times is processed once; a failing key is retried with exponential backoff; keys can be
// queued for later (time-based conditions). Processing happens off the storage callbacks, so a
// controller never writes while another write's listeners are running.
import { errMessage, log } from "../util.ts";

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private scheduled = false;
  private running = true;

  constructor(
    private readonly name: string,
    private readonly process: (key: string) => void,
    /** Keys handled per turn of the event loop, so HTTP requests are served in between. */
    private readonly batch = 200,
  ) {}

  add(key: string): void {
    if (!this.running) return;
    this.pending.add(key);
    this.kick();
  }

  addAfter(key: string, ms: number): void {
    if (!this.running) return;
    if (ms <= 0) return this.add(key);
    if (this.delayed.has(key)) return;
    const t = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.delayed.set(key, t);
  }

  private kick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    let n = 0;
    for (const key of this.pending) {
      if (!this.running || n++ >= this.batch) break;
      this.pending.delete(key);
      try {
        this.process(key);
        this.failures.delete(key);
      } catch (e) {
        const count = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, count);
        const wait = Math.min(5 * 2 ** count, 30_000);
        if (count <= 3 || count % 10 === 0) log(`${this.name}: ${key}: ${errMessage(e)} (retry in ${wait} ms)`);
        this.addAfter(key, wait);
      }
    }
    if (this.pending.size && this.running) this.kick();
  }

  get length(): number {
    return this.pending.size;
  }

  stop(): void {
    this.running = false;
    this.pending.clear();
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
  }
}

/** "ns/name" */
export const keyOf = (ns: string | undefined, name: string | undefined): string => (ns ? `${ns}/${name}` : `${name}`);
export function splitKey(key: string): [string | undefined, string] {
  const i = key.indexOf("/");
  return i < 0 ? [undefined, key] : [key.slice(0, i), key.slice(i + 1)];
}
