// Name compression (RFC 1035 section 4.1.4) for the messages dns-packet encodes: it writes every
// name in full, so an answer of ten A records for one Service name carries that name ten times.
// This rewrites a message once, replacing every name, or the tail of one, already written earlier
// in the message by a two-byte pointer to it, as CoreDNS's answers do. Owner names are compressed,
// and the names inside the RDATA of the RFC 1035 types that allow it (NS, CNAME, PTR, MX, SOA);
// SRV targets are left whole, as RFC 2782 asks. Matching is byte for byte: a name is never
// replaced by one that differs in letter case.

const HEADER = 12;
/** Pointers carry 14 bits of offset. */
const MAX_POINTER = 0x3fff;
const NAME_RDATA = new Set([2, 5, 12]); // NS, CNAME, PTR: RDATA is one name
const MX = 15;
const SOA = 6;

export class CompressError extends Error {}

class Rewriter {
  private readonly out: Uint8Array;
  private at = 0;
  /** Where each name (keyed by its labels' bytes) was first written. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly msg: Uint8Array) {
    this.out = new Uint8Array(msg.length);
  }

  copy(from: number, n: number): number {
    if (from + n > this.msg.length) throw new CompressError("message ends inside a record");
    this.out.set(this.msg.subarray(from, from + n), this.at);
    this.at += n;
    return from + n;
  }

  u16(from: number): number {
    if (from + 2 > this.msg.length) throw new CompressError("message ends inside a record");
    return (this.msg[from]! << 8) | this.msg[from + 1]!;
  }

  /** Copies the name at `from` (written in full, as dns-packet does), compressed; returns where it ended. */
  name(from: number): number {
    const labels: [number, number][] = [];
    let p = from;
    for (;;) {
      if (p >= this.msg.length) throw new CompressError("message ends inside a name");
      const len = this.msg[p]!;
      if (len === 0) break;
      if (len > 63) throw new CompressError("a name that is compressed already, or a bad label length");
      labels.push([p, len]);
      p += 1 + len;
    }
    const end = p + 1;
    // The key of each tail of the name: its labels as written, length byte included, so that no
    // two different names share one.
    const keys: string[] = [];
    for (let i = labels.length - 1, key = ""; i >= 0; i--) {
      const [start, len] = labels[i]!;
      key = String.fromCharCode(...this.msg.subarray(start, start + 1 + len)) + key;
      keys[i] = key;
    }
    for (let i = 0; i < labels.length; i++) {
      const known = this.seen.get(keys[i]!);
      if (known !== undefined) {
        this.out[this.at++] = 0xc0 | (known >> 8);
        this.out[this.at++] = known & 0xff;
        return end;
      }
      if (this.at <= MAX_POINTER) this.seen.set(keys[i]!, this.at);
      const [start, len] = labels[i]!;
      this.copy(start, 1 + len);
    }
    this.out[this.at++] = 0;
    return end;
  }

  /** One resource record: owner name, fixed fields, RDATA (with its names compressed where allowed). */
  record(from: number): number {
    let p = this.name(from);
    const type = this.u16(p);
    p = this.copy(p, 8); // type, class, TTL
    const rdlength = this.u16(p);
    const rdata = p + 2;
    const rdEnd = rdata + rdlength;
    if (rdEnd > this.msg.length) throw new CompressError("message ends inside RDATA");
    const lengthAt = this.at;
    this.at += 2;
    const start = this.at;
    if (NAME_RDATA.has(type)) this.within(this.name(rdata), rdEnd);
    else if (type === MX) this.within(this.name(this.copy(rdata, 2)), rdEnd);
    else if (type === SOA) this.within(this.copy(this.name(this.name(rdata)), 20), rdEnd);
    else this.copy(rdata, rdlength);
    const written = this.at - start;
    this.out[lengthAt] = written >> 8;
    this.out[lengthAt + 1] = written & 0xff;
    return rdEnd;
  }

  private within(end: number, rdEnd: number): void {
    if (end !== rdEnd) throw new CompressError("RDATA length does not match its names");
  }

  result(): Uint8Array {
    return this.out.subarray(0, this.at);
  }
}

/** The same message with its names compressed; never longer than the message given. */
export function compressNames(msg: Uint8Array): Uint8Array {
  if (msg.length < HEADER) throw new CompressError("shorter than a DNS header");
  const w = new Rewriter(msg);
  let p = w.copy(0, HEADER);
  const counts = [w.u16(4), w.u16(6), w.u16(8), w.u16(10)];
  for (let i = 0; i < counts[0]!; i++) p = w.copy(w.name(p), 4); // question: name, type, class
  const records = counts[1]! + counts[2]! + counts[3]!;
  for (let i = 0; i < records; i++) p = w.record(p);
  if (p !== msg.length) throw new CompressError("bytes after the last record");
  return w.result();
}
