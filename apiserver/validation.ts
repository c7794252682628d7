// Validation of the objects podnet serves, with Kubernetes' field paths and wording, so that an
// invalid manifest fails here the way it would fail on a real cluster.
import { isIPv4, isIPv6, isIP } from "node:net";
import { hostMask, inSubnet, parseCidr, type Addr, type Subnet } from "../cni-plugins/pkg/addr.ts";
import { fieldErr, type FieldError } from "./errors.ts";
import { labelKeyProblems, labelValueProblems } from "./selectors.ts";
import type {
  Container,
  Deployment,
  EndpointAddress,
  Endpoints,
  EndpointSlice,
  IPBlock,
  KObject,
  LabelSelector,
  Namespace,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  Node,
  Pod,
  PodSpec,
  Probe,
  ReplicaSet,
  Service,
} from "./types.ts";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const MSG_LABEL =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const MSG_SUBDOMAIN =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const MSG_1035 =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

export type NameCheck = (name: string) => string[];

export const dns1123Label: NameCheck = (v) => {
  const p: string[] = [];
  if (v.length > 63) p.push("must be no more than 63 characters");
  if (!DNS1123_LABEL.test(v)) p.push(MSG_LABEL);
  return p;
};
export const dns1123Subdomain: NameCheck = (v) => {
  const p: string[] = [];
  if (v.length > 253) p.push("must be no more than 253 characters");
  if (!DNS1123_SUBDOMAIN.test(v)) p.push(MSG_SUBDOMAIN);
  return p;
};
export const dns1035Label: NameCheck = (v) => {
  const p: string[] = [];
  if (v.length > 63) p.push("must be no more than 63 characters");
  if (!DNS1035_LABEL.test(v)) p.push(MSG_1035);
  return p;
};

/** IANA service names, which container and target port names must be. */
function ianaSvcNameProblems(v: string): string[] {
  const p: string[] = [];
  if (v.length > 15) p.push("must be no more than 15 characters");
  if (!/^[-a-z0-9]+$/.test(v)) p.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (v.includes("--")) p.push("must not contain consecutive hyphens");
  if (!/[a-z]/.test(v)) p.push("must contain at least one letter (a-z)");
  if (v.startsWith("-") || v.endsWith("-")) p.push("must not begin or end with a hyphen");
  return p;
}

const PORT_RANGE = "must be between 1 and 65535, inclusive";
const PROTOCOLS = ["SCTP", "TCP", "UDP"];
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isObj = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);

/** Collects field errors. */
class Errs {
  list: FieldError[] = [];
  add(e: FieldError): void {
    this.list.push(e);
  }
  name(field: string, v: string, check: NameCheck): void {
    for (const p of check(v)) this.add(fieldErr.invalid(field, v, p));
  }
  port(field: string, v: unknown): void {
    if (!isInt(v) || v < 1 || v > 65535) this.add(fieldErr.invalid(field, v, PORT_RANGE));
  }
  nonNegative(field: string, v: unknown): void {
    if (v !== undefined && (!isInt(v) || v < 0)) this.add(fieldErr.invalid(field, v, "must be greater than or equal to 0"));
  }
  protocol(field: string, v: unknown): void {
    if (v === undefined) this.add(fieldErr.required(field));
    else if (!PROTOCOLS.includes(v as string)) this.add(fieldErr.notSupported(field, v, PROTOCOLS));
  }
  oneOf(field: string, v: unknown, allowed: string[]): void {
    if (v !== undefined && !allowed.includes(v as string)) this.add(fieldErr.notSupported(field, v, allowed));
  }
  labels(field: string, labels: unknown): void {
    if (labels === undefined || labels === null) return;
    if (!isObj(labels)) return this.add(fieldErr.invalid(field, labels, "must be a map of string keys to string values"));
    for (const [k, v] of Object.entries(labels)) {
      for (const p of labelKeyProblems(k)) this.add(fieldErr.invalid(field, k, p));
      if (typeof v !== "string") this.add(fieldErr.invalid(`${field}`, v, "label values must be strings"));
      else for (const p of labelValueProblems(v)) this.add(fieldErr.invalid(field, v, p));
    }
  }
}

export interface MetaRules {
  /** How the kind's names are checked (DNS-1123 subdomain for most kinds). */
  nameCheck: NameCheck;
  namespaced: boolean;
}

export function validateObjectMeta(obj: KObject, rules: MetaRules, errs: FieldError[]): void {
  const e = new Errs();
  const m = obj.metadata;
  if (!isObj(m)) {
    errs.push(fieldErr.required("metadata"));
    return;
  }
  if (!m.name) {
    e.add(fieldErr.required("metadata.name", "name or generateName is required"));
  } else if (typeof m.name !== "string") {
    e.add(fieldErr.invalid("metadata.name", m.name, "must be a string"));
  } else {
    e.name("metadata.name", m.name, rules.nameCheck);
  }
  if (rules.namespaced) {
    if (!m.namespace) e.add(fieldErr.required("metadata.namespace"));
    else e.name("metadata.namespace", m.namespace, dns1123Label);
  } else if (m.namespace) {
    e.add(fieldErr.forbidden("metadata.namespace", "not allowed on this type"));
  }
  e.labels("metadata.labels", m.labels);
  if (m.annotations !== undefined && m.annotations !== null) {
    if (!isObj(m.annotations)) e.add(fieldErr.invalid("metadata.annotations", m.annotations, "must be a map of string keys to string values"));
    else {
      let size = 0;
      for (const [k, v] of Object.entries(m.annotations)) {
        for (const p of labelKeyProblems(k)) e.add(fieldErr.invalid("metadata.annotations", k, p));
        if (typeof v !== "string") e.add(fieldErr.invalid("metadata.annotations", v, "annotation values must be strings"));
        size += k.length + String(v).length;
      }
      if (size > 256 * 1024) e.add(fieldErr.tooLong("metadata.annotations", 256 * 1024));
    }
  }
  (m.ownerReferences ?? []).forEach((r, i) => {
    const f = `metadata.ownerReferences[${i}]`;
    if (!r?.apiVersion) e.add(fieldErr.invalid(`${f}.apiVersion`, r?.apiVersion ?? "", "version must not be empty"));
    if (!r?.kind) e.add(fieldErr.invalid(`${f}.kind`, r?.kind ?? "", "kind must not be empty"));
    if (!r?.name) e.add(fieldErr.invalid(`${f}.name`, r?.name ?? "", "name must not be empty"));
    if (!r?.uid) e.add(fieldErr.invalid(`${f}.uid`, r?.uid ?? "", "uid must not be empty"));
  });
  if ((m.ownerReferences ?? []).filter((r) => r?.controller).length > 1)
    e.add(fieldErr.invalid("metadata.ownerReferences", m.ownerReferences, "Only one reference can have Controller set to true"));
  errs.push(...e.list);
}

// ---- Pods ----

function validateProbe(e: Errs, f: string, p: Probe | undefined, portNames: Set<string>): void {
  if (p === undefined) return;
  if (!isObj(p)) return e.add(fieldErr.invalid(f, p, "must be an object"));
  const handlers = [p.httpGet, p.tcpSocket, p.exec].filter((h) => h !== undefined);
  if (handlers.length === 0) e.add(fieldErr.required(f, "must specify a handler type"));
  if (handlers.length > 1) e.add(fieldErr.forbidden(f, "may not specify more than 1 handler type"));
  const checkPort = (pf: string, port: unknown) => {
    if (port === undefined) return e.add(fieldErr.required(pf));
    if (typeof port === "string") {
      if (!/^\d+$/.test(port) && ianaSvcNameProblems(port).length) e.add(fieldErr.invalid(pf, port, ianaSvcNameProblems(port).join(", ")));
      else if (!/^\d+$/.test(port) && !portNames.has(port)) e.add(fieldErr.invalid(pf, port, "must contain a port name of a port in the container"));
    } else e.port(pf, port);
  };
  if (p.httpGet) checkPort(`${f}.httpGet.port`, p.httpGet.port);
  if (p.tcpSocket) checkPort(`${f}.tcpSocket.port`, p.tcpSocket.port);
  if (p.exec && (!Array.isArray(p.exec.command) || p.exec.command.length === 0)) e.add(fieldErr.required(`${f}.exec.command`));
  e.nonNegative(`${f}.initialDelaySeconds`, p.initialDelaySeconds);
  for (const k of ["timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] as const) {
    const v = p[k];
    if (v !== undefined && (!isInt(v) || v < 1)) e.add(fieldErr.invalid(`${f}.${k}`, v, "must be greater than or equal to 1"));
  }
}

function validateContainers(e: Errs, f: string, list: unknown, names: Set<string>, portNames: Set<string>, required: boolean): void {
  if (list === undefined || (Array.isArray(list) && list.length === 0)) {
    if (required) e.add(fieldErr.required(f));
    return;
  }
  if (!Array.isArray(list)) return e.add(fieldErr.invalid(f, list, "must be a list of containers"));
  list.forEach((c: Container, i: number) => {
    const cf = `${f}[${i}]`;
    if (!isObj(c)) return e.add(fieldErr.invalid(cf, c, "must be an object"));
    if (!c.name) e.add(fieldErr.required(`${cf}.name`));
    else if (typeof c.name !== "string") e.add(fieldErr.invalid(`${cf}.name`, c.name, "must be a string"));
    else {
      e.name(`${cf}.name`, c.name, dns1123Label);
      if (names.has(c.name)) e.add(fieldErr.duplicate(`${cf}.name`, c.name));
      names.add(c.name);
    }
    if (typeof c.image !== "string" || c.image.trim() === "") e.add(fieldErr.required(`${cf}.image`));
    if (c.command !== undefined && !(Array.isArray(c.command) && c.command.every((s) => typeof s === "string")))
      e.add(fieldErr.invalid(`${cf}.command`, c.command, "must be a list of strings"));
    if (c.args !== undefined && !(Array.isArray(c.args) && c.args.every((s) => typeof s === "string")))
      e.add(fieldErr.invalid(`${cf}.args`, c.args, "must be a list of strings"));
    const own = new Set<string>();
    if (c.ports !== undefined && !Array.isArray(c.ports)) e.add(fieldErr.invalid(`${cf}.ports`, c.ports, "must be a list of ports"));
    (Array.isArray(c.ports) ? c.ports : []).forEach((p, j) => {
      const pf = `${cf}.ports[${j}]`;
      if (!isObj(p)) return e.add(fieldErr.invalid(pf, p, "must be an object"));
      if (p.name !== undefined && p.name !== "") {
        const probs = typeof p.name === "string" ? ianaSvcNameProblems(p.name) : ["must be a string"];
        for (const pr of probs) e.add(fieldErr.invalid(`${pf}.name`, p.name, pr));
        if (portNames.has(p.name)) e.add(fieldErr.duplicate(`${pf}.name`, p.name));
        portNames.add(p.name);
        own.add(p.name);
      }
      if (p.containerPort === undefined) e.add(fieldErr.required(`${pf}.containerPort`));
      else e.port(`${pf}.containerPort`, p.containerPort);
      if (p.hostPort !== undefined && p.hostPort !== 0) e.port(`${pf}.hostPort`, p.hostPort);
      e.protocol(`${pf}.protocol`, p.protocol);
      if (p.hostIP !== undefined && p.hostIP !== "" && !isIP(p.hostIP)) e.add(fieldErr.invalid(`${pf}.hostIP`, p.hostIP, "must be a valid IP address"));
    });
    (Array.isArray(c.env) ? c.env : []).forEach((v, j) => {
      const ef = `${cf}.env[${j}]`;
      if (!v?.name) e.add(fieldErr.required(`${ef}.name`));
      else if (typeof v.name !== "string" || !/^[ -<>-~]+$/.test(v.name))
        e.add(fieldErr.invalid(`${ef}.name`, v.name, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
      if (v?.value !== undefined && v.valueFrom !== undefined)
        e.add(fieldErr.invalid(`${ef}.valueFrom`, "", "may not be specified when `value` is not empty"));
    });
    validateProbe(e, `${cf}.readinessProbe`, c.readinessProbe, own);
    validateProbe(e, `${cf}.livenessProbe`, c.livenessProbe, own);
    validateProbe(e, `${cf}.startupProbe`, c.startupProbe, own);
  });
}

export function validatePodSpec(spec: PodSpec, f: string, errs: FieldError[], opts: { restartPolicies?: string[] } = {}): void {
  const e = new Errs();
  if (!isObj(spec)) {
    errs.push(fieldErr.required(f));
    return;
  }
  const names = new Set<string>();
  const portNames = new Set<string>();
  validateContainers(e, `${f}.containers`, spec.containers, names, portNames, true);
  validateContainers(e, `${f}.initContainers`, spec.initContainers, names, new Set(), false);
  const policies = opts.restartPolicies ?? ["Always", "OnFailure", "Never"];
  if (spec.restartPolicy === undefined) e.add(fieldErr.required(`${f}.restartPolicy`));
  else e.oneOf(`${f}.restartPolicy`, spec.restartPolicy, policies);
  e.oneOf(`${f}.dnsPolicy`, spec.dnsPolicy, ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]);
  if (spec.dnsPolicy === "None" && !spec.dnsConfig?.nameservers?.length)
    e.add(fieldErr.required(`${f}.dnsConfig`, "must provide `dnsConfig` when `dnsPolicy` is None"));
  (spec.dnsConfig?.nameservers ?? []).forEach((ns, i) => {
    if (!isIP(ns)) e.add(fieldErr.invalid(`${f}.dnsConfig.nameservers[${i}]`, ns, "must be valid IP address"));
  });
  if ((spec.dnsConfig?.nameservers?.length ?? 0) > 3)
    e.add(fieldErr.invalid(`${f}.dnsConfig.nameservers`, spec.dnsConfig!.nameservers, "must not have more than 3 nameservers"));
  e.nonNegative(`${f}.terminationGracePeriodSeconds`, spec.terminationGracePeriodSeconds);
  e.labels(`${f}.nodeSelector`, spec.nodeSelector);
  if (spec.hostname) e.name(`${f}.hostname`, spec.hostname, dns1123Label);
  if (spec.subdomain) e.name(`${f}.subdomain`, spec.subdomain, dns1123Label);
  if (spec.nodeName) e.name(`${f}.nodeName`, spec.nodeName, dns1123Subdomain);
  errs.push(...e.list);
}

export function validatePod(pod: Pod, old?: Pod): FieldError[] {
  const errs: FieldError[] = [];
  validatePodSpec(pod.spec, "spec", errs);
  if (old && errs.length === 0) {
    // Like Kubernetes, a pod's spec is fixed once created, except for a few fields.
    const strip = (s: PodSpec) => {
      const c = structuredClone(s) as PodSpec & { activeDeadlineSeconds?: number };
      for (const k of [...(c.containers ?? []), ...(c.initContainers ?? [])]) k.image = "";
      delete c.activeDeadlineSeconds;
      delete c.tolerations;
      delete c.terminationGracePeriodSeconds;
      if (!old.spec.nodeName) delete c.nodeName;
      return c;
    };
    if (JSON.stringify(strip(pod.spec)) !== JSON.stringify(strip(old.spec)))
      errs.push(
        fieldErr.forbidden(
          "spec",
          "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ),
      );
  }
  return errs;
}

// ---- Services ----

const SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

export function validateService(svc: Service, old?: Service): FieldError[] {
  const e = new Errs();
  const spec = svc.spec;
  if (!isObj(spec)) return [fieldErr.required("spec")];
  e.oneOf("spec.type", spec.type, SERVICE_TYPES);
  const headless = spec.clusterIP === "None";
  const type = spec.type ?? "ClusterIP";
  if (type === "ExternalName") {
    if (!spec.externalName) e.add(fieldErr.required("spec.externalName"));
    else e.name("spec.externalName", spec.externalName.replace(/\.$/, ""), dns1123Subdomain);
    if (spec.clusterIP && spec.clusterIP !== "") e.add(fieldErr.forbidden("spec.clusterIP", "may not be set for ExternalName services"));
  }
  const ports = spec.ports;
  if (ports !== undefined && !Array.isArray(ports)) e.add(fieldErr.invalid("spec.ports", ports, "must be a list of ports"));
  const plist = Array.isArray(ports) ? ports : [];
  if (plist.length === 0 && !headless && type !== "ExternalName") e.add(fieldErr.required("spec.ports"));
  const seenNames = new Set<string>();
  const seenPorts = new Set<string>();
  plist.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    if (!isObj(p)) return e.add(fieldErr.invalid(f, p, "must be an object"));
    if (plist.length > 1 && !p.name) e.add(fieldErr.required(`${f}.name`));
    if (p.name) {
      if (typeof p.name !== "string") e.add(fieldErr.invalid(`${f}.name`, p.name, "must be a string"));
      else {
        e.name(`${f}.name`, p.name, dns1123Label);
        if (seenNames.has(p.name)) e.add(fieldErr.duplicate(`${f}.name`, p.name));
        seenNames.add(p.name);
      }
    }
    e.port(`${f}.port`, p.port);
    e.protocol(`${f}.protocol`, p.protocol);
    const key = `${p.protocol}/${p.port}`;
    if (seenPorts.has(key)) e.add(fieldErr.duplicate(f, { port: p.port, protocol: p.protocol }));
    seenPorts.add(key);
    if (typeof p.targetPort === "string") {
      for (const pr of ianaSvcNameProblems(p.targetPort)) e.add(fieldErr.invalid(`${f}.targetPort`, p.targetPort, pr));
    } else if (p.targetPort !== undefined && !(p.targetPort === p.port && !(isInt(p.port) && p.port >= 1 && p.port <= 65535))) {
      // (a targetPort defaulted from a bad port is not reported twice)
      e.port(`${f}.targetPort`, p.targetPort);
    }
    if (p.nodePort !== undefined && p.nodePort !== 0) {
      if (type !== "NodePort" && type !== "LoadBalancer")
        e.add(fieldErr.forbidden(`${f}.nodePort`, `may not be used when \`type\` is '${type}'`));
      else if (!isInt(p.nodePort) || p.nodePort < 1 || p.nodePort > 65535) e.add(fieldErr.invalid(`${f}.nodePort`, p.nodePort, PORT_RANGE));
    }
  });
  if (spec.selector !== undefined && spec.selector !== null) e.labels("spec.selector", spec.selector);
  e.oneOf("spec.sessionAffinity", spec.sessionAffinity, ["ClientIP", "None"]);
  if (spec.sessionAffinity === "ClientIP") {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (t !== undefined && (!isInt(t) || t < 1 || t > 86400))
      e.add(fieldErr.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t, "must be greater than 0 and less than 86400"));
  } else if (spec.sessionAffinityConfig?.clientIP) {
    e.add(fieldErr.invalid("spec.sessionAffinityConfig", spec.sessionAffinityConfig, `must not be set when session affinity is ${spec.sessionAffinity ?? "None"}`));
  }
  if (spec.clusterIP && spec.clusterIP !== "None" && !isIP(spec.clusterIP))
    e.add(fieldErr.invalid("spec.clusterIP", spec.clusterIP, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
  if (headless && type !== "ClusterIP" && type !== "ExternalName")
    e.add(fieldErr.invalid("spec.clusterIP", "None", `may not be set to 'None' for ${type} services`));
  if (spec.clusterIPs && spec.clusterIP && spec.clusterIPs[0] !== spec.clusterIP)
    e.add(fieldErr.invalid("spec.clusterIPs", spec.clusterIPs, "first value must match `clusterIP`"));
  (spec.ipFamilies ?? []).forEach((fam, i) => e.oneOf(`spec.ipFamilies[${i}]`, fam, ["IPv4", "IPv6"]));
  if (spec.ipFamilies?.includes("IPv6"))
    e.add(fieldErr.invalid("spec.ipFamilies", spec.ipFamilies, "this cluster is IPv4 only: the service CIDR is IPv4"));
  e.oneOf("spec.ipFamilyPolicy", spec.ipFamilyPolicy, ["PreferDualStack", "RequireDualStack", "SingleStack"]);
  if (spec.ipFamilyPolicy === "RequireDualStack")
    e.add(fieldErr.invalid("spec.ipFamilyPolicy", spec.ipFamilyPolicy, "this cluster is not configured for dual-stack services"));
  (spec.externalIPs ?? []).forEach((ip, i) => {
    if (!isIP(ip)) e.add(fieldErr.invalid(`spec.externalIPs[${i}]`, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
  });
  e.oneOf("spec.internalTrafficPolicy", spec.internalTrafficPolicy, ["Cluster", "Local"]);
  if (spec.externalTrafficPolicy !== undefined) {
    if (type !== "NodePort" && type !== "LoadBalancer")
      e.add(fieldErr.invalid("spec.externalTrafficPolicy", spec.externalTrafficPolicy, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"));
    else e.oneOf("spec.externalTrafficPolicy", spec.externalTrafficPolicy, ["Cluster", "Local"]);
  }
  if (spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0) {
    if (!(type === "LoadBalancer" && spec.externalTrafficPolicy === "Local"))
      e.add(fieldErr.invalid("spec.healthCheckNodePort", spec.healthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
    else if (!isInt(spec.healthCheckNodePort) || spec.healthCheckNodePort < 1 || spec.healthCheckNodePort > 65535)
      e.add(fieldErr.invalid("spec.healthCheckNodePort", spec.healthCheckNodePort, PORT_RANGE));
  }
  if (spec.loadBalancerIP) {
    if (type !== "LoadBalancer") e.add(fieldErr.forbidden("spec.loadBalancerIP", "may only be used when `type` is 'LoadBalancer'"));
    else if (!isIPv4(spec.loadBalancerIP) && !isIPv6(spec.loadBalancerIP)) e.add(fieldErr.invalid("spec.loadBalancerIP", spec.loadBalancerIP, "must be a valid IP address"));
  }
  (spec.loadBalancerSourceRanges ?? []).forEach((r, i) => {
    if (type !== "LoadBalancer") e.add(fieldErr.forbidden(`spec.loadBalancerSourceRanges`, "may only be used when `type` is 'LoadBalancer'"));
    else if (!isCIDR(r.trim())) e.add(fieldErr.invalid(`spec.loadBalancerSourceRanges[${i}]`, r, "must be a valid CIDR (e.g. 10.0.0.0/8)"));
  });
  if (old) {
    const oldIP = old.spec.clusterIP;
    if (oldIP && spec.clusterIP && spec.clusterIP !== oldIP && old.spec.type !== "ExternalName" && type !== "ExternalName")
      e.add(fieldErr.invalid("spec.clusterIP", spec.clusterIP, "field is immutable"));
  }
  return e.list;
}

export function isCIDR(s: string): boolean {
  const m = s.match(/^(.+)\/(\d{1,3})$/);
  if (!m) return false;
  const bits = Number(m[2]);
  return (isIPv4(m[1]) && bits <= 32) || (isIPv6(m[1]) && bits <= 128);
}

// ---- Nodes ----

export function validateNode(node: Node, old?: Node): FieldError[] {
  const e = new Errs();
  const spec = node.spec ?? {};
  if (spec.podCIDR && !isCIDR(spec.podCIDR)) e.add(fieldErr.invalid("spec.podCIDR", spec.podCIDR, "must be a valid CIDR (e.g. 10.244.1.0/24)"));
  (spec.podCIDRs ?? []).forEach((c, i) => {
    if (!isCIDR(c)) e.add(fieldErr.invalid(`spec.podCIDRs[${i}]`, c, "must be a valid CIDR (e.g. 10.244.1.0/24)"));
  });
  if (spec.podCIDR && spec.podCIDRs?.length && spec.podCIDRs[0] !== spec.podCIDR)
    e.add(fieldErr.invalid("spec.podCIDRs", spec.podCIDRs, "first value must match `podCIDR`"));
  (spec.taints ?? []).forEach((t, i) => {
    const f = `spec.taints[${i}]`;
    if (!t?.key) e.add(fieldErr.required(`${f}.key`));
    else for (const p of labelKeyProblems(t.key)) e.add(fieldErr.invalid(`${f}.key`, t.key, p));
    if (!t?.effect) e.add(fieldErr.required(`${f}.effect`));
    else e.oneOf(`${f}.effect`, t.effect, ["NoExecute", "NoSchedule", "PreferNoSchedule"]);
  });
  if (old?.spec?.podCIDR && spec.podCIDR !== old.spec.podCIDR)
    e.add(fieldErr.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'));
  return e.list;
}

// ---- Namespaces ----

export function validateNamespace(_ns: Namespace): FieldError[] {
  return [];
}

// ---- EndpointSlices ----

export function validateEndpointSlice(s: EndpointSlice, old?: EndpointSlice): FieldError[] {
  const e = new Errs();
  if (!s.addressType) e.add(fieldErr.required("addressType"));
  else e.oneOf("addressType", s.addressType, ["FQDN", "IPv4", "IPv6"]);
  if (old && old.addressType !== s.addressType) e.add(fieldErr.invalid("addressType", s.addressType, "field is immutable"));
  if (!Array.isArray(s.endpoints)) e.add(fieldErr.invalid("endpoints", s.endpoints, "must be a list of endpoints"));
  const eps = Array.isArray(s.endpoints) ? s.endpoints : [];
  if (eps.length > 1000) e.add(fieldErr.tooMany("endpoints", eps.length, 1000));
  eps.forEach((ep, i) => {
    const f = `endpoints[${i}]`;
    if (!isObj(ep)) return e.add(fieldErr.invalid(f, ep, "must be an object"));
    const addrs = Array.isArray(ep.addresses) ? ep.addresses : [];
    if (addrs.length === 0) e.add(fieldErr.required(`${f}.addresses`, "must contain at least 1 address"));
    if (addrs.length > 100) e.add(fieldErr.tooMany(`${f}.addresses`, addrs.length, 100));
    addrs.forEach((a, j) => {
      const af = `${f}.addresses[${j}]`;
      if (s.addressType === "IPv4" && !isIPv4(a)) e.add(fieldErr.invalid(af, a, "must be a valid IPv4 address"));
      if (s.addressType === "IPv6" && !isIPv6(a)) e.add(fieldErr.invalid(af, a, "must be a valid IPv6 address"));
      if (s.addressType === "FQDN") e.name(af, a, dns1123Subdomain);
    });
    if (ep.hostname) e.name(`${f}.hostname`, ep.hostname, dns1123Label);
    if (ep.nodeName) e.name(`${f}.nodeName`, ep.nodeName, dns1123Subdomain);
  });
  const ports = Array.isArray(s.ports) ? s.ports : [];
  if (ports.length > 100) e.add(fieldErr.tooMany("ports", ports.length, 100));
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const f = `ports[${i}]`;
    if (!isObj(p)) return e.add(fieldErr.invalid(f, p, "must be an object"));
    if (p.name) {
      e.name(`${f}.name`, p.name, dns1123Label);
    }
    const n = p.name ?? "";
    if (names.has(n)) e.add(fieldErr.duplicate(`${f}.name`, n));
    names.add(n);
    if (p.port !== undefined) e.port(`${f}.port`, p.port);
    e.protocol(`${f}.protocol`, p.protocol);
  });
  return e.list;
}

// ---- Endpoints ----

const IP_FORMAT = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/**
 * Kubernetes refuses endpoint addresses that cannot mean a remote backend: unspecified,
 * loopback, link-local unicast and link-local multicast (net.IP's predicates, IPv4-mapped
 * IPv6 addresses included).
 */
export function specialIPProblems(ip: string): string[] {
  let a = ip.toLowerCase();
  const mapped = a.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) a = mapped[1]!;
  const p: string[] = [];
  if (isIPv4(a)) {
    const [o1, o2, o3] = a.split(".").map(Number) as [number, number, number];
    if (a === "0.0.0.0") p.push(`may not be unspecified (${ip})`);
    if (o1 === 127) p.push("may not be in the loopback range (127.0.0.0/8, ::1/128)");
    if (o1 === 169 && o2 === 254) p.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)");
    if (o1 === 224 && o2 === 0 && o3 === 0) p.push("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
    return p;
  }
  const first = parseInt(expandIPv6(a)[0]!, 16);
  if (/^(0+:){7}0+$/.test(expandIPv6(a).join(":"))) p.push(`may not be unspecified (${ip})`);
  if (/^(0+:){7}0*1$/.test(expandIPv6(a).join(":"))) p.push("may not be in the loopback range (127.0.0.0/8, ::1/128)");
  if ((first & 0xffc0) === 0xfe80) p.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)");
  if ((first & 0xff0f) === 0xff02) p.push("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
  return p;
}

/** The eight groups of an IPv6 address. */
function expandIPv6(a: string): string[] {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":") : [];
  if (tail === undefined) return h;
  const t = tail ? tail.split(":") : [];
  return [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
}

function validateEndpointAddress(e: Errs, f: string, addr: EndpointAddress): void {
  if (!isObj(addr)) return e.add(fieldErr.invalid(f, addr, "must be an object"));
  const ip = typeof addr.ip === "string" ? addr.ip : "";
  if (!isIP(ip)) e.add(fieldErr.invalid(`${f}.ip`, ip, IP_FORMAT));
  if (addr.hostname) e.name(`${f}.hostname`, addr.hostname, dns1123Label);
  if (addr.nodeName !== undefined && addr.nodeName !== null) e.name(`${f}.nodeName`, addr.nodeName, dns1123Subdomain);
  if (isIP(ip)) for (const p of specialIPProblems(ip)) e.add(fieldErr.invalid(`${f}.ip`, ip, p));
}

/**
 * Kubernetes' ValidateEndpoints: each subset has an address (ready or not); addresses are IPs
 * that can be a backend; with several ports each is named (DNS-1123 label); ports are 1-65535
 * with a known protocol. Like Kubernetes, duplicate port names are not checked here.
 */
export function validateEndpoints(ep: Endpoints): FieldError[] {
  const e = new Errs();
  if (ep.subsets === undefined || ep.subsets === null) return e.list;
  if (!Array.isArray(ep.subsets)) return [fieldErr.invalid("subsets", ep.subsets, "must be a list of subsets")];
  ep.subsets.forEach((ss, i) => {
    const f = `subsets[${i}]`;
    if (!isObj(ss)) return e.add(fieldErr.invalid(f, ss, "must be an object"));
    const list = (k: "addresses" | "notReadyAddresses" | "ports"): unknown[] => {
      const v = ss[k];
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) {
        e.add(fieldErr.invalid(`${f}.${k}`, v, "must be a list"));
        return [];
      }
      return v;
    };
    const addresses = list("addresses");
    const notReady = list("notReadyAddresses");
    const ports = list("ports");
    if (addresses.length === 0 && notReady.length === 0) e.add(fieldErr.required(f, "must specify `addresses` or `notReadyAddresses`"));
    addresses.forEach((a, j) => validateEndpointAddress(e, `${f}.addresses[${j}]`, a as EndpointAddress));
    notReady.forEach((a, j) => validateEndpointAddress(e, `${f}.notReadyAddresses[${j}]`, a as EndpointAddress));
    ports.forEach((p, j) => {
      const pf = `${f}.ports[${j}]`;
      if (!isObj(p)) return e.add(fieldErr.invalid(pf, p, "must be an object"));
      const port = p as { name?: string; port?: unknown; protocol?: unknown; appProtocol?: string };
      if (ports.length > 1 && !port.name) e.add(fieldErr.required(`${pf}.name`));
      else if (port.name) e.name(`${pf}.name`, port.name, dns1123Label);
      e.port(`${pf}.port`, port.port);
      e.protocol(`${pf}.protocol`, port.protocol);
      if (port.appProtocol !== undefined) for (const pr of labelKeyProblems(port.appProtocol)) e.add(fieldErr.invalid(`${pf}.appProtocol`, port.appProtocol, pr));
    });
  });
  return e.list;
}

// ---- Label selectors ----

/**
 * A structured label selector, as metav1's ValidateLabelSelector checks it: matchLabels are labels;
 * each expression has a known operator, values exactly when the operator takes them (each a valid
 * label value), and a valid key. An absent selector passes; whether an empty one may be used is
 * the kind's rule (it selects everything).
 */
function checkLabelSelector(e: Errs, f: string, sel: unknown): void {
  if (sel === undefined || sel === null) return;
  if (!isObj(sel)) return e.add(fieldErr.invalid(f, sel, "must be a label selector (matchLabels and/or matchExpressions)"));
  const { matchLabels, matchExpressions } = sel as LabelSelector;
  e.labels(`${f}.matchLabels`, matchLabels);
  if (matchExpressions === undefined || matchExpressions === null) return;
  if (!Array.isArray(matchExpressions)) return e.add(fieldErr.invalid(`${f}.matchExpressions`, matchExpressions, "must be a list of requirements"));
  matchExpressions.forEach((r: unknown, i) => {
    const rf = `${f}.matchExpressions[${i}]`;
    if (!isObj(r)) return e.add(fieldErr.invalid(rf, r, "must be an object"));
    const { key, operator, values } = r as { key?: unknown; operator?: unknown; values?: unknown };
    if (values !== undefined && values !== null && !Array.isArray(values)) e.add(fieldErr.invalid(`${rf}.values`, values, "must be a list of strings"));
    const list: unknown[] = Array.isArray(values) ? values : [];
    if (operator === "In" || operator === "NotIn") {
      if (list.length === 0) e.add(fieldErr.required(`${rf}.values`, "must be specified when `operator` is 'In' or 'NotIn'"));
    } else if (operator === "Exists" || operator === "DoesNotExist") {
      if (list.length > 0) e.add(fieldErr.forbidden(`${rf}.values`, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
    } else {
      e.add(fieldErr.invalid(`${rf}.operator`, operator ?? "", "not a valid selector operator"));
    }
    if (key !== undefined && key !== null && typeof key !== "string") e.add(fieldErr.invalid(`${rf}.key`, key, "must be a string"));
    else for (const p of labelKeyProblems(key ?? "")) e.add(fieldErr.invalid(`${rf}.key`, key ?? "", p));
    list.forEach((v, j) => {
      if (typeof v !== "string") e.add(fieldErr.invalid(`${rf}.values[${j}]`, v, "must be a string"));
      else for (const p of labelValueProblems(v)) e.add(fieldErr.invalid(`${rf}.values[${j}]`, v, p));
    });
  });
}

// ---- Deployments and ReplicaSets ----

function goMap(m: Record<string, string> | undefined): string {
  const inner = Object.entries(m ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(", ");
  return `map[string]string{${inner}}`;
}

/** Apps kinds need a selector, and a non-empty one: an empty selector would adopt every pod. */
function validateLabelSelector(e: Errs, f: string, sel: LabelSelector | undefined, kind: string): boolean {
  if (!sel || !isObj(sel)) {
    e.add(fieldErr.required(f));
    return false;
  }
  const ml = sel.matchLabels ?? {};
  const me = sel.matchExpressions ?? [];
  if (Object.keys(ml).length === 0 && me.length === 0) {
    e.add(fieldErr.invalid(f, sel, `empty selector is invalid for ${kind}`));
    return false;
  }
  const before = e.list.length;
  checkLabelSelector(e, f, sel);
  return e.list.length === before;
}

function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = k(labels, r.key);
    const v = labels[r.key];
    if (r.operator === "In" && !(has && r.values!.includes(v))) return false;
    if (r.operator === "NotIn" && has && r.values!.includes(v)) return false;
    if (r.operator === "Exists" && !has) return false;
    if (r.operator === "DoesNotExist" && has) return false;
  }
  return true;
}
const k = (o: Record<string, string>, key: string) => Object.prototype.hasOwnProperty.call(o, key);

function validateTemplate(e: Errs, errs: FieldError[], spec: { selector: LabelSelector; template: { metadata?: KObject["metadata"]; spec: PodSpec } }, kind: string): void {
  const selOK = validateLabelSelector(e, "spec.selector", spec.selector, kind);
  if (!isObj(spec.template)) {
    e.add(fieldErr.required("spec.template"));
    return;
  }
  const labels = spec.template.metadata?.labels ?? {};
  e.labels("spec.template.metadata.labels", spec.template.metadata?.labels);
  if (selOK && !selectorMatches(spec.selector, labels))
    e.add(fieldErr.invalidRaw("spec.template.metadata.labels", goMap(labels), "`selector` does not match template `labels`"));
  validatePodSpec(spec.template.spec, "spec.template.spec", errs, { restartPolicies: ["Always"] });
}

const PERCENT = /^[0-9]+%$/;

function validateIntOrPercent(e: Errs, f: string, v: unknown): number | undefined {
  if (typeof v === "number") {
    if (!isInt(v) || v < 0) e.add(fieldErr.invalid(f, v, "must be greater than or equal to 0"));
    return v;
  }
  if (typeof v === "string") {
    if (!PERCENT.test(v)) {
      e.add(
        fieldErr.invalid(
          f,
          v,
          "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ),
      );
      return undefined;
    }
    return parseInt(v, 10);
  }
  if (v !== undefined) e.add(fieldErr.invalid(f, v, "must be an integer or percentage (e.g '5%')"));
  return undefined;
}

export function validateDeployment(d: Deployment, old?: Deployment): FieldError[] {
  const e = new Errs();
  const errs: FieldError[] = [];
  const spec = d.spec;
  if (!isObj(spec)) return [fieldErr.required("spec")];
  e.nonNegative("spec.replicas", spec.replicas);
  validateTemplate(e, errs, spec, "deployment");
  const st = spec.strategy ?? {};
  e.oneOf("spec.strategy.type", st.type, ["Recreate", "RollingUpdate"]);
  if (st.type === "Recreate" && st.rollingUpdate)
    e.add(fieldErr.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"));
  if (st.type === "RollingUpdate" && st.rollingUpdate) {
    const surge = validateIntOrPercent(e, "spec.strategy.rollingUpdate.maxSurge", st.rollingUpdate.maxSurge);
    const unav = validateIntOrPercent(e, "spec.strategy.rollingUpdate.maxUnavailable", st.rollingUpdate.maxUnavailable);
    if (typeof st.rollingUpdate.maxUnavailable === "string" && unav !== undefined && unav > 100)
      e.add(fieldErr.invalid("spec.strategy.rollingUpdate.maxUnavailable", st.rollingUpdate.maxUnavailable, "must not be greater than 100%"));
    if (surge === 0 && unav === 0)
      e.add(fieldErr.invalid("spec.strategy.rollingUpdate.maxUnavailable", st.rollingUpdate.maxUnavailable, "may not be 0 when `maxSurge` is 0"));
  }
  e.nonNegative("spec.revisionHistoryLimit", spec.revisionHistoryLimit);
  e.nonNegative("spec.minReadySeconds", spec.minReadySeconds);
  if (spec.progressDeadlineSeconds !== undefined) {
    e.nonNegative("spec.progressDeadlineSeconds", spec.progressDeadlineSeconds);
    if (spec.progressDeadlineSeconds <= (spec.minReadySeconds ?? 0))
      e.add(fieldErr.invalid("spec.progressDeadlineSeconds", spec.progressDeadlineSeconds, "must be greater than minReadySeconds"));
  }
  if (old && JSON.stringify(old.spec.selector) !== JSON.stringify(spec.selector))
    e.add(fieldErr.invalid("spec.selector", spec.selector, "field is immutable"));
  return [...e.list, ...errs];
}

export function validateReplicaSet(rs: ReplicaSet, old?: ReplicaSet): FieldError[] {
  const e = new Errs();
  const errs: FieldError[] = [];
  const spec = rs.spec;
  if (!isObj(spec)) return [fieldErr.required("spec")];
  e.nonNegative("spec.replicas", spec.replicas);
  e.nonNegative("spec.minReadySeconds", spec.minReadySeconds);
  validateTemplate(e, errs, spec, "replicaset");
  if (old && JSON.stringify(old.spec.selector) !== JSON.stringify(spec.selector))
    e.add(fieldErr.invalid("spec.selector", spec.selector, "field is immutable"));
  return [...e.list, ...errs];
}

// ---- NetworkPolicies ----

const NETPOL_PROTOCOLS = ["TCP", "UDP", "SCTP"];
const POLICY_TYPES = ["Ingress", "Egress"];
const CIDR_FORMAT = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/**
 * An ipBlock CIDR as its subnet (host bits cleared), or what is wrong with it. Either family;
 * host bits may be set ("10.0.0.1/8"), as Kubernetes allows there. Leading zeros and IPv4-mapped
 * IPv6 addresses, which Kubernetes' legacy parser reads one way and other software another, are
 * refused with the words of Kubernetes' strict validation.
 */
function ipBlockSubnet(v: unknown): Subnet | string {
  const c = parseCidr(v);
  if (!c) {
    const unpadded = typeof v === "string" ? v.replace(/(^|[./])0+(?=\d)/g, "$1") : v;
    return unpadded !== v && parseCidr(unpadded) ? "must not have leading 0s in IP or prefix length" : CIDR_FORMAT;
  }
  if (c.mapped) return "must not have an IPv4-mapped IPv6 address";
  const net: Addr = { v6: c.addr.v6, n: c.addr.n & ~hostMask({ net: c.addr, prefix: c.prefix }) };
  return { net, prefix: c.prefix };
}

function validateIPBlock(e: Errs, f: string, block: unknown): void {
  if (!isObj(block)) return e.add(fieldErr.invalid(f, block, "must be an object"));
  const { cidr, except } = block as IPBlock;
  if (cidr === undefined || cidr === null || cidr === "") return e.add(fieldErr.required(`${f}.cidr`));
  const outer = ipBlockSubnet(cidr);
  if (typeof outer === "string") return e.add(fieldErr.invalid(`${f}.cidr`, cidr, outer));
  if (except === undefined || except === null) return;
  if (!Array.isArray(except)) return e.add(fieldErr.invalid(`${f}.except`, except, "must be a list of CIDRs"));
  except.forEach((x: unknown, j) => {
    const xf = `${f}.except[${j}]`;
    const inner = ipBlockSubnet(x);
    if (typeof inner === "string") return e.add(fieldErr.invalid(xf, x, inner));
    if (inner.net.v6 !== outer.net.v6 || inner.prefix <= outer.prefix || !inSubnet(inner.net, outer))
      e.add(fieldErr.invalid(xf, x, "must be a strict subset of `cidr`"));
  });
}

/** A peer is pods (podSelector and/or namespaceSelector) or addresses (ipBlock), never both. */
function validateNetworkPolicyPeer(e: Errs, f: string, peer: unknown): void {
  if (!isObj(peer)) return e.add(fieldErr.invalid(f, peer, "must be an object"));
  const { podSelector, namespaceSelector, ipBlock } = peer as NetworkPolicyPeer;
  const set = (v: unknown) => v !== undefined && v !== null;
  let kinds = 0;
  if (set(podSelector)) {
    kinds++;
    checkLabelSelector(e, `${f}.podSelector`, podSelector);
  }
  if (set(namespaceSelector)) {
    kinds++;
    checkLabelSelector(e, `${f}.namespaceSelector`, namespaceSelector);
  }
  if (set(ipBlock)) {
    kinds++;
    validateIPBlock(e, `${f}.ipBlock`, ipBlock);
  }
  if (kinds === 0) e.add(fieldErr.required(f, "must specify a peer"));
  else if (kinds > 1 && set(ipBlock)) e.add(fieldErr.forbidden(f, "may not specify both ipBlock and another peer"));
}

/** A port number (optionally a range up to endPort) or a container port's name; protocol TCP, UDP or SCTP. */
function validateNetworkPolicyPort(e: Errs, f: string, p: unknown): void {
  if (!isObj(p)) return e.add(fieldErr.invalid(f, p, "must be an object"));
  const { protocol, port, endPort } = p as NetworkPolicyPort;
  if (protocol !== undefined && protocol !== null && !NETPOL_PROTOCOLS.includes(protocol)) e.add(fieldErr.notSupported(`${f}.protocol`, protocol, NETPOL_PROTOCOLS));
  const hasEnd = endPort !== undefined && endPort !== null;
  if (port === undefined || port === null) {
    if (hasEnd) e.add(fieldErr.invalid(`${f}.endPort`, endPort, "may not be specified when `port` is not specified"));
  } else if (typeof port === "string") {
    if (hasEnd) e.add(fieldErr.invalid(`${f}.endPort`, endPort, "may not be specified when `port` is non-numeric"));
    for (const pr of ianaSvcNameProblems(port)) e.add(fieldErr.invalid(`${f}.port`, port, pr));
  } else {
    e.port(`${f}.port`, port);
    if (hasEnd) {
      if (typeof endPort === "number" && endPort < port) e.add(fieldErr.invalid(`${f}.endPort`, endPort, "must be greater than or equal to `port`"));
      e.port(`${f}.endPort`, endPort);
    }
  }
}

/** Each item of an optional list, or one error when the value is not a list. */
function eachOf(e: Errs, f: string, list: unknown, what: string, check: (itemField: string, item: unknown) => void): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) return e.add(fieldErr.invalid(f, list, `must be a list of ${what}`));
  list.forEach((item: unknown, i) => check(`${f}[${i}]`, item));
}

function validateNetworkPolicyRules(e: Errs, f: string, rules: unknown, peers: "from" | "to"): void {
  eachOf(e, f, rules, "rules", (rf, rule) => {
    if (!isObj(rule)) return e.add(fieldErr.invalid(rf, rule, "must be an object"));
    const r = rule as Record<string, unknown>;
    eachOf(e, `${rf}.ports`, r.ports, "ports", (pf, p) => validateNetworkPolicyPort(e, pf, p));
    eachOf(e, `${rf}.${peers}`, r[peers], "peers", (pf, p) => validateNetworkPolicyPeer(e, pf, p));
  });
}

/** Kubernetes' ValidateNetworkPolicySpec; the spec may change freely on update. */
export function validateNetworkPolicy(np: NetworkPolicy, _old?: NetworkPolicy): FieldError[] {
  const e = new Errs();
  const spec = np.spec;
  if (!isObj(spec)) return [fieldErr.invalid("spec", spec, "must be an object")];
  checkLabelSelector(e, "spec.podSelector", spec.podSelector);
  validateNetworkPolicyRules(e, "spec.ingress", spec.ingress, "from");
  validateNetworkPolicyRules(e, "spec.egress", spec.egress, "to");
  const types: unknown = spec.policyTypes;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types)) e.add(fieldErr.invalid("spec.policyTypes", types, "must be a list of policy types"));
    else if (types.length > POLICY_TYPES.length) {
      // Kubernetes prints the list as Go does: []networking.PolicyType{"Ingress", "Egress", "Ingress"}.
      const printed = `[]networking.PolicyType{${types.map((t) => JSON.stringify(t)).join(", ")}}`;
      e.add(fieldErr.invalidRaw("spec.policyTypes", printed, "may not specify more than two policyTypes"));
    } else {
      types.forEach((t: unknown, i) => {
        if (!POLICY_TYPES.includes(t as string)) e.add(fieldErr.notSupported(`spec.policyTypes[${i}]`, t, POLICY_TYPES));
      });
    }
  }
  return e.list;
}
