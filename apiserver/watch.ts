// Watches: a window of recent changes (so that a client can resume from the resourceVersion it
// last saw) and the fan-out of new changes to every open watch, filtered by namespace and
// selectors. An object that stops matching a watch's selectors is sent as DELETED, one that
// starts matching as ADDED, as Kubernetes does.
import type { Registry, Selectors } from "./registry.ts";
import type { Storage, StorageEvent, StoredObject } from "./storage.ts";

export interface WatchSink {
  /** Writes one line; false means the client is too slow and the watch must end. */
  write(line: string): boolean;
  end(): void;
}

interface Watcher {
  resource: string;
  namespace?: string;
  sel: Selectors;
  sink: WatchSink;
  closed: boolean;
}

export type WatchStart = { ok: true; stop: () => void } | { ok: false; oldest: number; tooLarge?: boolean };

export function eventLine(type: string, s: StoredObject): string {
  return `{"type":"${type}","object":${s.json}}\n`;
}

export class WatchHub {
  private events: StorageEvent[] = [];
  private head = 0; // index of the oldest kept event in `events`
  /** Every event with rv > floor is in the window. */
  private floor: number;
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly storage: Storage,
    private readonly registry: Registry,
    private readonly capacity = 10000,
  ) {
    this.floor = storage.revision();
    this.unsubscribe = storage.subscribe((ev) => this.onEvent(ev));
  }

  /** The oldest resourceVersion a watch may start from. */
  oldestResumable(): number {
    return this.floor;
  }

  private onEvent(ev: StorageEvent): void {
    this.events.push(ev);
    if (this.events.length - this.head > this.capacity) {
      this.floor = this.events[this.head].rv;
      this.head++;
      if (this.head > this.capacity) {
        this.events = this.events.slice(this.head);
        this.head = 0;
      }
    }
    const ws = this.watchers.get(ev.resource);
    if (!ws || ws.size === 0) return;
    const lines = new Map<string, string>();
    for (const w of ws) {
      const type = this.typeFor(w, ev);
      if (!type) continue;
      let line = lines.get(type);
      if (!line) {
        line = eventLine(type, ev.object);
        lines.set(type, line);
      }
      this.send(w, line);
    }
  }

  private matches(w: Watcher, s: StoredObject | undefined): boolean {
    if (!s) return false;
    if (w.namespace !== undefined && (s.obj.metadata.namespace ?? "") !== w.namespace) return false;
    return this.registry.matches(w.resource, s.obj, w.sel);
  }

  /** The event type this watcher sees for a change, or undefined if it does not see it. */
  private typeFor(w: Watcher, ev: StorageEvent): string | undefined {
    if (ev.type === "ADDED") return this.matches(w, ev.object) ? "ADDED" : undefined;
    if (ev.type === "DELETED") return this.matches(w, ev.prev ?? ev.object) ? "DELETED" : undefined;
    const now = this.matches(w, ev.object);
    const before = this.matches(w, ev.prev);
    if (now && before) return "MODIFIED";
    if (now) return "ADDED";
    if (before) return "DELETED";
    return undefined;
  }

  private send(w: Watcher, line: string): void {
    if (w.closed) return;
    if (!w.sink.write(line)) this.close(w);
  }

  private close(w: Watcher): void {
    if (w.closed) return;
    w.closed = true;
    this.watchers.get(w.resource)?.delete(w);
    w.sink.end();
  }

  /**
   * Starts a watch. Without a resourceVersion (or "0") the current objects come first as ADDED;
   * with one, the changes after it are replayed from the window, or { ok: false } if they are
   * no longer there (the client must relist: 410 Gone).
   */
  start(resource: string, namespace: string | undefined, sel: Selectors, resourceVersion: string | undefined, sink: WatchSink): WatchStart {
    const w: Watcher = { resource, namespace, sel, sink, closed: false };
    if (!resourceVersion || resourceVersion === "0") {
      for (const s of this.registry.list(resource, namespace, sel)) this.send(w, eventLine("ADDED", s));
    } else {
      const from = Number(resourceVersion);
      if (from < this.floor) return { ok: false, oldest: this.floor };
      // A version this store never reached (the client saw another incarnation of the cluster):
      // resuming would silently skip changes, so the client must relist too.
      if (from > this.storage.revision()) return { ok: false, oldest: this.floor, tooLarge: true };
      for (let i = this.head; i < this.events.length; i++) {
        const ev = this.events[i];
        if (ev.rv <= from || ev.resource !== resource) continue;
        const type = this.typeFor(w, ev);
        if (type) this.send(w, eventLine(type, ev.object));
      }
    }
    if (w.closed) return { ok: true, stop: () => {} };
    let set = this.watchers.get(resource);
    if (!set) {
      set = new Set();
      this.watchers.set(resource, set);
    }
    set.add(w);
    return {
      ok: true,
      stop: () => {
        w.closed = true;
        this.watchers.get(resource)?.delete(w);
      },
    };
  }

  /** Number of open watches (for tests and status). */
  count(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }

  /** Ends every watch (server shutdown). */
  closeAll(): void {
    for (const set of this.watchers.values()) for (const w of [...set]) this.close(w);
    this.unsubscribe();
  }
}
