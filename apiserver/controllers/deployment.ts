// The Deployment controller: one ReplicaSet per pod template (named <deployment>-<hash>, with
// the pod-template-hash label), rolled over with the RollingUpdate (maxSurge/maxUnavailable)
// or Recreate strategy, scaled with the Deployment, old ones pruned past revisionHistoryLimit,
// and the Deployment's status and conditions kept up to date.
//
// Availability is counted from the pods themselves, never from a ReplicaSet status that may not
// have caught up yet, and a ReplicaSet being scaled down counts at most its new size: so a
// rolling update never takes more pods away than maxUnavailable allows.
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { Deployment, Pod, PodTemplateSpec, ReplicaSet } from "../types.ts";
import { canonicalJSON, deepEqual, fnv32a, nowRFC3339, safeEncode } from "../util.ts";
import { controllerRef, isActivePod, isPodAvailable, isPodReady, msUntilAvailable, ownerRefTo } from "./podutil.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";

export const POD_TEMPLATE_HASH = "pod-template-hash";
const REVISION = "deployment.kubernetes.io/revision";
const DESIRED = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS = "deployment.kubernetes.io/max-replicas";

/** Resolves an int-or-percent against a total; percentages round up for surge, down for unavailable. */
export function resolveIntOrPercent(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined) return 0;
  if (typeof v === "number") return v;
  const pct = parseInt(v, 10);
  const x = (pct * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

function templateWithoutHash(t: PodTemplateSpec): PodTemplateSpec {
  const c = structuredClone(t);
  if (c.metadata?.labels) {
    delete c.metadata.labels[POD_TEMPLATE_HASH];
    if (Object.keys(c.metadata.labels).length === 0) delete c.metadata.labels;
  }
  return c;
}

export function templateHash(t: PodTemplateSpec, collisionCount = 0): string {
  return safeEncode(String(fnv32a(canonicalJSON(templateWithoutHash(t)) + (collisionCount ? `/${collisionCount}` : ""))));
}

const revisionOf = (rs: ReplicaSet) => Number(rs.metadata.annotations?.[REVISION] ?? 0) || 0;

interface RSView {
  rs: ReplicaSet;
  /** Active pods that are available, counting at most spec.replicas. */
  available: number;
  ready: number;
  active: number;
  /** All pods still present, including those being deleted. */
  present: number;
}

export class DeploymentController {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
  ) {
    this.queue = new WorkQueue("deployment-controller", (key) => this.sync(key));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    for (const s of this.registry.list<Deployment>("deployments")) this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onEvent(ev: StorageEvent): void {
    const obj = ev.object.obj;
    const ns = obj.metadata.namespace;
    if (ev.resource === "deployments") this.queue.add(keyOf(ns, obj.metadata.name));
    else if (ev.resource === "replicasets") {
      const ref = controllerRef(obj);
      if (ref?.kind === "Deployment") this.queue.add(keyOf(ns, ref.name));
    } else if (ev.resource === "pods") {
      // Pod readiness and deletion drive rollouts: find the pod's ReplicaSet's Deployment.
      const ref = controllerRef(obj) ?? (ev.prev ? controllerRef(ev.prev.obj) : undefined);
      if (ref?.kind !== "ReplicaSet") return;
      const rs = this.registry.tryGet<ReplicaSet>("replicasets", ns, ref.name);
      const dref = rs ? controllerRef(rs.obj) : undefined;
      if (dref?.kind === "Deployment") this.queue.add(keyOf(ns, dref.name));
    }
  }

  private views(d: Deployment, now: number): { views: RSView[]; wakeIn?: number } {
    const ns = d.metadata.namespace;
    const uid = d.metadata.uid;
    const rsList = this.registry
      .list<ReplicaSet>("replicasets", ns)
      .map((s) => s.obj)
      .filter((rs) => controllerRef(rs)?.uid === uid && !rs.metadata.deletionTimestamp);
    const byUID = new Map<string, RSView>(rsList.map((rs) => [rs.metadata.uid!, { rs, available: 0, ready: 0, active: 0, present: 0 }]));
    const minReady = d.spec.minReadySeconds ?? 0;
    let wakeIn: number | undefined;
    for (const s of this.registry.list<Pod>("pods", ns)) {
      const v = byUID.get(controllerRef(s.obj)?.uid ?? "");
      if (!v) continue;
      v.present++;
      if (!isActivePod(s.obj)) continue;
      v.active++;
      if (isPodReady(s.obj)) v.ready++;
      if (isPodAvailable(s.obj, minReady, now)) v.available++;
      else {
        const ms = msUntilAvailable(s.obj, minReady, now);
        if (ms !== undefined) wakeIn = Math.min(wakeIn ?? ms, ms);
      }
    }
    for (const v of byUID.values()) v.available = Math.min(v.available, v.rs.spec.replicas ?? 0);
    return { views: [...byUID.values()], wakeIn };
  }

  private sync(key: string): void {
    const [ns, name] = splitKey(key);
    const cur = this.registry.tryGet<Deployment>("deployments", ns, name);
    if (!cur || cur.obj.metadata.deletionTimestamp) return;
    const d = cur.obj;
    const now = Date.now();
    let { views } = this.views(d, now);
    let newView = views.find((v) => deepEqual(templateWithoutHash(v.rs.spec.template), templateWithoutHash(d.spec.template)));
    const maxRevision = Math.max(0, ...views.map((v) => revisionOf(v.rs)));
    const replicas = d.spec.replicas ?? 1;

    if (!newView && !d.spec.paused) {
      const created = this.createReplicaSet(d, views, maxRevision + 1, replicas);
      views = this.views(d, now).views;
      newView = views.find((v) => v.rs.metadata.uid === created.metadata.uid);
    } else if (newView && revisionOf(newView.rs) < maxRevision) {
      // Rolled back to an older template: that ReplicaSet becomes the newest revision.
      this.annotate(newView.rs, { [REVISION]: String(maxRevision + 1) });
    }
    const olds = views.filter((v) => v !== newView).sort((a, b) => ((a.rs.metadata.creationTimestamp ?? "") < (b.rs.metadata.creationTimestamp ?? "") ? -1 : 1));

    if (d.spec.paused) {
      // Paused: scaling only, the rollout does not move.
      const activeOnes = views.filter((v) => (v.rs.spec.replicas ?? 0) > 0);
      if (activeOnes.length === 1) this.scale(activeOnes[0], replicas, d);
    } else if (newView) {
      if (d.spec.strategy?.type === "Recreate") this.recreate(d, newView, olds, replicas);
      else this.rollingUpdate(d, newView, olds, replicas);
    }
    this.cleanup(d);
    this.updateStatus(key);
  }

  private createReplicaSet(d: Deployment, views: RSView[], revision: number, replicas: number): ReplicaSet {
    const ns = d.metadata.namespace!;
    for (let collision = 0; ; collision++) {
      const hash = templateHash(d.spec.template, collision);
      const name = `${d.metadata.name}-${hash}`;
      const existing = this.registry.tryGet<ReplicaSet>("replicasets", ns, name);
      if (existing) {
        if (controllerRef(existing.obj)?.uid === d.metadata.uid && deepEqual(templateWithoutHash(existing.obj.spec.template), templateWithoutHash(d.spec.template))) return existing.obj;
        if (collision > 10) throw new Error(`cannot find a free ReplicaSet name for ${ns}/${d.metadata.name}`);
        continue;
      }
      const template = structuredClone(d.spec.template);
      template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH]: hash } };
      const selector = structuredClone(d.spec.selector);
      selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH]: hash };
      // The first ReplicaSet starts at full size; a later one starts at what the surge allows.
      let start = replicas;
      if (views.some((v) => (v.rs.spec.replicas ?? 0) > 0)) {
        if (d.spec.strategy?.type === "Recreate") start = 0;
        else {
          const surge = this.limits(d, replicas).maxSurge;
          const total = views.reduce((n, v) => n + (v.rs.spec.replicas ?? 0), 0);
          start = Math.max(0, Math.min(replicas, replicas + surge - total));
        }
      }
      const rs: ReplicaSet = {
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        metadata: {
          name,
          namespace: ns,
          labels: { ...(d.spec.template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH]: hash },
          annotations: { [REVISION]: String(revision), [DESIRED]: String(replicas), [MAX_REPLICAS]: String(replicas + this.limits(d, replicas).maxSurge) },
          ownerReferences: [ownerRefTo(d, "apps/v1", "Deployment")],
        },
        spec: { replicas: start, minReadySeconds: d.spec.minReadySeconds ?? 0, selector, template },
      };
      return this.registry.create<ReplicaSet>("replicasets", ns, rs).obj;
    }
  }

  private limits(d: Deployment, replicas: number): { maxSurge: number; maxUnavailable: number } {
    const ru = d.spec.strategy?.rollingUpdate;
    let maxSurge = resolveIntOrPercent(ru?.maxSurge, replicas, true);
    let maxUnavailable = resolveIntOrPercent(ru?.maxUnavailable, replicas, false);
    if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
    if (maxUnavailable > replicas) maxUnavailable = replicas;
    if (maxSurge < 0) maxSurge = 0;
    return { maxSurge, maxUnavailable };
  }

  private annotate(rs: ReplicaSet, ann: Record<string, string>): ReplicaSet {
    const next = structuredClone(rs);
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...ann };
    return this.registry.update<ReplicaSet>("replicasets", rs.metadata.namespace, rs.metadata.name!, next).obj;
  }

  private scale(v: RSView, n: number, d: Deployment): void {
    const rs = v.rs;
    const replicas = d.spec.replicas ?? 1;
    const ann = { [DESIRED]: String(replicas), [MAX_REPLICAS]: String(replicas + this.limits(d, replicas).maxSurge) };
    if ((rs.spec.replicas ?? 0) === n && rs.metadata.annotations?.[DESIRED] === ann[DESIRED]) return;
    const next = structuredClone(rs);
    next.spec.replicas = n;
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...ann };
    // The view follows the write (stored objects are never modified in place).
    v.rs = this.registry.update<ReplicaSet>("replicasets", rs.metadata.namespace, rs.metadata.name!, next).obj;
  }

  private recreate(d: Deployment, newView: RSView, olds: RSView[], replicas: number): void {
    let oldRunning = false;
    for (const v of olds) {
      if ((v.rs.spec.replicas ?? 0) > 0) this.scale(v, 0, d);
      if (v.present > 0) oldRunning = true;
    }
    // Recreate: the new pods start only once every old pod is gone.
    if (!oldRunning) this.scale(newView, replicas, d);
  }

  private rollingUpdate(d: Deployment, newView: RSView, olds: RSView[], replicas: number): void {
    const { maxSurge, maxUnavailable } = this.limits(d, replicas);
    const specOf = (v: RSView) => v.rs.spec.replicas ?? 0;
    const all = [newView, ...olds];

    // 1. Scale the new ReplicaSet up within the surge (or down to the target).
    const newReplicas = specOf(newView);
    if (newReplicas > replicas) this.scale(newView, replicas, d);
    else if (newReplicas < replicas) {
      const total = all.reduce((n, v) => n + specOf(v), 0);
      const room = replicas + maxSurge - total;
      if (room > 0) this.scale(newView, newReplicas + Math.min(room, replicas - newReplicas), d);
    } else this.scale(newView, replicas, d); // refresh annotations only

    // 2. Scale old ReplicaSets down as far as availability allows.
    const oldTotal = olds.reduce((n, v) => n + specOf(v), 0);
    if (oldTotal === 0) return;
    const minAvailable = replicas - maxUnavailable;
    const allTotal = all.reduce((n, v) => n + specOf(v), 0);
    const newUnavailable = Math.max(0, specOf(newView) - newView.available);
    let maxScaledDown = allTotal - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return;
    // First the old pods that are not available anyway: removing them costs nothing.
    for (const v of olds) {
      if (maxScaledDown <= 0) break;
      const unhealthy = specOf(v) - Math.min(v.available, specOf(v));
      if (unhealthy <= 0) continue;
      const down = Math.min(unhealthy, maxScaledDown);
      this.scale(v, specOf(v) - down, d);
      v.available = Math.min(v.available, specOf(v));
      maxScaledDown -= down;
    }
    // Then available old pods, keeping minAvailable across all ReplicaSets.
    const available = all.reduce((n, v) => n + Math.min(v.available, specOf(v)), 0);
    let canRemove = available - minAvailable;
    for (const v of olds) {
      if (canRemove <= 0) break;
      if (specOf(v) === 0) continue;
      const down = Math.min(specOf(v), canRemove);
      this.scale(v, specOf(v) - down, d);
      canRemove -= down;
    }
  }

  /** Old ReplicaSets with no replicas and no pods, beyond revisionHistoryLimit, are deleted (oldest first). */
  private cleanup(d: Deployment): void {
    const limit = d.spec.revisionHistoryLimit ?? 10;
    const { views } = this.views(d, Date.now());
    const newest = Math.max(0, ...views.map((v) => revisionOf(v.rs)));
    const idle = views.filter((v) => (v.rs.spec.replicas ?? 0) === 0 && v.present === 0 && revisionOf(v.rs) !== newest).sort((a, b) => revisionOf(a.rs) - revisionOf(b.rs));
    for (const v of idle.slice(0, Math.max(0, idle.length - limit))) {
      try {
        this.registry.delete("replicasets", v.rs.metadata.namespace, v.rs.metadata.name!);
      } catch {
        /* gone */
      }
    }
  }

  private updateStatus(key: string): void {
    const [ns, name] = splitKey(key);
    const cur = this.registry.tryGet<Deployment>("deployments", ns, name);
    if (!cur) return;
    const d = cur.obj;
    const now = Date.now();
    const { views, wakeIn } = this.views(d, now);
    const newView = views.find((v) => deepEqual(templateWithoutHash(v.rs.spec.template), templateWithoutHash(d.spec.template)));
    const replicas = d.spec.replicas ?? 1;
    const { maxUnavailable } = this.limits(d, replicas);
    const sum = (f: (v: RSView) => number) => views.reduce((n, v) => n + f(v), 0);
    const specTotal = sum((v) => v.rs.spec.replicas ?? 0);
    const statusReplicas = sum((v) => v.active);
    const updated = newView?.active ?? 0;
    const ready = sum((v) => v.ready);
    const available = sum((v) => v.available);
    const minAvailable = d.spec.strategy?.type === "Recreate" ? replicas : replicas - maxUnavailable;
    const t = nowRFC3339();
    const prevConds = d.status?.conditions ?? [];
    const cond = (type: string, status: string, reason: string, message: string) => {
      const old = prevConds.find((c) => c.type === type);
      const same = old?.status === status && old.reason === reason;
      return {
        type,
        status,
        lastUpdateTime: same && old?.message === message ? old.lastUpdateTime : t,
        lastTransitionTime: old?.status === status ? old.lastTransitionTime : t,
        reason,
        message,
      };
    };
    const complete = updated === replicas && available === replicas && statusReplicas === replicas;
    const rsName = newView?.rs.metadata.name ?? "";
    const conditions = [
      available >= minAvailable
        ? cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        : cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
      d.spec.paused
        ? cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        : complete
          ? cond("Progressing", "True", "NewReplicaSetAvailable", `ReplicaSet "${rsName}" has successfully progressed.`)
          : cond("Progressing", "True", "ReplicaSetUpdated", `ReplicaSet "${rsName}" is progressing.`),
    ];
    const status: Deployment["status"] = {
      observedGeneration: d.metadata.generation,
      replicas: statusReplicas,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: available,
      unavailableReplicas: Math.max(0, specTotal - available),
      conditions,
    };
    if (!deepEqual(status, d.status)) this.registry.update("deployments", ns, name, { ...d, status }, { subresource: "status" });
    const revision = newView ? String(revisionOf(newView.rs)) : undefined;
    if (revision && d.metadata.annotations?.[REVISION] !== revision) {
      const latest = this.registry.get<Deployment>("deployments", ns, name).obj;
      const next = structuredClone(latest);
      next.metadata.annotations = { ...(next.metadata.annotations ?? {}), [REVISION]: revision };
      this.registry.update("deployments", ns, name, next);
    }
    if (wakeIn !== undefined) this.queue.addAfter(key, wakeIn + 50);
  }
}
