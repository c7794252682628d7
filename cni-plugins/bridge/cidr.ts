// The little address arithmetic bridge needs: the subnet of an address (masquerade rules),
// the first host of a subnet (default gateway), containment (bridge address conflicts).
import { formatAddr, ipFamily as isIP } from "../pkg/addr.ts";
import { parseCIDR } from "../pkg/result.ts";

export interface Prefix {
  family: 4 | 6;
  n: bigint;
  prefix: number;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);

function v6Groups(s: string): number[] {
  // Expands "::" and an embedded dotted quad ("::ffff:1.2.3.4") into eight 16-bit groups.
  let text = s;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = dotted[1]!.split(".").map(Number);
    text = text.slice(0, dotted.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

export function parseIP(s: string): { family: 4 | 6; n: bigint } {
  const fam = isIP(s);
  // Loops rather than reduce/map: every pod's ADD parses its addresses here (see add.ts).
  if (fam === 4) {
    let n = 0;
    for (const o of s.split(".")) n = n * 256 + Number(o);
    return { family: 4, n: BigInt(n) };
  }
  if (fam === 6) {
    let n = 0n;
    for (const g of v6Groups(s)) n = (n << 16n) | BigInt(g);
    return { family: 6, n };
  }
  throw new Error(`not an IP address: ${s}`);
}

export function formatIP(family: 4 | 6, n: bigint): string {
  return formatAddr({ v6: family === 6, n });
}

const mask = (family: 4 | 6, prefix: number) => {
  const b = BigInt(bits(family));
  return ((1n << b) - 1n) ^ ((1n << (b - BigInt(prefix))) - 1n);
};

/** "10.244.1.7/24" -> its subnet, host bits cleared. */
export function subnetOf(cidr: string): Prefix {
  const c = parseCIDR(cidr);
  if (!c) throw new Error(`not in CIDR notation: ${cidr}`);
  const { family, n } = parseIP(c.ip);
  return { family, n: n & mask(family, c.prefix), prefix: c.prefix };
}

export const formatPrefix = (p: Prefix) => `${formatIP(p.family, p.n)}/${p.prefix}`;

/** The address after the network address: the gateway the reference computes when IPAM gives none. */
export function firstHost(p: Prefix): string {
  return formatIP(p.family, p.n + 1n);
}

export function prefixContains(p: Prefix, ip: string): boolean {
  const a = parseIP(ip);
  return a.family === p.family && (a.n & mask(p.family, p.prefix)) === p.n;
}

/** Same address, whatever the spelling ("fd00:0::1" and "fd00::1"). */
export function sameIP(a: string, b: string): boolean {
  if (!isIP(a) || !isIP(b)) return false;
  const x = parseIP(a), y = parseIP(b);
  return x.family === y.family && x.n === y.n;
}
