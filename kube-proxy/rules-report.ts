// What kube-proxy programmed into a node, read back from the kernel (used by
// `podnet proxy rules NODE`): a summary of Service destinations -> endpoints built from the
// table's maps, followed by `nft list table` for each family. Reading JSON from the kernel is
// fine here; the proxier itself never does it.
import { makeRunner } from "./exec.ts";
import type { Family } from "./model.ts";
import { ENDPOINT_MAPS, TABLE } from "./ruleset.ts";

type Json = any;

function atom(v: Json): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string" || typeof v === "number") return String(v);
  if (v.prefix) return `${v.prefix.addr}/${v.prefix.len}`;
  return JSON.stringify(v);
}

function keyOf(k: Json): string[] {
  return k && typeof k === "object" && Array.isArray(k.concat) ? k.concat.map(atom) : [atom(k)];
}

function verdictOf(v: Json): string {
  if (v && typeof v === "object") {
    if (v.goto) return `goto ${v.goto.target}`;
    if (v.jump) return `jump ${v.jump.target}`;
    for (const k of ["drop", "accept", "return"]) if (k in v) return k;
  }
  return atom(v);
}

async function mapElements(netns: string | undefined, family: Family, map: string): Promise<[string[], Json][]> {
  const r = await makeRunner(netns).exec("nft", ["-j", "list", "map", family, TABLE, map]);
  if (r.code !== 0) return [];
  const doc = JSON.parse(r.stdout) as { nftables?: Json[] };
  const m = doc.nftables?.find((o) => o.map)?.map;
  return (m?.elem ?? []).map((e: Json) => [keyOf(e[0]), e[1]] as [string[], Json]);
}

/** "dest proto/port -> endpoints" lines for one family, from the kernel's maps. */
export async function summarizeFamily(netns: string | undefined, family: Family): Promise<string[]> {
  const slots = new Map<string, Map<string, string>>(); // map -> "key . slot" -> "ip:port"
  for (const m of ENDPOINT_MAPS) {
    const els = await mapElements(netns, family, m);
    const byKey = new Map<string, string>();
    for (const [k, v] of els) {
      const val = keyOf(v);
      byKey.set(k.join(" . "), family === "ip6" ? `[${val[0]}]:${val[1]}` : `${val[0]}:${val[1]}`);
    }
    slots.set(m, byKey);
  }
  const endpoints = (target: string, keyParts: string[]): string => {
    const lb = /^(nodeport-)?lb-(masq-|internal-)?(tcp|udp|sctp)-(\d+)$/.exec(target);
    if (!lb) return `chain ${target}`;
    const map = `${lb[1] ? "nodeport-endpoints" : "endpoints"}${lb[2] === "internal-" ? "-internal" : ""}-${lb[3]}`;
    const out: string[] = [];
    for (let i = 0; i < Number(lb[4]); i++) out.push(slots.get(map)?.get([...keyParts, String(i)].join(" . ")) ?? "?");
    return out.join(", ") + (lb[2] === "masq-" ? " (masquerade)" : "");
  };
  const lines: string[] = [];
  for (const [k, v] of await mapElements(netns, family, "service-ips")) {
    const verdict = verdictOf(v);
    const [addr, proto, port] = k;
    lines.push(`${addr} ${proto}/${port} -> ${verdict.startsWith("goto ") ? endpoints(verdict.slice(5), [addr!, port!]) : verdict}`);
  }
  for (const [k, v] of await mapElements(netns, family, "service-nodeports")) {
    const verdict = verdictOf(v);
    const [proto, port] = k;
    lines.push(`nodePort ${proto}/${port} -> ${verdict.startsWith("goto ") ? endpoints(verdict.slice(5), [port!]) : verdict}`);
  }
  for (const [k, v] of await mapElements(netns, family, "no-endpoint-services")) {
    lines.push(`${k[0]} ${k[1]}/${k[2]} -> ${verdictOf(v) === "drop" ? "drop (no local endpoints)" : "reject (no endpoints)"}`);
  }
  for (const [k, v] of await mapElements(netns, family, "no-endpoint-nodeports")) {
    lines.push(`nodePort ${k[0]}/${k[1]} -> ${verdictOf(v) === "drop" ? "drop (no local endpoints)" : "reject (no endpoints)"}`);
  }
  return lines.sort();
}

/** The report `podnet proxy rules NODE` prints, for the node whose netns is `netns`. */
export async function proxyRulesReport(netns: string | undefined, families: Family[] = ["ip", "ip6"]): Promise<string> {
  const runner = makeRunner(netns);
  const parts: string[] = [];
  for (const f of families) {
    const listing = await runner.exec("nft", ["list", "table", f, TABLE]);
    if (listing.code !== 0) {
      parts.push(`# table ${f} ${TABLE}: not programmed (${listing.stderr.trim().split("\n")[0] ?? ""})\n`);
      continue;
    }
    const summary = await summarizeFamily(netns, f);
    parts.push(`# Services programmed in table ${f} ${TABLE} (destination -> endpoints)\n${summary.join("\n") || "(none)"}\n`);
    parts.push(`# nft list table ${f} ${TABLE}\n${listing.stdout}`);
  }
  return parts.join("\n");
}
