// From Kubernetes objects to what the proxier programs: one ServicePortPlan per (Service, port,
// IP family), with its endpoints already chosen the way kube-proxy chooses them (ready ones,
// else serving-and-terminating ones, separately for the cluster-wide and the node-local sets).
// Everything that ends up in an nft script is validated here, so a bad object can skip itself
// but never inject text into a transaction.
import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import type { EndpointSlice, Service, ServicePort } from "../apiserver/types.ts";

export type Family = "ip" | "ip6";
export type Protocol = "tcp" | "udp" | "sctp";

export interface Endpoint {
  ip: string;
  port: number;
  nodeName?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface ServicePortPlan {
  /** "ns/name/proto/port-name-or-number": names the chains, sets and metrics of this port. */
  id: string;
  /** Short stable hash of id, so names stay unique and bounded. */
  hash: string;
  namespace: string;
  name: string;
  portName: string;
  family: Family;
  protocol: Protocol;
  port: number;
  clusterIP?: string;
  /** externalIPs and load-balancer ingress IPs of this family. */
  externalAddrs: string[];
  /** The load-balancer ingress IPs (the addresses loadBalancerSourceRanges applies to). */
  loadBalancerIPs: string[];
  nodePort?: number;
  sourceRanges: string[];
  /** Seconds, when sessionAffinity is ClientIP. */
  affinityTimeout?: number;
  externalLocal: boolean;
  internalLocal: boolean;
  healthCheckNodePort?: number;
  /** Usable endpoints cluster-wide (ready, else serving+terminating). */
  clusterEndpoints: Endpoint[];
  /** Usable endpoints on this node (same fallback, applied to the local ones alone). */
  localEndpoints: Endpoint[];
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function familyOf(ip: string): Family | undefined {
  if (isIPv4(ip)) return "ip";
  if (isIPv6(ip)) return "ip6";
  return undefined;
}

/** Canonical text of an address (IPv6 compressed, lower case), or undefined when not an IP. */
export function canonicalIP(ip: string): string | undefined {
  // Node's isIPv4 accepts only the canonical dotted-quad form (no leading zeros).
  if (isIPv4(ip)) return ip;
  if (isIPv6(ip)) {
    try {
      return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Canonical CIDR text, or undefined when malformed. */
export function canonicalCIDR(cidr: string): { cidr: string; family: Family } | undefined {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m) return undefined;
  const ip = canonicalIP(m[1]!);
  const fam = ip ? familyOf(ip) : undefined;
  const bits = Number(m[2]);
  if (!ip || !fam || bits > (fam === "ip" ? 32 : 128)) return undefined;
  return { cidr: `${ip}/${bits}`, family: fam };
}

function validPort(p: unknown): p is number {
  return typeof p === "number" && Number.isInteger(p) && p >= 1 && p <= 65535;
}

export function shortHash(s: string): string {
  // Base32 without padding (like kube-proxy's chain hashes): only upper-case letters and digits.
  const d = createHash("sha256").update(s).digest();
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let out = "";
  for (let i = 0; i < 8; i++) out += alphabet[d[i]! & 31];
  return out;
}

function protocolOf(p: ServicePort["protocol"] | undefined): Protocol | undefined {
  const v = (p ?? "TCP").toLowerCase();
  return v === "tcp" || v === "udp" || v === "sctp" ? v : undefined;
}

/** Whether kube-proxy programs anything for this Service (headless and ExternalName get nothing). */
export function serviceIsProxied(svc: Service): boolean {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return false;
  const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  if (ips.length === 0 || ips.some((ip) => ip === "None")) return false;
  return true;
}

/** Endpoints of one service port, merged from all of the Service's slices of one family. */
function endpointsFor(slices: Iterable<EndpointSlice>, family: Family, portName: string, protocol: Protocol): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  const addrType = family === "ip" ? "IPv4" : "IPv6";
  for (const slice of slices) {
    if (slice.addressType !== addrType) continue;
    const sp = (slice.ports ?? []).find((p) => (p.name ?? "") === portName && protocolOf(p.protocol) === protocol);
    if (!sp || !validPort(sp.port)) continue;
    for (const ep of slice.endpoints ?? []) {
      const raw = ep.addresses?.[0];
      const ip = raw ? canonicalIP(raw) : undefined;
      if (!ip || familyOf(ip) !== family) continue;
      const ready = ep.conditions?.ready ?? true;
      const serving = ep.conditions?.serving ?? ready;
      const terminating = ep.conditions?.terminating ?? false;
      const key = `${ip}/${sp.port}`;
      const prev = byKey.get(key);
      // The same endpoint in two slices (during a slice move): keep the more usable copy.
      if (prev && (prev.ready || !ready)) continue;
      byKey.set(key, { ip, port: sp.port, nodeName: ep.nodeName, ready, serving, terminating });
    }
  }
  // A stable order keeps transactions small when nothing else changed.
  return [...byKey.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

/** Ready endpoints; when there are none, the serving terminating ones (KEP-1669). */
export function usable(eps: Endpoint[]): Endpoint[] {
  const ready = eps.filter((e) => e.ready);
  if (ready.length > 0) return ready;
  return eps.filter((e) => e.serving && e.terminating);
}

export interface PlanOptions {
  nodeName: string;
  families: Family[];
  /** Called with a human-readable reason when part of an object is skipped. */
  warn?: (msg: string) => void;
}

/** The plans of one Service; [] for headless, ExternalName or invalid Services. */
export function planService(svc: Service, slices: Iterable<EndpointSlice>, opts: PlanOptions): ServicePortPlan[] {
  if (!serviceIsProxied(svc)) return [];
  const spec = svc.spec;
  const namespace = svc.metadata.namespace ?? "default";
  const name = svc.metadata.name ?? "";
  const warn = (m: string) => opts.warn?.(`service ${namespace}/${name}: ${m}`);
  if (!DNS_LABEL.test(namespace) || !DNS_LABEL.test(name)) {
    warn("namespace or name is not a DNS label; skipped");
    return [];
  }
  const clusterIPs = (spec.clusterIPs?.length ? spec.clusterIPs : [spec.clusterIP!]).map((ip) => canonicalIP(ip));
  if (clusterIPs.some((ip) => !ip)) {
    warn("clusterIP is not an IP address; skipped");
    return [];
  }
  const externals: string[] = [];
  for (const raw of spec.externalIPs ?? []) {
    const ip = canonicalIP(raw);
    if (ip) externals.push(ip);
    else warn(`externalIP ${JSON.stringify(raw)} is not an IP address; ignored`);
  }
  const lbIPs: string[] = [];
  if (spec.type === "LoadBalancer") {
    for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
      if (!ing.ip || ing.ipMode === "Proxy") continue;
      const ip = canonicalIP(ing.ip);
      if (ip) lbIPs.push(ip);
      else warn(`load balancer ingress ${JSON.stringify(ing.ip)} is not an IP address; ignored`);
    }
  }
  const ranges: { cidr: string; family: Family }[] = [];
  for (const raw of spec.loadBalancerSourceRanges ?? []) {
    const c = canonicalCIDR(raw);
    if (c) ranges.push(c);
    else warn(`loadBalancerSourceRanges entry ${JSON.stringify(raw)} is not a CIDR; ignored`);
  }
  const affinity = spec.sessionAffinity === "ClientIP";
  let affinityTimeout: number | undefined;
  if (affinity) {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800;
    affinityTimeout = Number.isInteger(t) && t >= 1 && t <= 86400 ? t : 10800;
  }
  const externalPolicyApplies = spec.type === "NodePort" || spec.type === "LoadBalancer" || externals.length > 0;
  const externalLocal = externalPolicyApplies && spec.externalTrafficPolicy === "Local";
  const internalLocal = spec.internalTrafficPolicy === "Local";
  const hc = externalLocal && validPort(spec.healthCheckNodePort) ? spec.healthCheckNodePort : undefined;
  const sliceList = [...slices];

  const plans: ServicePortPlan[] = [];
  const seen = new Set<string>();
  for (const family of opts.families) {
    const clusterIP = clusterIPs.find((ip) => familyOf(ip!) === family);
    if (!clusterIP) continue;
    for (const sp of spec.ports ?? []) {
      const protocol = protocolOf(sp.protocol);
      const portName = sp.name ?? "";
      if (!protocol || !validPort(sp.port) || (portName !== "" && !PORT_NAME.test(portName))) {
        warn(`port ${JSON.stringify(sp.name ?? sp.port)} is invalid; skipped`);
        continue;
      }
      const id = `${namespace}/${name}/${protocol}/${portName || sp.port}`;
      if (seen.has(`${family}/${id}`)) continue;
      seen.add(`${family}/${id}`);
      const all = endpointsFor(sliceList, family, portName, protocol);
      const clusterEndpoints = usable(all);
      const localEndpoints = usable(all.filter((e) => e.nodeName === opts.nodeName));
      plans.push({
        id,
        hash: shortHash(`${family}/${id}`),
        namespace,
        name,
        portName,
        family,
        protocol,
        port: sp.port,
        clusterIP,
        // Deduplicated, and never the ClusterIP itself: each address gets one key per port.
        externalAddrs: [...new Set([...externals, ...lbIPs].filter((ip) => ip !== clusterIP && familyOf(ip) === family))],
        loadBalancerIPs: lbIPs.filter((ip) => familyOf(ip) === family),
        nodePort: (spec.type === "NodePort" || spec.type === "LoadBalancer") && validPort(sp.nodePort) ? sp.nodePort : undefined,
        sourceRanges: ranges.filter((r) => r.family === family).map((r) => r.cidr),
        affinityTimeout,
        externalLocal,
        internalLocal,
        healthCheckNodePort: hc,
        clusterEndpoints,
        localEndpoints,
      });
    }
  }
  return plans;
}
