// Turns one ServicePortPlan into its "contribution" to the kube-proxy table: the map elements it
// owns, the per-service chains and sets it needs (only Services with session affinity,
// externalTrafficPolicy Local or source ranges have any), and the shared load-balancing chains it
// jumps to. See README.md for the layout these names refer to.
import type { Endpoint, Family, ServicePortPlan } from "./model.ts";

export const MASQ_MARK = "0x00004000";

export interface Elem {
  set: string;
  key: string;
  /** Map data ("goto X", "10.0.0.1 . 8080"), or "" for a plain set. */
  value: string;
}

export interface Contribution {
  owner: string;
  /** Per-service chains: name -> rule lines. */
  chains: Map<string, string[]>;
  /** Per-service sets (session affinity): name -> declaration body. */
  sets: Map<string, string>;
  elements: Elem[];
  /** Shared chains (lb-N ...) this plan jumps to. */
  shared: Set<string>;
  /** Endpoint order per endpoint list ("map|address key" -> "ip/port"), so slots stay stable. */
  order: Map<string, string[]>;
  /** For UDP conntrack cleanup: the destinations and the usable endpoint IPs. */
  udp?: { addrs: string[]; nodePort?: number; endpointIPs: string[] };
  health?: { port: number; namespace: string; name: string; localEndpoints: number };
  /** The plan it was rendered from (for summaries, computed only when asked). */
  plan: ServicePortPlan;
}

// Most contributions have no chain and no set of their own: they share these empty maps
// instead of allocating two per Service port (a full sync renders tens of thousands).
const NO_CHAINS: Map<string, string[]> = new Map();
const NO_SETS: Map<string, string> = new Map();

export interface RenderConfig {
  nodeName: string;
  /** The cluster's pod CIDR of this family; traffic from outside it to ClusterIPs is masqueraded. */
  clusterCIDR?: string;
}

export interface FamilyWords {
  /** nft family and payload keyword ("ip" / "ip6"). */
  f: Family;
  addrType: "ipv4_addr" | "ipv6_addr";
  loopback: string;
  endpoint(ip: string, port: number): string;
}

export const FAMILY: Record<Family, FamilyWords> = {
  ip: { f: "ip", addrType: "ipv4_addr", loopback: "127.0.0.0/8", endpoint: (ip, port) => `${ip}:${port}` },
  ip6: { f: "ip6", addrType: "ipv6_addr", loopback: "::1", endpoint: (ip, port) => `[${ip}]:${port}` },
};

/** nft identifiers allow letters, digits, "/", "_", ".", "-": make an address fit. */
function safe(ip: string): string {
  return ip.replace(/:/g, "_");
}

const epId = (e: Endpoint) => `${e.ip}/${e.port}`;

/**
 * Places endpoints in slots 0..n-1 keeping every survivor in its previous slot where it fits, so
 * that one endpoint changing touches one map element rather than renumbering the list.
 */
export function stableSlots(prev: string[] | undefined, eps: Endpoint[]): Endpoint[] {
  if (!prev || prev.length === 0) return eps;
  const want = new Map(eps.map((e) => [epId(e), e]));
  const n = eps.length;
  const slots: (Endpoint | undefined)[] = new Array(n).fill(undefined);
  const placed = new Set<string>();
  for (let i = 0; i < Math.min(prev.length, n); i++) {
    const e = want.get(prev[i]!);
    if (e) {
      slots[i] = e;
      placed.add(prev[i]!);
    }
  }
  const rest = eps.filter((e) => !placed.has(epId(e)));
  let j = 0;
  for (let i = 0; i < n; i++) if (!slots[i]) slots[i] = rest[j++];
  return slots as Endpoint[];
}

/**
 * Rules of a shared chain, derived from its name alone: lb-tcp-3, lb-masq-udp-2,
 * nodeport-lb-internal-sctp-1... Endpoint maps are per protocol because the map's key names the
 * transport header ("tcp dport"), which makes nft add the matching protocol check to the rule.
 */
export function sharedChainRules(fam: FamilyWords, name: string): string[] {
  const m = /^(nodeport-)?lb-(masq-|internal-)?(tcp|udp|sctp)-(\d+)$/.exec(name);
  if (!m) throw new Error(`not a shared chain: ${name}`);
  const nodeport = !!m[1];
  const kind = m[2];
  const proto = m[3]!;
  const n = Number(m[4]);
  const map = endpointMap(nodeport, kind === "internal-", proto);
  const key = nodeport ? `${proto} dport` : `${fam.f} daddr . ${proto} dport`;
  const dnat = `dnat ${fam.f} to ${key} . numgen random mod ${n} map @${map}`;
  if (kind === "masq-") return [`meta mark set meta mark | ${MASQ_MARK}`, dnat];
  return [dnat];
}

/** endpoints-tcp, endpoints-internal-udp, nodeport-endpoints-sctp, ... */
export function endpointMap(nodeport: boolean, internal: boolean, proto: string): string {
  return `${nodeport ? "nodeport-endpoints" : "endpoints"}${internal ? "-internal" : ""}-${proto}`;
}

class Builder {
  readonly c: Contribution;
  constructor(
    plan: ServicePortPlan,
    private readonly prev: Contribution | undefined,
  ) {
    this.c = { owner: plan.id, chains: NO_CHAINS, sets: NO_SETS, elements: [], shared: new Set(), order: new Map(), plan };
  }
  /** Keys are unique within a contribution by construction (the model dedupes addresses). */
  el(set: string, key: string, value = ""): void {
    this.c.elements.push({ set, key, value });
  }
  chain(name: string, rules: string[]): void {
    if (this.c.chains === NO_CHAINS) this.c.chains = new Map();
    this.c.chains.set(name, rules);
  }
  set(name: string, decl: string): void {
    if (this.c.sets === NO_SETS) this.c.sets = new Map();
    this.c.sets.set(name, decl);
  }
  shared(name: string): string {
    this.c.shared.add(name);
    return name;
  }
  /** Endpoint slots of one destination key in one endpoint map. */
  endpoints(map: string, key: string, eps: Endpoint[]): void {
    const id = `${map}|${key}`;
    const slots = stableSlots(this.prev?.order.get(id), eps);
    this.c.order.set(id, slots.map(epId));
    slots.forEach((e, i) => this.el(map, `${key} . ${i}`, `${e.ip} . ${e.port}`));
  }
}

/** The contribution of one service port. `prev` is its previous contribution (for stable slots). */
export function render(plan: ServicePortPlan, prev: Contribution | undefined, cfg: RenderConfig): Contribution {
  const fam = FAMILY[plan.family];
  const F = fam.f;
  const b = new Builder(plan, prev);
  const P = plan.protocol;
  const suffix = `${plan.hash}-${plan.namespace}/${plan.name}/${P}/${plan.portName || plan.port}`;
  const serviceChain = `service-${suffix}`;
  const externalChain = `external-${suffix}`;
  const nodePortChain = `nodeport-${suffix}`;
  const firewallChain = `firewall-${suffix}`;
  const affinity = plan.affinityTimeout !== undefined;
  const clusterEps = plan.clusterEndpoints;
  const hasEndpoints = clusterEps.length > 0;
  const internalEps = plan.internalLocal ? plan.localEndpoints : clusterEps;
  const externalEps = plan.externalLocal ? plan.localEndpoints : clusterEps;

  // Session affinity: per-endpoint chains and sets; the client's set is checked before numgen.
  const affinityBlock = (eps: Endpoint[]): string[] => {
    const rules: string[] = [];
    for (const e of eps) rules.push(`${F} saddr @${affinitySet(e)} goto ${endpointChain(e)}`);
    eps.forEach((e, i) => rules.push(i < eps.length - 1 ? `numgen random mod ${eps.length - i} 0 goto ${endpointChain(e)}` : `goto ${endpointChain(e)}`));
    return rules;
  };
  const endpointChain = (e: Endpoint) => {
    const name = `endpoint-${plan.hash}-${safe(e.ip)}/${e.port}`;
    if (!b.c.chains.has(name)) b.chain(name, [`update @${affinitySet(e)} { ${F} saddr } meta l4proto ${P} dnat ${F} to ${fam.endpoint(e.ip, e.port)}`]);
    return name;
  };
  const affinitySet = (e: Endpoint) => {
    // The timeout is part of the name: changing it makes a new set instead of redefining one in use.
    const name = `affinity-${plan.hash}-${safe(e.ip)}/${e.port}-${plan.affinityTimeout}s`;
    if (!b.c.sets.has(name)) b.set(name, `type ${fam.addrType}; flags dynamic,timeout; timeout ${plan.affinityTimeout}s;`);
    return name;
  };

  // ---- ClusterIP
  if (plan.clusterIP) {
    const key = `${plan.clusterIP} . ${P} . ${plan.port}`;
    b.el("cluster-ips", plan.clusterIP);
    if (!hasEndpoints) b.el("no-endpoint-services", key, "goto reject-chain");
    else if (internalEps.length === 0) b.el("no-endpoint-services", key, "drop");
    else if (affinity) {
      b.chain(serviceChain, affinityBlock(internalEps));
      b.el("service-ips", key, `goto ${serviceChain}`);
    } else {
      b.el("service-ips", key, `goto ${b.shared(`lb-${P}-${internalEps.length}`)}`);
      b.endpoints(endpointMap(false, false, P), `${plan.clusterIP} . ${plan.port}`, internalEps);
    }
  }

  // ---- external traffic: the same decisions for external addresses and for NodePorts, with
  // different map keys ("addr . proto . port" or "proto . nodePort").
  // `slotKey` is the endpoint maps' key without the slot: "addr . port" or "nodePort".
  const externalChainRules = (nodeport: boolean, slotKey: string): string[] => {
    const pre = nodeport ? "nodeport-" : "";
    const rules: string[] = [];
    if (!plan.externalLocal) {
      // Only reached with session affinity (otherwise the shared lb-masq-N chain is used).
      rules.push(`meta mark set meta mark | ${MASQ_MARK}`, ...affinityBlock(externalEps));
      return rules;
    }
    // externalTrafficPolicy Local. Pods and the node itself get the internal endpoints, as if they
    // had used the ClusterIP (node traffic is masqueraded so replies come back here).
    let shortCircuit = "drop";
    if (internalEps.length > 0) {
      if (affinity) shortCircuit = `goto ${serviceChain}`;
      else {
        shortCircuit = `goto ${b.shared(`${pre}lb-internal-${P}-${internalEps.length}`)}`;
        b.endpoints(endpointMap(nodeport, true, P), slotKey, internalEps);
      }
    }
    if (cfg.clusterCIDR) rules.push(`${F} saddr ${cfg.clusterCIDR} ${shortCircuit}`);
    rules.push(`fib saddr type local meta mark set meta mark | ${MASQ_MARK} ${shortCircuit}`);
    if (externalEps.length === 0) rules.push("drop");
    else if (affinity) rules.push(...affinityBlock(externalEps));
    else {
      rules.push(`goto ${b.shared(`${pre}lb-${P}-${externalEps.length}`)}`);
      b.endpoints(endpointMap(nodeport, false, P), slotKey, externalEps);
    }
    return rules;
  };

  for (const addr of plan.externalAddrs) {
    const key = `${addr} . ${P} . ${plan.port}`;
    if (plan.sourceRanges.length > 0 && plan.loadBalancerIPs.includes(addr)) {
      // loadBalancerSourceRanges: checked in filter-prerouting, before any NAT.
      b.chain(firewallChain, [...plan.sourceRanges.map((r) => `${F} saddr ${r} return`), "drop"]);
      b.el("firewall-ips", key, `goto ${firewallChain}`);
    }
    if (!hasEndpoints) {
      b.el("no-endpoint-services", key, "goto reject-chain");
    } else if (!plan.externalLocal && !affinity) {
      b.el("service-ips", key, `goto ${b.shared(`lb-masq-${P}-${externalEps.length}`)}`);
      b.endpoints(endpointMap(false, false, P), `${addr} . ${plan.port}`, externalEps);
    } else {
      // One chain serves every external address: its rules do not depend on the address, and
      // the endpoint maps it jumps through are keyed by the packet's own destination.
      const rules = externalChainRules(false, `${addr} . ${plan.port}`);
      b.chain(externalChain, rules);
      b.el("service-ips", key, `goto ${externalChain}`);
    }
  }

  if (plan.nodePort) {
    const key = `${P} . ${plan.nodePort}`;
    if (!hasEndpoints) b.el("no-endpoint-nodeports", key, "goto reject-chain");
    else if (!plan.externalLocal && !affinity) {
      b.el("service-nodeports", key, `goto ${b.shared(`nodeport-lb-masq-${P}-${externalEps.length}`)}`);
      b.endpoints(endpointMap(true, false, P), String(plan.nodePort), externalEps);
    } else {
      b.chain(nodePortChain, externalChainRules(true, String(plan.nodePort)));
      b.el("service-nodeports", key, `goto ${nodePortChain}`);
    }
  }

  // Hairpin: a pod reaching itself through the Service is masqueraded (postrouting matches
  // saddr . daddr against these pairs). Only endpoints on this node can be their own client here.
  const hairpin = new Set<string>();
  for (const e of clusterEps) if (e.nodeName === undefined || e.nodeName === cfg.nodeName) hairpin.add(e.ip);
  for (const e of plan.localEndpoints) hairpin.add(e.ip);
  for (const ip of hairpin) b.el("hairpin", `${ip} . ${ip}`);

  if (P === "udp") {
    b.c.udp = {
      addrs: [...(plan.clusterIP ? [plan.clusterIP] : []), ...plan.externalAddrs],
      nodePort: plan.nodePort,
      endpointIPs: [...new Set([...clusterEps, ...plan.localEndpoints].map((e) => e.ip))],
    };
  }
  if (plan.healthCheckNodePort) {
    b.c.health = { port: plan.healthCheckNodePort, namespace: plan.namespace, name: plan.name, localEndpoints: plan.localEndpoints.length };
  }
  return b.c;
}

/** One line for `/services`: "ns/name/proto/port dests proto/port -> endpoints [flags]". */
export function summarize(c: Contribution, nodeName: string): string {
  const plan = c.plan;
  const fam = FAMILY[plan.family];
  const dests = [plan.clusterIP, ...plan.externalAddrs].filter(Boolean).join(",") + (plan.nodePort ? ` nodePort ${plan.nodePort}` : "");
  const eps = plan.clusterEndpoints.map((e) => `${fam.endpoint(e.ip, e.port)}${e.nodeName === nodeName ? "(local)" : ""}${e.ready ? "" : "(terminating)"}`).join(" ");
  const flags = [plan.affinityTimeout !== undefined ? `affinity ${plan.affinityTimeout}s` : "", plan.externalLocal ? "eTP=Local" : "", plan.internalLocal ? "iTP=Local" : ""].filter(Boolean).join(" ");
  return `${plan.id} ${dests} ${plan.protocol}/${plan.port} -> ${eps || "(no endpoints: reject)"}${flags ? ` [${flags}]` : ""}`;
}
