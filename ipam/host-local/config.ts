// host-local's configuration: the store location, the range sets (runtimeConfig.ipRanges, then
// the legacy single-range keys, then ipam.ranges, as the reference merges them), routes,
// resolvConf and the IPs a runtime asks for.
import { invalidConfig, invalidEnv } from "../../cni-plugins/pkg/errors.ts";
import { joinPath } from "../../cni-plugins/pkg/paths.ts";
import type { PluginContext } from "../../cni-plugins/pkg/skel.ts";
import type { Route } from "../../cni-plugins/pkg/types.ts";
import { formatAddr, parseAddr, parseCidr, type Addr } from "../../cni-plugins/pkg/addr.ts";
import { parseRangeSet, setsOverlap, type RangeSet } from "./range.ts";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

export interface StoreConfig {
  /** The network's own directory in the store: <dataDir>/<network name>. */
  dir: string;
}

export interface RequestedIP {
  addr: Addr;
  /** Where the request came from, for error messages. */
  source: string;
}

export interface HostLocalConfig extends StoreConfig {
  rangeSets: RangeSet[];
  routes: Route[];
  resolvConf?: string;
  requested: RequestedIP[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function ipamOf(ctx: PluginContext): Record<string, unknown> {
  const ipam = ctx.conf.ipam;
  if (ipam === undefined || ipam === null) throw invalidConfig("IPAM config missing 'ipam' key");
  if (!isObject(ipam)) throw invalidConfig("ipam must be an object");
  return ipam;
}

/** What DEL and GC need: they release reservations even when the ranges no longer parse. */
export function loadStoreConfig(ctx: PluginContext): StoreConfig {
  const ipam = ipamOf(ctx);
  const dataDir = ipam.dataDir ?? "";
  if (typeof dataDir !== "string" || dataDir.includes("\0")) throw invalidConfig("ipam.dataDir must be a path");
  // The network name was validated by skel (letters, digits, '_', '.', '-'), so it is one path component.
  return { dir: joinPath(dataDir || DEFAULT_DATA_DIR, ctx.conf.name) };
}

function parseRoutes(raw: unknown): Route[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidConfig("ipam.routes must be a list of routes");
  const routes: Route[] = [];
  for (let i = 0; i < raw.length; i++) {
    const r: unknown = raw[i];
    const where = `ipam.routes[${i}]`;
    if (!isObject(r)) throw invalidConfig(`${where} must be an object with a dst`);
    const dst = parseCidr(r.dst);
    if (!dst || dst.mapped) throw invalidConfig(`${where}.dst: ${JSON.stringify(r.dst)} is not a subnet in CIDR notation`);
    // The reference reports the destination as written (host bits too), normalised like Go.
    const route: Route = { dst: `${formatAddr(dst.addr)}/${dst.prefix}` };
    if (r.gw !== undefined && r.gw !== null && r.gw !== "") {
      const gw = parseAddr(r.gw);
      if (!gw) throw invalidConfig(`${where}.gw: ${JSON.stringify(r.gw)} is not an IP address`);
      if (gw.v6 !== dst.addr.v6) throw invalidConfig(`${where}.gw ${formatAddr(gw)} is not of the family of dst ${route.dst}`);
      route.gw = formatAddr(gw);
    }
    for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
      const v = r[k];
      if (v === undefined || v === null) continue;
      if (!Number.isInteger(v) || (v as number) < 0) throw invalidConfig(`${where}.${k} must be a non-negative integer`);
      route[k] = v as number;
    }
    routes.push(route);
  }
  return routes;
}

function requestedFromList(raw: unknown, where: string): RequestedIP[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidConfig(`${where} must be a list of IP addresses`);
  const out: RequestedIP[] = [];
  for (let i = 0; i < raw.length; i++) {
    const addr = parseRequested(raw[i]);
    if (!addr) throw invalidConfig(`${where}[${i}]: ${JSON.stringify(raw[i])} is not an IP address`);
    out.push({ addr, source: `${where}[${i}]` });
  }
  return out;
}

/** An IP, optionally with a prefix length that is ignored (as the reference reads "10.0.0.5/24"). */
function parseRequested(v: unknown): Addr | undefined {
  if (typeof v !== "string") return undefined;
  if (!v.includes("/")) return parseAddr(v);
  const c = parseCidr(v);
  return c && !c.mapped ? c.addr : undefined;
}

function requestedIPs(ctx: PluginContext): RequestedIP[] {
  const out: RequestedIP[] = [];
  const fromArgs = ctx.args.get("IP");
  if (fromArgs !== undefined && fromArgs !== "") {
    for (const part of fromArgs.split(",")) {
      const addr = parseRequested(part.trim());
      if (!addr) throw invalidEnv(`CNI_ARGS IP: ${JSON.stringify(part)} is not an IP address`, "IP takes one address or a comma-separated list");
      out.push({ addr, source: "CNI_ARGS IP" });
    }
  }
  const cniArgs = ctx.conf.args?.cni;
  if (isObject(cniArgs)) out.push(...requestedFromList(cniArgs.ips, "args.cni.ips"));
  const rc = ctx.conf.runtimeConfig;
  if (isObject(rc)) out.push(...requestedFromList(rc.ips, "runtimeConfig.ips"));
  // The same address asked for twice is one request.
  const seen = new Set<string>();
  const unique: RequestedIP[] = [];
  for (const r of out) {
    const key = `${r.addr.v6}/${r.addr.n}`;
    if (!seen.has(key)) unique.push(r);
    seen.add(key);
  }
  return unique;
}

function rangeSets(ctx: PluginContext, ipam: Record<string, unknown>): RangeSet[] {
  const sets: RangeSet[] = [];
  const rc = ctx.conf.runtimeConfig;
  if (isObject(rc) && rc.ipRanges !== undefined && rc.ipRanges !== null) {
    if (!Array.isArray(rc.ipRanges)) throw invalidConfig("runtimeConfig.ipRanges must be a list of range sets");
    for (let i = 0; i < rc.ipRanges.length; i++) sets.push(parseRangeSet(rc.ipRanges[i], `runtimeConfig.ipRanges[${i}]`));
  }
  if (ipam.subnet !== undefined && ipam.subnet !== null && ipam.subnet !== "") {
    sets.push(parseRangeSet(ipam, "ipam", true));
  } else {
    for (const k of ["rangeStart", "rangeEnd", "gateway"]) {
      if (ipam[k] !== undefined && ipam[k] !== null && ipam[k] !== "") throw invalidConfig(`ipam.${k} needs ipam.subnet (or use ipam.ranges)`);
    }
  }
  if (ipam.ranges !== undefined && ipam.ranges !== null) {
    if (!Array.isArray(ipam.ranges)) throw invalidConfig("ipam.ranges must be a list of range sets (lists of ranges)");
    for (let i = 0; i < ipam.ranges.length; i++) sets.push(parseRangeSet(ipam.ranges[i], `ipam.ranges[${i}]`));
  }
  if (sets.length === 0) throw invalidConfig("no IP ranges specified (ipam.ranges)");
  for (let i = 0; i < sets.length; i++) {
    for (let j = 0; j < i; j++) {
      if (setsOverlap(sets[j]!, sets[i]!)) throw invalidConfig(`${sets[i]!.where} overlaps with ${sets[j]!.where}`);
    }
  }
  return sets;
}

/** The whole configuration, for ADD, CHECK and STATUS. */
export function loadConfig(ctx: PluginContext): HostLocalConfig {
  const ipam = ipamOf(ctx);
  const store = loadStoreConfig(ctx);
  if (ipam.resolvConf !== undefined && ipam.resolvConf !== null && typeof ipam.resolvConf !== "string") throw invalidConfig("ipam.resolvConf must be a path");
  const resolvConf = typeof ipam.resolvConf === "string" && ipam.resolvConf !== "" ? ipam.resolvConf : undefined;
  const cfg: HostLocalConfig = { ...store, rangeSets: rangeSets(ctx, ipam), routes: parseRoutes(ipam.routes), requested: requestedIPs(ctx) };
  if (resolvConf) cfg.resolvConf = resolvConf;
  return cfg;
}
