// The nftables layout of portmap, as data (RuleSpec) that is both rendered into an `nft -f`
// script (ADD) and compared with `nft -j` output (CHECK).
//
// table inet podnet_portmap
//   chain hp-<net>-<attachment>-pre    nat prerouting -100: DNAT of traffic from other hosts/pods
//   chain hp-<net>-<attachment>-out    nat output -100: DNAT of the node's own traffic
//   chain hp-<net>-<attachment>-post   nat postrouting 100: masquerade what the chains above marked
//
// Each attachment (network, containerID, ifname) owns its three base chains, named by a hash,
// and nothing is shared, so ADD, DEL and GC never need rule handles or a listing: ADD writes
// the chains (add + flush + rules), DEL and GC delete them. One transaction each. ADD deletes
// nothing when the chains are new, which keeps it fast: any deletion makes the kernel wait for
// an RCU grace period (~15 ms here).
import { sha256Hex } from "../pkg/digest.ts";
import { nftQuote } from "../pkg/nft.ts";
import type { ContainerIPs, PortMapConfig, PortMapping } from "./config.ts";

export const TABLE = "podnet_portmap";
export const FAMILY = "inet";
const T = `${FAMILY} ${TABLE}`;

export const DNAT_PRIORITY = -100;
export const SNAT_PRIORITY = 100;

export interface Attachment {
  network: string;
  containerID: string;
  ifname: string;
}

const sha = sha256Hex;

/** Every chain of one network starts with this prefix (what GC scopes itself to). */
export function networkPrefix(network: string): string {
  return `hp-${sha(network).slice(0, 8)}-`;
}

export interface AttachmentChains {
  pre: string;
  out: string;
  post: string;
}

export function chainsOf(a: Attachment): AttachmentChains {
  // Neither a container ID nor an interface name can contain '/', so the pair is unambiguous.
  const base = networkPrefix(a.network) + sha(`${a.containerID}/${a.ifname}`).slice(0, 16);
  return { pre: `${base}-pre`, out: `${base}-out`, post: `${base}-post` };
}

export const chainNames = (c: AttachmentChains) => [c.pre, c.out, c.post];
export const markValue = (bit: number) => (2 ** bit) >>> 0;
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** A human-readable identity for the chain comment; anything nft could not quote is %-escaped. */
export function describe(a: Attachment): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.:\/@+,=\- ]/g, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""));
  const text = `net=${a.network} id=${a.containerID} if=${safe(a.ifname)}`;
  return text.length <= 127 ? text : `${text.slice(0, 124)}...`;
}

/** Canonical text of an address, the form nft prints back (IPv6 compressed, lower case). */
export function canonicalIP(ip: string): string {
  return ip.includes(":") ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

export interface RuleSpec {
  comment: string;
  /** Family the rule is limited to (meta nfproto). */
  family?: 4 | 6;
  /** Free-form match expressions from conditionsV4/V6, rendered but not checked. */
  conditions?: string[];
  guardLocal?: boolean;
  proto?: string;
  dport?: number;
  daddr?: string;
  /** Source match: an address or a prefix. */
  saddr?: string | { addr: string; len: number };
  /** Sets this mark bit. */
  mark?: number;
  dnat?: { family: "ip" | "ip6"; addr: string; port: number };
  /** Matches packets carrying this mark bit. */
  marked?: number;
  masquerade?: boolean;
}

export interface ChainSpec {
  name: string;
  hook: "prerouting" | "output" | "postrouting";
  priority: number;
  comment: string;
  rules: RuleSpec[];
}

const ipKw = (f: 4 | 6) => (f === 4 ? "ip" : "ip6");

function renderSaddr(s: RuleSpec["saddr"]): string {
  return typeof s === "string" ? s : `${s!.addr}/${s!.len}`;
}

export function renderRule(r: RuleSpec): string {
  const parts: string[] = [];
  if (r.guardLocal) return `fib daddr type != local return comment ${nftQuote(r.comment)}`;
  if (r.family) parts.push(`meta nfproto ipv${r.family}`);
  if (r.conditions?.length) parts.push(...r.conditions);
  if (r.daddr) parts.push(`${ipKw(r.family!)} daddr ${r.daddr}`);
  if (r.proto) parts.push(`${r.proto} dport ${r.dport}`);
  if (r.saddr) parts.push(`${ipKw(r.family!)} saddr ${renderSaddr(r.saddr)}`);
  if (r.marked !== undefined) parts.push(`meta mark & ${hex(r.marked)} == ${hex(r.marked)}`);
  if (r.mark !== undefined) parts.push(`meta mark set meta mark | ${hex(r.mark)}`);
  if (r.dnat) parts.push(r.dnat.family === "ip" ? `dnat ip to ${r.dnat.addr}:${r.dnat.port}` : `dnat ip6 to [${r.dnat.addr}]:${r.dnat.port}`);
  if (r.masquerade) parts.push("masquerade");
  parts.push(`comment ${nftQuote(r.comment)}`);
  return parts.join(" ");
}

function mappingLabel(m: PortMapping): string {
  return `${m.hostIP ? `${canonicalIP(m.hostIP)} ` : ""}${m.protocol}/${m.hostPort}`;
}

/** The rules of one attachment's chain for one hook. */
function attachmentRules(hook: "prerouting" | "output", conf: PortMapConfig, ips: ContainerIPs): RuleSpec[] {
  const rules: RuleSpec[] = [{ comment: "only traffic to addresses of this node", guardLocal: true }];
  const bit = markValue(conf.markMasqBit);
  for (const family of [4, 6] as const) {
    const podIP = family === 4 ? ips.v4 : ips.v6;
    if (!podIP) continue;
    const pod = canonicalIP(podIP);
    const conditions = family === 4 ? conf.conditionsV4 : conf.conditionsV6;
    for (const m of conf.mappings) {
      if (m.hostFamily && m.hostFamily !== family) continue; // a hostIP binds a mapping to its family
      const base: RuleSpec = { comment: "", family, proto: m.protocol, dport: m.hostPort };
      if (conditions.length) base.conditions = conditions;
      if (m.hostIP) base.daddr = canonicalIP(m.hostIP);
      const label = mappingLabel(m);
      if (conf.snat) {
        // Traffic the pod could not answer directly gets masqueraded: the pod reaching itself
        // (hairpin: its reply would never leave the pod) and the node's 127/8 (not routable).
        // masqAll masquerades every source.
        if (conf.masqAll) rules.push({ ...base, comment: `masquerade ${label}`, mark: bit });
        else if (hook === "prerouting") rules.push({ ...base, comment: `masquerade ${label} from the pod itself`, saddr: pod, mark: bit });
        else if (family === 4) rules.push({ ...base, comment: `masquerade ${label} from localhost`, saddr: { addr: "127.0.0.0", len: 8 }, mark: bit });
      }
      const dnat = { family: family === 4 ? ("ip" as const) : ("ip6" as const), addr: pod, port: m.containerPort };
      rules.push({ ...base, comment: `${label} to ${pod} port ${m.containerPort}`, dnat });
    }
  }
  return rules;
}

/** Masquerading of the marked traffic on its way to the pod: it leaves with the node's address. */
function masqueradeRules(conf: PortMapConfig, ips: ContainerIPs): RuleSpec[] {
  if (!conf.snat) return [];
  const bit = markValue(conf.markMasqBit);
  const rules: RuleSpec[] = [];
  for (const family of [4, 6] as const) {
    const podIP = family === 4 ? ips.v4 : ips.v6;
    if (!podIP || !conf.mappings.some((m) => !m.hostFamily || m.hostFamily === family)) continue;
    rules.push({ comment: `masquerade marked traffic to ${canonicalIP(podIP)}`, family, daddr: canonicalIP(podIP), marked: bit, masquerade: true });
  }
  return rules;
}

export function attachmentChainSpecs(a: Attachment, conf: PortMapConfig, ips: ContainerIPs): ChainSpec[] {
  const names = chainsOf(a);
  const comment = describe(a);
  return [
    { name: names.pre, hook: "prerouting", priority: DNAT_PRIORITY, comment, rules: attachmentRules("prerouting", conf, ips) },
    { name: names.out, hook: "output", priority: DNAT_PRIORITY, comment, rules: attachmentRules("output", conf, ips) },
    { name: names.post, hook: "postrouting", priority: SNAT_PRIORITY, comment, rules: masqueradeRules(conf, ips) },
  ];
}

/** Lines of a script that (re)writes these chains; each line is one command, for error mapping. */
export function writeChainsScript(chains: ChainSpec[]): string[] {
  const lines = [`add table ${T} { comment ${nftQuote("podnet portmap: host ports of pods")}; }`];
  for (const c of chains) {
    lines.push(`add chain ${T} ${c.name} { type nat hook ${c.hook} priority ${c.priority}; comment ${nftQuote(c.comment)}; }`);
    lines.push(`flush chain ${T} ${c.name}`);
    for (const r of c.rules) lines.push(`add rule ${T} ${c.name} ${renderRule(r)}`);
  }
  return lines;
}

/** Deletes chains; fails (changing nothing) when one of them or the table is missing. */
export function deleteChainsScript(names: string[]): string[] {
  return names.map((n) => `delete chain ${T} ${n}`);
}

/** Deletes chains of an existing table, succeeding when one was removed concurrently (add first). */
export function deleteChainsIfPresentScript(names: string[]): string[] {
  return names.flatMap((n) => [`add chain ${T} ${n}`, `delete chain ${T} ${n}`]);
}
