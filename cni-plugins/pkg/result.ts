// Result parsing, validation and conversion between the supported versions.
// 0.3.x/0.4.0 results carry "version" on each IP; 1.x results do not, and 1.1.0 adds
// interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope.
import { ipFamily as isIP } from "./addr.ts";
import { CniError, ErrCode } from "./errors.ts";
import type { DNS, Interface, IPConfig, Result, Route } from "./types.ts";
import { atLeast, isSupported } from "./version.ts";

const IFACE_11_KEYS = ["mtu", "socketPath", "pciID"] as const;
const ROUTE_11_KEYS = ["mtu", "advmss", "priority", "table", "scope"] as const;

/** Splits "10.0.0.5/24" into address and prefix length; undefined when it is not a CIDR. */
export function parseCIDR(s: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = s.slice(0, slash);
  const fam = isIP(ip);
  const prefixText = s.slice(slash + 1);
  if (!fam || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (fam === 4 ? 32 : 128)) return undefined;
  return { ip, prefix, family: fam as 4 | 6 };
}

// Loops rather than forEach/map/every here and below: every plugin start runs this code once,
// and a compiled plugin compiles each such builtin on its first call (0.1-0.3 M instructions).

function isStringList(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== "string") return false;
  return true;
}

/** Copies of the objects in `list` (shallow), `drop` left out of each. */
function copies<T extends object>(list: T[], drop?: string): T[] {
  const out: T[] = [];
  for (let i = 0; i < list.length; i++) {
    const c = { ...list[i]! } as Record<string, unknown>;
    if (drop) delete c[drop];
    out.push(c as T);
  }
  return out;
}

/** Lists what is wrong with a result against the schema of `version`; empty when it conforms. */
export function validateResult(raw: unknown, version: string, opts: { ipam?: boolean } = {}): string[] {
  const errs: string[] = [];
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return ["result is not a JSON object"];
  const r = raw as Record<string, unknown>;
  if (r.cniVersion !== version) errs.push(`cniVersion is ${JSON.stringify(r.cniVersion)}, expected "${version}"`);
  const v1 = atLeast(version, "1.0.0");
  const v11 = atLeast(version, "1.1.0");
  const ifaceCount = Array.isArray(r.interfaces) ? r.interfaces.length : 0;
  if (r.interfaces !== undefined) {
    if (opts.ipam) errs.push("an IPAM result must not carry interfaces");
    if (!Array.isArray(r.interfaces)) errs.push("interfaces is not a list");
    else for (let n = 0; n < r.interfaces.length; n++) {
      const i: unknown = r.interfaces[n];
      if (!i || typeof i !== "object") {
        errs.push(`interfaces[${n}] is not an object`);
        continue;
      }
      const o = i as Record<string, unknown>;
      if (typeof o.name !== "string" || !o.name) errs.push(`interfaces[${n}].name missing`);
      if (o.mac !== undefined && (typeof o.mac !== "string" || (o.mac !== "" && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.mac)))) errs.push(`interfaces[${n}].mac ${JSON.stringify(o.mac)} is not a MAC address`);
      if (o.sandbox !== undefined && typeof o.sandbox !== "string") errs.push(`interfaces[${n}].sandbox is not a string`);
      for (const k of IFACE_11_KEYS) if (o[k] !== undefined && !v11) errs.push(`interfaces[${n}].${k} is not defined before 1.1.0`);
      if (o.mtu !== undefined && !(Number.isInteger(o.mtu) && (o.mtu as number) >= 0)) errs.push(`interfaces[${n}].mtu is not an unsigned integer`);
    }
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips)) errs.push("ips is not a list");
    else for (let n = 0; n < r.ips.length; n++) {
      const i: unknown = r.ips[n];
      if (!i || typeof i !== "object") {
        errs.push(`ips[${n}] is not an object`);
        continue;
      }
      const o = i as Record<string, unknown>;
      const cidr = parseCIDR(o.address as string);
      if (!cidr) errs.push(`ips[${n}].address ${JSON.stringify(o.address)} is not in CIDR notation`);
      if (o.gateway !== undefined && !isIP(String(o.gateway))) errs.push(`ips[${n}].gateway ${JSON.stringify(o.gateway)} is not an IP address`);
      if (v1) {
        if (o.version !== undefined) errs.push(`ips[${n}].version is not part of ${version} results`);
      } else if (o.version !== "4" && o.version !== "6") errs.push(`ips[${n}].version must be "4" or "6" in ${version} results`);
      else if (cidr && String(cidr.family) !== o.version) errs.push(`ips[${n}].version "${o.version}" does not match ${o.address}`);
      if (o.interface !== undefined) {
        if (opts.ipam) errs.push(`ips[${n}].interface must not be set by an IPAM plugin`);
        else if (!Number.isInteger(o.interface) || (o.interface as number) < 0 || (o.interface as number) >= ifaceCount) errs.push(`ips[${n}].interface ${JSON.stringify(o.interface)} is not an index into interfaces`);
      }
    }
  }
  if (r.routes !== undefined) {
    if (!Array.isArray(r.routes)) errs.push("routes is not a list");
    else for (let n = 0; n < r.routes.length; n++) {
      const i: unknown = r.routes[n];
      if (!i || typeof i !== "object") {
        errs.push(`routes[${n}] is not an object`);
        continue;
      }
      const o = i as Record<string, unknown>;
      if (!parseCIDR(o.dst as string)) errs.push(`routes[${n}].dst ${JSON.stringify(o.dst)} is not in CIDR notation`);
      if (o.gw !== undefined && !isIP(String(o.gw))) errs.push(`routes[${n}].gw ${JSON.stringify(o.gw)} is not an IP address`);
      for (const k of ROUTE_11_KEYS) if (o[k] !== undefined && !v11) errs.push(`routes[${n}].${k} is not defined before 1.1.0`);
    }
  }
  if (r.dns !== undefined) {
    if (!r.dns || typeof r.dns !== "object" || Array.isArray(r.dns)) errs.push("dns is not an object");
    else {
      const d = r.dns as Record<string, unknown>;
      for (const k of ["nameservers", "search", "options"]) if (d[k] !== undefined && !isStringList(d[k])) errs.push(`dns.${k} is not a list of strings`);
      if (d.domain !== undefined && typeof d.domain !== "string") errs.push("dns.domain is not a string");
    }
  }
  const known = new Set(["cniVersion", "interfaces", "ips", "routes", "dns"]);
  for (const k of Object.keys(r)) if (!known.has(k)) errs.push(`unknown top-level key "${k}"`);
  return errs;
}

/** Reads a result (or prevResult) written in `version` into the internal 1.1.0 form. */
export function parseResult(raw: unknown, version: string, what = "result"): Result {
  if (!isSupported(version)) throw new CniError(ErrCode.IncompatibleVersion, `unsupported ${what} version "${version}"`);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new CniError(ErrCode.DecodeFailure, `${what} is not a JSON object`);
  const r = raw as Record<string, unknown>;
  // A prevResult may carry its own cniVersion; trust it when it is one we read.
  const from = typeof r.cniVersion === "string" && isSupported(r.cniVersion) ? r.cniVersion : version;
  const errs = validateResult({ ...r, cniVersion: from }, from);
  if (errs.length) throw new CniError(ErrCode.DecodeFailure, `invalid ${what}`, errs.join("; "));
  const out: Result = { cniVersion: "1.1.0" };
  if (Array.isArray(r.interfaces)) out.interfaces = copies(r.interfaces as Interface[]);
  if (Array.isArray(r.ips)) out.ips = copies(r.ips as IPConfig[], "version");
  if (Array.isArray(r.routes)) out.routes = copies(r.routes as Route[]);
  if (r.dns && typeof r.dns === "object") out.dns = { ...(r.dns as DNS) };
  return out;
}

const familyOf = (address: string) => (address.includes(":") ? "6" : "4");

function pick<T extends object>(o: T, keys: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if ((o as Record<string, unknown>)[k] !== undefined) out[k] = (o as Record<string, unknown>)[k];
  return out as Partial<T>;
}

function isEmptyDNS(d: DNS | undefined): boolean {
  return !d || (!d.nameservers?.length && !d.domain && !d.search?.length && !d.options?.length);
}

/** Writes an internal result in the shape of `version`, keys in the spec's order. */
export function convertResult(r: Result, version: string): Record<string, unknown> {
  if (!isSupported(version)) throw new CniError(ErrCode.IncompatibleVersion, `cannot convert result to unsupported version "${version}"`);
  const v1 = atLeast(version, "1.0.0");
  const v11 = atLeast(version, "1.1.0");
  const ifaceKeys = v11 ? ["name", "mac", "mtu", "sandbox", "socketPath", "pciID"] : ["name", "mac", "sandbox"];
  const routeKeys = v11 ? ["dst", "gw", "mtu", "advmss", "priority", "table", "scope"] : ["dst", "gw"];
  const out: Record<string, unknown> = { cniVersion: version };
  if (r.interfaces?.length) {
    const list: unknown[] = (out.interfaces = []);
    for (let i = 0; i < r.interfaces.length; i++) list.push(pick(r.interfaces[i]!, ifaceKeys));
  }
  if (r.ips?.length) {
    const list: unknown[] = (out.ips = []);
    for (let i = 0; i < r.ips.length; i++) {
      const ip = r.ips[i]!;
      const o: Record<string, unknown> = v1 ? {} : { version: familyOf(ip.address) };
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      list.push(o);
    }
  }
  if (r.routes?.length) {
    const list: unknown[] = (out.routes = []);
    for (let i = 0; i < r.routes.length; i++) list.push(pick(r.routes[i]!, routeKeys));
  }
  if (!isEmptyDNS(r.dns)) out.dns = pick(r.dns!, ["nameservers", "domain", "search", "options"]);
  return out;
}

/** The reference plugins' habit: 4-space indented JSON with no trailing newline. */
export function formatJSON(v: unknown): string {
  return JSON.stringify(v, null, 4);
}
