// The pod lifecycle event generator: relists the runtime's sandboxes and containers (one call
// each) every relist period, as Kubernetes' generic PLEG does every second, and wakes the worker
// of every pod whose sandbox or containers changed state (a container exited, a holder died).
import type { RuntimeClient } from "../runtime/cri/client.ts";
import { POD_UID_LABEL } from "./labels.ts";

export class Pleg {
  private last = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Whether the last relist reached the runtime. */
  healthy = false;
  lastRelist = 0;

  constructor(
    private readonly runtime: RuntimeClient,
    private readonly periodMs: number,
    private readonly onPodChanged: (uid: string) => void,
  ) {}

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      await this.relist();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.periodMs);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async relist(): Promise<void> {
    let sandboxes, containers;
    try {
      [sandboxes, containers] = await Promise.all([this.runtime.listPodSandbox({}), this.runtime.listContainers({})]);
    } catch {
      this.healthy = false;
      return;
    }
    this.healthy = true;
    this.lastRelist = Date.now();
    const now = new Map<string, string>();
    const uidOf = new Map<string, string>();
    for (const s of sandboxes.items ?? []) {
      const uid = s.labels?.[POD_UID_LABEL];
      if (!uid) continue;
      now.set(`s/${s.id}`, s.state);
      uidOf.set(`s/${s.id}`, uid);
    }
    for (const c of containers.containers ?? []) {
      const uid = c.labels?.[POD_UID_LABEL];
      if (!uid) continue;
      now.set(`c/${c.id}`, c.state);
      uidOf.set(`c/${c.id}`, uid);
    }
    const changed = new Set<string>();
    for (const [k, st] of now) if (this.last.get(k) !== st) changed.add(uidOf.get(k)!);
    for (const k of this.last.keys()) if (!now.has(k)) changed.add(this.lastUid.get(k) ?? "");
    this.last = now;
    this.lastUid = uidOf;
    for (const uid of changed) if (uid) this.onPodChanged(uid);
  }

  private lastUid = new Map<string, string>();
}
