// Reading portmap's table back from the kernel (`nft -j`) and comparing it with what ADD writes.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { runAsync } from "../pkg/exec.ts";
import { attr, cstring, NETLINK_NETFILTER, NetlinkError, Rtnl } from "../pkg/netlink.ts";
import { FAMILY, TABLE, type ChainSpec, type RuleSpec } from "./rules.ts";

export interface ListedChain {
  name: string;
  type?: string;
  hook?: string;
  prio?: number;
  rules: { comment?: string; expr: unknown[] }[];
}

const NFT_MSG_GETCHAIN = (10 << 8) | 4; // NFNL_SUBSYS_NFTABLES, NFT_MSG_GETCHAIN
const NFPROTO_INET = 1;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;

/**
 * Which of `names` exist as chains of our table, asked over nfnetlink (no nft process); undefined
 * when netlink is not available here (Node) or the kernel's answer is not a plain yes or no.
 */
export function chainsPresent(names: string[]): Set<string> | undefined {
  let nl: Rtnl | undefined;
  try {
    nl = Rtnl.open(undefined, NETLINK_NETFILTER);
  } catch {
    return undefined;
  }
  if (!nl) return undefined;
  try {
    const present = new Set<string>();
    for (const name of names) {
      const nfgen = new Uint8Array([NFPROTO_INET, 0, 0, 0]); // family, NFNETLINK_V0, res_id
      try {
        nl.call(NFT_MSG_GETCHAIN, 0, [nfgen, attr(NFTA_CHAIN_TABLE, cstring(TABLE)), attr(NFTA_CHAIN_NAME, cstring(name))], `nft get chain ${name}`);
        present.add(name);
      } catch (e) {
        if (e instanceof NetlinkError && e.errno === 2) continue; // no such table or chain
        return undefined;
      }
    }
    return present;
  } finally {
    nl.close();
  }
}

/** The table's chains with their rules; undefined when the table does not exist. */
export async function listTable(): Promise<Map<string, ListedChain> | undefined> {
  const r = await runAsync("nft", ["-j", "list", "table", FAMILY, TABLE], { allowFail: true });
  if (r.status !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new CniError(ErrCode.Kernel, `cannot list nftables table ${FAMILY} ${TABLE}: ${r.stderr.trim() || `exit status ${r.status}`}`);
  }
  const chains = new Map<string, ListedChain>();
  const doc = JSON.parse(r.stdout) as { nftables?: Record<string, any>[] };
  for (const o of doc.nftables ?? []) {
    if (o.chain) chains.set(o.chain.name, { name: o.chain.name, type: o.chain.type, hook: o.chain.hook, prio: o.chain.prio, rules: [] });
    else if (o.rule) chains.get(o.rule.chain)?.rules.push({ comment: o.rule.comment, expr: o.rule.expr ?? [] });
  }
  return chains;
}

const payloadMatch = (protocol: string, field: string, right: unknown) => ({ match: { op: "==", left: { payload: { protocol, field } }, right } });
const markSet = (bit: number) => ({ mangle: { key: { meta: { key: "mark" } }, value: { "|": [{ meta: { key: "mark" } }, bit] } } });

/** The expressions a rule must contain to do what `spec` says (conditions are not compared). */
function requiredExprs(spec: RuleSpec): unknown[] {
  if (spec.guardLocal) return [{ match: { op: "!=", left: { fib: { result: "type", flags: ["daddr"] } }, right: "local" } }, { return: null }];
  const ip = spec.family === 6 ? "ip6" : "ip";
  const out: unknown[] = [];
  if (spec.daddr) out.push(payloadMatch(ip, "daddr", spec.daddr));
  if (spec.proto) out.push(payloadMatch(spec.proto, "dport", spec.dport));
  if (spec.saddr) out.push(payloadMatch(ip, "saddr", typeof spec.saddr === "string" ? spec.saddr : { prefix: spec.saddr }));
  if (spec.marked !== undefined) out.push({ match: { op: "==", left: { "&": [{ meta: { key: "mark" } }, spec.marked] }, right: spec.marked } });
  if (spec.mark !== undefined) out.push(markSet(spec.mark));
  if (spec.dnat) out.push({ dnat: spec.dnat });
  if (spec.masquerade) out.push({ masquerade: null });
  return out;
}

/** Every difference between the chain in the kernel and what it should be; empty when equal. */
export function chainProblems(spec: ChainSpec, listed: ListedChain | undefined): string[] {
  const where = `chain ${FAMILY} ${TABLE} ${spec.name}`;
  if (!listed) return [`${where} is missing`];
  if (listed.type !== "nat" || listed.hook !== spec.hook || listed.prio !== spec.priority) {
    return [`${where} is not a nat ${spec.hook} chain at priority ${spec.priority}`];
  }
  const problems: string[] = [];
  const rules = [...listed.rules];
  for (const want of spec.rules) {
    const i = rules.findIndex((r) => r.comment === want.comment);
    if (i < 0) {
      problems.push(`rule "${want.comment}" is missing from ${where}`);
      continue;
    }
    const [got] = rules.splice(i, 1);
    const missing = requiredExprs(want).filter((e) => !got!.expr.some((g) => sameJSON(g, e)));
    if (missing.length) problems.push(`rule "${want.comment}" in ${where} was changed: lacks ${JSON.stringify(missing)}`);
  }
  for (const extra of rules) problems.push(`${where} has an unexpected rule${extra.comment ? ` "${extra.comment}"` : ""}`);
  return problems;
}

/** Equality of two JSON values, key order aside (node:util's version costs a plugin start ~1 ms). */
function sameJSON(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => sameJSON((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
