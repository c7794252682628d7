// Allocators for ClusterIPs, NodePorts, node podCIDRs and load-balancer IPs. None of them keeps
// state of its own on disk: at start they are filled from the stored objects that hold the
// allocations, so a restart can never hand out an address twice.
import { isIPv4 } from "node:net";

export function ipToNum(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}
export function numToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export interface Cidr {
  base: number;
  prefix: number;
  size: number;
  text: string;
}

export function parseCidr(s: string): Cidr {
  const m = s.match(/^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/);
  if (!m || !isIPv4(m[1]) || Number(m[2]) > 32) throw new Error(`"${s}" is not an IPv4 CIDR such as 10.96.0.0/12`);
  const prefix = Number(m[2]);
  const size = 2 ** (32 - prefix);
  const base = Math.floor(ipToNum(m[1]) / size) * size;
  return { base, prefix, size, text: `${numToIp(base)}/${prefix}` };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  if (!isIPv4(ip)) return false;
  const n = ipToNum(ip);
  return n >= c.base && n < c.base + c.size;
}

/**
 * A set of integers [first, last] handed out at random from an upper band, leaving a lower band
 * for explicit requests, the way Kubernetes' allocators keep static and dynamic apart.
 */
class BandedPool {
  private readonly used = new Set<number>();
  private readonly noDynamic: Set<number>;
  constructor(
    readonly first: number,
    readonly last: number,
    private readonly staticBand: number,
    noDynamic: number[] = [],
  ) {
    this.noDynamic = new Set(noDynamic);
  }
  get size(): number {
    return this.last - this.first + 1;
  }
  has(n: number): boolean {
    return this.used.has(n);
  }
  inRange(n: number): boolean {
    return n >= this.first && n <= this.last;
  }
  take(n: number): boolean {
    if (!this.inRange(n) || this.used.has(n)) return false;
    this.used.add(n);
    return true;
  }
  release(n: number): void {
    this.used.delete(n);
  }
  next(): number | undefined {
    const dynFirst = Math.min(this.first + this.staticBand, this.last);
    const found = this.scan(dynFirst, this.last) ?? this.scan(this.first, dynFirst - 1);
    if (found !== undefined) this.used.add(found);
    return found;
  }
  private scan(lo: number, hi: number): number | undefined {
    if (hi < lo) return undefined;
    const span = hi - lo + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const n = lo + ((start + i) % span);
      if (!this.used.has(n) && !this.noDynamic.has(n)) return n;
    }
    return undefined;
  }
  get free(): number {
    return this.size - this.used.size;
  }
}

export type TakeResult = "ok" | "taken" | "out-of-range";

export class ClusterIPAllocator {
  readonly cidr: Cidr;
  private readonly pool: BandedPool;
  constructor(cidrText: string, reserved: string[] = []) {
    this.cidr = parseCidr(cidrText);
    if (this.cidr.prefix > 30) throw new Error(`service CIDR ${cidrText} is too small`);
    const first = this.cidr.base + 1;
    const last = this.cidr.base + this.cidr.size - 2;
    const band = Math.min(Math.max(16, Math.floor(this.cidr.size / 16)), 256);
    this.pool = new BandedPool(first, last, band, reserved.map(ipToNum));
  }
  /** The n-th address of the range (1 = the first usable one, e.g. 10.96.0.1). */
  nth(n: number): string {
    return numToIp(this.cidr.base + n);
  }
  take(ip: string): TakeResult {
    if (!isIPv4(ip)) return "out-of-range";
    const n = ipToNum(ip);
    if (!this.pool.inRange(n)) return "out-of-range";
    return this.pool.take(n) ? "ok" : "taken";
  }
  next(): string | undefined {
    const n = this.pool.next();
    return n === undefined ? undefined : numToIp(n);
  }
  release(ip: string): void {
    if (isIPv4(ip)) this.pool.release(ipToNum(ip));
  }
  isAllocated(ip: string): boolean {
    return isIPv4(ip) && this.pool.has(ipToNum(ip));
  }
}

export class PortAllocator {
  private readonly pool: BandedPool;
  readonly text: string;
  constructor(range: string) {
    const m = range.match(/^(\d+)-(\d+)$/);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw new Error(`"${range}" is not a port range such as 30000-32767`);
    this.text = `${lo}-${hi}`;
    const size = hi - lo + 1;
    this.pool = new BandedPool(lo, hi, Math.min(Math.max(16, Math.floor(size / 32)), 128));
  }
  take(port: number): TakeResult {
    if (!this.pool.inRange(port)) return "out-of-range";
    return this.pool.take(port) ? "ok" : "taken";
  }
  next(): number | undefined {
    return this.pool.next();
  }
  release(port: number): void {
    this.pool.release(port);
  }
  isAllocated(port: number): boolean {
    return this.pool.has(port);
  }
}

/** One subnet of `maskSize` per node out of the cluster CIDR, lowest free first. */
export class PodCIDRAllocator {
  readonly cluster: Cidr;
  private readonly used = new Set<number>();
  private readonly count: number;
  private readonly subnetSize: number;
  constructor(
    clusterCidr: string,
    readonly maskSize: number,
  ) {
    this.cluster = parseCidr(clusterCidr);
    if (!Number.isInteger(maskSize) || maskSize < this.cluster.prefix || maskSize > 30)
      throw new Error(`node CIDR mask size ${maskSize} does not fit the cluster CIDR ${this.cluster.text}`);
    this.subnetSize = 2 ** (32 - maskSize);
    this.count = 2 ** (maskSize - this.cluster.prefix);
  }
  private indexOf(cidr: string): number | "outside" | "misaligned" {
    let c: Cidr;
    try {
      c = parseCidr(cidr);
    } catch {
      return "outside";
    }
    const end = c.base + c.size;
    if (end <= this.cluster.base || c.base >= this.cluster.base + this.cluster.size) return "outside";
    if (c.prefix !== this.maskSize || c.base < this.cluster.base) return "misaligned";
    return (c.base - this.cluster.base) / this.subnetSize;
  }
  /** Marks a subnet in use. Subnets outside the cluster CIDR are not tracked (the user's choice). */
  take(cidr: string): "ok" | "taken" | "outside" | "misaligned" {
    const i = this.indexOf(cidr);
    if (typeof i !== "number") return i;
    if (this.used.has(i)) return "taken";
    this.used.add(i);
    return "ok";
  }
  next(): string | undefined {
    for (let i = 0; i < this.count; i++) {
      if (!this.used.has(i)) {
        this.used.add(i);
        return `${numToIp(this.cluster.base + i * this.subnetSize)}/${this.maskSize}`;
      }
    }
    return undefined;
  }
  release(cidr: string): void {
    const i = this.indexOf(cidr);
    if (typeof i === "number") this.used.delete(i);
  }
}

/** Addresses of the emulated cloud's load-balancer pool, lowest free first. */
export class AddressPool {
  readonly cidr: Cidr;
  private readonly used = new Set<number>();
  constructor(cidrText: string) {
    this.cidr = parseCidr(cidrText);
  }
  private bounds(): [number, number] {
    if (this.cidr.prefix >= 31) return [this.cidr.base, this.cidr.base + this.cidr.size - 1];
    return [this.cidr.base + 1, this.cidr.base + this.cidr.size - 2];
  }
  contains(ip: string): boolean {
    if (!isIPv4(ip)) return false;
    const n = ipToNum(ip);
    const [lo, hi] = this.bounds();
    return n >= lo && n <= hi;
  }
  take(ip: string): TakeResult {
    if (!this.contains(ip)) return "out-of-range";
    const n = ipToNum(ip);
    if (this.used.has(n)) return "taken";
    this.used.add(n);
    return "ok";
  }
  next(): string | undefined {
    const [lo, hi] = this.bounds();
    for (let n = lo; n <= hi; n++) {
      if (!this.used.has(n)) {
        this.used.add(n);
        return numToIp(n);
      }
    }
    return undefined;
  }
  release(ip: string): void {
    if (isIPv4(ip)) this.used.delete(ipToNum(ip));
  }
  isAllocated(ip: string): boolean {
    return isIPv4(ip) && this.used.has(ipToNum(ip));
  }
}
