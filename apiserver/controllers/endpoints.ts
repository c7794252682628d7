// The Endpoints controller: for every Service with a selector, an Endpoints object of the same
// name, as Kubernetes' endpoints controller writes it. It reads the EndpointSlice controller's
// slices rather than the pods, since they already hold the selected pods, their resolved ports and
// their conditions:
// - a ready endpoint is in `addresses`, one neither ready nor terminating in `notReadyAddresses`,
//   a terminating one nowhere (publishNotReadyAddresses makes every endpoint ready, as upstream);
// - subsets are repacked as upstream's RepackSubsets does: ports with the same addresses (and the
//   same readiness) share a subset, so a pod missing a named port is in fewer subsets;
// - addresses are sorted by IP then pod uid, ports by name, subsets by content (upstream sorts
//   ports and subsets by a hash; any fixed order serves the same purpose);
// - labels are the Service's, plus service.kubernetes.io/headless when it has no cluster IP;
// - more than 1000 addresses are truncated with endpoints.kubernetes.io/over-capacity.
// Services without a selector (or ExternalName) are left alone: their Endpoints are the user's.
// When a Service goes, the Endpoints of its name go too, whoever made them (as upstream does).
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent } from "../storage.ts";
import type { CoreEndpointPort, EndpointAddress, Endpoints, EndpointSlice, EndpointSubset, Namespace, Service } from "../types.ts";
import { canonicalJSON, deepEqual } from "../util.ts";
import { CONTROLLER_NAME, LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME } from "./endpointslices.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";
import type { SlicesByService } from "./slice-index.ts";

export const MAX_ENDPOINTS = 1000;
export const ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity";
/** Leader-election records kept in Endpoints by old components: never deleted. */
export const ANNOTATION_LEADER = "control-plane.alpha.kubernetes.io/leader";

/** Whether the Service selects pods (else its Endpoints are the user's). */
export const hasSelector = (svc: Service) => Object.keys(svc.spec?.selector ?? {}).length > 0;

export class EndpointsController {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    /** Shared with the other controller that reads slices by Service; started before this one. */
    private readonly slices: SlicesByService,
  ) {
    this.queue = new WorkQueue("endpoints-controller", (key) => this.sync(key));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    for (const s of this.registry.list<Service>("services")) this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
    // Endpoints whose Service went while the server was down are removed now.
    for (const e of this.registry.list<Endpoints>("endpoints")) {
      if (e.obj.metadata.annotations?.[ANNOTATION_LEADER] === undefined) this.queue.add(keyOf(e.obj.metadata.namespace, e.obj.metadata.name));
    }
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private onEvent(ev: StorageEvent): void {
    const o = ev.object.obj;
    switch (ev.resource) {
      case "services":
        this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
        break;
      case "endpointslices":
        for (const s of [o, ev.prev?.obj]) {
          const svc = s?.metadata.labels?.[LABEL_SERVICE_NAME];
          if (svc && s.metadata.labels?.[LABEL_MANAGED_BY] === CONTROLLER_NAME) this.queue.add(keyOf(s.metadata.namespace, svc));
        }
        break;
      case "endpoints":
        // Upstream only watches deletions: a deleted Endpoints of a selector Service comes back.
        if (ev.type === "DELETED") this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
        break;
    }
  }

  private sync(key: string): void {
    const [ns, name] = splitKey(key);
    const svc = this.registry.tryGet<Service>("services", ns, name)?.obj;
    const cur = this.registry.tryGet<Endpoints>("endpoints", ns, name)?.obj;
    if (!svc) {
      if (cur && cur.metadata.annotations?.[ANNOTATION_LEADER] === undefined) this.registry.delete("endpoints", ns, name);
      return;
    }
    if (svc.spec.type === "ExternalName" || !hasSelector(svc)) return;

    const slices = this.slices
      .get(ns, name!, CONTROLLER_NAME)
      .map((s) => s.obj)
      .filter((s) => !s.metadata.ownerReferences?.some((r) => r.kind === "Service" && r.uid !== svc.metadata.uid));
    const portless = (svc.spec.ports ?? []).length === 0 && svc.spec.clusterIP === "None";
    const subsets = repackSubsets(subsetsFromSlices(slices, portless));
    const truncated = truncate(subsets, MAX_ENDPOINTS);

    const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
    delete labels[LABEL_HEADLESS];
    if (!svc.spec.clusterIP || svc.spec.clusterIP === "None") labels[LABEL_HEADLESS] = "";
    const annotations: Record<string, string> = { ...(cur?.metadata.annotations ?? {}) };
    if (truncated) annotations[ANNOTATION_OVER_CAPACITY] = "truncated";
    else delete annotations[ANNOTATION_OVER_CAPACITY];

    const next: Endpoints = cur ? structuredClone(cur) : { apiVersion: "v1", kind: "Endpoints", metadata: { name, namespace: ns } };
    next.metadata.labels = Object.keys(labels).length ? labels : undefined;
    next.metadata.annotations = Object.keys(annotations).length ? annotations : undefined;
    next.subsets = subsets.length ? subsets : undefined;
    if (!cur) {
      // Nothing can be created in a terminating namespace; the Service is about to go too.
      if (this.registry.tryGet<Namespace>("namespaces", undefined, ns!)?.obj.metadata.deletionTimestamp) return;
      this.registry.create("endpoints", ns, next);
      return;
    }
    if (deepEqual(cur.subsets ?? [], subsets) && deepEqual(cur.metadata.labels ?? {}, labels) && deepEqual(cur.metadata.annotations ?? {}, annotations)) return;
    this.registry.update("endpoints", ns, name, next);
  }
}

/**
 * One single-port subset per (endpoint, port) of the slices, as upstream's controller first lists
 * them; endpoints that upstream leaves out (terminating, unless published anyway) are skipped, and
 * so are pods with none of the Service's ports, unless it is a headless Service without ports.
 */
export function subsetsFromSlices(slices: EndpointSlice[], portless: boolean): EndpointSubset[] {
  const out: EndpointSubset[] = [];
  for (const s of slices) {
    const ports: CoreEndpointPort[] = (s.ports ?? []).map((p) => {
      const cp: CoreEndpointPort = { name: p.name ?? "", port: p.port ?? 0, protocol: p.protocol ?? "TCP" };
      if (p.appProtocol) cp.appProtocol = p.appProtocol;
      return cp;
    });
    if (ports.length === 0 && !portless) continue;
    for (const e of s.endpoints ?? []) {
      const ready = e.conditions?.ready !== false;
      if (!ready && e.conditions?.terminating) continue;
      for (const ip of e.addresses) {
        const addr: EndpointAddress = { ip };
        if (e.hostname) addr.hostname = e.hostname;
        if (e.nodeName) addr.nodeName = e.nodeName;
        if (e.targetRef) addr.targetRef = { ...e.targetRef };
        for (const p of ports.length ? ports : [undefined]) {
          const ss: EndpointSubset = ready ? { addresses: [addr] } : { notReadyAddresses: [addr] };
          if (p) ss.ports = [p];
          out.push(ss);
        }
      }
    }
  }
  return out;
}

const addrKey = (a: EndpointAddress) => `${a.ip}|${a.targetRef?.uid ?? ""}`;
const byAddr = (a: EndpointAddress, b: EndpointAddress) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : (a.targetRef?.uid ?? "") < (b.targetRef?.uid ?? "") ? -1 : 1);
const byPort = (a: CoreEndpointPort, b: CoreEndpointPort) => canonicalJSON([a.name, a.port, a.protocol]).localeCompare(canonicalJSON([b.name, b.port, b.protocol]));

/**
 * Upstream's RepackSubsets: for each port the addresses offering it (an address not ready for a
 * port stays not ready), then ports with identical address sets merged into one subset.
 */
export function repackSubsets(subsets: EndpointSubset[]): EndpointSubset[] {
  const NO_PORT = "-";
  const byPortKey = new Map<string, { port?: CoreEndpointPort; addrs: Map<string, { addr: EndpointAddress; ready: boolean }> }>();
  for (const ss of subsets) {
    const ports = ss.ports?.length ? ss.ports : [undefined];
    for (const p of ports) {
      const pk = p ? canonicalJSON(p) : NO_PORT;
      let entry = byPortKey.get(pk);
      if (!entry) byPortKey.set(pk, (entry = { port: p, addrs: new Map() }));
      for (const [list, ready] of [
        [ss.addresses ?? [], true],
        [ss.notReadyAddresses ?? [], false],
      ] as const) {
        for (const a of list) {
          const k = addrKey(a);
          const seen = entry.addrs.get(k);
          if (!seen) entry.addrs.set(k, { addr: a, ready });
          else if (!ready) seen.ready = false; // not ready wins
        }
      }
    }
  }
  const groups = new Map<string, EndpointSubset>();
  for (const { port, addrs } of byPortKey.values()) {
    const members = [...addrs.entries()].map(([k, v]) => `${k}|${v.ready}`).sort();
    const gk = members.join(",");
    let g = groups.get(gk);
    if (!g) {
      const ready = [...addrs.values()].filter((v) => v.ready).map((v) => v.addr).sort(byAddr);
      const notReady = [...addrs.values()].filter((v) => !v.ready).map((v) => v.addr).sort(byAddr);
      g = {};
      if (ready.length) g.addresses = ready;
      if (notReady.length) g.notReadyAddresses = notReady;
      groups.set(gk, g);
    }
    if (port) (g.ports ??= []).push(port);
  }
  const out = [...groups.values()];
  for (const g of out) g.ports?.sort(byPort);
  return out.sort((a, b) => canonicalJSON(a).localeCompare(canonicalJSON(b)));
}

/**
 * Upstream's truncateEndpoints: keeps MAX addresses, ready ones first, each subset keeping its
 * proportional share (rounded up). Returns whether anything was cut.
 */
export function truncate(subsets: EndpointSubset[], max: number): boolean {
  const ready = subsets.reduce((n, s) => n + (s.addresses?.length ?? 0), 0);
  const notReady = subsets.reduce((n, s) => n + (s.notReadyAddresses?.length ?? 0), 0);
  if (ready + notReady <= max) return false;
  const cutReady = ready > max;
  const room = cutReady ? max : max - ready;
  const total = cutReady ? ready : notReady;
  let left = room;
  for (const s of subsets) {
    const n = (cutReady ? s.addresses?.length : s.notReadyAddresses?.length) ?? 0;
    const take = Math.min(Math.ceil((n / total) * room), left);
    if (cutReady) {
      s.addresses = s.addresses?.slice(0, take);
      delete s.notReadyAddresses;
      left -= s.addresses?.length ?? 0;
    } else {
      s.notReadyAddresses = s.notReadyAddresses?.slice(0, take);
      left -= s.notReadyAddresses?.length ?? 0;
    }
    if (s.addresses?.length === 0) delete s.addresses;
    if (s.notReadyAddresses?.length === 0) delete s.notReadyAddresses;
  }
  return true;
}
