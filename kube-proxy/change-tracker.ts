// Collects Service and EndpointSlice events (from Informers, or straight from a test or the
// benchmark) and remembers which Services changed since the last sync. It knows nothing about
// the API server: anything with add/update/delete events can feed it.
import type { EndpointSlice, Service } from "../apiserver/types.ts";
import { SERVICE_NAME_LABEL } from "./model.ts";

export interface EventSource<T> {
  on(event: "add" | "update" | "delete", fn: (obj: T, old?: T) => void): unknown;
}

const key = (ns: string | undefined, name: string | undefined) => `${ns ?? "default"}/${name ?? ""}`;

export class ChangeTracker {
  readonly services = new Map<string, Service>();
  /** service key -> slice key -> slice */
  readonly slicesByService = new Map<string, Map<string, EndpointSlice>>();
  private readonly sliceService = new Map<string, string>();
  private dirty = new Set<string>();
  servicesSynced = false;
  endpointSlicesSynced = false;
  serviceChangesTotal = 0;
  endpointChangesTotal = 0;
  pendingServiceChanges = 0;
  pendingEndpointChanges = 0;
  /** Time of the oldest change not yet synced (ms since epoch), for metrics. */
  lastQueued = 0;
  /** Called after every change (the proxier schedules a sync). */
  onChange: () => void = () => {};

  get synced(): boolean {
    return this.servicesSynced && this.endpointSlicesSynced;
  }

  private mark(serviceKey: string, endpoints: boolean): void {
    this.dirty.add(serviceKey);
    if (endpoints) {
      this.endpointChangesTotal++;
      this.pendingEndpointChanges++;
    } else {
      this.serviceChangesTotal++;
      this.pendingServiceChanges++;
    }
    this.lastQueued = Date.now();
    this.onChange();
  }

  upsertService(svc: Service): void {
    const k = key(svc.metadata.namespace, svc.metadata.name);
    this.services.set(k, svc);
    this.mark(k, false);
  }

  deleteService(svc: Service): void {
    const k = key(svc.metadata.namespace, svc.metadata.name);
    this.services.delete(k);
    this.mark(k, false);
  }

  upsertSlice(slice: EndpointSlice): void {
    const sk = key(slice.metadata.namespace, slice.metadata.name);
    const svcName = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    const prevSvc = this.sliceService.get(sk);
    if (prevSvc) this.removeSlice(sk, prevSvc);
    if (!svcName) return;
    const svcKey = key(slice.metadata.namespace, svcName);
    let m = this.slicesByService.get(svcKey);
    if (!m) this.slicesByService.set(svcKey, (m = new Map()));
    m.set(sk, slice);
    this.sliceService.set(sk, svcKey);
    this.mark(svcKey, true);
  }

  deleteSlice(slice: EndpointSlice): void {
    const sk = key(slice.metadata.namespace, slice.metadata.name);
    const svcKey = this.sliceService.get(sk);
    if (svcKey) this.removeSlice(sk, svcKey);
  }

  private removeSlice(sliceKey: string, svcKey: string): void {
    const m = this.slicesByService.get(svcKey);
    m?.delete(sliceKey);
    if (m && m.size === 0) this.slicesByService.delete(svcKey);
    this.sliceService.delete(sliceKey);
    this.mark(svcKey, true);
  }

  setServicesSynced(): void {
    this.servicesSynced = true;
    this.onChange();
  }

  setEndpointSlicesSynced(): void {
    this.endpointSlicesSynced = true;
    this.onChange();
  }

  slicesOf(serviceKey: string): Iterable<EndpointSlice> {
    return this.slicesByService.get(serviceKey)?.values() ?? [];
  }

  /** The Services changed since the last call; the pending counters restart. */
  takeDirty(): Set<string> {
    const d = this.dirty;
    this.dirty = new Set();
    this.pendingServiceChanges = 0;
    this.pendingEndpointChanges = 0;
    this.lastQueued = 0;
    return d;
  }

  /** Feeds the tracker from informer-like sources. */
  watch(services: EventSource<Service>, slices: EventSource<EndpointSlice>): void {
    services.on("add", (s) => this.upsertService(s));
    services.on("update", (s) => this.upsertService(s));
    services.on("delete", (s) => this.deleteService(s));
    slices.on("add", (s) => this.upsertSlice(s));
    slices.on("update", (s) => this.upsertSlice(s));
    slices.on("delete", (s) => this.deleteSlice(s));
  }
}
