// Cascading deletion, as Kubernetes' garbage collector and namespace controller do it:
// - an object whose ownerReferences all point at objects that no longer exist is deleted
//   (Deployment -> ReplicaSets -> Pods, Service -> EndpointSlices); with some owners left,
//   only the dangling references are removed; an owner deleted with propagationPolicy=Orphan
//   leaves its dependents in place, without the reference;
// - a namespace being deleted has everything in it deleted, then goes itself.
import type { Registry } from "../registry.ts";
import { RESOURCES } from "../resources.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { KObject, Namespace } from "../types.ts";
import { WorkQueue } from "./queue.ts";

type Ref = string; // "resource|namespace|name"
const refOf = (resource: string, o: KObject): Ref => `${resource}|${o.metadata.namespace ?? ""}|${o.metadata.name}`;

export class GarbageCollector {
  private readonly uids = new Map<string, Ref>();
  private readonly dependents = new Map<string, Set<Ref>>();
  private readonly queue: WorkQueue;
  private readonly nsQueue: WorkQueue;
  private unsubscribe?: () => void;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
  ) {
    this.queue = new WorkQueue("garbage-collector", (ref) => this.check(ref));
    this.nsQueue = new WorkQueue("namespace-controller", (ns) => this.syncNamespace(ns));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    const withOwners: Ref[] = [];
    for (const r of RESOURCES) {
      for (const s of this.registry.list(r.resource)) {
        this.index(r.resource, s.obj, undefined);
        if (s.obj.metadata.ownerReferences?.length) withOwners.push(refOf(r.resource, s.obj));
      }
    }
    // Owners deleted while the server was down: their dependents are found now.
    for (const ref of withOwners) this.queue.add(ref);
    for (const s of this.registry.list<Namespace>("namespaces")) if (s.obj.metadata.deletionTimestamp) this.nsQueue.add(s.obj.metadata.name!);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
    this.nsQueue.stop();
  }

  private index(resource: string, obj: KObject, prev: KObject | undefined): void {
    const ref = refOf(resource, obj);
    if (obj.metadata.uid) this.uids.set(obj.metadata.uid, ref);
    for (const o of prev?.metadata.ownerReferences ?? []) this.dependents.get(o.uid)?.delete(ref);
    for (const o of obj.metadata.ownerReferences ?? []) {
      let set = this.dependents.get(o.uid);
      if (!set) this.dependents.set(o.uid, (set = new Set()));
      set.add(ref);
    }
  }

  private onEvent(ev: StorageEvent): void {
    const obj = ev.object.obj;
    const ref = refOf(ev.resource, obj);
    if (ev.type === "DELETED") {
      const uid = obj.metadata.uid;
      if (uid) {
        this.uids.delete(uid);
        for (const dep of this.dependents.get(uid) ?? []) this.queue.add(dep);
        this.dependents.delete(uid);
        if (this.registry.orphanRequests.has(uid)) setTimeout(() => this.registry.orphanRequests.delete(uid), 60_000).unref();
      }
      for (const o of obj.metadata.ownerReferences ?? []) this.dependents.get(o.uid)?.delete(ref);
      const ns = obj.metadata.namespace;
      if (ns && this.registry.tryGet<Namespace>("namespaces", undefined, ns)?.obj.metadata.deletionTimestamp) this.nsQueue.add(ns);
      return;
    }
    this.index(ev.resource, obj, ev.prev?.obj);
    const refsChanged = JSON.stringify(obj.metadata.ownerReferences) !== JSON.stringify(ev.prev?.obj.metadata.ownerReferences);
    if (obj.metadata.ownerReferences?.length && (ev.type === "ADDED" || refsChanged)) this.queue.add(ref);
    if (ev.resource === "namespaces" && obj.metadata.deletionTimestamp) this.nsQueue.add(obj.metadata.name!);
  }

  private check(ref: Ref): void {
    const [resource, ns, name] = ref.split("|");
    const cur = this.registry.tryGet(resource, ns || undefined, name);
    if (!cur) return;
    const refs = cur.obj.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;
    const alive = refs.filter((r) => this.uids.has(r.uid));
    if (alive.length === refs.length) return;
    const orphaned = refs.some((r) => !this.uids.has(r.uid) && this.registry.orphanRequests.has(r.uid));
    if (alive.length === 0 && !orphaned) {
      if (cur.obj.metadata.deletionTimestamp) return; // already on its way
      this.registry.delete(resource, ns || undefined, name);
      return;
    }
    const next = structuredClone(cur.obj);
    next.metadata.ownerReferences = alive;
    if (alive.length === 0) delete next.metadata.ownerReferences;
    this.registry.update(resource, ns || undefined, name, next);
  }

  private syncNamespace(ns: string): void {
    const cur = this.registry.tryGet<Namespace>("namespaces", undefined, ns);
    if (!cur?.obj.metadata.deletionTimestamp) return;
    let remaining = 0;
    for (const r of RESOURCES) {
      if (!r.namespaced) continue;
      for (const s of this.registry.list(r.resource, ns)) {
        remaining++;
        if (s.obj.metadata.deletionTimestamp) continue;
        try {
          this.registry.delete(r.resource, ns, s.obj.metadata.name!);
        } catch {
          /* gone meanwhile */
        }
      }
    }
    const left = RESOURCES.filter((r) => r.namespaced).reduce((n, r) => n + this.registry.list(r.resource, ns).length, 0);
    if (left === 0) this.registry.finalizeNamespace(ns);
    else if (remaining > 0) this.nsQueue.addAfter(ns, 1000);
  }
}
