// A pod's resolver configuration by dnsPolicy, as the kubelet computes it (pkg/kubelet/network/dns):
//   ClusterFirst: the cluster DNS, search <ns>.svc.<domain> svc.<domain> <domain> + the node's
//                 searches, options ndots:5 (without --cluster-dns it falls back to Default);
//   Default:      the node's resolv.conf;
//   None:         only the pod's dnsConfig.
// Then dnsConfig is merged in: nameservers and searches appended without duplicates, options
// merged by name (the pod's win). The runtime writes the result as the pod's /etc/resolv.conf.
import { readFileSync } from "node:fs";
import type { Pod } from "../apiserver/types.ts";
import type { DNSConfig } from "../runtime/cri/types.ts";

const MAX_NAMESERVERS = 3;
const MAX_SEARCHES = 32;
const MAX_SEARCH_CHARS = 2048;

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) out.nameservers.push(rest[0]);
    else if (key === "search" || key === "domain") out.searches = rest.filter(Boolean); // the last one wins, as in glibc
    else if (key === "options") out.options.push(...rest);
  }
  return out;
}

export function readHostResolvConf(path: string): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, "utf8"));
  } catch {
    return { nameservers: [], searches: [], options: [] };
  }
}

const dedupe = (xs: string[]) => [...new Set(xs)];

function mergeOptions(base: string[], extra: { name: string; value?: string }[]): string[] {
  const byName = new Map<string, string>();
  for (const o of base) byName.set(o.split(":")[0]!, o);
  for (const o of extra) byName.set(o.name, o.value !== undefined && o.value !== "" ? `${o.name}:${o.value}` : o.name);
  return [...byName.values()];
}

function limitSearches(searches: string[]): string[] {
  const out: string[] = [];
  let chars = 0;
  for (const s of searches) {
    if (out.length >= MAX_SEARCHES || chars + s.length + (out.length ? 1 : 0) > MAX_SEARCH_CHARS) break;
    chars += s.length + (out.length ? 1 : 0);
    out.push(s);
  }
  return out;
}

export interface DnsSettings {
  clusterDNS: string[];
  clusterDomain: string;
  host: ResolvConf;
}

export function podDNSConfig(pod: Pod, s: DnsSettings): DNSConfig {
  let policy = pod.spec.dnsPolicy ?? "ClusterFirst";
  if (pod.spec.hostNetwork && policy === "ClusterFirst") policy = "Default";
  if ((policy === "ClusterFirst" || policy === "ClusterFirstWithHostNet") && s.clusterDNS.length === 0) policy = "Default";
  let base: ResolvConf;
  switch (policy) {
    case "None":
      base = { nameservers: [], searches: [], options: [] };
      break;
    case "Default":
      base = { nameservers: [...s.host.nameservers], searches: [...s.host.searches], options: [...s.host.options] };
      break;
    default: {
      const ns = pod.metadata.namespace ?? "default";
      const d = s.clusterDomain;
      base = { nameservers: [...s.clusterDNS], searches: [`${ns}.svc.${d}`, `svc.${d}`, d, ...s.host.searches], options: ["ndots:5"] };
    }
  }
  const extra = pod.spec.dnsConfig;
  if (extra) {
    base.nameservers.push(...(extra.nameservers ?? []));
    base.searches.push(...(extra.searches ?? []));
    base.options = mergeOptions(base.options, extra.options ?? []);
  }
  return {
    servers: dedupe(base.nameservers).slice(0, MAX_NAMESERVERS),
    searches: limitSearches(dedupe(base.searches.map((x) => x.replace(/\.$/, "")))),
    options: dedupe(base.options),
  };
}
