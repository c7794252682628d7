// A small rtnetlink client over libc's socket/send/recv (bun:ffi), for the few link and address
// calls that are on every pod's path: each one saves an `ip` process start (about 3 ms of CPU
// with the spawn). Only in the Bun-compiled plugins: `Rtnl.open` answers undefined under Node or
// with PODNET_NO_FFI=1, and callers then run iproute2 as before.
//
// Messages are what rtnetlink(7) describes: a 16-byte nlmsghdr, a family header (ifinfomsg,
// ifaddrmsg), then 4-byte aligned attributes. Replies arrive in full before send() returns for
// these requests, so a blocking recv() never waits on the network.
import { closeSync } from "node:fs";
import { formatAddr } from "./addr.ts";
import { CniError, ErrCode } from "./errors.ts";
import { enterNetns, libc } from "./libc.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IFF_UP = 0x1;

export const HDR = 16; // nlmsghdr
export const IFINFO = 16; // ifinfomsg
export const IFADDR = 8; // ifaddrmsg

/** The messages iproute2 prints for the errno values a link or address call can meet. */
const ERRNO_TEXT: Record<number, string> = {
  1: "Operation not permitted",
  2: "No such file or directory",
  16: "Device or resource busy",
  17: "File exists",
  19: "No such device",
  22: "Invalid argument",
  34: "Numerical result out of range",
  95: "Operation not supported",
  99: "Cannot assign requested address",
  101: "Network is unreachable",
  113: "No route to host",
};

/** A request the kernel refused; `errno` is positive (ENODEV = 19). */
export class NetlinkError extends CniError {
  constructor(
    readonly errno: number,
    what: string,
  ) {
    super(ErrCode.Kernel, `${what}: ${NetlinkError.answer(errno)}`);
  }

  /** The line iproute2 prints for a refused request. */
  static answer(errno: number): string {
    return `RTNETLINK answers: ${ERRNO_TEXT[errno] ?? `errno ${errno}`}`;
  }
}

export interface NlLink {
  index: number;
  name: string;
  flags: number;
  mtu: number;
  /** Hardware address, lower-case hex with colons ("00:00:00:00:00:00" for lo). */
  mac: string;
}

export interface NlAddr {
  family: 4 | 6;
  index: number;
  prefixlen: number;
  scope: number;
  /** The interface's own address (IFA_LOCAL, or IFA_ADDRESS where there is no local). */
  local: string;
}

export interface Attr {
  type: number;
  data: Uint8Array;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function attr(type: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + data.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + data.length, true);
  v.setUint16(2, type, true);
  out.set(data, 4);
  return out;
}

export const cstring = (s: string) => new TextEncoder().encode(`${s}\0`);

export function parseAttrs(buf: Uint8Array, from: number, to: number): Attr[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Attr[] = [];
  for (let o = from; o + 4 <= to; ) {
    const len = v.getUint16(o, true);
    if (len < 4 || o + len > to) break;
    out.push({ type: v.getUint16(o + 2, true) & 0x3fff, data: buf.subarray(o + 4, o + len) });
    o += align4(len);
  }
  return out;
}

export function bytesToAddr(b: Uint8Array): string {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return formatAddr({ v6: b.length === 16, n });
}

export const hexMac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** A netlink socket (NETLINK_ROUTE unless asked otherwise) bound to the netns it was opened in. */
export class Rtnl {
  private seq = 1;
  private readonly rx = new Uint8Array(64 * 1024);

  private constructor(private readonly fd: number) {}

  /**
   * Opens a socket in `netns` (a path such as CNI_NETNS) or in our own; undefined when FFI is not
   * available. The socket stays in that netns for its life, whatever this thread does next.
   */
  static open(netns?: string, protocol = NETLINK_ROUTE): Rtnl | undefined {
    if (!libc) return undefined;
    const leave = netns ? enterNetns(netns) : undefined;
    let fd: number;
    try {
      fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    } finally {
      leave?.();
    }
    if (fd < 0) throw new CniError(ErrCode.Kernel, "cannot open a netlink socket");
    return new Rtnl(fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Sets or clears IFF_UP on the link called `name`. */
  setUp(name: string, up: boolean): void {
    const body = new Uint8Array(IFINFO);
    const v = new DataView(body.buffer);
    v.setUint32(8, up ? IFF_UP : 0, true); // ifi_flags
    v.setUint32(12, IFF_UP, true); // ifi_change
    this.call(RTM_NEWLINK, NLM_F_ACK, [body, attr(IFLA_IFNAME, cstring(name))], `set ${name} ${up ? "up" : "down"}`);
  }

  /** The link called `name`, or undefined when there is none. */
  link(name: string): NlLink | undefined {
    try {
      const [m] = this.call(RTM_GETLINK, 0, [new Uint8Array(IFINFO), attr(IFLA_IFNAME, cstring(name))], `show ${name}`);
      return m ? parseLink(m) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === 19) return undefined;
      throw e;
    }
  }

  /** Every address in the netns (IPv4 first, as the kernel dumps them), or those of one link. */
  addresses(index?: number): NlAddr[] {
    const msgs = this.call(RTM_GETADDR, NLM_F_DUMP, [new Uint8Array(IFADDR)], "list addresses", index === undefined ? undefined : addrOfLink(index));
    return msgs.map(parseAddrMsg).filter((a): a is NlAddr => a !== undefined && (index === undefined || a.index === index));
  }

  /**
   * Sends one request and collects its replies until the ack, the single answer, or DONE; `keep`,
   * when given, picks which replies of a dump are kept, from their headers alone.
   */
  call(type: number, flags: number, parts: Uint8Array[], what: string, keep?: (msg: DataView, off: number) => boolean): Uint8Array[] {
    const seq = this.seq++;
    const len = HDR + parts.reduce((n, p) => n + p.length, 0);
    const msg = new Uint8Array(len);
    const v = new DataView(msg.buffer);
    v.setUint32(0, len, true);
    v.setUint16(4, type, true);
    v.setUint16(6, NLM_F_REQUEST | flags, true);
    v.setUint32(8, seq, true);
    let o = HDR;
    for (const p of parts) {
      msg.set(p, o);
      o += p.length;
    }
    if (libc!.send(this.fd, msg, len, 0) !== len) throw new CniError(ErrCode.Kernel, `${what}: cannot send a netlink request`);
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const acked = (flags & NLM_F_ACK) !== 0;
    const out: Uint8Array[] = [];
    for (;;) {
      const n = libc!.recv(this.fd, this.rx, this.rx.length, 0);
      if (n <= 0) throw new CniError(ErrCode.Kernel, `${what}: no netlink answer`);
      const rv = new DataView(this.rx.buffer, 0, n);
      for (let off = 0; off + HDR <= n; ) {
        const mlen = rv.getUint32(off, true);
        if (mlen < HDR || off + mlen > n) throw new CniError(ErrCode.Kernel, `${what}: malformed netlink answer`);
        const mtype = rv.getUint16(off + 4, true);
        const mseq = rv.getUint32(off + 8, true);
        if (mseq === seq) {
          if (mtype === NLMSG_ERROR) {
            const err = rv.getInt32(off + HDR, true);
            if (err !== 0) throw new NetlinkError(-err, what);
            return out; // the ack
          }
          if (mtype === NLMSG_DONE) return out;
          // A dump of a busy netns (a node with a hundred pods) is mostly what the caller will not
          // read: `keep` looks at the fixed headers before anything is copied.
          if (!keep || keep(rv, off)) out.push(this.rx.slice(off, off + mlen));
          if (!dump && !acked) return out;
        }
        off += align4(mlen);
      }
    }
  }
}

/** For `call`: keeps the RTM_NEWADDR replies of one link (ifaddrmsg.ifa_index). */
export function addrOfLink(index: number): (msg: DataView, off: number) => boolean {
  return (v, off) => v.getUint16(off + 4, true) === RTM_NEWADDR && v.getUint32(off + HDR + 4, true) === index;
}

function parseLink(m: Uint8Array): NlLink | undefined {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (v.getUint16(4, true) !== RTM_NEWLINK) return undefined;
  const link: NlLink = { index: v.getInt32(HDR + 4, true), flags: v.getUint32(HDR + 8, true), name: "", mtu: 0, mac: "" };
  for (const a of parseAttrs(m, HDR + IFINFO, m.length)) {
    if (a.type === IFLA_IFNAME) link.name = new TextDecoder().decode(a.data).replace(/\0.*$/s, "");
    else if (a.type === IFLA_MTU && a.data.length >= 4) link.mtu = new DataView(a.data.buffer, a.data.byteOffset, 4).getUint32(0, true);
    else if (a.type === IFLA_ADDRESS) link.mac = hexMac(a.data);
  }
  return link;
}

function parseAddrMsg(m: Uint8Array): NlAddr | undefined {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (v.getUint16(4, true) !== RTM_NEWADDR) return undefined;
  const fam = v.getUint8(HDR);
  if (fam !== AF_INET && fam !== AF_INET6) return undefined;
  let local: Uint8Array | undefined;
  let address: Uint8Array | undefined;
  for (const a of parseAttrs(m, HDR + IFADDR, m.length)) {
    if (a.type === IFA_LOCAL) local = a.data;
    else if (a.type === IFA_ADDRESS) address = a.data;
  }
  const raw = local ?? address;
  if (!raw) return undefined;
  return { family: fam === AF_INET ? 4 : 6, prefixlen: v.getUint8(HDR + 1), scope: v.getUint8(HDR + 3), index: v.getUint32(HDR + 4, true), local: bytesToAddr(raw) };
}
