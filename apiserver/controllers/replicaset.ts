// The ReplicaSet controller: keeps spec.replicas active pods (not being deleted, not finished)
// for each ReplicaSet, creating pods from its template and deleting the least valuable ones
// first (unscheduled, then pending, then not ready, then the newest), as Kubernetes does.
// Orphan pods that match its selector are adopted; owned pods that stop matching are released.
import type { Registry } from "../registry.ts";
import { labelSelectorRequirements, matchLabels } from "../selectors.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { Pod, ReplicaSet } from "../types.ts";
import { deepEqual } from "../util.ts";
import { controllerRef, isActivePod, isPodAvailable, isPodReady, msUntilAvailable, ownerRefTo } from "./podutil.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";

/** Pods created per sync: a large scale-up proceeds in steps, leaving room for other work. */
const BURST = 100;

function phaseRank(p: Pod): number {
  return p.status?.phase === "Pending" ? 0 : p.status?.phase === "Unknown" ? 1 : 2;
}

/** Sort order for deletion: the pods worth least come first. */
export function deletionOrder(a: Pod, b: Pod): number {
  const sa = a.spec.nodeName ? 1 : 0;
  const sb = b.spec.nodeName ? 1 : 0;
  if (sa !== sb) return sa - sb;
  if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
  const ra = isPodReady(a) ? 1 : 0;
  const rb = isPodReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  const restarts = (p: Pod) => (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const ca = a.metadata.creationTimestamp ?? "";
  const cb = b.metadata.creationTimestamp ?? "";
  if (ca !== cb) return ca < cb ? 1 : -1;
  return (a.metadata.name ?? "") < (b.metadata.name ?? "") ? 1 : -1;
}

export class ReplicaSetController {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
  ) {
    this.queue = new WorkQueue("replicaset-controller", (key) => this.sync(key));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    for (const s of this.registry.list<ReplicaSet>("replicasets")) this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onEvent(ev: StorageEvent): void {
    if (ev.resource === "replicasets") {
      const rs = ev.object.obj;
      this.queue.add(keyOf(rs.metadata.namespace, rs.metadata.name));
    } else if (ev.resource === "pods") {
      const pod = ev.object.obj as Pod;
      const ref = controllerRef(pod);
      const prevRef = ev.prev ? controllerRef(ev.prev.obj) : undefined;
      for (const r of [ref, prevRef]) if (r?.kind === "ReplicaSet") this.queue.add(keyOf(pod.metadata.namespace, r.name));
      if (!ref && ev.type !== "DELETED" && isActivePod(pod)) {
        // An orphan: a ReplicaSet whose selector matches may adopt it.
        for (const s of this.registry.list<ReplicaSet>("replicasets", pod.metadata.namespace)) {
          if (matchLabels(labelSelectorRequirements(s.obj.spec.selector), pod.metadata.labels)) this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
        }
      }
    }
  }

  private sync(key: string): void {
    const [ns, name] = splitKey(key);
    const cur = this.registry.tryGet<ReplicaSet>("replicasets", ns, name);
    if (!cur || cur.obj.metadata.deletionTimestamp) return;
    const rs = cur.obj;
    const uid = rs.metadata.uid!;
    const reqs = labelSelectorRequirements(rs.spec.selector);
    const owned: Pod[] = [];
    for (const s of this.registry.list<Pod>("pods", ns)) {
      const pod = s.obj;
      const ref = controllerRef(pod);
      const matches = matchLabels(reqs, pod.metadata.labels);
      if (ref?.uid === uid) {
        if (matches) owned.push(pod);
        else this.release(pod, uid);
      } else if (!ref && matches && isActivePod(pod)) {
        owned.push(this.adopt(pod, rs));
      }
    }
    const active = owned.filter(isActivePod);
    const want = rs.spec.replicas ?? 1;
    const diff = active.length - want;
    if (diff < 0) {
      const n = Math.min(-diff, BURST);
      for (let i = 0; i < n; i++) this.createPod(rs);
      if (-diff > BURST) this.queue.add(key);
    } else if (diff > 0) {
      const victims = [...active].sort(deletionOrder).slice(0, diff);
      for (const p of victims) {
        try {
          this.registry.delete("pods", p.metadata.namespace, p.metadata.name!);
        } catch {
          /* already gone */
        }
      }
    }
    this.updateStatus(key);
  }

  private adopt(pod: Pod, rs: ReplicaSet): Pod {
    const next = structuredClone(pod);
    next.metadata.ownerReferences = [...(next.metadata.ownerReferences ?? []), ownerRefTo(rs, "apps/v1", "ReplicaSet")];
    return this.registry.update<Pod>("pods", pod.metadata.namespace, pod.metadata.name!, next).obj;
  }

  private release(pod: Pod, uid: string): void {
    const next = structuredClone(pod);
    next.metadata.ownerReferences = (next.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
    if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
    this.registry.update("pods", pod.metadata.namespace, pod.metadata.name!, next);
  }

  private createPod(rs: ReplicaSet): void {
    const t = rs.spec.template;
    const pod: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...(t.metadata?.labels ?? {}) },
        ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
        ownerReferences: [ownerRefTo(rs, "apps/v1", "ReplicaSet")],
      },
      spec: structuredClone(t.spec),
    };
    this.registry.create("pods", rs.metadata.namespace, pod);
  }

  /** Recomputes status from the pods as they are now (after this sync's changes). */
  private updateStatus(key: string): void {
    const [ns, name] = splitKey(key);
    const cur = this.registry.tryGet<ReplicaSet>("replicasets", ns, name);
    if (!cur) return;
    const rs = cur.obj;
    const minReady = rs.spec.minReadySeconds ?? 0;
    const templateLabels = rs.spec.template?.metadata?.labels ?? {};
    let replicas = 0;
    let fullyLabeled = 0;
    let ready = 0;
    let available = 0;
    let wakeIn: number | undefined;
    const now = Date.now();
    for (const s of this.registry.list<Pod>("pods", ns)) {
      const pod = s.obj;
      if (controllerRef(pod)?.uid !== rs.metadata.uid || !isActivePod(pod)) continue;
      replicas++;
      if (Object.entries(templateLabels).every(([k, v]) => pod.metadata.labels?.[k] === v)) fullyLabeled++;
      if (isPodReady(pod)) ready++;
      if (isPodAvailable(pod, minReady, now)) available++;
      else {
        const ms = msUntilAvailable(pod, minReady, now);
        if (ms !== undefined) wakeIn = Math.min(wakeIn ?? ms, ms);
      }
    }
    const status: ReplicaSet["status"] = { replicas, fullyLabeledReplicas: fullyLabeled, readyReplicas: ready, availableReplicas: available, observedGeneration: rs.metadata.generation };
    if (!deepEqual(status, rs.status)) this.registry.update("replicasets", ns, name, { ...rs, status }, { subresource: "status" });
    if (wakeIn !== undefined) this.queue.addAfter(key, wakeIn + 50);
  }
}
