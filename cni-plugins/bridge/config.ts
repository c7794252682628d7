// The bridge network configuration: the reference plugin's keys, types checked.
// Unknown keys are ignored (other plugins of a list may read them); a known key with the wrong
// type or value is an "invalid config" error (code 7) naming the key.
import { ifnameProblem } from "../pkg/env.ts";
import { CniError, ErrCode, invalidConfig } from "../pkg/errors.ts";
import { encode } from "../pkg/fd.ts";
import type { PluginContext } from "../pkg/skel.ts";
import type { DNS } from "../pkg/types.ts";

export interface BridgeConf {
  network: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  /** 0: the kernel's default. */
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** 0: no VLAN. */
  vlan: number;
  vlanTrunk: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enableDad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** The container interface's MAC when the runtime asks for one. */
  mac?: string;
  ipamType?: string;
  dns?: DNS;
  /** For GC: the attachments the runtime still knows. */
  validAttachments?: { containerID: string; ifname: string }[];
}

export const DEFAULT_BRIDGE = "cni0";
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

type Raw = Record<string, unknown>;

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function bool(raw: Raw, key: string): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw invalidConfig(`"${key}" must be true or false`, `got ${show(v)}`);
  return v;
}

function int(raw: Raw, key: string, min: number, max: number, what: string): number {
  const v = raw[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw invalidConfig(`"${key}" must be ${what}`, `got ${show(v)}`);
  return v;
}

/** A unicast MAC address, or a code-`code` error naming where it came from. */
function macFrom(v: unknown, where: string, code: number): string {
  if (typeof v !== "string" || !MAC.test(v)) throw new CniError(code, `${where} must be a MAC address like 0a:58:0a:f4:00:05`, `got ${show(v)}`);
  if (parseInt(v.slice(0, 2), 16) & 1) throw new CniError(code, `${where} must be a unicast MAC address`, `${v} is a multicast address`);
  if (/^(00:){5}00$/.test(v)) throw new CniError(code, `${where} must not be all zeros`);
  return v.toLowerCase();
}

function object(raw: Raw, key: string): Raw | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw invalidConfig(`"${key}" must be an object`, `got ${show(v)}`);
  return v as Raw;
}

function vlanTrunk(raw: Raw): number[] {
  const v = raw.vlanTrunk;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig(`"vlanTrunk" must be a list of {id} or {minID, maxID}`, `got ${show(v)}`);
  const ids = new Set<number>();
  const vid = (x: unknown, key: string) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 1 || x > 4094) throw invalidConfig(`"vlanTrunk" ${key} must be a VLAN ID from 1 to 4094`, `got ${show(x)}`);
    return x;
  };
  v.forEach((item, i) => {
    if (!item || typeof item !== "object" || Array.isArray(item)) throw invalidConfig(`"vlanTrunk[${i}]" must be an object`, `got ${show(item)}`);
    const o = item as Raw;
    const hasMin = o.minID !== undefined && o.minID !== null, hasMax = o.maxID !== undefined && o.maxID !== null;
    if (hasMin !== hasMax) throw invalidConfig(`"vlanTrunk[${i}]" needs both minID and maxID`);
    if (hasMin) {
      const lo = vid(o.minID, `[${i}].minID`), hi = vid(o.maxID, `[${i}].maxID`);
      if (hi < lo) throw invalidConfig(`"vlanTrunk[${i}]" minID is greater than maxID`, `${lo} > ${hi}`);
      for (let id = lo; id <= hi; id++) ids.add(id);
    }
    if (o.id !== undefined && o.id !== null) ids.add(vid(o.id, `[${i}].id`));
  });
  return [...ids].sort((a, b) => a - b);
}

function dnsOf(raw: Raw): DNS | undefined {
  const d = object(raw, "dns");
  if (!d) return undefined;
  const out: DNS = {};
  for (const k of ["nameservers", "search", "options"] as const) {
    const v = d[k];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw invalidConfig(`"dns.${k}" must be a list of strings`, `got ${show(v)}`);
    out[k] = v as string[];
  }
  if (d.domain !== undefined && d.domain !== null) {
    if (typeof d.domain !== "string") throw invalidConfig(`"dns.domain" must be a string`, `got ${show(d.domain)}`);
    out.domain = d.domain;
  }
  return out;
}

/** GC's list of live attachments; libcni also sends it under the older key "cni.dev/attachments". */
function attachments(raw: Raw): BridgeConf["validAttachments"] {
  const key = raw["cni.dev/valid-attachments"] !== undefined ? "cni.dev/valid-attachments" : "cni.dev/attachments";
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidConfig(`"${key}" must be a list`, `got ${show(v)}`);
  return v.map((a, i) => {
    const o = (a ?? {}) as Raw;
    if (typeof o.containerID !== "string" || typeof o.ifname !== "string") throw invalidConfig(`"${key}[${i}]" must have string containerID and ifname`, `got ${show(a)}`);
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

/** The MAC the runtime asks for: runtimeConfig.mac over args.cni.mac over CNI_ARGS MAC, as the reference orders them. */
function requestedMac(ctx: PluginContext, raw: Raw): string | undefined {
  let mac: string | undefined;
  const env = ctx.args.get("MAC");
  if (env !== undefined && env !== "") mac = macFrom(env, "CNI_ARGS MAC", ErrCode.InvalidEnv);
  const cni = object(object(raw, "args") ?? {}, "cni");
  if (cni?.mac !== undefined && cni.mac !== "") mac = macFrom(cni.mac, `"args.cni.mac"`, ErrCode.InvalidConfig);
  const rc = object(raw, "runtimeConfig");
  if (rc?.mac !== undefined && rc.mac !== "") mac = macFrom(rc.mac, `"runtimeConfig.mac"`, ErrCode.InvalidConfig);
  return mac;
}

export function parseBridgeConf(ctx: PluginContext): BridgeConf {
  const raw = ctx.conf as Raw;
  let bridge = DEFAULT_BRIDGE;
  if (raw.bridge !== undefined && raw.bridge !== null && raw.bridge !== "") {
    if (typeof raw.bridge !== "string") throw invalidConfig(`"bridge" must be an interface name`, `got ${show(raw.bridge)}`);
    const problem = ifnameProblem(raw.bridge);
    if (problem) throw invalidConfig(`"bridge": ${problem}`, `got ${show(raw.bridge)}; at most 15 bytes, no '/', ':' or whitespace`);
    bridge = raw.bridge;
  }
  const ipam = object(raw, "ipam");
  let ipamType: string | undefined;
  if (ipam && ipam.type !== undefined && ipam.type !== null && ipam.type !== "") {
    if (typeof ipam.type !== "string") throw invalidConfig(`"ipam.type" must be a plugin name`, `got ${show(ipam.type)}`);
    ipamType = ipam.type;
  }
  if (raw.ipMasqBackend !== undefined && raw.ipMasqBackend !== null && raw.ipMasqBackend !== "iptables" && raw.ipMasqBackend !== "nftables") {
    throw invalidConfig(`"ipMasqBackend" must be "nftables" or "iptables"`, `got ${show(raw.ipMasqBackend)}; podnet always masquerades with nftables`);
  }
  const conf: BridgeConf = {
    network: ctx.conf.name,
    bridge,
    isGateway: bool(raw, "isGateway"),
    isDefaultGateway: bool(raw, "isDefaultGateway"),
    forceAddress: bool(raw, "forceAddress"),
    ipMasq: bool(raw, "ipMasq"),
    mtu: int(raw, "mtu", 0, 65535, "an MTU from 68 to 65535 (or 0 for the default)"),
    hairpinMode: bool(raw, "hairpinMode"),
    promiscMode: bool(raw, "promiscMode"),
    vlan: int(raw, "vlan", 0, 4094, "a VLAN ID from 0 to 4094"),
    vlanTrunk: vlanTrunk(raw),
    preserveDefaultVlan: bool(raw, "preserveDefaultVlan"),
    macspoofchk: bool(raw, "macspoofchk"),
    enableDad: bool(raw, "enabledad"),
    disableContainerInterface: bool(raw, "disableContainerInterface"),
    portIsolation: bool(raw, "portIsolation"),
    mac: requestedMac(ctx, raw),
    ipamType,
    dns: dnsOf(raw),
    validAttachments: attachments(raw),
  };
  if (conf.mtu !== 0 && conf.mtu < 68) throw invalidConfig(`"mtu" must be an MTU from 68 to 65535 (or 0 for the default)`, `got ${conf.mtu}`);
  if (conf.isDefaultGateway) conf.isGateway = true;
  if (conf.hairpinMode && conf.promiscMode) throw invalidConfig(`"hairpinMode" and "promiscMode" cannot both be true`);
  if (conf.disableContainerInterface && ipamType) throw invalidConfig(`"disableContainerInterface" cannot be used with IPAM`, `remove "ipam.type" or the flag`);
  if (conf.vlan !== 0 && conf.isGateway && encode(`${bridge}.${conf.vlan}`).length > 15) {
    throw invalidConfig(`"bridge" name too long for a VLAN gateway interface`, `the gateway interface ${bridge}.${conf.vlan} would be longer than 15 bytes`);
  }
  return conf;
}

export const usesVlans = (c: BridgeConf) => c.vlan !== 0 || c.vlanTrunk.length > 0;
