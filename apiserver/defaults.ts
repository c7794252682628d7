// Defaults, as Kubernetes' defaulting functions apply them before validation. They fill in
// only what is missing, so a round trip (get, edit, put) never changes an object by itself.
import type { Container, Deployment, Endpoints, EndpointSlice, Namespace, NetworkPolicy, Pod, PodSpec, Probe, ReplicaSet, Service } from "./types.ts";

function defaultProbe(p: Probe | undefined): void {
  if (!p) return;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  if (p.httpGet) {
    p.httpGet.path ??= "/";
    p.httpGet.scheme ??= "HTTP";
  }
}

function defaultContainer(c: Container, hostNetwork: boolean): void {
  for (const p of c.ports ?? []) {
    p.protocol ??= "TCP";
    // Like Kubernetes: with the node's network, a container port is a host port.
    if (hostNetwork && p.hostPort === undefined) p.hostPort = p.containerPort;
  }
  if (c.image !== undefined && c.imagePullPolicy === undefined) {
    const ref = c.image.split("@")[0];
    const tag = ref.lastIndexOf(":") > ref.lastIndexOf("/") ? ref.slice(ref.lastIndexOf(":") + 1) : "";
    c.imagePullPolicy = !tag || tag === "latest" ? "Always" : "IfNotPresent";
  }
  const extra = c as Container & { terminationMessagePath?: string; terminationMessagePolicy?: string };
  extra.terminationMessagePath ??= "/dev/termination-log";
  extra.terminationMessagePolicy ??= "File";
  defaultProbe(c.readinessProbe);
  defaultProbe(c.livenessProbe);
  defaultProbe(c.startupProbe);
}

export function defaultPodSpec(spec: PodSpec): void {
  if (!spec || typeof spec !== "object") return;
  spec.restartPolicy ??= "Always";
  spec.dnsPolicy ??= "ClusterFirst";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= "default-scheduler";
  spec.enableServiceLinks ??= true;
  const hostNetwork = spec.hostNetwork === true;
  for (const list of [spec.containers, spec.initContainers]) {
    if (Array.isArray(list)) for (const c of list) if (c && typeof c === "object") defaultContainer(c, hostNetwork);
  }
}

export function defaultPod(pod: Pod): void {
  defaultPodSpec(pod.spec);
}

export function defaultService(svc: Service): void {
  const spec = svc.spec;
  if (!spec || typeof spec !== "object") return;
  spec.type ??= "ClusterIP";
  if (spec.type === "ExternalName") {
    spec.sessionAffinity ??= "None";
    return;
  }
  spec.sessionAffinity ??= "None";
  if (spec.sessionAffinity === "ClientIP") {
    spec.sessionAffinityConfig ??= {};
    spec.sessionAffinityConfig.clientIP ??= {};
    spec.sessionAffinityConfig.clientIP.timeoutSeconds ??= 10800;
  }
  for (const p of spec.ports ?? []) {
    if (!p || typeof p !== "object") continue;
    p.protocol ??= "TCP";
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === "") p.targetPort = p.port;
  }
  spec.internalTrafficPolicy ??= "Cluster";
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") spec.externalTrafficPolicy ??= "Cluster";
  if (spec.type === "LoadBalancer") spec.allocateLoadBalancerNodePorts ??= true;
}

export function defaultDeployment(d: Deployment): void {
  const spec = d.spec;
  if (!spec || typeof spec !== "object") return;
  spec.replicas ??= 1;
  spec.strategy ??= {};
  spec.strategy.type ??= "RollingUpdate";
  if (spec.strategy.type === "RollingUpdate") {
    spec.strategy.rollingUpdate ??= {};
    spec.strategy.rollingUpdate.maxSurge ??= "25%";
    spec.strategy.rollingUpdate.maxUnavailable ??= "25%";
  }
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  spec.minReadySeconds ??= 0;
  if (spec.template && typeof spec.template === "object") defaultPodSpec(spec.template.spec);
}

export function defaultReplicaSet(rs: ReplicaSet): void {
  const spec = rs.spec;
  if (!spec || typeof spec !== "object") return;
  spec.replicas ??= 1;
  spec.minReadySeconds ??= 0;
  if (spec.template && typeof spec.template === "object") defaultPodSpec(spec.template.spec);
}

export function defaultNamespace(ns: Namespace): void {
  ns.spec ??= {};
  ns.spec.finalizers ??= ["kubernetes"];
  // As Kubernetes does on every create and update, so that a namespaceSelector can name one.
  if (ns.metadata.name) ns.metadata.labels = { ...(ns.metadata.labels ?? {}), "kubernetes.io/metadata.name": ns.metadata.name };
}

/** Kubernetes' SetDefaults_Endpoints: a port without a protocol is TCP. */
export function defaultEndpoints(ep: Endpoints): void {
  for (const ss of Array.isArray(ep.subsets) ? ep.subsets : []) {
    for (const p of ss && Array.isArray(ss.ports) ? ss.ports : []) if (p && typeof p === "object") p.protocol ??= "TCP";
  }
}

export function defaultEndpointSlice(s: EndpointSlice): void {
  if (!Array.isArray(s.endpoints)) s.endpoints = s.endpoints ?? [];
  for (const p of s.ports ?? []) {
    if (!p || typeof p !== "object") continue;
    p.protocol ??= "TCP";
    p.name ??= "";
  }
  for (const e of Array.isArray(s.endpoints) ? s.endpoints : []) {
    if (e && typeof e === "object") e.conditions ??= {};
  }
}

/**
 * Kubernetes' SetDefaults_NetworkPolicy: rule ports are TCP unless they say otherwise, and a
 * policy that names no policyTypes is an Ingress policy, and an Egress one too when it has egress
 * rules. An absent podSelector is the empty one (every pod of the namespace).
 */
export function defaultNetworkPolicy(np: NetworkPolicy): void {
  if (np.spec === undefined || np.spec === null) np.spec = { podSelector: {} };
  const spec = np.spec;
  if (typeof spec !== "object" || Array.isArray(spec)) return;
  if (spec.podSelector === undefined || spec.podSelector === null) spec.podSelector = {};
  for (const rules of [spec.ingress, spec.egress]) {
    for (const rule of Array.isArray(rules) ? rules : []) {
      const ports: unknown = rule && typeof rule === "object" ? rule.ports : undefined;
      for (const p of Array.isArray(ports) ? ports : []) if (p && typeof p === "object") p.protocol ??= "TCP";
    }
  }
  const types: unknown = spec.policyTypes;
  if (types === undefined || types === null || (Array.isArray(types) && types.length === 0)) {
    spec.policyTypes = Array.isArray(spec.egress) && spec.egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
  }
}
