// EndpointSlices by the Service they belong to (label kubernetes.io/service-name) and the
// controller that manages them, kept current from storage events. The Endpoints and mirroring
// controllers sync one Service at a time; looking its slices up here, instead of scanning the
// namespace's, keeps 10,000 Services in one namespace from costing 10,000 x 10,000 reads.
// One index serves both: the API server starts it before them, so its storage subscription runs
// first and a controller's handler already sees the change it is told about.
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent, StoredObject } from "../storage.ts";
import type { EndpointSlice, KObject } from "../types.ts";
import { LABEL_MANAGED_BY, LABEL_SERVICE_NAME } from "./endpointslices.ts";

const groupOf = (s: KObject | undefined): string | undefined => {
  const svc = s?.metadata.labels?.[LABEL_SERVICE_NAME];
  return svc ? `${s!.metadata.namespace}/${svc}/${s!.metadata.labels?.[LABEL_MANAGED_BY] ?? ""}` : undefined;
};

export class SlicesByService {
  private readonly groups = new Map<string, Set<string>>();
  private unsubscribe?: () => void;

  /** With `storage`, start() keeps the index current; without, the caller feeds onEvent(). */
  constructor(
    private readonly registry: Registry,
    private readonly storage?: Storage,
  ) {}

  start(): void {
    if (this.storage) this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    this.load();
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** Fills the index from the store; call before the first lookup. */
  load(): void {
    this.groups.clear();
    for (const s of this.registry.list<EndpointSlice>("endpointslices")) this.add(s.obj);
  }

  /** Follows one storage event (others are ignored). */
  onEvent(ev: StorageEvent): void {
    if (ev.resource !== "endpointslices") return;
    if (ev.prev) this.remove(ev.prev.obj);
    if (ev.type === "DELETED") this.remove(ev.object.obj);
    else this.add(ev.object.obj);
  }

  /** The slices of Service ns/name managed by `managedBy`. */
  get(ns: string | undefined, name: string, managedBy: string): StoredObject<EndpointSlice>[] {
    const out: StoredObject<EndpointSlice>[] = [];
    for (const slice of this.groups.get(`${ns}/${name}/${managedBy}`) ?? []) {
      const s = this.registry.tryGet<EndpointSlice>("endpointslices", ns, slice);
      if (s) out.push(s);
    }
    return out;
  }

  private add(s: KObject): void {
    const g = groupOf(s);
    if (!g) return;
    let set = this.groups.get(g);
    if (!set) this.groups.set(g, (set = new Set()));
    set.add(s.metadata.name!);
  }

  private remove(s: KObject): void {
    const g = groupOf(s);
    const set = g ? this.groups.get(g) : undefined;
    if (!set) return;
    set.delete(s.metadata.name!);
    if (set.size === 0) this.groups.delete(g!);
  }
}
