// portmap configuration: the keys of the reference plugin, validated up front so that a bad
// value is a code-7 error before anything in the kernel changes.
import { ipFamily as isIP } from "../pkg/addr.ts";
import { invalidConfig } from "../pkg/errors.ts";
import type { NetConf, Result } from "../pkg/types.ts";

export type Protocol = "tcp" | "udp" | "sctp";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** Destination restriction; undefined when absent or unspecified (0.0.0.0 / ::). */
  hostIP?: string;
  /** Family of hostIP when one was given (an unspecified address still binds the mapping to its family). */
  hostFamily?: 4 | 6;
}

export interface PortMapConfig {
  mappings: PortMapping[];
  snat: boolean;
  masqAll: boolean;
  markMasqBit: number;
  conditionsV4: string[];
  conditionsV6: string[];
}

export const DEFAULT_MARK_BIT = 13;

const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "sctp"];

function optionalBool(conf: NetConf, key: string, dflt: boolean): boolean {
  const v = conf[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") throw invalidConfig(`${key} must be a boolean`, `got ${JSON.stringify(v)}`);
  return v;
}

function port(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw invalidConfig(`${where} must be a port number from 1 to 65535`, `got ${JSON.stringify(v)}`);
  }
  return v;
}

function parseMapping(raw: unknown, n: number): PortMapping {
  const where = `runtimeConfig.portMappings[${n}]`;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw invalidConfig(`${where} must be an object`);
  const o = raw as Record<string, unknown>;
  const hostPort = port(o.hostPort, `${where}.hostPort`);
  const containerPort = port(o.containerPort, `${where}.containerPort`);
  // A missing protocol means TCP, as in a Kubernetes ContainerPort.
  let protocol: Protocol = "tcp";
  if (o.protocol !== undefined && o.protocol !== null && o.protocol !== "") {
    const p = typeof o.protocol === "string" ? o.protocol.toLowerCase() : "";
    if (!(PROTOCOLS as readonly string[]).includes(p)) {
      throw invalidConfig(`${where}.protocol must be tcp, udp or sctp`, `got ${JSON.stringify(o.protocol)}`);
    }
    protocol = p as Protocol;
  }
  const m: PortMapping = { hostPort, containerPort, protocol };
  if (o.hostIP !== undefined && o.hostIP !== null && o.hostIP !== "") {
    const family = typeof o.hostIP === "string" ? isIP(o.hostIP) : 0;
    if (family !== 4 && family !== 6) throw invalidConfig(`${where}.hostIP must be an IP address`, `got ${JSON.stringify(o.hostIP)}`);
    m.hostFamily = family;
    const unspecified = family === 4 ? o.hostIP === "0.0.0.0" : /^[:0]+$/.test(o.hostIP as string);
    if (!unspecified) m.hostIP = o.hostIP as string;
  }
  return m;
}

// Conditions are nftables match expressions placed inside our rules. Everything that could end
// the rule and start another command (';', newlines, braces), comment the rest out ('#'), pull in
// definitions ('$', include) or escape quoting ('\') is refused, and so are verdicts and NAT
// statements, which would turn a condition into an action.
const CONDITION_CHARS = /^[A-Za-z0-9 _.,:\/!=<>&|^~()\[\]@*"+-]*$/;
const CONDITION_FORBIDDEN_WORDS = /\b(accept|drop|reject|queue|jump|goto|return|continue|dnat|snat|masquerade|redirect|include|define|set|counter|log|limit|quota|notrack|dup|fwd)\b/i;

export function validateCondition(c: unknown, where: string): string {
  if (typeof c !== "string") throw invalidConfig(`${where} must be a string`, `got ${JSON.stringify(c)}`);
  const s = c.trim();
  if (s === "") throw invalidConfig(`${where} is empty`);
  if (/[;\n\r{}#]/.test(s)) throw invalidConfig(`${where} must be a single nftables match expression`, `';', newlines, braces and '#' are not allowed: ${JSON.stringify(c)}`);
  if (!CONDITION_CHARS.test(s)) throw invalidConfig(`${where} contains a character not allowed in a match expression`, JSON.stringify(c));
  if ((s.match(/"/g) ?? []).length % 2 !== 0) throw invalidConfig(`${where} has an unterminated quoted string`, JSON.stringify(c));
  if (s.startsWith("-") || s.startsWith("!")) {
    throw invalidConfig(`${where} looks like an iptables condition; this portmap uses nftables`, `give an nftables match expression such as "ip daddr != 10.0.0.0/8": ${JSON.stringify(c)}`);
  }
  // Quoted names and "ct status dnat"-style matches may contain these words without acting.
  const word = CONDITION_FORBIDDEN_WORDS.exec(s.replace(/"[^"]*"/g, '""').replace(/\bct\s+status\s+[!=]*\s*[\w,|]+/gi, ""));
  if (word) throw invalidConfig(`${where} must only match packets, not act on them`, `"${word[1]}" is not allowed: ${JSON.stringify(c)}`);
  return s;
}

function conditions(conf: NetConf, key: string): string[] {
  const v = conf[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig(`${key} must be a list of nftables match expressions`, `got ${JSON.stringify(v)}`);
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) out.push(validateCondition(v[i], `${key}[${i}]`));
  return out;
}

/** Reads and validates the plugin's keys (not the container's addresses). */
export function parseConfig(conf: NetConf): PortMapConfig {
  if (conf.backend !== undefined && conf.backend !== null && conf.backend !== "nftables") {
    throw invalidConfig(`backend ${JSON.stringify(conf.backend)} is not supported`, 'this portmap programs nftables only; remove "backend" or set it to "nftables"');
  }
  if (conf.externalSetMarkChain !== undefined && conf.externalSetMarkChain !== null) {
    throw invalidConfig("externalSetMarkChain is an iptables option", "this portmap programs nftables; use markMasqBit to choose the masquerade mark bit");
  }
  let markMasqBit = DEFAULT_MARK_BIT;
  if (conf.markMasqBit !== undefined && conf.markMasqBit !== null) {
    const b = conf.markMasqBit;
    if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 31) throw invalidConfig("markMasqBit must be an integer from 0 to 31", `got ${JSON.stringify(b)}`);
    markMasqBit = b;
  }
  const rc = conf.runtimeConfig;
  if (rc !== undefined && rc !== null && (typeof rc !== "object" || Array.isArray(rc))) throw invalidConfig("runtimeConfig must be an object");
  const raw = rc?.portMappings;
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) throw invalidConfig("runtimeConfig.portMappings must be a list");
  // A loop, not map: every pod's ADD runs this, and a compiled plugin compiles each array
  // builtin on its first call.
  const mappings: PortMapping[] = [];
  for (let i = 0; i < (raw ?? []).length; i++) mappings.push(parseMapping(raw![i], i));
  return {
    mappings,
    snat: optionalBool(conf, "snat", true),
    masqAll: optionalBool(conf, "masqAll", false),
    markMasqBit,
    conditionsV4: conditions(conf, "conditionsV4"),
    conditionsV6: conditions(conf, "conditionsV6"),
  };
}

export interface ContainerIPs {
  v4?: string;
  v6?: string;
}

/**
 * The container's addresses from prevResult: the first of each family that belongs to the
 * interface CNI_IFNAME inside the sandbox (IPs tied to host-side interfaces are skipped).
 */
export function containerIPs(prev: Result, ifname: string): ContainerIPs {
  const out: ContainerIPs = {};
  for (const ip of prev.ips ?? []) {
    if (ip.interface !== undefined) {
      const iface = prev.interfaces?.[ip.interface];
      if (iface && (iface.name !== ifname || !iface.sandbox)) continue;
    }
    const addr = ip.address.slice(0, ip.address.indexOf("/"));
    if (isIP(addr) === 4) out.v4 ??= addr;
    else out.v6 ??= addr;
  }
  return out;
}
