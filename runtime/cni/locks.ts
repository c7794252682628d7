// Ordering rules of SPEC section 3 ("Lifecycle & Ordering"), within this process:
//  - no parallel operations for the same container (across all its attachments and networks);
//  - GC of a network runs alone: it waits for the ADD/DEL/CHECK in flight on that network to
//    finish, and operations that arrive while it waits or runs are held until it is done.
// The registries are module-wide so that several CniNetwork objects for one network (or one
// container) still exclude each other.

/** One queue per key: callers with the same key run one after another, in arrival order. */
export class KeyedMutex {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** Shared (ADD/DEL/CHECK) versus exclusive (GC) access, with a waiting GC blocking new sharers. */
export class GcGate {
  private active = 0;
  private gcRunning = false;
  private waiters: { exclusive: boolean; go: () => void }[] = [];

  private pump(): void {
    while (this.waiters.length) {
      const next = this.waiters[0]!;
      if (next.exclusive) {
        if (this.active > 0 || this.gcRunning) return;
        this.waiters.shift();
        this.gcRunning = true;
        next.go();
        return;
      }
      if (this.gcRunning) return;
      this.waiters.shift();
      this.active++;
      next.go();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((go) => {
      this.waiters.push({ exclusive, go });
      this.pump();
    });
  }

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.active--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.gcRunning = false;
      this.pump();
    }
  }

  get idle(): boolean {
    return this.active === 0 && !this.gcRunning && this.waiters.length === 0;
  }
}

export const containerLocks = new KeyedMutex();
const gates = new Map<string, GcGate>();

/** The gate of one network (identified by its cache directory and name). */
export function gateFor(cacheDir: string, network: string): GcGate {
  const key = `${cacheDir}\0${network}`;
  let g = gates.get(key);
  if (!g) {
    g = new GcGate();
    gates.set(key, g);
  }
  return g;
}
