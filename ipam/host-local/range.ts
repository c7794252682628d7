// Ranges and range sets: validation with defaults (as the reference fills them in), membership,
// the round-robin walk and capacity.
import { invalidConfig } from "../../cni-plugins/pkg/errors.ts";
import { bitsOf, formatAddr, formatSubnet, inSubnet, lastOf, offset, parseAddr, parseCidr, sameAddr, type Addr, type Subnet } from "../../cni-plugins/pkg/addr.ts";

export interface Range {
  subnet: Subnet;
  start: Addr;
  end: Addr;
  gateway: Addr;
}

export interface RangeSet {
  ranges: Range[];
  v6: boolean;
  /** Where the set came from in the config, for error messages (e.g. "ipam.ranges[1]"). */
  where: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function optionalAddr(raw: Record<string, unknown>, key: string, where: string, subnet: Subnet): Addr | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === "") return undefined;
  const a = parseAddr(v);
  if (!a) throw invalidConfig(`${where}.${key}: ${JSON.stringify(v)} is not an IP address`);
  if (a.v6 !== subnet.net.v6) throw invalidConfig(`${where}.${key}: ${formatAddr(a)} is not of the family of subnet ${formatSubnet(subnet)}`);
  if (!inSubnet(a, subnet)) throw invalidConfig(`${where}.${key}: ${formatAddr(a)} is not in subnet ${formatSubnet(subnet)}`);
  return a;
}

/** Reads one range; `where` names it in the config ("ipam.ranges[0][1]" or "ipam" for the legacy keys). */
export function parseRange(raw: unknown, where: string): Range {
  if (!isObject(raw)) throw invalidConfig(`${where}: a range must be an object with a subnet`);
  if (raw.subnet === undefined || raw.subnet === "") throw invalidConfig(`${where}.subnet is missing`);
  const c = parseCidr(raw.subnet);
  if (!c) throw invalidConfig(`${where}.subnet: ${JSON.stringify(raw.subnet)} is not a subnet in CIDR notation`);
  if (c.mapped) throw invalidConfig(`${where}.subnet: ${raw.subnet} is an IPv4-mapped IPv6 subnet; write it as IPv4`);
  const bits = bitsOf(c.addr.v6);
  // /31, /32, /127 and /128 have no address left once network and broadcast (or gateway) are out.
  if (c.prefix > bits - 2) throw invalidConfig(`${where}.subnet: network ${raw.subnet} is too small to allocate from`);
  const subnet: Subnet = { net: { v6: c.addr.v6, n: c.addr.n & ~((1n << BigInt(bits - c.prefix)) - 1n) }, prefix: c.prefix };
  if (subnet.net.n !== c.addr.n) {
    throw invalidConfig(`${where}.subnet: ${raw.subnet} has host bits set; for a /${c.prefix} the network address is ${formatAddr(subnet.net)}`);
  }
  const gateway = optionalAddr(raw, "gateway", where, subnet) ?? offset(subnet.net, 1n);
  const start = optionalAddr(raw, "rangeStart", where, subnet) ?? offset(subnet.net, 1n);
  // Default end: the broadcast address minus one for IPv4, the last address for IPv6.
  const last = lastOf(subnet);
  const end = optionalAddr(raw, "rangeEnd", where, subnet) ?? (subnet.net.v6 ? last : offset(last, -1n));
  if (start.n > end.n) throw invalidConfig(`${where}.rangeStart ${formatAddr(start)} is after ${where}.rangeEnd ${formatAddr(end)}`);
  return { subnet, start, end, gateway };
}

export function rangeString(r: Range): string {
  return `${formatAddr(r.start)}-${formatAddr(r.end)}`;
}

export function setString(s: RangeSet): string {
  return s.ranges.map(rangeString).join(",");
}

export function rangeContains(r: Range, a: Addr): boolean {
  return a.v6 === r.start.v6 && a.n >= r.start.n && a.n <= r.end.n;
}

export function rangeFor(s: RangeSet, a: Addr): Range | undefined {
  for (const r of s.ranges) if (rangeContains(r, a)) return r;
  return undefined;
}

function overlaps(a: Range, b: Range): boolean {
  return a.start.v6 === b.start.v6 && a.start.n <= b.end.n && b.start.n <= a.end.n;
}

/** Reads a range set: a non-empty list of ranges of one family that do not overlap. */
export function parseRangeSet(raw: unknown, where: string, legacy = false): RangeSet {
  if (legacy) {
    const r = parseRange(raw, where);
    return { ranges: [r], v6: r.start.v6, where };
  }
  if (!Array.isArray(raw)) throw invalidConfig(`${where}: a range set must be a list of ranges`);
  if (raw.length === 0) throw invalidConfig(`${where}: empty range set`);
  const ranges: Range[] = [];
  for (let i = 0; i < raw.length; i++) ranges.push(parseRange(raw[i], `${where}[${i}]`));
  const v6 = ranges[0]!.start.v6;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (r.start.v6 !== v6) throw invalidConfig(`${where}[${i}]: mixed address families in one range set`);
    for (let j = 0; j < i; j++) {
      if (overlaps(ranges[j]!, r)) throw invalidConfig(`${where}[${i}] (${rangeString(r)}) overlaps with ${where}[${j}] (${rangeString(ranges[j]!)})`);
    }
  }
  return { ranges, v6, where };
}

export function setsOverlap(a: RangeSet, b: RangeSet): boolean {
  for (const r of a.ranges) for (const q of b.ranges) if (overlaps(r, q)) return true;
  return false;
}

/**
 * Whether `a` may be handed out from `r`: never the gateway, nor the network address, nor the
 * IPv4 broadcast address (an explicit rangeStart/rangeEnd may include them).
 */
export function allocatable(r: Range, a: Addr): boolean {
  if (sameAddr(a, r.gateway) || a.n === r.subnet.net.n) return false;
  return r.subnet.net.v6 || a.n !== lastOf(r.subnet).n;
}

export interface Candidate {
  addr: Addr;
  range: Range;
}

/**
 * Offers every allocatable address of the set once to `take`, in the reference's round-robin
 * order, until it returns true: from the address after `last` (when the set holds it) through
 * the end of its range, the following ranges, then back round to `last` itself; from the start
 * of the first range otherwise. Returns the candidate taken. (A callback rather than a generator:
 * a compiled plugin compiles the generator builtins on first use, about 0.2 M instructions.)
 */
export function roundRobin(s: RangeSet, last: Addr | undefined, take: (c: Candidate) => boolean): Candidate | undefined {
  const rs = s.ranges;
  let k = -1;
  if (last) for (let i = 0; i < rs.length && k < 0; i++) if (rangeContains(rs[i]!, last)) k = i;
  const walk = (r: Range, from: bigint, to: bigint): Candidate | undefined => {
    for (let n = from; n <= to; n++) {
      const c = { addr: { v6: r.start.v6, n }, range: r };
      if (allocatable(r, c.addr) && take(c)) return c;
    }
    return undefined;
  };
  if (k < 0) {
    for (const r of rs) {
      const got = walk(r, r.start.n, r.end.n);
      if (got) return got;
    }
    return undefined;
  }
  const first = rs[k]!;
  const got = walk(first, last!.n + 1n, first.end.n);
  if (got) return got;
  for (let i = 1; i < rs.length; i++) {
    const r = rs[(k + i) % rs.length]!;
    const c = walk(r, r.start.n, r.end.n);
    if (c) return c;
  }
  return walk(first, first.start.n, last!.n);
}

/** How many addresses the set can hand out. */
export function capacity(s: RangeSet): bigint {
  let total = 0n;
  for (const r of s.ranges) {
    total += r.end.n - r.start.n + 1n;
    const excluded = new Set<bigint>([r.gateway.n, r.subnet.net.n]);
    if (!r.subnet.net.v6) excluded.add(lastOf(r.subnet).n);
    for (const n of excluded) if (rangeContains(r, { v6: r.start.v6, n })) total--;
  }
  return total;
}
