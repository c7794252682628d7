// Name and address helpers for the cluster DNS: canonical names, DNS labels, reverse names and
// the dashed address spelling of pod records. DNS names are compared case-insensitively, so
// every name the store keeps or looks up goes through canonicalName() first.
import { isIPv4, isIPv6 } from "node:net";

/** Lower case, no trailing dot: the one spelling the record store uses. "" is the root. */
export function canonicalName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith(".") ? n.slice(0, -1) : n;
}

/** An RFC 1123 label, as Kubernetes requires of namespace, Service, port and host names. */
export function isDnsLabel(s: string): boolean {
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s);
}

/** A host name made of RFC 1123 labels (what an ExternalName or --domain must be). */
export function isDnsName(s: string): boolean {
  const n = canonicalName(s);
  return n.length > 0 && n.length <= 253 && n.split(".").every((l) => isDnsLabel(l) || /^[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?$/.test(l));
}

/** True when `name` is `zone` or lies under it (both canonical). */
export function isUnder(name: string, zone: string): boolean {
  return zone === "" || name === zone || name.endsWith(`.${zone}`);
}

/** The eight 16-bit groups of an IPv6 address, or undefined when it is not one. */
export function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip) || ip.includes("%")) return undefined;
  let text = ip.toLowerCase();
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const b = quad[1].split(".").map(Number);
    text = text.slice(0, -quad[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(zeros).fill("0"), ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run
 * compressed), or undefined when `ip` is not an address.
 */
export function canonicalIP(ip: string): string | undefined {
  if (isIPv4(ip)) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return undefined;
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function ipFamily(ip: string): 4 | 6 | undefined {
  return isIPv4(ip) ? 4 : ipv6Groups(ip) ? 6 : undefined;
}

/** `d.c.b.a.in-addr.arpa` or the 32-nibble `ip6.arpa` name of an address. */
export function reverseName(ip: string): string | undefined {
  if (isIPv4(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const groups = ipv6Groups(ip);
  if (!groups) return undefined;
  const nibbles = groups.map((g) => g.toString(16).padStart(4, "0")).join("");
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}

/** The reverse zone a reverse name belongs to, or undefined for other names. */
export function reverseZone(name: string): "in-addr.arpa" | "ip6.arpa" | undefined {
  if (isUnder(name, "in-addr.arpa")) return "in-addr.arpa";
  if (isUnder(name, "ip6.arpa")) return "ip6.arpa";
  return undefined;
}

/** `10-244-1-5` for 10.244.1.5, `fd00-10-244--5` for fd00:10:244::5: a pod record's first label. */
export function dashedIP(ip: string): string | undefined {
  const c = canonicalIP(ip);
  return c === undefined ? undefined : c.replace(/[.:]/g, "-");
}

/**
 * The address a dashed label spells, in canonical form, or undefined. Three dashes and no "--"
 * is IPv4, anything else is read as IPv6, so both `fd00-0-0-0-0-0-0-5` and `fd00--5` work.
 */
export function ipFromDashed(label: string): string | undefined {
  const v4 = label.split("-").length === 4 && !label.includes("--");
  const text = v4 ? label.replace(/-/g, ".") : label.replace(/-/g, ":");
  return canonicalIP(text);
}
