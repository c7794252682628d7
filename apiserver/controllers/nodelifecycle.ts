// Node lifecycle: a node whose kubelet stops posting status (the Ready condition's
// lastHeartbeatTime stops changing) for longer than the grace period turns Ready=Unknown, gets
// the unreachable NoSchedule taint, and its pods' Ready condition turns False, so their
// endpoints become not ready. When heartbeats come back, the taint goes; the kubelet reports
// its pods' readiness again. Like Kubernetes, the grace period is measured on this process's
// clock from when a heartbeat was last seen to change, so a restart of the API server does not
// by itself make nodes look dead.
//
// Also here, the pod garbage collection that goes with nodes: pods bound to a node that no
// longer exists are removed after the same grace period.
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { Node, NodeCondition, Pod } from "../types.ts";
import { nowRFC3339 } from "../util.ts";
import { isTerminal } from "./podutil.ts";

const TAINT_UNREACHABLE = "node.kubernetes.io/unreachable";
const TAINT_NOT_READY = "node.kubernetes.io/not-ready";

export class NodeLifecycleController {
  /** Node name -> [last heartbeat value seen, local time (ms) it was first seen]. */
  private readonly seen = new Map<string, [string | undefined, number]>();
  /** Node name -> its Ready status after the last pass (pods are marked when it leaves True). */
  private readonly lastReady = new Map<string, string>();
  /** Node name -> when pods were first found bound to it while it did not exist. */
  private readonly missingSince = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private pending = false;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    private readonly gracePeriodMs = 40_000,
  ) {}

  start(): void {
    const period = Math.max(200, Math.min(5000, Math.floor(this.gracePeriodMs / 4)));
    this.timer = setInterval(() => this.monitor(), period);
    this.timer.unref();
    // Node status changes (a heartbeat coming back) are acted on at once, not at the next tick.
    this.unsubscribe = this.storage.subscribe((ev: StorageEvent) => {
      if (ev.resource === "nodes" && ev.type === "MODIFIED" && !this.pending) {
        this.pending = true;
        setImmediate(() => {
          this.pending = false;
          this.monitor();
        });
      }
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }

  private heartbeat(node: Node): string | undefined {
    const ready = node.status?.conditions?.find((c) => c.type === "Ready");
    return ready?.lastHeartbeatTime ?? node.metadata.creationTimestamp;
  }

  monitor(): void {
    const now = Date.now();
    const names = new Set<string>();
    for (const s of this.registry.list<Node>("nodes")) {
      const node = s.obj;
      const name = node.metadata.name!;
      names.add(name);
      const hb = this.heartbeat(node);
      const last = this.seen.get(name);
      if (!last || last[0] !== hb) this.seen.set(name, [hb, now]);
      const since = this.seen.get(name)![1];
      const ready = node.status?.conditions?.find((c) => c.type === "Ready");
      try {
        if (now - since > this.gracePeriodMs && ready?.status !== "Unknown") this.markUnknown(node, !ready);
        this.syncTaints(name);
        const status = this.registry.tryGet<Node>("nodes", undefined, name)?.obj.status?.conditions?.find((c) => c.type === "Ready")?.status;
        // Once, when the node stops being Ready (as Kubernetes does), not on every pass: a kubelet
        // that comes back reports its pods' readiness before its first heartbeat lands, and that
        // report must not be overwritten by a pass that still sees the old node status.
        if (status !== undefined && status !== "True" && this.lastReady.get(name) !== status) this.markPodsNotReady(name);
        if (status !== undefined) this.lastReady.set(name, status);
      } catch (e) {
        if (!(e instanceof Error && /not found/.test(e.message))) throw e;
      }
    }
    for (const n of this.seen.keys()) if (!names.has(n)) this.seen.delete(n);
    for (const n of this.lastReady.keys()) if (!names.has(n)) this.lastReady.delete(n);
    this.collectOrphanPods(names, now);
  }

  private markUnknown(node: Node, never: boolean): void {
    const next = structuredClone(node);
    next.status ??= {};
    const t = nowRFC3339();
    const reason = never ? "NodeStatusNeverUpdated" : "NodeStatusUnknown";
    const message = never ? "Kubelet never posted node status." : "Kubelet stopped posting node status.";
    const conds: NodeCondition[] = next.status.conditions ?? [];
    if (!conds.some((c) => c.type === "Ready")) conds.push({ type: "Ready", status: "Unknown", lastHeartbeatTime: node.metadata.creationTimestamp, lastTransitionTime: t, reason, message });
    for (const c of conds) {
      if (c.type !== "Ready" && c.type !== "MemoryPressure" && c.type !== "DiskPressure" && c.type !== "PIDPressure") continue;
      if (c.status !== "Unknown") c.lastTransitionTime = t;
      c.status = "Unknown";
      c.reason = reason;
      c.message = message;
    }
    next.status.conditions = conds;
    this.registry.update("nodes", undefined, node.metadata.name!, next, { subresource: "status" });
  }

  private syncTaints(name: string): void {
    const cur = this.registry.get<Node>("nodes", undefined, name).obj;
    const ready = cur.status?.conditions?.find((c) => c.type === "Ready")?.status;
    const want = ready === "Unknown" ? TAINT_UNREACHABLE : ready === "False" ? TAINT_NOT_READY : undefined;
    const taints = cur.spec?.taints ?? [];
    const others = taints.filter((t) => !((t.key === TAINT_UNREACHABLE || t.key === TAINT_NOT_READY) && t.effect === "NoSchedule"));
    const next = want ? [...others, { key: want, effect: "NoSchedule", timeAdded: nowRFC3339() }] : others;
    const same = want ? taints.some((t) => t.key === want && t.effect === "NoSchedule") && taints.length === next.length : taints.length === next.length;
    if (same) return;
    const node = structuredClone(cur);
    node.spec = { ...(node.spec ?? {}), taints: next };
    if (next.length === 0) delete node.spec.taints;
    this.registry.update("nodes", undefined, name, node);
  }

  private markPodsNotReady(nodeName: string): void {
    for (const s of this.registry.list<Pod>("pods")) {
      const pod = s.obj;
      if (pod.spec?.nodeName !== nodeName || isTerminal(pod)) continue;
      const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
      if (!ready || ready.status === "False") continue;
      const status = structuredClone(pod.status!);
      for (const c of status.conditions!) {
        if (c.type === "Ready") {
          c.status = "False";
          c.lastTransitionTime = nowRFC3339();
          c.reason = "NodeNotReady";
          c.message = `Node ${nodeName} is not ready`;
        }
      }
      this.registry.update("pods", pod.metadata.namespace, pod.metadata.name!, { ...pod, status }, { subresource: "status" });
    }
  }

  private collectOrphanPods(nodes: Set<string>, now: number): void {
    const orphans = new Map<string, Pod[]>();
    for (const s of this.registry.list<Pod>("pods")) {
      const n = s.obj.spec?.nodeName;
      if (n && !nodes.has(n)) orphans.set(n, [...(orphans.get(n) ?? []), s.obj]);
    }
    for (const n of this.missingSince.keys()) if (!orphans.has(n)) this.missingSince.delete(n);
    for (const [n, pods] of orphans) {
      const since = this.missingSince.get(n) ?? now;
      this.missingSince.set(n, since);
      if (now - since < this.gracePeriodMs) continue;
      for (const pod of pods) {
        try {
          this.registry.delete("pods", pod.metadata.namespace, pod.metadata.name!, { gracePeriodSeconds: 0 });
        } catch {
          /* gone already */
        }
      }
    }
  }
}
