// The plugin's nftables rules, in the netns it runs in:
//   table inet podnet-bridge    masquerade for traffic leaving the pod subnet (ipMasq);
//   table bridge podnet-bridge  drops frames from a pod port whose source MAC is not the pod's (macspoofchk).
// Every rule belongs to one attachment (network, container ID, ifname) and says so in its comment,
// starting with a tag made of hashes. DEL and GC find an attachment's rules by that tag, so they
// need neither the container's IP nor its interface, and two attachments of one container never
// share (or delete) each other's rules.
import { sha256Hex } from "../pkg/digest.ts";
import { runAsync } from "../pkg/exec.ts";
import { CniError, ErrCode } from "../pkg/errors.ts";
import { formatPrefix, subnetOf } from "./cidr.ts";

export const TABLE = "podnet-bridge";
const MASQ = { family: "inet", chain: "masq" } as const;
const SPOOF = { family: "bridge", chain: "prerouting" } as const;
export type RuleKind = "masq" | "spoof";
const WHERE = { masq: MASQ, spoof: SPOOF } as const;

export interface Attachment {
  network: string;
  containerID: string;
  ifname: string;
}

const sha = sha256Hex;

/** "n<12 hex>-" : every rule of one network starts with it. */
export const networkTag = (network: string) => `n${sha(`podnet-bridge\0${network}`).slice(0, 12)}-`;

/** "n<12 hex>-a<16 hex>" : every rule of one attachment starts with it. */
export const attachmentTag = (a: Attachment) => `${networkTag(a.network)}a${sha(`${a.network}\0${a.containerID}\0${a.ifname}`).slice(0, 16)}`;

/** The tag, then a readable account, cut to nftables' 128 characters. */
export function ruleComment(a: Attachment): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_.:\/@%+,=-]/g, "_");
  const text = `${attachmentTag(a)} net=${clean(a.network)} id=${clean(a.containerID)} if=${clean(a.ifname)}`;
  return text.slice(0, 128);
}

const quote = (s: string) => `"${s}"`; // ruleComment() and interface names hold no quote or backslash

function masqSetup(): string[] {
  const t = `inet ${TABLE}`;
  return [
    `add table ${t}`,
    `add chain ${t} masq`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    // Rewritten whole in the same transaction, so a damaged chain heals and nothing is duplicated.
    `flush chain ${t} postrouting`,
    `add rule ${t} postrouting ip daddr 224.0.0.0/4 return`,
    `add rule ${t} postrouting ip6 daddr ff00::/8 return`,
    `add rule ${t} postrouting goto masq`,
  ];
}

/** One rule per address: from the pod's address to anywhere outside its subnet, masquerade. */
export function masqRules(a: Attachment, addresses: string[]): string[] {
  return addresses.map((cidr) => {
    const net = subnetOf(cidr);
    const ipk = net.family === 4 ? "ip" : "ip6";
    const ip = cidr.slice(0, cidr.indexOf("/"));
    return `add rule inet ${TABLE} masq ${ipk} saddr ${ip} ${ipk} daddr != ${formatPrefix(net)} masquerade comment ${quote(ruleComment(a))}`;
  });
}

function spoofSetup(): string[] {
  const t = `bridge ${TABLE}`;
  return [`add table ${t}`, `add chain ${t} prerouting { type filter hook prerouting priority -300; policy accept; }`];
}

/** Frames entering the bridge from the pod's port must carry the pod's MAC. */
export function spoofRules(a: Attachment, hostVeth: string, mac: string): string[] {
  return [`add rule bridge ${TABLE} prerouting iifname ${quote(hostVeth)} ether saddr != ${mac} drop comment ${quote(ruleComment(a))}`];
}

export interface RuleSet {
  masq: string[];
  spoof: string[];
}

async function nft(script: string): Promise<{ ok: boolean; stderr: string }> {
  const r = await runAsync("nft", ["-f", "-"], { input: script, allowFail: true });
  return { ok: r.status === 0, stderr: r.stderr };
}

/**
 * Adds the rules in one transaction. Declaring chains costs nftables a slow commit (~15 ms), so
 * the rules are first added alone; only when the table or chain is missing is the whole
 * structure declared with them.
 */
export async function addRules(rules: RuleSet): Promise<void> {
  const lines = [...rules.masq, ...rules.spoof];
  if (lines.length === 0) return;
  const fast = await nft(lines.join("\n") + "\n");
  if (fast.ok) return;
  if (!/No such file or directory/.test(fast.stderr)) throw nftError(fast.stderr);
  const full = [...(rules.masq.length ? masqSetup() : []), ...(rules.spoof.length ? spoofSetup() : []), ...lines];
  const r = await nft(full.join("\n") + "\n");
  if (!r.ok) throw nftError(r.stderr);
}

function nftError(stderr: string): CniError {
  const first = stderr.split("\n").find((l) => /Error/.test(l)) ?? stderr.trim();
  return new CniError(ErrCode.Kernel, `nftables refused the rules: ${first.replace(/^\/dev\/stdin:[\d:-]+ /, "")}`, stderr.trim());
}

export interface ListedRule {
  kind: RuleKind;
  handle: number;
  comment: string;
  expr: unknown[];
}

/** The rules in our chain of one kind; [] when the table or chain does not exist. */
export async function listRules(kind: RuleKind): Promise<ListedRule[]> {
  const w = WHERE[kind];
  const r = await runAsync("nft", ["-j", "list", "chain", w.family, TABLE, w.chain], { allowFail: true });
  if (r.status !== 0) {
    if (/No such file or directory/.test(r.stderr)) return [];
    throw new CniError(ErrCode.Kernel, `cannot list nftables chain ${w.family} ${TABLE} ${w.chain}: ${r.stderr.trim()}`);
  }
  const doc = JSON.parse(r.stdout) as { nftables?: Record<string, any>[] };
  const out: ListedRule[] = [];
  for (const o of doc.nftables ?? []) {
    const rule = o.rule;
    if (rule && typeof rule.handle === "number") out.push({ kind, handle: rule.handle, comment: String(rule.comment ?? ""), expr: rule.expr ?? [] });
  }
  return out;
}

/** Deletes listed rules in one transaction; false when one was already gone (a racing DEL). */
export async function deleteRules(rules: ListedRule[]): Promise<boolean> {
  if (rules.length === 0) return true;
  const script = rules.map((r) => `delete rule ${WHERE[r.kind].family} ${TABLE} ${WHERE[r.kind].chain} handle ${r.handle}`).join("\n") + "\n";
  const r = await nft(script);
  if (r.ok) return true;
  if (/No such file or directory/.test(r.stderr)) return false;
  throw nftError(r.stderr);
}

/** Lists, picks and deletes, listing again if a concurrent change removed a picked rule first. */
export async function removeRules(kinds: RuleKind[], pick: (r: ListedRule) => boolean): Promise<void> {
  if (kinds.length === 0) return;
  for (let attempt = 0; attempt < 3; attempt++) {
    const listed = (await Promise.all(kinds.map(listRules))).flat().filter(pick);
    if (await deleteRules(listed)) return;
  }
  throw new CniError(ErrCode.TryAgainLater, "nftables rules kept changing while being removed; try again");
}

export const ofAttachment = (a: Attachment) => {
  const tag = attachmentTag(a);
  return (r: ListedRule) => r.comment.startsWith(tag);
};

/** Rules of `network` whose attachment is not in `valid`: what GC removes. */
export function staleOf(network: string, valid: Attachment[]) {
  const prefix = networkTag(network);
  const keep = new Set(valid.map(attachmentTag));
  return (r: ListedRule) => r.comment.startsWith(prefix) && !keep.has(r.comment.split(" ")[0]!);
}

/** The source address a masquerade rule matches ("10.244.0.5"), read from nft's JSON. */
export function masqSource(r: ListedRule): string | undefined {
  for (const e of r.expr as Record<string, any>[]) {
    const m = e?.match;
    if (m?.op === "==" && m.left?.payload?.field === "saddr" && typeof m.right === "string") return m.right;
  }
  return undefined;
}
