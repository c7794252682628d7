// From Kubernetes objects to what one node enforces: for every pod on this node that a
// NetworkPolicy selects, the connections it may accept (ingress) and open (egress), as lists of
// peers (addresses or address blocks) and ports. Named ports are resolved here, on the pod that
// owns them. Everything that ends up in an nft script is validated or canonicalised here, so a
// bad object can match nothing but never inject text into a transaction.
import type { Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from "../apiserver/types.ts";
import { labelSelectorRequirements, matchLabels } from "../apiserver/selectors.ts";
import { formatPrefix, subnetOf } from "../cni-plugins/bridge/cidr.ts";
import { canonicalCIDR, canonicalIP, familyOf, type Family, type Protocol } from "../kube-proxy/model.ts";

export type { Family, Protocol };

/** Every namespace carries this label with its own name (Kubernetes sets it; assumed here too). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** One protocol, and all its ports (no `first`) or the range first..last. */
export interface PortMatch {
  protocol: Protocol;
  first?: number;
  last?: number;
}

export type PeerMatch =
  | { kind: "any" }
  /** Pod addresses (canonical). */
  | { kind: "addresses"; family: Family; addresses: string[] }
  /** An ipBlock: a canonical CIDR, less the canonical CIDRs in `except`. */
  | { kind: "block"; family: Family; cidr: string; except: string[] };

/** One allowed (peer, ports) pair of a policy rule; `ports` "any" means every protocol and port. */
export interface Allow {
  /** "namespace/policy ingress[2]": where the allowance comes from (becomes a rule comment). */
  source: string;
  peer: PeerMatch;
  ports: PortMatch[] | "any";
}

export interface IsolatedPod {
  /** "namespace/name". */
  key: string;
  namespace: string;
  name: string;
  addresses: { family: Family; ip: string }[];
  /** Present when some policy isolates the pod for ingress; empty means nothing may connect. */
  ingress?: Allow[];
  /** Present when some policy isolates the pod for egress; empty means it may connect nowhere. */
  egress?: Allow[];
  /** The policies that select the pod, "namespace/name", sorted. */
  policies: string[];
}

export interface ClusterState {
  nodeName: string;
  pods: Iterable<Pod>;
  namespaces: Iterable<Namespace>;
  policies: Iterable<NetworkPolicy>;
}

/** A pod that takes part in policy: it has a pod network address and is not finished. */
function networked(p: Pod): boolean {
  if (p.spec?.hostNetwork) return false;
  if (p.status?.phase === "Succeeded" || p.status?.phase === "Failed") return false;
  return podAddresses(p).length > 0;
}

export function podAddresses(p: Pod): { family: Family; ip: string }[] {
  const raw = p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []);
  const out: { family: Family; ip: string }[] = [];
  for (const r of raw) {
    const ip = typeof r === "string" ? canonicalIP(r) : undefined;
    const family = ip ? familyOf(ip) : undefined;
    if (ip && family && !out.some((a) => a.ip === ip)) out.push({ family, ip });
  }
  return out;
}

export function policyTypesOf(np: NetworkPolicy): { ingress: boolean; egress: boolean } {
  const types = np.spec?.policyTypes ?? [];
  if (types.length === 0) return { ingress: true, egress: (np.spec?.egress ?? []).length > 0 };
  return { ingress: types.includes("Ingress"), egress: types.includes("Egress") };
}

function protocolOf(p: string | undefined): Protocol | undefined {
  const v = (p ?? "TCP").toLowerCase();
  return v === "tcp" || v === "udp" || v === "sctp" ? v : undefined;
}

const validPort = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;

/** A named port of a pod's containers, for one protocol. */
function namedPort(pod: Pod, name: string, protocol: Protocol): number | undefined {
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === name && protocolOf(p.protocol) === protocol && validPort(p.containerPort)) return p.containerPort;
    }
  }
  return undefined;
}

/**
 * A rule's ports as matches; a named port is looked up on `owner` (the pod that listens on it).
 * Returns "any" for a rule without ports, [] when none of its ports can match.
 */
function portMatches(ports: NetworkPolicyPort[] | undefined, owner: Pod | undefined): PortMatch[] | "any" {
  if (!ports || ports.length === 0) return "any";
  const out: PortMatch[] = [];
  for (const p of ports) {
    const protocol = protocolOf(p.protocol);
    if (!protocol) continue;
    if (p.port === undefined || p.port === null) out.push({ protocol });
    else if (typeof p.port === "number") {
      if (!validPort(p.port)) continue;
      const last = validPort(p.endPort) && p.endPort >= p.port ? p.endPort : p.port;
      out.push({ protocol, first: p.port, last });
    } else {
      const n = owner ? namedPort(owner, p.port, protocol) : undefined;
      if (n !== undefined) out.push({ protocol, first: n, last: n });
    }
  }
  return out;
}

/** Only the numeric (and portless) entries of a port list that has named ones: [] when none is left. */
function numericPortMatches(ports: NetworkPolicyPort[]): PortMatch[] {
  const numeric = ports.filter((p) => typeof p.port !== "string");
  if (numeric.length === 0) return [];
  const pm = portMatches(numeric, undefined);
  return pm === "any" ? [] : pm;
}

const hasNamedPort = (ports: NetworkPolicyPort[] | undefined) => (ports ?? []).some((p) => typeof p.port === "string");

interface Index {
  /** Labels of every namespace by name (with the name label Kubernetes guarantees). */
  nsLabels: Map<string, Record<string, string>>;
  /** Every networked pod of the cluster. */
  pods: Pod[];
}

function labelsOfNamespace(idx: Index, ns: string): Record<string, string> {
  return idx.nsLabels.get(ns) ?? { [NAMESPACE_NAME_LABEL]: ns };
}

/** The pods a selector peer stands for (podSelector within the policy's namespace unless namespaceSelector is set). */
function peerPods(idx: Index, peer: NetworkPolicyPeer, policyNamespace: string): Pod[] {
  const podReqs = labelSelectorRequirements(peer.podSelector ?? {});
  const nsReqs = peer.namespaceSelector ? labelSelectorRequirements(peer.namespaceSelector) : undefined;
  const out: Pod[] = [];
  for (const p of idx.pods) {
    const ns = p.metadata.namespace ?? "default";
    if (nsReqs ? !matchLabels(nsReqs, labelsOfNamespace(idx, ns)) : ns !== policyNamespace) continue;
    if (matchLabels(podReqs, p.metadata.labels)) out.push(p);
  }
  return out;
}

function blockPeer(cidr: string, except: string[] | undefined): PeerMatch | undefined {
  const c = canonicalCIDR(cidr);
  if (!c) return undefined;
  const net = formatPrefix(subnetOf(c.cidr));
  const ex: string[] = [];
  for (const e of except ?? []) {
    const x = canonicalCIDR(e);
    if (x && x.family === c.family) ex.push(formatPrefix(subnetOf(x.cidr)));
  }
  return { kind: "block", family: c.family, cidr: net, except: ex };
}

function addressPeers(pods: Pod[]): PeerMatch[] {
  const byFamily = new Map<Family, Set<string>>();
  for (const p of pods) {
    for (const a of podAddresses(p)) {
      const set = byFamily.get(a.family) ?? new Set<string>();
      byFamily.set(a.family, set.add(a.ip));
    }
  }
  const out: PeerMatch[] = [];
  for (const [family, addresses] of byFamily) out.push({ kind: "addresses", family, addresses: [...addresses].sort() });
  return out;
}

/**
 * The allowances of one rule for the pod `target`. `toward` is "ingress" (peers are sources, named
 * ports are the target's) or "egress" (peers are destinations, named ports are each peer pod's).
 */
function ruleAllows(idx: Index, np: NetworkPolicy, toward: "ingress" | "egress", i: number, peers: NetworkPolicyPeer[] | undefined, ports: NetworkPolicyPort[] | undefined, target: Pod): Allow[] {
  const source = `${np.metadata.namespace}/${np.metadata.name} ${toward}[${i}]`;
  const ns = np.metadata.namespace ?? "default";
  const out: Allow[] = [];
  const add = (peer: PeerMatch, pm: PortMatch[] | "any") => {
    if (pm !== "any" && pm.length === 0) return;
    out.push({ source, peer, ports: pm });
  };
  // Ingress: named ports are the target's own. Egress: each destination pod's, so pods are grouped
  // by what the rule's ports resolve to on them.
  const perPeerPorts = toward === "egress" && hasNamedPort(ports);
  if (!peers || peers.length === 0) {
    // Every peer; an egress named port can then only match the cluster's pods that have it.
    if (perPeerPorts) addPodGroups(idx.pods, ports, add);
    else add({ kind: "any" }, portMatches(ports, target));
    return out;
  }
  for (const peer of peers) {
    if (peer.ipBlock) {
      const b = blockPeer(peer.ipBlock.cidr, peer.ipBlock.except);
      // A named port means nothing for addresses outside the cluster's pods.
      if (b) add(b, perPeerPorts ? numericPortMatches(ports!) : portMatches(ports, target));
      continue;
    }
    if (!peer.podSelector && !peer.namespaceSelector) continue;
    const pods = peerPods(idx, peer, ns);
    if (perPeerPorts) addPodGroups(pods, ports, add);
    else for (const pm of addressPeers(pods)) add(pm, portMatches(ports, target));
  }
  return out;
}

/** Groups pods by what `ports` resolve to on each, and adds one allowance per group. */
function addPodGroups(pods: Pod[], ports: NetworkPolicyPort[] | undefined, add: (peer: PeerMatch, pm: PortMatch[] | "any") => void): void {
  const groups = new Map<string, { pm: PortMatch[] | "any"; pods: Pod[] }>();
  for (const p of pods) {
    const pm = portMatches(ports, p);
    const key = JSON.stringify(pm);
    const g = groups.get(key) ?? { pm, pods: [] };
    g.pods.push(p);
    groups.set(key, g);
  }
  for (const g of groups.values()) for (const peer of addressPeers(g.pods)) add(peer, g.pm);
}

/** What this node enforces: its pods that some policy isolates, with their allowances. */
export function computeIsolation(state: ClusterState): IsolatedPod[] {
  const nsLabels = new Map<string, Record<string, string>>();
  for (const n of state.namespaces) {
    const name = n.metadata.name ?? "";
    nsLabels.set(name, { ...(n.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: name });
  }
  const pods: Pod[] = [];
  for (const p of state.pods) if (networked(p)) pods.push(p);
  const idx: Index = { nsLabels, pods };
  const policies = [...state.policies].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));

  const result: IsolatedPod[] = [];
  for (const pod of pods) {
    if (pod.spec?.nodeName !== state.nodeName) continue;
    const ns = pod.metadata.namespace ?? "default";
    let ingress: Allow[] | undefined;
    let egress: Allow[] | undefined;
    const names: string[] = [];
    for (const np of policies) {
      if ((np.metadata.namespace ?? "default") !== ns) continue;
      if (!matchLabels(labelSelectorRequirements(np.spec?.podSelector ?? {}), pod.metadata.labels)) continue;
      const types = policyTypesOf(np);
      if (!types.ingress && !types.egress) continue;
      names.push(`${ns}/${np.metadata.name}`);
      if (types.ingress) {
        ingress ??= [];
        (np.spec.ingress ?? []).forEach((r, i) => ingress!.push(...ruleAllows(idx, np, "ingress", i, r.from, r.ports, pod)));
      }
      if (types.egress) {
        egress ??= [];
        (np.spec.egress ?? []).forEach((r, i) => egress!.push(...ruleAllows(idx, np, "egress", i, r.to, r.ports, pod)));
      }
    }
    if (!ingress && !egress) continue;
    const name = pod.metadata.name ?? "";
    result.push({ key: `${ns}/${name}`, namespace: ns, name, addresses: podAddresses(pod), ingress, egress, policies: names });
  }
  return result.sort((a, b) => a.key.localeCompare(b.key));
}
