// Small IPv4 helpers for flags, routes and masquerade rules (the kubelet's pod network is IPv4).
import { isIPv4 as netIsIPv4 } from "node:net";

export const isIPv4 = (s: string): boolean => netIsIPv4(s);

export function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

export interface Cidr {
  network: string;
  prefix: number;
}

/** "10.244.1.7/24" -> {network: "10.244.1.0", prefix: 24}; undefined when not an IPv4 CIDR. */
export function parseCIDR(s: string): Cidr | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || !isIPv4(m[1]!)) return undefined;
  const prefix = Number(m[2]);
  if (prefix > 32) return undefined;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: intToIp((ipToInt(m[1]!) & mask) >>> 0), prefix };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCIDR(cidr);
  if (!c || !isIPv4(ip)) return false;
  const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === ipToInt(c.network);
}

export const cidrString = (c: Cidr): string => `${c.network}/${c.prefix}`;
