// What computeIsolation() found, as one nft script that replaces the table `inet podnet-netpol`
// whole, in one transaction (README.md explains the layout).
import { shortHash } from "../kube-proxy/model.ts";
import type { Allow, Family, IsolatedPod, PeerMatch, PortMatch, Protocol } from "./model.ts";

export const TABLE = "podnet-netpol";
const FAMILY = "inet";
const MAX_COMMENT = 128; // nftables' limit, in bytes

/**
 * A chain name from a pod's key; API names are DNS labels and subdomains, anything else is
 * replaced. nftables allows 255 bytes: a longer name is cut and ends with a hash of the key.
 */
export function podChain(direction: "ingress" | "egress", podKey: string): string {
  const name = `${direction}_${podKey.replace(/[^a-z0-9.-]/g, "_")}`;
  return name.length <= 200 ? name : `${name.slice(0, 190)}-${shortHash(podKey)}`;
}

const comment = (text: string) => `comment "${text.replace(/[^A-Za-z0-9 _./:\[\]-]/g, "_").slice(0, MAX_COMMENT)}"`;

/** `tcp dport { 80, 8000-8080 }` per protocol; [""] when any port of any protocol matches. */
function portClauses(ports: PortMatch[] | "any"): string[] {
  if (ports === "any") return [""];
  const byProto = new Map<Protocol, string[] | "all">();
  for (const p of ports) {
    const cur = byProto.get(p.protocol);
    if (p.first === undefined) byProto.set(p.protocol, "all");
    else if (cur !== "all") byProto.set(p.protocol, [...(cur ?? []), p.first === p.last ? `${p.first}` : `${p.first}-${p.last}`]);
  }
  const out: string[] = [];
  for (const [proto, list] of byProto) out.push(list === "all" ? `meta l4proto ${proto}` : `${proto} dport { ${[...new Set(list)].join(", ")} }`);
  return out;
}

/** The address match of a peer, with `field` saddr (ingress) or daddr (egress); "" for any. */
function peerClause(peer: PeerMatch, field: "saddr" | "daddr"): string {
  if (peer.kind === "any") return "";
  if (peer.kind === "addresses") return `${peer.family} ${field} { ${peer.addresses.join(", ")} }`;
  const except = peer.except.length ? ` ${peer.family} ${field} != { ${peer.except.join(", ")} }` : "";
  return `${peer.family} ${field} ${peer.cidr}${except}`;
}

function allowRules(allows: Allow[], field: "saddr" | "daddr", verdict: "accept" | "return"): string[] {
  const out: string[] = [];
  for (const a of allows) {
    const peer = peerClause(a.peer, field);
    for (const ports of portClauses(a.ports)) out.push([peer, ports, verdict, comment(a.source)].filter(Boolean).join(" "));
  }
  return out;
}

function chain(name: string, rules: string[]): string[] {
  return [`\tchain ${name} {`, ...rules.map((r) => `\t\t${r}`), "\t}"];
}

const addrType = (f: Family) => (f === "ip" ? "ipv4_addr" : "ipv6_addr");
const mapName = (direction: "ingress" | "egress", f: Family) => `${direction}-pods-${f === "ip" ? "v4" : "v6"}`;

/**
 * The whole table. Packets a node forwards pass `forward`: replies of allowed connections are
 * accepted; then a packet from an egress-isolated pod of this node jumps to that pod's egress
 * chain, which returns when a rule allows it and drops it otherwise; then a packet to an
 * ingress-isolated pod jumps to its ingress chain, which accepts or drops. A pod may always reach
 * itself, and traffic between a pod and its own node does not cross `forward` at all.
 */
export function renderTable(pods: IsolatedPod[]): string {
  const lines: string[] = [`add table ${FAMILY} ${TABLE}`, `delete table ${FAMILY} ${TABLE}`, `table ${FAMILY} ${TABLE} {`];
  const elements: Record<string, string[]> = {};
  const chains: string[] = [];
  for (const pod of pods) {
    for (const direction of ["egress", "ingress"] as const) {
      const allows = pod[direction];
      if (!allows) continue;
      const name = podChain(direction, pod.key);
      const field = direction === "ingress" ? "saddr" : "daddr";
      const verdict = direction === "ingress" ? "accept" : "return";
      const self = pod.addresses.map((a) => `${a.family} ${field} ${a.ip} ${verdict} ${comment(`${pod.key} itself`)}`);
      const why = pod.policies.join(" ");
      chains.push(...chain(name, [...self, ...allowRules(allows, field, verdict), `counter drop ${comment(`${direction} of ${pod.key} not allowed by ${why}`)}`]));
      for (const a of pod.addresses) (elements[mapName(direction, a.family)] ??= []).push(`${a.ip} : jump ${name}`);
    }
  }
  for (const direction of ["ingress", "egress"] as const) {
    for (const f of ["ip", "ip6"] as const) {
      const name = mapName(direction, f);
      const els = elements[name];
      lines.push(`\tmap ${name} {`, `\t\ttype ${addrType(f)} : verdict`);
      if (els?.length) lines.push(`\t\telements = { ${els.join(", ")} }`);
      lines.push("\t}");
    }
  }
  lines.push(
    ...chain("forward", [
      "type filter hook forward priority filter; policy accept;",
      "ct state established,related accept",
      `ip saddr vmap @${mapName("egress", "ip")}`,
      `ip6 saddr vmap @${mapName("egress", "ip6")}`,
      `ip daddr vmap @${mapName("ingress", "ip")}`,
      `ip6 daddr vmap @${mapName("ingress", "ip6")}`,
    ]),
  );
  lines.push(...chains, "}");
  return lines.join("\n") + "\n";
}

/** Removes the table (a node that stops enforcing, `--cleanup`). */
export const deleteTableScript = () => `add table ${FAMILY} ${TABLE}\ndelete table ${FAMILY} ${TABLE}\n`;
