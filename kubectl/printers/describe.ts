// `describe` texts, laid out like kubectl's: "Key:<tab>value" lines at indent levels, aligned by
// a tabwriter. podnet has no Events API, so there is no Events section; instead each kind shows
// what it is connected to (a Service its endpoints, a Node its pods, a Deployment its ReplicaSets).
import type {
  Container,
  ContainerState,
  ContainerStatus,
  Deployment,
  Endpoints,
  EndpointSlice,
  KObject,
  LabelSelector,
  Namespace,
  NetworkPolicy,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  Node,
  Pod,
  Probe,
  ReplicaSet,
  Service,
} from "../../apiserver/types.ts";
import { formatLabelSelector, formatLabels, nodeRoles } from "./columns.ts";
import { age } from "./table.ts";
import { tabwrite } from "./tabwriter.ts";

const NONE = "<none>";

/** Collects "Key:\tvalue" lines at indent levels (two spaces each), then aligns them. */
export class DescribeWriter {
  private text = "";
  /** Added to every level (a pod template inside a Deployment's description). */
  indent = 0;
  line(level: number, ...cells: string[]): void {
    this.text += "  ".repeat(level + this.indent) + cells.join("\t") + "\n";
  }
  /** "Key:" then one entry per line, later ones under the first (kubectl's multiline labels). */
  multiline(level: number, key: string, entries: string[]): void {
    if (entries.length === 0) return this.line(level, `${key}:`, NONE);
    this.line(level, `${key}:`, entries[0]!);
    for (const e of entries.slice(1)) this.line(level, "", e);
  }
  toString(): string {
    return tabwrite(this.text);
  }
}

const pad2 = (n: number) => String(n).padStart(2, "0");
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Go's RFC1123Z in local time ("Mon, 02 Jan 2006 15:04:05 -0700"), kubectl's timestamp format in describe. */
export function rfc1123z(ts: string | undefined): string {
  if (!ts) return NONE;
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const zone = `${sign}${pad2(Math.floor(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)}`;
  return `${DAYS[d.getDay()]}, ${pad2(d.getDate())} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone}`;
}

/**
 * Go's time.Time String() in local time ("2006-01-02 15:04:05 -0700 MST"), which is how kubectl
 * prints a NetworkPolicy's "Created on". The zone's abbreviation is the one Intl knows, which is
 * Go's for UTC and the common zones.
 */
export function goTimeString(ts: string | undefined): string {
  if (!ts) return "0001-01-01 00:00:00 +0000 UTC";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const zone = `${sign}${pad2(Math.floor(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)}`;
  const name = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(d).find((p) => p.type === "timeZoneName")?.value ?? zone;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${zone} ${name}`;
}

const labelLines = (labels: Record<string, string> | undefined) =>
  Object.keys(labels ?? {})
    .sort()
    .map((k) => `${k}=${labels![k]}`);

// kubectl hides the last-applied annotation in describe: it repeats the whole object.
const annotationLines = (a: Record<string, string> | undefined) =>
  Object.keys(a ?? {})
    .filter((k) => k !== "kubectl.kubernetes.io/last-applied-configuration")
    .sort()
    .map((k) => `${k}: ${a![k]}`);

function meta(w: DescribeWriter, o: KObject, opts: { namespace: boolean; created?: boolean }): void {
  w.line(0, "Name:", o.metadata.name ?? "");
  if (opts.namespace) w.line(0, "Namespace:", o.metadata.namespace ?? "");
  if (opts.created) w.line(0, "CreationTimestamp:", rfc1123z(o.metadata.creationTimestamp));
  w.multiline(0, "Labels", labelLines(o.metadata.labels));
  w.multiline(0, "Annotations", annotationLines(o.metadata.annotations));
}

function controlledBy(w: DescribeWriter, o: KObject): void {
  const owner = o.metadata.ownerReferences?.find((r) => r.controller);
  if (owner) w.line(0, "Controlled By:", `${owner.kind}/${owner.name}`);
}

// ---- pods ----

function probeText(p: Probe): string {
  const tail = `delay=${p.initialDelaySeconds ?? 0}s timeout=${p.timeoutSeconds ?? 1}s period=${p.periodSeconds ?? 10}s #success=${p.successThreshold ?? 1} #failure=${p.failureThreshold ?? 3}`;
  if (p.httpGet) return `http-get ${(p.httpGet.scheme ?? "HTTP").toLowerCase()}://${p.httpGet.host ?? ""}:${p.httpGet.port}${p.httpGet.path ?? "/"} ${tail}`;
  if (p.tcpSocket) return `tcp-socket ${p.tcpSocket.host ?? ""}:${p.tcpSocket.port} ${tail}`;
  if (p.exec) return `exec [${p.exec.command.join(" ")}] ${tail}`;
  return `unknown ${tail}`;
}

function stateLines(w: DescribeWriter, level: number, title: string, s: ContainerState | undefined): void {
  if (s?.running) {
    w.line(level, `${title}:`, "Running");
    w.line(level + 1, "Started:", rfc1123z(s.running.startedAt));
  } else if (s?.waiting) {
    w.line(level, `${title}:`, "Waiting");
    if (s.waiting.reason) w.line(level + 1, "Reason:", s.waiting.reason);
    if (s.waiting.message) w.line(level + 1, "Message:", s.waiting.message);
  } else if (s?.terminated) {
    const t = s.terminated;
    w.line(level, `${title}:`, "Terminated");
    if (t.reason) w.line(level + 1, "Reason:", t.reason);
    if (t.message) w.line(level + 1, "Message:", t.message);
    w.line(level + 1, "Exit Code:", String(t.exitCode));
    if (t.signal) w.line(level + 1, "Signal:", String(t.signal));
    w.line(level + 1, "Started:", rfc1123z(t.startedAt));
    w.line(level + 1, "Finished:", rfc1123z(t.finishedAt));
  } else if (title === "State") {
    w.line(level, `${title}:`, "Waiting");
  }
}

/** One container; `st` undefined for a pod template, which has no state to show. */
function containerLines(w: DescribeWriter, c: Container, st: ContainerStatus | undefined, template = false): void {
  w.line(1, `${c.name}:`);
  if (st?.containerID) w.line(2, "Container ID:", st.containerID);
  w.line(2, "Image:", c.image ?? "");
  const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? "TCP"}${p.name ? ` (${p.name})` : ""}`);
  w.line(2, ports.length > 1 ? "Ports:" : "Port:", ports.length ? ports.join(", ") : NONE);
  const hostPorts = (c.ports ?? []).map((p) => `${p.hostPort ?? 0}/${p.protocol ?? "TCP"}`);
  w.line(2, hostPorts.length > 1 ? "Host Ports:" : "Host Port:", hostPorts.length ? hostPorts.join(", ") : NONE);
  if (c.command?.length) {
    w.line(2, "Command:");
    for (const a of c.command) w.line(3, a);
  }
  if (c.args?.length) {
    w.line(2, "Args:");
    for (const a of c.args) w.line(3, a);
  }
  if (!template) {
    stateLines(w, 2, "State", st?.state);
    if (st?.lastState && Object.keys(st.lastState).length > 0) stateLines(w, 2, "Last State", st.lastState);
    w.line(2, "Ready:", st?.ready ? "True" : "False");
    w.line(2, "Restart Count:", String(st?.restartCount ?? 0));
  }
  if (c.livenessProbe) w.line(2, "Liveness:", probeText(c.livenessProbe));
  if (c.readinessProbe) w.line(2, "Readiness:", probeText(c.readinessProbe));
  if (c.startupProbe) w.line(2, "Startup:", probeText(c.startupProbe));
  if (c.env?.length) {
    w.line(2, "Environment:");
    for (const e of c.env) w.line(3, `${e.name}:`, e.value ?? (e.valueFrom?.fieldRef ? `(v1:${e.valueFrom.fieldRef.fieldPath})` : ""));
  } else w.line(2, "Environment:", NONE);
}

export function describePod(pod: Pod, now = Date.now()): string {
  const w = new DescribeWriter();
  const st = pod.status ?? {};
  w.line(0, "Name:", pod.metadata.name ?? "");
  w.line(0, "Namespace:", pod.metadata.namespace ?? "");
  w.line(0, "Node:", pod.spec.nodeName ? `${pod.spec.nodeName}${st.hostIP ? `/${st.hostIP}` : ""}` : NONE);
  if (st.startTime) w.line(0, "Start Time:", rfc1123z(st.startTime));
  w.multiline(0, "Labels", labelLines(pod.metadata.labels));
  w.multiline(0, "Annotations", annotationLines(pod.metadata.annotations));
  if (pod.metadata.deletionTimestamp) {
    w.line(0, "Status:", `Terminating (lasts ${age(pod.metadata.deletionTimestamp, now).replace(/^<invalid>$/, "0s")})`);
    w.line(0, "Termination Grace Period:", `${pod.metadata.deletionGracePeriodSeconds ?? 30}s`);
  } else w.line(0, "Status:", st.phase ?? "Pending");
  if (st.reason) w.line(0, "Reason:", st.reason);
  if (st.message) w.line(0, "Message:", st.message);
  w.line(0, "IP:", st.podIP ?? "");
  const ips = st.podIPs ?? [];
  if (ips.length) {
    w.line(0, "IPs:");
    for (const ip of ips) w.line(1, "IP:", ip.ip);
  } else w.line(0, "IPs:", NONE);
  controlledBy(w, pod);
  const statusOf = (list: ContainerStatus[] | undefined, name: string) => list?.find((s) => s.name === name);
  const initStatuses = (st as { initContainerStatuses?: ContainerStatus[] }).initContainerStatuses;
  if (pod.spec.initContainers?.length) {
    w.line(0, "Init Containers:");
    for (const c of pod.spec.initContainers) containerLines(w, c, statusOf(initStatuses, c.name));
  }
  w.line(0, "Containers:");
  for (const c of pod.spec.containers) containerLines(w, c, statusOf(st.containerStatuses, c.name));
  if (st.conditions?.length) {
    w.line(0, "Conditions:");
    w.line(1, "Type", "Status");
    for (const c of st.conditions) w.line(1, c.type, `${c.status} `);
  }
  w.line(0, "Node-Selectors:", formatLabels(pod.spec.nodeSelector).replace(/,/g, "\n\t"));
  return w.toString();
}

// ---- services ----

/** Ready endpoints of one service port, from the Service's EndpointSlices ("10.244.1.5:8080,..."). */
export function serviceEndpoints(slices: EndpointSlice[], portName: string | undefined, max = 3): string {
  const addrs: string[] = [];
  for (const s of slices) {
    const port = (s.ports ?? []).find((p) => (p.name ?? "") === (portName ?? ""));
    if (!port || port.port === undefined) continue;
    for (const e of s.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      for (const a of e.addresses) addrs.push(s.addressType === "IPv6" ? `[${a}]:${port.port}` : `${a}:${port.port}`);
    }
  }
  if (addrs.length === 0) return NONE;
  const shown = addrs.slice(0, max).join(",");
  return addrs.length > max ? `${shown} + ${addrs.length - max} more...` : shown;
}

export function describeService(svc: Service, slices: EndpointSlice[]): string {
  const w = new DescribeWriter();
  const spec = svc.spec;
  meta(w, svc, { namespace: true });
  w.line(0, "Selector:", formatLabels(spec.selector));
  w.line(0, "Type:", spec.type ?? "ClusterIP");
  if (spec.ipFamilyPolicy) w.line(0, "IP Family Policy:", spec.ipFamilyPolicy);
  if (spec.ipFamilies?.length) w.line(0, "IP Families:", spec.ipFamilies.join(","));
  w.line(0, "IP:", spec.clusterIP || NONE);
  w.line(0, "IPs:", spec.clusterIPs?.join(",") || NONE);
  if (spec.externalIPs?.length) w.line(0, "External IPs:", spec.externalIPs.join(","));
  if (spec.loadBalancerIP) w.line(0, "IP:", spec.loadBalancerIP);
  if (spec.externalName) w.line(0, "External Name:", spec.externalName);
  const ingress = svc.status?.loadBalancer?.ingress ?? [];
  if (ingress.length) w.line(0, "LoadBalancer Ingress:", ingress.map((i) => `${i.ip ?? i.hostname ?? ""}${i.ipMode ? ` (${i.ipMode})` : ""}`).join(", "));
  for (const p of spec.ports ?? []) {
    const name = p.name || "<unset>";
    w.line(0, "Port:", name, `${p.port}/${p.protocol ?? "TCP"}`);
    w.line(0, "TargetPort:", `${p.targetPort ?? p.port}/${p.protocol ?? "TCP"}`);
    if (p.nodePort) w.line(0, "NodePort:", name, `${p.nodePort}/${p.protocol ?? "TCP"}`);
    w.line(0, "Endpoints:", serviceEndpoints(slices, p.name));
  }
  w.line(0, "Session Affinity:", spec.sessionAffinity ?? "None");
  if (spec.sessionAffinity === "ClientIP") w.line(0, "Session Affinity Timeout:", `${spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800}s`);
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") w.line(0, "External Traffic Policy:", spec.externalTrafficPolicy ?? "Cluster");
  if (spec.healthCheckNodePort) w.line(0, "HealthCheck NodePort:", String(spec.healthCheckNodePort));
  if (spec.internalTrafficPolicy) w.line(0, "Internal Traffic Policy:", spec.internalTrafficPolicy);
  if (spec.publishNotReadyAddresses) w.line(0, "Publish Not Ready Addresses:", "true");
  if (spec.loadBalancerSourceRanges?.length) w.line(0, "LoadBalancer Source Ranges:", spec.loadBalancerSourceRanges.join(","));
  return w.toString();
}

// ---- nodes ----

export function describeNode(node: Node, pods: Pod[], now = Date.now()): string {
  const w = new DescribeWriter();
  w.line(0, "Name:", node.metadata.name ?? "");
  w.line(0, "Roles:", nodeRoles(node));
  w.multiline(0, "Labels", labelLines(node.metadata.labels));
  w.multiline(0, "Annotations", annotationLines(node.metadata.annotations));
  w.line(0, "CreationTimestamp:", rfc1123z(node.metadata.creationTimestamp));
  w.multiline(
    0,
    "Taints",
    (node.spec?.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`),
  );
  w.line(0, "Unschedulable:", String(node.spec?.unschedulable ?? false));
  const conds = node.status?.conditions ?? [];
  if (conds.length) {
    w.line(0, "Conditions:");
    w.line(1, "Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message");
    w.line(1, "----", "------", "-----------------", "------------------", "------", "-------");
    for (const c of conds) w.line(1, c.type, c.status, rfc1123z(c.lastHeartbeatTime), rfc1123z(c.lastTransitionTime), c.reason ?? "", c.message ?? "");
  }
  w.line(0, "Addresses:");
  for (const a of node.status?.addresses ?? []) w.line(1, `${a.type}:`, a.address);
  const info = node.status?.nodeInfo ?? {};
  if (Object.keys(info).length) {
    w.line(0, "System Info:");
    const names: Record<string, string> = {
      machineID: "Machine ID",
      systemUUID: "System UUID",
      bootID: "Boot ID",
      kernelVersion: "Kernel Version",
      osImage: "OS Image",
      operatingSystem: "Operating System",
      architecture: "Architecture",
      containerRuntimeVersion: "Container Runtime Version",
      kubeletVersion: "Kubelet Version",
      kubeProxyVersion: "Kube-Proxy Version",
    };
    for (const [k, v] of Object.entries(info)) w.line(1, `${names[k] ?? k}:`, v);
  }
  w.line(0, "PodCIDR:", node.spec?.podCIDR ?? NONE);
  w.line(0, "PodCIDRs:", node.spec?.podCIDRs?.join(",") ?? NONE);
  const running = pods.filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed");
  w.line(0, `Non-terminated Pods:`, `(${running.length} in total)`);
  if (running.length) {
    w.line(1, "Namespace", "Name", "IP", "Age");
    w.line(1, "---------", "----", "--", "---");
    for (const p of running) w.line(1, p.metadata.namespace ?? "", p.metadata.name ?? "", p.status?.podIP || NONE, age(p.metadata.creationTimestamp, now));
  }
  return w.toString();
}

// ---- endpoints ----

/** kubectl's Endpoints page: per subset its ready and not-ready IPs and its ports, a blank line after each. */
export function describeEndpoints(ep: Endpoints): string {
  const w = new DescribeWriter();
  meta(w, ep, { namespace: true });
  w.line(0, "Subsets:");
  for (const ss of ep.subsets ?? []) {
    w.line(1, "Addresses:", (ss.addresses ?? []).map((a) => a.ip).join(",") || NONE);
    w.line(1, "NotReadyAddresses:", (ss.notReadyAddresses ?? []).map((a) => a.ip).join(",") || NONE);
    if ((ss.ports ?? []).length) {
      w.line(1, "Ports:");
      w.line(2, "Name", "Port", "Protocol");
      w.line(2, "----", "----", "--------");
      for (const p of ss.ports ?? []) w.line(2, p.name || "<unset>", String(p.port), p.protocol ?? "");
    }
    w.line(0, "");
  }
  return w.toString();
}

// ---- endpointslices ----

export function describeEndpointSlice(slice: EndpointSlice): string {
  const w = new DescribeWriter();
  meta(w, slice, { namespace: true });
  w.line(0, "AddressType:", slice.addressType);
  w.line(0, "Ports:");
  w.line(1, "Name", "Port", "Protocol");
  w.line(1, "----", "----", "--------");
  for (const p of slice.ports ?? []) w.line(1, p.name || "<unset>", p.port === undefined ? "<unset>" : String(p.port), p.protocol ?? "TCP");
  if ((slice.ports ?? []).length === 0) w.line(1, "<unset>", "<unset>", "<unset>");
  w.line(0, "Endpoints:");
  for (const e of slice.endpoints ?? []) {
    w.line(1, "-", "Addresses:", e.addresses.join(","));
    w.line(2, "Conditions:");
    w.line(3, "Ready:", e.conditions?.ready === undefined ? "<unset>" : String(e.conditions.ready));
    w.line(3, "Serving:", e.conditions?.serving === undefined ? "<unset>" : String(e.conditions.serving));
    w.line(3, "Terminating:", e.conditions?.terminating === undefined ? "<unset>" : String(e.conditions.terminating));
    w.line(2, "Hostname:", e.hostname ?? "<unset>");
    if (e.targetRef) w.line(2, "TargetRef:", `${e.targetRef.kind}/${e.targetRef.name}`);
    w.line(2, "NodeName:", e.nodeName ?? "<unset>");
    w.line(2, "Zone:", e.zone ?? "<unset>");
  }
  if ((slice.endpoints ?? []).length === 0) w.line(1, NONE);
  return w.toString();
}

// ---- deployments, replicasets, namespaces ----

function podTemplate(w: DescribeWriter, tpl: { metadata?: KObject["metadata"]; spec: Pod["spec"] }): void {
  w.line(0, "Pod Template:");
  w.indent = 1;
  w.multiline(0, "Labels", labelLines(tpl.metadata?.labels));
  const annotations = annotationLines(tpl.metadata?.annotations);
  if (annotations.length) w.multiline(0, "Annotations", annotations);
  w.line(0, "Containers:");
  for (const c of tpl.spec.containers ?? []) containerLines(w, c, undefined, true);
  w.indent = 0;
}

export function describeDeployment(d: Deployment, replicaSets: ReplicaSet[]): string {
  const w = new DescribeWriter();
  meta(w, d, { namespace: true, created: true });
  w.line(0, "Selector:", formatLabelSelector(d.spec.selector));
  const s = d.status ?? {};
  w.line(
    0,
    "Replicas:",
    `${d.spec.replicas ?? 1} desired | ${s.updatedReplicas ?? 0} updated | ${s.replicas ?? 0} total | ${s.availableReplicas ?? 0} available | ${s.unavailableReplicas ?? 0} unavailable`,
  );
  w.line(0, "StrategyType:", d.spec.strategy?.type ?? "RollingUpdate");
  w.line(0, "MinReadySeconds:", String(d.spec.minReadySeconds ?? 0));
  if ((d.spec.strategy?.type ?? "RollingUpdate") === "RollingUpdate") {
    const ru = d.spec.strategy?.rollingUpdate ?? {};
    w.line(0, "RollingUpdateStrategy:", `${ru.maxUnavailable ?? "25%"} max unavailable, ${ru.maxSurge ?? "25%"} max surge`);
  }
  podTemplate(w, d.spec.template);
  if (s.conditions?.length) {
    w.line(0, "Conditions:");
    w.line(1, "Type", "Status", "Reason");
    w.line(1, "----", "------", "------");
    for (const c of s.conditions) w.line(1, c.type, c.status, c.reason ?? "");
  }
  const revision = d.metadata.annotations?.["deployment.kubernetes.io/revision"];
  const owned = replicaSets.filter((rs) => rs.metadata.ownerReferences?.some((r) => r.uid === d.metadata.uid));
  const isNew = (rs: ReplicaSet) => revision !== undefined && rs.metadata.annotations?.["deployment.kubernetes.io/revision"] === revision;
  const fmt = (rs: ReplicaSet) => `${rs.metadata.name} (${rs.status?.replicas ?? 0}/${rs.spec.replicas ?? 0} replicas created)`;
  const old = owned.filter((rs) => !isNew(rs) && (rs.spec.replicas ?? 0) > 0);
  w.line(0, "OldReplicaSets:", old.length ? old.map(fmt).join(", ") : NONE);
  const fresh = owned.find(isNew);
  w.line(0, "NewReplicaSet:", fresh ? fmt(fresh) : NONE);
  return w.toString();
}

export function describeReplicaSet(rs: ReplicaSet, pods: Pod[]): string {
  const w = new DescribeWriter();
  meta(w, rs, { namespace: true });
  w.line(0, "Selector:", formatLabelSelector(rs.spec.selector));
  controlledBy(w, rs);
  w.line(0, "Replicas:", `${rs.status?.replicas ?? 0} current / ${rs.spec.replicas ?? 1} desired`);
  const owned = pods.filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === rs.metadata.uid));
  const count = (phase: string) => owned.filter((p) => (p.status?.phase ?? "Pending") === phase).length;
  w.line(0, "Pods Status:", `${count("Running")} Running / ${count("Pending")} Waiting / ${count("Succeeded")} Succeeded / ${count("Failed")} Failed`);
  podTemplate(w, rs.spec.template);
  return w.toString();
}

export function describeNamespace(ns: Namespace): string {
  const w = new DescribeWriter();
  meta(w, ns, { namespace: false });
  w.line(0, "Status:", ns.status?.phase ?? "Active");
  return w.toString();
}

// ---- networkpolicies ----

const emptySelector = (s: LabelSelector | undefined) => Object.keys(s?.matchLabels ?? {}).length === 0 && (s?.matchExpressions ?? []).length === 0;

function policyPortLines(w: DescribeWriter, ports: NetworkPolicyPort[] | undefined): void {
  if (!ports?.length) return w.line(2, "To Port: <any> (traffic allowed to all ports)");
  for (const p of ports) {
    const proto = p.protocol ?? "TCP";
    // A rule port with a protocol only: kubectl prints the absent port as Go prints a nil pointer.
    const port = p.port === undefined || p.port === null ? "<nil>" : String(p.port);
    w.line(2, p.endPort === undefined || p.endPort === null ? `To Port: ${port}/${proto}` : `To Port Range: ${port}-${p.endPort}/${proto}`);
  }
}

function policyPeerLines(w: DescribeWriter, title: string, peers: NetworkPolicyPeer[]): void {
  for (const peer of peers) {
    w.line(2, `${title}:`);
    if (peer.namespaceSelector) w.line(3, `NamespaceSelector: ${formatLabelSelector(peer.namespaceSelector)}`);
    if (peer.podSelector) w.line(3, `PodSelector: ${formatLabelSelector(peer.podSelector)}`);
    if (!peer.namespaceSelector && !peer.podSelector && peer.ipBlock) {
      w.line(3, "IPBlock:");
      w.line(4, `CIDR: ${peer.ipBlock.cidr}`);
      w.line(4, `Except: ${(peer.ipBlock.except ?? []).join(", ")}`);
    }
  }
}

function policyRuleLines(w: DescribeWriter, direction: "ingress" | "egress", rules: (NetworkPolicyIngressRule & NetworkPolicyEgressRule)[]): void {
  if (rules.length === 0) return w.line(2, `<none> (Selected pods are isolated for ${direction} connectivity)`);
  rules.forEach((rule, i) => {
    policyPortLines(w, rule.ports);
    const peers = (direction === "ingress" ? rule.from : rule.to) ?? [];
    if (peers.length > 0) policyPeerLines(w, direction === "ingress" ? "From" : "To", peers);
    else w.line(2, direction === "ingress" ? "From: <any> (traffic not restricted by source)" : "To: <any> (traffic not restricted by destination)");
    if (i < rules.length - 1) w.line(2, "----------");
  });
}

/** kubectl's NetworkPolicy page: who is selected, what each direction allows, the policy types. */
export function describeNetworkPolicy(np: NetworkPolicy): string {
  const w = new DescribeWriter();
  const spec = np.spec ?? { podSelector: {} };
  w.line(0, "Name:", np.metadata.name ?? "");
  w.line(0, "Namespace:", np.metadata.namespace ?? "");
  w.line(0, "Created on:", goTimeString(np.metadata.creationTimestamp));
  w.multiline(0, "Labels", labelLines(np.metadata.labels));
  w.multiline(0, "Annotations", annotationLines(np.metadata.annotations));
  w.line(0, "Spec:");
  // kubectl writes the selector at level 2 right after "PodSelector: ", hence the run of spaces.
  const selector = emptySelector(spec.podSelector) ? "<none> (Allowing the specific traffic to all pods in this namespace)" : formatLabelSelector(spec.podSelector);
  w.line(1, `PodSelector:     ${selector}`);
  const types = spec.policyTypes ?? [];
  for (const [type, direction, rules] of [
    ["Ingress", "ingress", spec.ingress],
    ["Egress", "egress", spec.egress],
  ] as const) {
    if (types.includes(type)) {
      w.line(1, `Allowing ${direction} traffic:`);
      policyRuleLines(w, direction, rules ?? []);
    } else w.line(1, `Not affecting ${direction} traffic`);
  }
  w.line(1, `Policy Types: ${types.length ? types.join(", ") : NONE}`);
  return w.toString();
}
