// The EndpointSlice mirroring controller: a Service without a selector whose Endpoints someone
// wrote by hand gets EndpointSlices copied from them, so that kube-proxy (which reads slices only)
// serves it. As upstream's endpointslicemirroring controller:
// - one slice per address family and set of ports (subsets with the same ports share it), at
//   most 1000 addresses mirrored per subset, invalid IPs skipped; ready addresses get
//   ready=true, notReadyAddresses ready=false;
// - the Endpoints' labels and annotations are copied (not last-applied-configuration and the
//   trigger time), with kubernetes.io/service-name and managed-by=endpointslicemirroring-
//   controller.k8s.io; the slice is owned by the Endpoints;
// - nothing is mirrored, and earlier mirrors are deleted, when the Endpoints or the Service is
//   gone, the Service has a selector, or the Endpoints carry endpointslice.kubernetes.io/
//   skip-mirror=true or a leader-election annotation.
// Only slices with its own managed-by value are touched; the EndpointSlice controller likewise.
import { isIP } from "node:net";
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent, StoredObject } from "../storage.ts";
import type { Endpoint, EndpointAddress, EndpointPort, Endpoints, EndpointSlice, KObject, Namespace, Service } from "../types.ts";
import { canonicalJSON, deepEqual } from "../util.ts";
import { ANNOTATION_LEADER, hasSelector } from "./endpoints.ts";
import { LABEL_MANAGED_BY, LABEL_SERVICE_NAME } from "./endpointslices.ts";
import { ownerRefTo } from "./podutil.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";
import type { SlicesByService } from "./slice-index.ts";

export const MIRRORING_CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io";
export const LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror";
export const MAX_MIRRORED_PER_SUBSET = 1000;
const NOT_COPIED = new Set(["endpoints.kubernetes.io/last-change-trigger-time", "kubectl.kubernetes.io/last-applied-configuration"]);

const shouldMirror = (ep: KObject | undefined) =>
  !!ep && ep.metadata.labels?.[LABEL_SKIP_MIRROR] !== "true" && ep.metadata.annotations?.[ANNOTATION_LEADER] === undefined;
const mirrored = (s: KObject | undefined) => s?.metadata.labels?.[LABEL_MANAGED_BY] === MIRRORING_CONTROLLER_NAME;

interface Desired {
  addressType: "IPv4" | "IPv6";
  ports: EndpointPort[];
  endpoints: Map<string, Endpoint>; // by address
}

export class EndpointSliceMirroringController {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;
  private writing = false;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    /** Shared with the other controller that reads slices by Service; started before this one. */
    private readonly slices: SlicesByService,
  ) {
    this.queue = new WorkQueue("endpointslicemirroring-controller", (key) => this.sync(key));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    for (const e of this.registry.list("endpoints")) this.queue.add(keyOf(e.obj.metadata.namespace, e.obj.metadata.name));
    // Mirrors whose Endpoints went while the server was down.
    for (const s of this.registry.list("endpointslices")) {
      const svc = s.obj.metadata.labels?.[LABEL_SERVICE_NAME];
      if (svc && mirrored(s.obj)) this.queue.add(keyOf(s.obj.metadata.namespace, svc));
    }
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onEvent(ev: StorageEvent): void {
    const o = ev.object.obj;
    const prev = ev.prev?.obj;
    const key = keyOf(o.metadata.namespace, o.metadata.name);
    switch (ev.resource) {
      case "endpoints":
        if (shouldMirror(o) || shouldMirror(prev)) this.queue.add(key);
        break;
      case "services": {
        const now = hasSelector(o as Service);
        if (ev.type === "MODIFIED" ? now !== hasSelector(prev as Service) : !now) this.queue.add(key);
        break;
      }
      case "endpointslices":
        // Someone else changed or removed a mirror: put it right.
        if (this.writing) break;
        for (const s of [o, prev]) {
          const svc = s?.metadata.labels?.[LABEL_SERVICE_NAME];
          if (svc && mirrored(s)) this.queue.add(keyOf(s!.metadata.namespace, svc));
        }
        break;
    }
  }

  private sync(key: string): void {
    this.writing = true;
    try {
      this.syncEndpoints(key);
    } finally {
      this.writing = false;
    }
  }

  private mirrors(ns: string | undefined, name: string): StoredObject<EndpointSlice>[] {
    return this.slices.get(ns, name, MIRRORING_CONTROLLER_NAME);
  }

  private deleteSlice(s: StoredObject<EndpointSlice>): void {
    try {
      this.registry.delete("endpointslices", s.obj.metadata.namespace, s.obj.metadata.name!);
    } catch {
      /* already gone */
    }
  }

  private syncEndpoints(key: string): void {
    const [ns, name] = splitKey(key);
    const existing = this.mirrors(ns, name);
    const ep = this.registry.tryGet<Endpoints>("endpoints", ns, name)?.obj;
    const svc = this.registry.tryGet<Service>("services", ns, name)?.obj;
    if (!ep || !shouldMirror(ep) || !svc || hasSelector(svc)) {
      for (const s of existing) this.deleteSlice(s);
      return;
    }
    const desired = desiredSlices(ep);
    const byKey = new Map<string, StoredObject<EndpointSlice>[]>();
    for (const s of existing) {
      const k = groupKey(s.obj.addressType, s.obj.ports ?? []);
      byKey.set(k, [...(byKey.get(k) ?? []), s]);
    }
    const toDelete: StoredObject<EndpointSlice>[] = [];
    const toWrite: { stored?: StoredObject<EndpointSlice>; d: Desired }[] = [];
    for (const [k, d] of desired) {
      const [first, ...rest] = byKey.get(k) ?? [];
      toDelete.push(...rest);
      toWrite.push({ stored: first, d });
    }
    for (const [k, slices] of byKey) if (!desired.has(k)) toDelete.push(...slices);
    // Slices that would be deleted are reused for new ones of their family, as upstream recycles them.
    for (const w of toWrite) {
      if (w.stored) continue;
      const i = toDelete.findIndex((s) => s.obj.addressType === w.d.addressType);
      if (i >= 0) w.stored = toDelete.splice(i, 1)[0];
    }
    for (const w of toWrite) this.write(ep, w.stored, w.d);
    for (const s of toDelete) this.deleteSlice(s);
  }

  private write(ep: Endpoints, stored: StoredObject<EndpointSlice> | undefined, d: Desired): void {
    const labels: Record<string, string> = { ...(ep.metadata.labels ?? {}), [LABEL_SERVICE_NAME]: ep.metadata.name!, [LABEL_MANAGED_BY]: MIRRORING_CONTROLLER_NAME };
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(ep.metadata.annotations ?? {})) if (!NOT_COPIED.has(k)) annotations[k] = v;
    const owner = [ownerRefTo(ep, "v1", "Endpoints")];
    const endpoints = [...d.endpoints.values()];
    if (stored) {
      const cur = stored.obj;
      const same =
        deepEqual(cur.endpoints ?? [], endpoints) &&
        deepEqual(cur.ports ?? [], d.ports) &&
        deepEqual(cur.metadata.labels ?? {}, labels) &&
        deepEqual(cur.metadata.annotations ?? {}, annotations) &&
        deepEqual(cur.metadata.ownerReferences, owner);
      if (same) return;
      const next: EndpointSlice = { ...structuredClone(cur), endpoints, ports: d.ports };
      next.metadata.labels = labels;
      next.metadata.annotations = Object.keys(annotations).length ? annotations : undefined;
      next.metadata.ownerReferences = owner;
      this.registry.update("endpointslices", cur.metadata.namespace, cur.metadata.name!, next);
      return;
    }
    // Nothing can be created in a terminating namespace; the Endpoints are about to go too.
    if (this.registry.tryGet<Namespace>("namespaces", undefined, ep.metadata.namespace!)?.obj.metadata.deletionTimestamp) return;
    const slice: EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { generateName: `${ep.metadata.name}-`, namespace: ep.metadata.namespace, labels, ownerReferences: owner },
      addressType: d.addressType,
      endpoints,
      ports: d.ports,
    };
    if (Object.keys(annotations).length) slice.metadata.annotations = annotations;
    this.registry.create("endpointslices", ep.metadata.namespace, slice);
  }
}

/** Port sets compare without regard to order; the slice keeps the Endpoints' order. */
function groupKey(addressType: string, ports: EndpointPort[]): string {
  const norm = ports.map((p) => canonicalJSON({ n: p.name ?? "", p: p.port, t: p.protocol ?? "TCP", a: p.appProtocol ?? "" })).sort();
  return `${addressType}|${norm.join(",")}`;
}

function toEndpoint(a: EndpointAddress, ready: boolean): Endpoint | undefined {
  if (!a || typeof a.ip !== "string" || !isIP(a.ip)) return undefined;
  const e: Endpoint = { addresses: [a.ip.toLowerCase()], conditions: { ready } };
  if (a.hostname) e.hostname = a.hostname;
  if (a.nodeName) e.nodeName = a.nodeName;
  if (a.targetRef) e.targetRef = { ...a.targetRef };
  return e;
}

/** The slices an Endpoints object asks for, by address family and port set. */
export function desiredSlices(ep: Endpoints): Map<string, Desired> {
  const out = new Map<string, Desired>();
  for (const ss of ep.subsets ?? []) {
    const ports: EndpointPort[] = (ss.ports ?? []).map((p) => {
      const sp: EndpointPort = { name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" };
      if (p.appProtocol) sp.appProtocol = p.appProtocol;
      return sp;
    });
    let added = 0;
    for (const [list, ready] of [
      [ss.addresses ?? [], true],
      [ss.notReadyAddresses ?? [], false],
    ] as const) {
      for (const a of list) {
        if (added >= MAX_MIRRORED_PER_SUBSET) break;
        const e = toEndpoint(a, ready);
        if (!e) continue;
        added++;
        const addressType = isIP(e.addresses[0]!) === 6 ? "IPv6" : "IPv4";
        const k = groupKey(addressType, ports);
        let d = out.get(k);
        if (!d) out.set(k, (d = { addressType, ports, endpoints: new Map() }));
        if (!d.endpoints.has(e.addresses[0]!)) d.endpoints.set(e.addresses[0]!, e);
      }
    }
  }
  return out;
}
