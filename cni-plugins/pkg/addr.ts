// IP addresses as (family, bigint) pairs: parsing, Go-compatible formatting and subnet math.
// The formatting must match Go's net.IP.String() byte for byte, because the reference plugin
// and ours name the store's files after addresses and must find each other's reservations.

export interface Addr {
  v6: boolean;
  n: bigint;
}

export interface Subnet {
  /** The network address (host bits zero). */
  net: Addr;
  prefix: number;
}

export const bitsOf = (v6: boolean) => (v6 ? 128 : 32);

const V4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function parseV4(s: string): bigint | undefined {
  // Leading zeros are refused, as Go (and inet_pton) refuse them: "010" is ambiguous.
  const m = V4.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return BigInt(n);
}

function parseHexGroups(s: string, allowV4Tail: boolean): bigint[] | undefined {
  if (s === "") return [];
  const parts = s.split(":");
  const out: bigint[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (allowV4Tail && i === parts.length - 1 && p.includes(".")) {
      const v4 = parseV4(p);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
      out.push(BigInt(parseInt(p, 16)));
    } else return undefined;
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  const dbl = s.indexOf("::");
  let groups: bigint[];
  if (dbl >= 0) {
    if (s.indexOf("::", dbl + 1) >= 0) return undefined;
    const head = parseHexGroups(s.slice(0, dbl), false);
    const tail = parseHexGroups(s.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  } else {
    const all = parseHexGroups(s, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/**
 * Parses an IPv4 or IPv6 address; undefined when it is neither. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) reads as IPv4, as Go's To4() makes the reference read it.
 */
export function parseAddr(s: unknown): Addr | undefined {
  if (typeof s !== "string" || s.length > 64) return undefined;
  if (s.includes(":")) {
    const n = parseV6(s);
    if (n === undefined) return undefined;
    if (n >> 32n === 0xffffn) return { v6: false, n: n & 0xffffffffn };
    return { v6: true, n };
  }
  const n = parseV4(s);
  return n === undefined ? undefined : { v6: false, n };
}

/** Parses "addr/prefix", keeping the address as written (host bits and all). */
export function parseCidr(s: unknown): { addr: Addr; prefix: number; mapped: boolean } | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ipText = s.slice(0, slash);
  const addr = parseAddr(ipText);
  const prefixText = s.slice(slash + 1);
  if (!addr || !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const mapped = !addr.v6 && ipText.includes(":");
  if (prefix > (mapped ? 128 : bitsOf(addr.v6))) return undefined;
  return { addr, prefix, mapped };
}

/** Go's net.IP.String(): dotted quad, or RFC 5952 (longest zero run of 2+ groups as "::", leftmost on ties). */
export function formatAddr(a: Addr): string {
  if (!a.v6) {
    const n = Number(a.n);
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((a.n >> BigInt(i * 16)) & 0xffffn));
  return formatV6Groups(g);
}

/**
 * Eight 16-bit groups as RFC 5952 text: lowercase hex, the longest run of two or more zero groups
 * (the leftmost of equal ones) as "::". Loops only: plugins format addresses on every ADD.
 */
export function formatV6Groups(g: number[]): string {
  let bestStart = 8, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = "";
  for (let i = 0; i < bestStart; i++) s += (i ? ":" : "") + g[i]!.toString(16);
  if (bestStart === 8) return s;
  s += "::";
  for (let i = bestStart + bestLen; i < 8; i++) s += (i > bestStart + bestLen ? ":" : "") + g[i]!.toString(16);
  return s;
}

/** A map key for an address (file names may spell one address several ways). */
export const addrKey = (a: Addr) => `${a.v6 ? 6 : 4}/${a.n}`;

export const sameAddr = (a: Addr, b: Addr) => a.v6 === b.v6 && a.n === b.n;

export function hostMask(s: Subnet): bigint {
  return (1n << BigInt(bitsOf(s.net.v6) - s.prefix)) - 1n;
}

export function inSubnet(a: Addr, s: Subnet): boolean {
  return a.v6 === s.net.v6 && (a.n & ~hostMask(s)) === s.net.n;
}

/** The last address of the subnet (the IPv4 broadcast address). */
export function lastOf(s: Subnet): Addr {
  return { v6: s.net.v6, n: s.net.n | hostMask(s) };
}

export const offset = (a: Addr, by: bigint): Addr => ({ v6: a.v6, n: a.n + by });

export function formatSubnet(s: Subnet): string {
  return `${formatAddr(s.net)}/${s.prefix}`;
}

/** 4 or 6 for an IP address as written (an IPv4-mapped IPv6 address counts as 6), else 0. */
export function ipFamily(s: unknown): 0 | 4 | 6 {
  if (!parseAddr(s)) return 0;
  return (s as string).includes(":") ? 6 : 4;
}
