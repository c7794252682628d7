// The scheduler: binds each pending pod (no spec.nodeName) to a node. Filters as Kubernetes'
// default plugins do for what podnet models (Ready, unschedulable, nodeSelector, NoSchedule and
// NoExecute taints, host ports already taken on the node); scores by fewest pods. A pod that
// fits nowhere stays Pending with PodScheduled=False, reason Unschedulable, and is retried when
// nodes change or a pod with host ports goes.
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { Node, Pod, PodCondition } from "../types.ts";
import { nowRFC3339 } from "../util.ts";
import { isTerminal, nodeReady } from "./podutil.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";

interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: string;
}

function tolerates(tols: unknown[] | undefined, taint: { key: string; value?: string; effect: string }): boolean {
  for (const raw of tols ?? []) {
    const t = raw as Toleration;
    if (t.effect && t.effect !== taint.effect) continue;
    if (t.operator === "Exists") {
      if (!t.key || t.key === taint.key) return true;
    } else if (t.key === taint.key && (t.value ?? "") === (taint.value ?? "")) return true;
  }
  return false;
}

interface HostPort {
  protocol: string;
  ip: string;
  port: number;
}

/** The host ports a pod takes on its node (a hostNetwork pod's default to its container ports). */
function hostPortsOf(pod: Pod): HostPort[] {
  const out: HostPort[] = [];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const p of c.ports ?? []) if (p.hostPort) out.push({ protocol: p.protocol ?? "TCP", ip: p.hostIP || "0.0.0.0", port: p.hostPort });
  }
  return out;
}

/** As Kubernetes' NodePorts filter: same protocol and port, on the same address or on every address. */
function conflicts(a: HostPort, b: HostPort): boolean {
  return a.protocol === b.protocol && a.port === b.port && (a.ip === b.ip || a.ip === "0.0.0.0" || b.ip === "0.0.0.0");
}

const RETRY_MS = 10_000;

export class Scheduler {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    private readonly retryMs = RETRY_MS,
  ) {
    this.queue = new WorkQueue("scheduler", (key) => this.schedule(key));
  }

  private wants(pod: Pod): boolean {
    const sn = pod.spec?.schedulerName;
    return !pod.spec?.nodeName && !pod.metadata.deletionTimestamp && !isTerminal(pod) && (!sn || sn === "default-scheduler");
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    this.requeueAll();
    this.timer = setInterval(() => this.requeueAll(), this.retryMs);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    this.queue.stop();
  }

  private requeueAll(): void {
    for (const s of this.registry.list<Pod>("pods")) if (this.wants(s.obj)) this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
  }

  private onEvent(ev: StorageEvent): void {
    if (ev.resource === "pods" && ev.type !== "DELETED") {
      const pod = ev.object.obj as Pod;
      if (this.wants(pod)) this.queue.add(keyOf(pod.metadata.namespace, pod.metadata.name));
      // A pod that ended (Succeeded or Failed) no longer holds its host ports, deleted or not.
      const prev = ev.prev?.obj as Pod | undefined;
      if (prev && !isTerminal(prev) && isTerminal(pod) && pod.spec?.nodeName && hostPortsOf(pod).length) this.requeueAll();
    } else if (ev.resource === "nodes") {
      // A node that appeared, became Ready or changed labels/taints may fit pods that did not fit.
      const before = ev.prev?.obj as Node | undefined;
      const now = ev.object.obj as Node;
      if (ev.type === "ADDED" || nodeReady(now) !== nodeReady(before ?? now) || JSON.stringify(now.spec) !== JSON.stringify(before?.spec) || JSON.stringify(now.metadata.labels) !== JSON.stringify(before?.metadata.labels))
        this.requeueAll();
    } else if (ev.resource === "pods" && ev.type === "DELETED") {
      // Host ports freed on a node: a pod waiting for them may fit now.
      if (hostPortsOf(ev.object.obj as Pod).length) this.requeueAll();
    }
  }

  private schedule(key: string): void {
    const [ns, name] = splitKey(key);
    const cur = this.registry.tryGet<Pod>("pods", ns, name);
    if (!cur || !this.wants(cur.obj)) return;
    const pod = cur.obj;
    const nodes = this.registry.list<Node>("nodes").map((s) => s.obj);
    const reasons = new Map<string, number>();
    const why = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1);
    const fits: Node[] = [];
    const wanted = hostPortsOf(pod);
    const taken = new Map<string, HostPort[]>();
    if (wanted.length) {
      for (const s of this.registry.list<Pod>("pods")) {
        const n = s.obj.spec?.nodeName;
        if (!n || isTerminal(s.obj)) continue;
        const list = taken.get(n) ?? [];
        list.push(...hostPortsOf(s.obj));
        taken.set(n, list);
      }
    }
    for (const node of nodes) {
      if (nodeReady(node) !== "True") {
        why("node(s) were not ready");
        continue;
      }
      if (node.spec?.unschedulable) {
        why("node(s) were unschedulable");
        continue;
      }
      const labels = node.metadata.labels ?? {};
      if (Object.entries(pod.spec.nodeSelector ?? {}).some(([k, v]) => labels[k] !== v)) {
        why("node(s) didn't match Pod's node affinity/selector");
        continue;
      }
      const taint = (node.spec?.taints ?? []).find((t) => (t.effect === "NoSchedule" || t.effect === "NoExecute") && !tolerates(pod.spec.tolerations, t));
      if (taint) {
        why(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`);
        continue;
      }
      const used = taken.get(node.metadata.name!) ?? [];
      if (wanted.some((w) => used.some((u) => conflicts(w, u)))) {
        why("node(s) didn't have free ports for the requested pod ports");
        continue;
      }
      fits.push(node);
    }
    if (fits.length === 0) {
      const detail = [...reasons].map(([r, n]) => `${n} ${r}`).sort().join(", ");
      const message = `0/${nodes.length} nodes are available${detail ? `: ${detail}` : ""}.`;
      this.markUnschedulable(ns!, name, message);
      return;
    }
    const load = new Map<string, number>(fits.map((n) => [n.metadata.name!, 0]));
    for (const s of this.registry.list<Pod>("pods")) {
      const n = s.obj.spec?.nodeName;
      if (n && load.has(n) && !isTerminal(s.obj)) load.set(n, load.get(n)! + 1);
    }
    fits.sort((a, b) => load.get(a.metadata.name!)! - load.get(b.metadata.name!)! || (a.metadata.name! < b.metadata.name! ? -1 : 1));
    this.registry.bind(ns!, name, fits[0].metadata.name!, pod.metadata.uid);
  }

  private markUnschedulable(ns: string, name: string, message: string): void {
    const cur = this.registry.get<Pod>("pods", ns, name);
    const old = cur.obj.status?.conditions?.find((c) => c.type === "PodScheduled");
    if (old?.status === "False" && old.reason === "Unschedulable" && old.message === message) return;
    const cond: PodCondition = { type: "PodScheduled", status: "False", lastProbeTime: null, lastTransitionTime: old?.status === "False" ? old.lastTransitionTime : nowRFC3339(), reason: "Unschedulable", message };
    const status = structuredClone(cur.obj.status ?? {});
    status.phase ??= "Pending";
    status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== "PodScheduled"), cond];
    this.registry.update("pods", ns, name, { ...cur.obj, status }, { subresource: "status" });
  }
}
