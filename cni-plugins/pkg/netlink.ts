// A netlink socket over libc's socket/send/recv (bun:ffi): requests, acks, dumps and errors.
// ipnl.ts builds the rtnetlink messages on it, portmap an nfnetlink query; each call saves an `ip`
// or `nft` process start (about 3 ms of CPU with the spawn). Only in the Bun-compiled plugins:
// `Rtnl.open` answers undefined under Node or with PODNET_NO_FFI=1, and callers then run the
// programs as before.
//
// Messages are what rtnetlink(7) describes: a 16-byte nlmsghdr, a family header (ifinfomsg,
// ifaddrmsg), then 4-byte aligned attributes. Replies arrive in full before send() returns for
// these requests, so a blocking recv() never waits on the network.
import { formatAddr, formatV6Groups } from "./addr.ts";
import { CniError, ErrCode } from "./errors.ts";
import { hexOf } from "./digest.ts";
import { closeFd, encode } from "./fd.ts";
import { libc } from "./libc.ts";
import { enterNetns } from "./setns.ts";

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

export const cstring = (s: string) => encode(`${s}\0`);

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

/**
 * An address attribute (4 or 16 bytes) as text, exactly as addr.ts's formatAddr writes it; by
 * hand from the bytes, since every link read formats a few and BigInt arithmetic costs more.
 */
export function bytesToAddr(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) {
    let n = 0n;
    for (let i = 0; i < b.length; i++) n = (n << 8n) | BigInt(b[i]!);
    return formatAddr({ v6: true, n });
  }
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  return formatV6Groups(g);
}

export const hexMac = (b: Uint8Array) => hexOf(b, ":");

/**
 * One receive buffer for every socket of the process: a call reads its answers to the end and
 * copies out what it keeps before returning, and a bridge ADD opens half a dozen sockets.
 */
let rxBuffer: Uint8Array | undefined;

/** A netlink socket (NETLINK_ROUTE unless asked otherwise) bound to the netns it was opened in. */
export class Rtnl {
  private seq = 1;

  private constructor(private readonly fd: number) {}

  /**
   * Opens a socket in `netns` (a path such as CNI_NETNS) or in our own; undefined when FFI is not
   * available. The socket stays in that netns for its life, whatever this thread does next.
   */
  static open(netns?: string, protocol = NETLINK_ROUTE): Rtnl | undefined {
    const c = libc();
    if (!c) return undefined;
    const leave = netns ? enterNetns(netns) : undefined;
    let fd: number;
    try {
      fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    } finally {
      leave?.();
    }
    if (fd < 0) throw new CniError(ErrCode.Kernel, "cannot open a netlink socket");
    return new Rtnl(fd);
  }

  close(): void {
    closeFd(this.fd);
  }

  /**
   * Sends one request and collects its replies until the ack, the single answer, or DONE; `keep`,
   * when given, picks which replies of a dump are kept, from their headers alone.
   */
  call(type: number, flags: number, parts: Uint8Array[], what: string, keep?: (msg: DataView, off: number) => boolean): Uint8Array[] {
    const seq = this.seq++;
    let len = HDR;
    for (const p of parts) len += p.length;
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
    if (libc()!.send(this.fd, msg, len, 0) !== len) throw new CniError(ErrCode.Kernel, `${what}: cannot send a netlink request`);
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const acked = (flags & NLM_F_ACK) !== 0;
    const out: Uint8Array[] = [];
    const rx = (rxBuffer ??= new Uint8Array(64 * 1024));
    for (;;) {
      const n = libc()!.recv(this.fd, rx, rx.length, 0);
      if (n <= 0) throw new CniError(ErrCode.Kernel, `${what}: no netlink answer`);
      const rv = new DataView(rx.buffer, 0, n);
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
          if (!keep || keep(rv, off)) out.push(rx.slice(off, off + mlen));
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
