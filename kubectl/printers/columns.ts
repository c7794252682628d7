// The columns of `get` for each kind, with kubectl's headers and its way of filling them
// (pod STATUS from container states, service EXTERNAL-IP and PORT(S), node ROLES...).
import type { ContainerStatus, Deployment, Endpoints, EndpointSlice, KObject, LabelSelector, Namespace, NetworkPolicy, Node, Pod, PodTemplateSpec, ReplicaSet, Service } from "../../apiserver/types.ts";
import type { ResourceKind } from "../../apiserver/client.ts";
import { age } from "./table.ts";

export interface Columns<T extends KObject = KObject> {
  /** Headers after NAME (NAME and NAMESPACE are added by the printer). */
  header: string[];
  /** Extra headers with -o wide. */
  wideHeader: string[];
  cells(obj: T, now: number): string[];
  wideCells(obj: T, now: number): string[];
}

const NONE = "<none>";

/** "a=1,b=2" (sorted by key), as kubectl's labels.FormatLabels; "<none>" when empty. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${labels![k]}`).join(",") : NONE;
}

/** A LabelSelector as kubectl prints it: "app=web,tier in (a,b),!gone". */
export function formatLabelSelector(sel: LabelSelector | undefined): string {
  if (!sel) return NONE;
  const parts = Object.keys(sel.matchLabels ?? {})
    .sort()
    .map((k) => `${k}=${sel.matchLabels![k]}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.length ? parts.join(",") : NONE;
}

// ---- pods ----

export interface PodSummary {
  ready: string;
  status: string;
  restarts: number;
  lastRestart?: string;
}

/** READY, STATUS and RESTARTS as kubectl derives them from the pod's container statuses. */
export function podSummary(pod: Pod): PodSummary {
  const status = pod.status ?? {};
  let reason: string = status.reason || status.phase || "Pending";
  let restarts = 0;
  let readyContainers = 0;
  let lastRestart: string | undefined;
  let initializing = false;
  const inits = (status as { initContainerStatuses?: ContainerStatus[] }).initContainerStatuses ?? [];
  for (let i = 0; i < inits.length; i++) {
    const c = inits[i]!;
    restarts += c.restartCount;
    const term = c.state.terminated;
    if (term && term.exitCode === 0) continue;
    if (term) reason = term.reason ? `Init:${term.reason}` : term.signal ? `Init:Signal:${term.signal}` : `Init:ExitCode:${term.exitCode}`;
    else if (c.state.waiting?.reason && c.state.waiting.reason !== "PodInitializing") reason = `Init:${c.state.waiting.reason}`;
    else reason = `Init:${i}/${pod.spec.initContainers?.length ?? inits.length}`;
    initializing = true;
    break;
  }
  const initialized = status.conditions?.some((c) => c.type === "Initialized" && c.status === "True") ?? false;
  if (!initializing || initialized) {
    restarts = 0;
    let hasRunning = false;
    const cs = status.containerStatuses ?? [];
    for (let i = cs.length - 1; i >= 0; i--) {
      const c = cs[i]!;
      restarts += c.restartCount;
      const finished = c.lastState?.terminated?.finishedAt;
      if (finished && (!lastRestart || finished > lastRestart)) lastRestart = finished;
      const term = c.state.terminated;
      if (c.state.waiting?.reason) reason = c.state.waiting.reason;
      else if (term?.reason) reason = term.reason;
      else if (term) reason = term.signal ? `Signal:${term.signal}` : `ExitCode:${term.exitCode}`;
      else if (c.ready && c.state.running) {
        hasRunning = true;
        readyContainers++;
      }
    }
    if (reason === "Completed" && hasRunning) {
      reason = status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? "Running" : "NotReady";
    }
  }
  const terminal = status.phase === "Succeeded" || status.phase === "Failed";
  if (pod.metadata.deletionTimestamp && status.reason === "NodeLost") reason = "Unknown";
  else if (pod.metadata.deletionTimestamp && !terminal) reason = "Terminating";
  return { ready: `${readyContainers}/${pod.spec.containers.length}`, status: reason, restarts, lastRestart };
}

const pods: Columns<Pod> = {
  header: ["READY", "STATUS", "RESTARTS", "AGE"],
  wideHeader: ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
  cells(pod, now) {
    const s = podSummary(pod);
    const restarts = s.restarts > 0 && s.lastRestart ? `${s.restarts} (${age(s.lastRestart, now)} ago)` : String(s.restarts);
    return [s.ready, s.status, restarts, age(pod.metadata.creationTimestamp, now)];
  },
  wideCells(pod) {
    const nominated = (pod.status as { nominatedNodeName?: string } | undefined)?.nominatedNodeName;
    return [pod.status?.podIP || NONE, pod.spec.nodeName || NONE, nominated || NONE, NONE];
  },
};

// ---- services ----

/** PORT(S): "80/TCP", "80:30080/TCP" with a node port, comma separated. */
export function servicePorts(svc: Service): string {
  const ports = svc.spec.ports ?? [];
  if (ports.length === 0) return NONE;
  return ports.map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol ?? "TCP"}` : `${p.port}/${p.protocol ?? "TCP"}`)).join(",");
}

export function serviceExternalIP(svc: Service, wide: boolean): string {
  const external = svc.spec.externalIPs ?? [];
  switch (svc.spec.type ?? "ClusterIP") {
    case "ClusterIP":
    case "NodePort":
      return external.length ? external.join(",") : NONE;
    case "LoadBalancer": {
      let lb = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || "").filter(Boolean).join(",");
      if (!wide && lb.length > 16) lb = `${lb.slice(0, 13)}...`;
      const all = [lb, ...external].filter(Boolean);
      return all.length ? all.join(",") : "<pending>";
    }
    case "ExternalName":
      return svc.spec.externalName ?? NONE;
    default:
      return "<unknown>";
  }
}

const services: Columns<Service> = {
  header: ["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
  wideHeader: ["SELECTOR"],
  cells(svc, now) {
    return [svc.spec.type ?? "ClusterIP", svc.spec.clusterIP || NONE, serviceExternalIP(svc, false), servicePorts(svc), age(svc.metadata.creationTimestamp, now)];
  },
  wideCells(svc) {
    return [formatLabels(svc.spec.selector)];
  },
};

// ---- nodes ----

export function nodeStatus(node: Node): string {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  const parts = [ready ? (ready.status === "True" ? "Ready" : "NotReady") : "Unknown"];
  if (node.spec?.unschedulable) parts.push("SchedulingDisabled");
  return parts.join(",");
}

export function nodeRoles(node: Node): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/") && k.length > "node-role.kubernetes.io/".length) roles.add(k.slice("node-role.kubernetes.io/".length));
    else if (k === "kubernetes.io/role" && v) roles.add(v);
  }
  return roles.size ? [...roles].sort().join(",") : NONE;
}

export const nodeAddress = (node: Node, type: "InternalIP" | "ExternalIP"): string => node.status?.addresses?.find((a) => a.type === type)?.address ?? NONE;

const nodes: Columns<Node> = {
  header: ["STATUS", "ROLES", "AGE", "VERSION"],
  wideHeader: ["INTERNAL-IP", "EXTERNAL-IP", "POD-CIDR", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
  cells(node, now) {
    return [nodeStatus(node), nodeRoles(node), age(node.metadata.creationTimestamp, now), node.status?.nodeInfo?.kubeletVersion || ""];
  },
  wideCells(node) {
    const info = node.status?.nodeInfo ?? {};
    return [
      nodeAddress(node, "InternalIP"),
      nodeAddress(node, "ExternalIP"),
      node.spec?.podCIDRs?.join(",") || node.spec?.podCIDR || NONE,
      info.osImage || "<unknown>",
      info.kernelVersion || "<unknown>",
      info.containerRuntimeVersion || "<unknown>",
    ];
  },
};

// ---- endpoints ----

/**
 * kubectl's formatEndpoints: "ip:port" for every ready address and port, subset by subset, the
 * first three shown and "+ N more..." after them; bare IPs for a subset without ports; "<none>"
 * without subsets (and nothing at all when the subsets hold only not-ready addresses).
 */
export function formatEndpoints(ep: Endpoints, max = 3): string {
  const subsets = ep.subsets ?? [];
  if (subsets.length === 0) return NONE;
  const list: string[] = [];
  let count = 0;
  const add = (s: string) => {
    count++;
    if (list.length < max) list.push(s);
  };
  for (const ss of subsets) {
    const addrs = ss.addresses ?? [];
    if ((ss.ports ?? []).length === 0) {
      for (const a of addrs) add(a.ip);
      continue;
    }
    for (const p of ss.ports ?? []) for (const a of addrs) add(a.ip.includes(":") ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`);
  }
  const shown = list.join(",");
  return count > max ? `${shown} + ${count - max} more...` : shown;
}

const endpoints: Columns<Endpoints> = {
  header: ["ENDPOINTS", "AGE"],
  wideHeader: [],
  cells: (ep, now) => [formatEndpoints(ep), age(ep.metadata.creationTimestamp, now)],
  wideCells: () => [],
};

// ---- endpointslices ----

export function sliceEndpoints(slice: EndpointSlice, max = 3): string {
  const addrs = (slice.endpoints ?? []).flatMap((e) => e.addresses);
  if (addrs.length === 0) return NONE;
  const shown = addrs.slice(0, max).join(",");
  return addrs.length > max ? `${shown} + ${addrs.length - max} more...` : shown;
}

export function slicePorts(slice: EndpointSlice): string {
  const ports = slice.ports ?? [];
  if (ports.length === 0) return "<unset>";
  return ports.map((p) => (p.port === undefined || p.port === null ? "<unset>" : String(p.port))).join(",");
}

const endpointslices: Columns<EndpointSlice> = {
  header: ["ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
  wideHeader: [],
  cells(slice, now) {
    return [slice.addressType, slicePorts(slice), sliceEndpoints(slice), age(slice.metadata.creationTimestamp, now)];
  },
  wideCells: () => [],
};

// ---- deployments and replicasets ----

function templateCells(template: PodTemplateSpec | undefined, selector: LabelSelector | undefined): string[] {
  const cs = template?.spec?.containers ?? [];
  return [cs.map((c) => c.name).join(","), cs.map((c) => c.image ?? "").join(","), formatLabelSelector(selector)];
}

const deployments: Columns<Deployment> = {
  header: ["READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
  wideHeader: ["CONTAINERS", "IMAGES", "SELECTOR"],
  cells(d, now) {
    const s = d.status ?? {};
    return [`${s.readyReplicas ?? 0}/${d.spec.replicas ?? 1}`, String(s.updatedReplicas ?? 0), String(s.availableReplicas ?? 0), age(d.metadata.creationTimestamp, now)];
  },
  wideCells: (d) => templateCells(d.spec.template, d.spec.selector),
};

const replicasets: Columns<ReplicaSet> = {
  header: ["DESIRED", "CURRENT", "READY", "AGE"],
  wideHeader: ["CONTAINERS", "IMAGES", "SELECTOR"],
  cells(rs, now) {
    return [String(rs.spec.replicas ?? 1), String(rs.status?.replicas ?? 0), String(rs.status?.readyReplicas ?? 0), age(rs.metadata.creationTimestamp, now)];
  },
  wideCells: (rs) => templateCells(rs.spec.template, rs.spec.selector),
};

const namespaces: Columns<Namespace> = {
  header: ["STATUS", "AGE"],
  wideHeader: [],
  cells: (ns, now) => [ns.status?.phase ?? "Active", age(ns.metadata.creationTimestamp, now)],
  wideCells: () => [],
};

// ---- networkpolicies ----

/** kubectl's columns: the pod selector ("<none>" for the empty one, which selects every pod) and AGE; -o wide adds nothing. */
const networkpolicies: Columns<NetworkPolicy> = {
  header: ["POD-SELECTOR", "AGE"],
  wideHeader: [],
  cells: (np, now) => [formatLabelSelector(np.spec?.podSelector ?? {}), age(np.metadata.creationTimestamp, now)],
  wideCells: () => [],
};

export const COLUMNS: Record<ResourceKind, Columns> = {
  pods: pods as Columns,
  services: services as Columns,
  nodes: nodes as Columns,
  endpoints: endpoints as Columns,
  endpointslices: endpointslices as Columns,
  deployments: deployments as Columns,
  replicasets: replicasets as Columns,
  namespaces: namespaces as Columns,
  networkpolicies: networkpolicies as Columns,
};
