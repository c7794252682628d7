// The EndpointSlice controller: for every Service with a selector, slices listing the pods it
// selects, as Kubernetes' controller writes them:
// - at most maxEndpointsPerSlice (100) endpoints a slice, one set of ports a slice: a named
//   targetPort is resolved per pod, so pods that number it differently land in different slices;
// - conditions: serving = pod Ready, terminating = pod being deleted,
//   ready = publishNotReadyAddresses || (serving && !terminating);
// - labels kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by and, for headless
//   Services, service.kubernetes.io/headless; an ownerReference to the Service;
// - changes are minimal: endpoints stay in the slice they are in, slices are only rewritten
//   when their content changes, new endpoints fill free room before new slices are made.
import type { Registry } from "../registry.ts";
import type { Storage, StorageEvent, StoredObject } from "../storage.ts";
import type { Endpoint, EndpointPort, EndpointSlice, Node, Pod, Service } from "../types.ts";
import { canonicalJSON, deepEqual } from "../util.ts";
import { isPodReady, isTerminal, ownerRefTo } from "./podutil.ts";
import { keyOf, splitKey, WorkQueue } from "./queue.ts";

export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
export const LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by";
export const CONTROLLER_NAME = "endpointslice-controller.k8s.io";
export const LABEL_HEADLESS = "service.kubernetes.io/headless";

/** The pod's port for a Service port, or undefined when a named port is not in the pod. */
function resolvePort(pod: Pod, sp: NonNullable<Service["spec"]["ports"]>[number]): number | undefined {
  const tp = sp.targetPort ?? sp.port;
  if (typeof tp === "number") return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === tp && (p.protocol ?? "TCP") === (sp.protocol ?? "TCP")) return p.containerPort;
  }
  return undefined;
}

interface Group {
  ports: EndpointPort[];
  endpoints: Map<string, Endpoint>; // by address
}

const endpointKey = (e: Endpoint) => e.addresses[0];

export class EndpointSliceController {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;
  /** Service key -> names of the slices this controller manages for it. */
  private readonly slicesBySvc = new Map<string, Set<string>>();
  /** Namespace -> "label=value" -> service keys whose selector contains that pair (an index for pod events). */
  private readonly svcIndex = new Map<string, Map<string, Set<string>>>();
  private readonly svcSelectors = new Map<string, Record<string, string>>();

  constructor(
    private readonly registry: Registry,
    private readonly storage: Storage,
    private readonly maxPerSlice = 100,
  ) {
    this.queue = new WorkQueue("endpointslice-controller", (key) => this.sync(key));
  }

  start(): void {
    this.unsubscribe = this.storage.subscribe((ev) => this.onEvent(ev));
    for (const s of this.registry.list<EndpointSlice>("endpointslices")) this.indexSlice(s.obj, true);
    for (const s of this.registry.list<Service>("services")) {
      this.indexService(s.obj, true);
      this.queue.add(keyOf(s.obj.metadata.namespace, s.obj.metadata.name));
    }
    // Slices whose Service is gone (deleted while the server was down) are removed too.
    for (const key of this.slicesBySvc.keys()) this.queue.add(key);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  private indexSlice(s: EndpointSlice, present: boolean): void {
    const labels = s.metadata.labels ?? {};
    const svc = labels[LABEL_SERVICE_NAME];
    if (!svc || labels[LABEL_MANAGED_BY] !== CONTROLLER_NAME) return;
    const key = keyOf(s.metadata.namespace, svc);
    let set = this.slicesBySvc.get(key);
    if (present) {
      if (!set) this.slicesBySvc.set(key, (set = new Set()));
      set.add(s.metadata.name!);
    } else if (set) {
      set.delete(s.metadata.name!);
      if (set.size === 0) this.slicesBySvc.delete(key);
    }
  }

  private indexService(svc: Service, present: boolean): void {
    const ns = svc.metadata.namespace!;
    const key = keyOf(ns, svc.metadata.name);
    const old = this.svcSelectors.get(key);
    const byNs = this.svcIndex.get(ns) ?? new Map<string, Set<string>>();
    this.svcIndex.set(ns, byNs);
    for (const [k, v] of Object.entries(old ?? {})) byNs.get(`${k}=${v}`)?.delete(key);
    this.svcSelectors.delete(key);
    const sel = svc.spec?.selector;
    if (!present || !sel || Object.keys(sel).length === 0) return;
    this.svcSelectors.set(key, sel);
    for (const [k, v] of Object.entries(sel)) {
      const pair = `${k}=${v}`;
      if (!byNs.has(pair)) byNs.set(pair, new Set());
      byNs.get(pair)!.add(key);
    }
  }

  /** Services in the pod's namespace whose selector matches these labels. */
  private servicesFor(ns: string, labels: Record<string, string> | undefined): string[] {
    const byNs = this.svcIndex.get(ns);
    if (!byNs || !labels) return [];
    const out = new Set<string>();
    for (const [k, v] of Object.entries(labels)) {
      for (const key of byNs.get(`${k}=${v}`) ?? []) {
        const sel = this.svcSelectors.get(key)!;
        if (Object.entries(sel).every(([sk, sv]) => labels[sk] === sv)) out.add(key);
      }
    }
    return [...out];
  }

  private onEvent(ev: StorageEvent): void {
    switch (ev.resource) {
      case "services": {
        const svc = ev.object.obj as Service;
        this.indexService(svc, ev.type !== "DELETED");
        this.queue.add(keyOf(svc.metadata.namespace, svc.metadata.name));
        break;
      }
      case "pods": {
        const pod = ev.object.obj as Pod;
        const prev = ev.prev?.obj as Pod | undefined;
        if (prev && ev.type === "MODIFIED" && !this.endpointRelevantChange(prev, pod)) return;
        const ns = pod.metadata.namespace!;
        for (const k of this.servicesFor(ns, pod.metadata.labels)) this.queue.add(k);
        if (prev && prev.metadata.labels !== pod.metadata.labels) for (const k of this.servicesFor(ns, prev.metadata.labels)) this.queue.add(k);
        break;
      }
      case "endpointslices": {
        const s = ev.object.obj as EndpointSlice;
        this.indexSlice(s, ev.type !== "DELETED");
        const svc = s.metadata.labels?.[LABEL_SERVICE_NAME];
        // Someone else changed or removed one of our slices: put it right.
        if (svc && s.metadata.labels?.[LABEL_MANAGED_BY] === CONTROLLER_NAME && !this.writing) this.queue.add(keyOf(s.metadata.namespace, svc));
        break;
      }
    }
  }

  private endpointRelevantChange(a: Pod, b: Pod): boolean {
    return (
      a.status?.podIP !== b.status?.podIP ||
      a.status?.phase !== b.status?.phase ||
      isPodReady(a) !== isPodReady(b) ||
      a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp ||
      a.spec.nodeName !== b.spec.nodeName ||
      !deepEqual(a.metadata.labels, b.metadata.labels)
    );
  }

  private writing = false;

  private sync(key: string): void {
    this.writing = true;
    try {
      this.syncService(key);
    } finally {
      this.writing = false;
    }
  }

  private managedSlices(key: string): StoredObject<EndpointSlice>[] {
    const [ns] = splitKey(key);
    const out: StoredObject<EndpointSlice>[] = [];
    for (const name of [...(this.slicesBySvc.get(key) ?? [])]) {
      const s = this.registry.tryGet<EndpointSlice>("endpointslices", ns, name);
      if (s) out.push(s);
    }
    return out;
  }

  private deleteSlice(s: StoredObject<EndpointSlice>): void {
    try {
      this.registry.delete("endpointslices", s.obj.metadata.namespace, s.obj.metadata.name!);
    } catch {
      /* already gone */
    }
  }

  private syncService(key: string): void {
    const [ns, name] = splitKey(key);
    const svcS = this.registry.tryGet<Service>("services", ns, name);
    const existing = this.managedSlices(key);
    const svc = svcS?.obj;
    if (!svc || !svc.spec?.selector || Object.keys(svc.spec.selector).length === 0 || svc.spec.type === "ExternalName" || svc.metadata.deletionTimestamp) {
      for (const s of existing) this.deleteSlice(s);
      return;
    }
    // Slices of an older Service of the same name (deleted and recreated) are not ours to keep.
    const mine = existing.filter((s) => {
      const owner = s.obj.metadata.ownerReferences?.find((r) => r.kind === "Service");
      if (owner && owner.uid !== svc.metadata.uid) {
        this.deleteSlice(s);
        return false;
      }
      return true;
    });

    const groups = this.desiredGroups(svc);
    const labels = this.sliceLabels(svc);
    const owner = [ownerRefTo(svc, "v1", "Service")];

    // Place each desired endpoint: where it already is, if that slice has the same ports.
    const placed = new Set<string>(); // "<portKey>|<address>"
    const plans: { stored?: StoredObject<EndpointSlice>; portKey: string; ports: EndpointPort[]; endpoints: Endpoint[] }[] = [];
    for (const s of mine) {
      const portKey = canonicalJSON(s.obj.ports ?? []);
      const g = groups.get(portKey);
      const endpoints: Endpoint[] = [];
      if (g) {
        for (const e of s.obj.endpoints ?? []) {
          const want = g.endpoints.get(endpointKey(e));
          const pk = `${portKey}|${endpointKey(e)}`;
          if (want && !placed.has(pk)) {
            endpoints.push(want);
            placed.add(pk);
          }
        }
      }
      plans.push({ stored: s, portKey, ports: s.obj.ports ?? [], endpoints });
    }
    // New endpoints fill free room in their group's slices, then new slices.
    for (const [portKey, g] of groups) {
      const rest = [...g.endpoints.values()].filter((e) => !placed.has(`${portKey}|${endpointKey(e)}`));
      if (rest.length === 0) continue;
      for (const p of plans) {
        if (p.portKey !== portKey) continue;
        while (rest.length && p.endpoints.length < this.maxPerSlice) p.endpoints.push(rest.shift()!);
      }
      while (rest.length) plans.push({ portKey, ports: g.ports, endpoints: rest.splice(0, this.maxPerSlice) });
    }
    // With no endpoints at all, one empty placeholder slice stays (as Kubernetes keeps one).
    const total = plans.reduce((n, p) => n + p.endpoints.length, 0);
    if (total === 0) {
      const keep = plans.find((p) => p.stored);
      for (const p of plans) if (p.stored && p !== keep) this.deleteSlice(p.stored);
      this.write(keep?.stored, svc, labels, owner, [], []);
      return;
    }
    // Slices that would be deleted are reused for slices that would be created, as Kubernetes does.
    const emptied = plans.filter((p) => p.stored && p.endpoints.length === 0);
    for (const p of plans) {
      if (p.stored || p.endpoints.length === 0) continue;
      const recycled = emptied.shift();
      if (recycled) {
        p.stored = recycled.stored;
        recycled.stored = undefined;
      }
    }
    for (const p of plans) {
      if (p.endpoints.length === 0) {
        if (p.stored) this.deleteSlice(p.stored);
        continue;
      }
      this.write(p.stored, svc, labels, owner, p.ports, p.endpoints);
    }
  }

  private write(stored: StoredObject<EndpointSlice> | undefined, svc: Service, labels: Record<string, string>, owner: EndpointSlice["metadata"]["ownerReferences"], ports: EndpointPort[], endpoints: Endpoint[]): void {
    if (stored) {
      const cur = stored.obj;
      if (deepEqual(cur.endpoints ?? [], endpoints) && deepEqual(cur.ports ?? [], ports) && deepEqual(cur.metadata.labels, labels) && deepEqual(cur.metadata.ownerReferences, owner)) return;
      const next: EndpointSlice = { ...structuredClone(cur), endpoints, ports };
      next.metadata.labels = labels;
      next.metadata.ownerReferences = owner;
      this.registry.update("endpointslices", cur.metadata.namespace, cur.metadata.name!, next);
      return;
    }
    const slice: EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { generateName: `${svc.metadata.name}-`, namespace: svc.metadata.namespace, labels, ownerReferences: owner },
      addressType: "IPv4",
      endpoints,
      ports,
    };
    const created = this.registry.create<EndpointSlice>("endpointslices", svc.metadata.namespace, slice);
    this.indexSlice(created.obj, true);
  }

  private sliceLabels(svc: Service): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(svc.metadata.labels ?? {})) {
      if (k === LABEL_SERVICE_NAME || k === LABEL_MANAGED_BY || k === LABEL_HEADLESS) continue;
      labels[k] = v;
    }
    labels[LABEL_SERVICE_NAME] = svc.metadata.name!;
    labels[LABEL_MANAGED_BY] = CONTROLLER_NAME;
    if (svc.spec.clusterIP === "None") labels[LABEL_HEADLESS] = "";
    return labels;
  }

  private desiredGroups(svc: Service): Map<string, Group> {
    const groups = new Map<string, Group>();
    const sel = svc.spec.selector!;
    const zones = new Map<string, string | undefined>();
    const zoneOf = (node: string) => {
      if (!zones.has(node)) zones.set(node, this.registry.tryGet<Node>("nodes", undefined, node)?.obj.metadata.labels?.["topology.kubernetes.io/zone"]);
      return zones.get(node);
    };
    const pods = this.registry
      .list<Pod>("pods", svc.metadata.namespace)
      .map((s) => s.obj)
      .filter((p) => Object.entries(sel).every(([k, v]) => p.metadata.labels?.[k] === v))
      .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
    for (const pod of pods) {
      const ip = pod.status?.podIP;
      if (!ip || isTerminal(pod)) continue;
      const ports: EndpointPort[] = [];
      for (const sp of svc.spec.ports ?? []) {
        const port = resolvePort(pod, sp);
        if (port === undefined) continue;
        const ep: EndpointPort = { name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" };
        if (sp.appProtocol) ep.appProtocol = sp.appProtocol;
        ports.push(ep);
      }
      ports.sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -1 : (a.name ?? "") > (b.name ?? "") ? 1 : (a.protocol ?? "") < (b.protocol ?? "") ? -1 : 1));
      const portKey = canonicalJSON(ports);
      let g = groups.get(portKey);
      if (!g) groups.set(portKey, (g = { ports, endpoints: new Map() }));
      if (g.endpoints.has(ip)) continue;
      const serving = isPodReady(pod);
      const terminating = !!pod.metadata.deletionTimestamp;
      const e: Endpoint = {
        addresses: [ip],
        conditions: { ready: svc.spec.publishNotReadyAddresses === true || (serving && !terminating), serving, terminating },
        targetRef: { kind: "Pod", namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid },
      };
      if (pod.spec.hostname && pod.spec.subdomain === svc.metadata.name) e.hostname = pod.spec.hostname;
      if (pod.spec.nodeName) {
        e.nodeName = pod.spec.nodeName;
        const zone = zoneOf(pod.spec.nodeName);
        if (zone) e.zone = zone;
      }
      g.endpoints.set(ip, e);
    }
    return groups;
  }
}
