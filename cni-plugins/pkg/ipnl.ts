// The iproute2 batch lines the plugins send on every pod's path, carried out over rtnetlink
// instead of an `ip -batch` process, with ip's outcome: the same JSON for "show" lines, the same
// error lines ("RTNETLINK answers: File exists", "Command failed -:N"), stop at the first failure.
// Callers keep one language (ip's) and one set of tolerated errors for both ways.
//
// Only a fixed grammar is understood (see `plan`); a batch with any other line answers undefined
// and is run by ip itself, so a rare option never needs a second implementation here.
import { parseCidr } from "./addr.ts";
import type { AddrInfo, BatchOutcome, LinkInfo } from "./ip.ts";
import { closeFd, openRead } from "./fd.ts";
import { NetnsError } from "./setns.ts";
import {
  addrOfLink,
  AF_INET,
  AF_INET6,
  attr,
  bytesToAddr,
  cstring,
  hexMac,
  HDR,
  IFA_ADDRESS,
  IFA_LOCAL,
  IFADDR,
  IFF_UP,
  IFINFO,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_MTU,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_DUMP,
  parseAttrs,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  Rtnl,
} from "./netlink.ts";

const RTM_DELLINK = 17;
const RTM_DELADDR = 21;
const RTM_NEWROUTE = 24;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;

const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_LINK_NETNSID = 37;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_METRICS = 8;
const RTA_TABLE = 15;
const RTAX_MTU = 2;
const RTAX_ADVMSS = 8;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;
const RT_SCOPE = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as Record<string, number>;
const RT_TABLE = { default: 253, main: 254, local: 255 } as Record<string, number>;

const FLAG_NAMES: [number, string][] = [
  [0x2, "BROADCAST"],
  [0x8, "LOOPBACK"],
  [0x10, "POINTOPOINT"],
  [0x80, "NOARP"],
  [0x100, "PROMISC"],
  [0x1000, "MULTICAST"],
  [0x1, "UP"],
  [0x10000, "LOWER_UP"],
];
const OPERSTATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"];
const SCOPE_NAMES: Record<number, string> = { 0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere" };

type Line = string[];

/** A step the kernel refused or a name that does not resolve: what ip would print. */
class LineFailure extends Error {}

const u8 = (v: number) => new Uint8Array([v]);
function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}
const concat = (parts: Uint8Array[]) => {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const nest = (type: number, parts: Uint8Array[]) => attr(type, concat(parts));
function macBytes(mac: string): Uint8Array {
  const parts = mac.split(":");
  const out = new Uint8Array(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = parseInt(parts[i]!, 16);
  return out;
}
function ipBytes(ip: string): { family: number; bytes: Uint8Array; prefix: number } {
  const c = parseCidr(ip.includes("/") ? ip : `${ip}/${ip.includes(":") ? 128 : 32}`);
  if (!c) throw new LineFailure(`Error: an inet prefix is expected rather than "${ip}".`);
  const len = c.addr.v6 ? 16 : 4;
  const bytes = new Uint8Array(len);
  let n = c.addr.n;
  for (let i = len - 1; i >= 0; i--) {
    bytes[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return { family: c.addr.v6 ? AF_INET6 : AF_INET, bytes, prefix: c.prefix };
}
function ifinfo(index = 0, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFO);
  const v = new DataView(b.buffer);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** Link options as ip spells them: `address M`, `mtu N` (the only ones understood here). */
function linkOptions(opts: Line): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  for (let i = 0; i < opts.length; i += 2) {
    const [k, v] = [opts[i], opts[i + 1]];
    if (v === undefined) return undefined;
    if (k === "address" && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v)) out.push(attr(IFLA_ADDRESS, macBytes(v)));
    else if (k === "mtu" && /^\d+$/.test(v)) out.push(attr(IFLA_MTU, u32(Number(v))));
    else return undefined;
  }
  return out;
}

interface Ctx {
  nl: Rtnl;
  out: string[];
  /** Link indexes by name, looked up once per batch (a pod's ADD names cni0 and its veth often). */
  index: Map<string, number>;
}

/**
 * What one line does, or undefined when it is outside the grammar. "show" lines answer in ip's
 * JSON only: in a text batch they are left to ip.
 */
function plan(l: Line, json: boolean): ((c: Ctx) => void) | undefined {
  const [obj, verb, ...rest] = l;
  if (verb === "show" && !json) return undefined;
  if (obj === "link" && verb === "add" && rest[0] === "name") return planLinkAdd(rest);
  if (obj === "link" && verb === "set" && rest[0] === "dev" && rest[1]) return planLinkSet(rest[1], rest.slice(2));
  if (obj === "link" && verb === "del" && rest[0] === "dev" && rest[1] && rest.length === 2) {
    const dev = rest[1];
    return (c) => {
      c.nl.call(RTM_DELLINK, NLM_F_ACK, [ifinfo(indexOf(c, dev))], "del");
      c.index.clear();
    };
  }
  if (obj === "link" && verb === "show" && rest.length === 2 && rest[0] === "type") {
    const kind = rest[1];
    return (c) => c.out.push(JSON.stringify(dumpLinks(c.nl).filter((x) => x.linkinfo?.info_kind === kind)));
  }
  if (obj === "addr" && (verb === "add" || verb === "del") && rest[1] === "dev" && rest[2] && rest[0]) {
    const extra = rest.slice(3);
    for (const x of extra) if (x !== "nodad") return undefined;
    const [cidr, , dev] = rest as [string, string, string];
    return (c) => addrChange(c, verb === "add", cidr, dev, extra.includes("nodad"));
  }
  if (obj === "addr" && verb === "show" && rest[0] === "dev" && rest[1] && rest.length === 2) {
    const dev = rest[1];
    return (c) => c.out.push(JSON.stringify([showLink(c.nl, dev, `Device "${dev}" does not exist.`)]));
  }
  if (obj === "route" && (verb === "append" || verb === "add") && rest[0]) return planRoute(verb === "append", rest);
  return undefined;
}

function planLinkAdd(rest: Line): ((c: Ctx) => void) | undefined {
  const name = rest[1]!;
  const typeAt = rest.indexOf("type");
  if (typeAt < 0) return undefined;
  const opts = linkOptions(rest.slice(2, typeAt));
  const kind = rest[typeAt + 1];
  const after = rest.slice(typeAt + 2);
  if (!opts) return undefined;
  if (kind === "bridge" && after.length === 0) {
    return (c) => c.nl.call(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, [ifinfo(), attr(IFLA_IFNAME, cstring(name)), ...opts, nest(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, cstring("bridge"))])], "add");
  }
  if (kind !== "veth" || after[0] !== "peer" || after[1] !== "name" || !after[2]) return undefined;
  let peerOpts = after.slice(3);
  let netnsName: string | undefined;
  if (peerOpts[peerOpts.length - 2] === "netns") {
    netnsName = peerOpts[peerOpts.length - 1];
    peerOpts = peerOpts.slice(0, -2);
    // Only a named netns (/run/netns/NAME), never "netns PID": that form needs our pid's netns.
    if (!netnsName || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(netnsName)) return undefined;
  }
  const popts = linkOptions(peerOpts);
  if (!popts) return undefined;
  const peerName = after[2];
  return (c) => {
    let fd: number | undefined;
    if (netnsName) {
      try {
        fd = openRead(`/run/netns/${netnsName}`);
      } catch {
        throw new LineFailure(`Invalid "netns" value "${netnsName}"`);
      }
    }
    try {
      const peer = concat([ifinfo(), attr(IFLA_IFNAME, cstring(peerName)), ...popts, ...(fd !== undefined ? [attr(IFLA_NET_NS_FD, u32(fd))] : [])]);
      const info = nest(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, cstring("veth")), nest(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)])]);
      c.nl.call(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, [ifinfo(), attr(IFLA_IFNAME, cstring(name)), ...opts, info], "add");
    } finally {
      if (fd !== undefined) closeFd(fd);
    }
  };
}

function planLinkSet(dev: string, what: Line): ((c: Ctx) => void) | undefined {
  const set = (c: Ctx, parts: Uint8Array[], flags = 0, change = 0) => c.nl.call(RTM_NEWLINK, NLM_F_ACK, [ifinfo(indexOf(c, dev), flags, change), ...parts], "set");
  if (what.length === 1 && (what[0] === "up" || what[0] === "down")) return (c) => set(c, [], what[0] === "up" ? IFF_UP : 0, IFF_UP);
  if (what.length === 2 && what[0] === "master") {
    const br = what[1]!;
    return (c) => set(c, [attr(IFLA_MASTER, u32(indexOf(c, br)))]);
  }
  if (what.length === 2 && (what[0] === "address" || what[0] === "mtu")) {
    const opts = linkOptions(what);
    return opts && ((c) => set(c, opts));
  }
  if (what.length === 4 && what[0] === "type" && what[1] === "bridge_slave" && what[2] === "hairpin" && (what[3] === "on" || what[3] === "off")) {
    const on = what[3] === "on" ? 1 : 0;
    return (c) => set(c, [nest(IFLA_LINKINFO, [attr(IFLA_INFO_SLAVE_KIND, cstring("bridge")), nest(IFLA_INFO_SLAVE_DATA, [attr(IFLA_BRPORT_MODE, u8(on))])])]);
  }
  return undefined;
}

function planRoute(append: boolean, rest: Line): ((c: Ctx) => void) | undefined {
  const dst = rest[0]!;
  let gw: string | undefined, dev: string | undefined, metric: number | undefined, table = 254, scope: number | undefined;
  const metrics: Uint8Array[] = [];
  for (let i = 1; i < rest.length; i += 2) {
    const [k, v] = [rest[i], rest[i + 1]];
    if (v === undefined) return undefined;
    if (k === "via") gw = v;
    else if (k === "dev") dev = v;
    else if (k === "metric" && /^\d+$/.test(v)) metric = Number(v);
    else if (k === "table" && (/^\d+$/.test(v) || v in RT_TABLE)) table = /^\d+$/.test(v) ? Number(v) : RT_TABLE[v]!;
    else if (k === "scope" && (/^\d+$/.test(v) || v in RT_SCOPE)) scope = /^\d+$/.test(v) ? Number(v) : RT_SCOPE[v]!;
    else if (k === "mtu" && /^\d+$/.test(v)) metrics.push(attr(RTAX_MTU, u32(Number(v))));
    else if (k === "advmss" && /^\d+$/.test(v)) metrics.push(attr(RTAX_ADVMSS, u32(Number(v))));
    else return undefined;
  }
  if (!dev) return undefined;
  return (c) => {
    const d = ipBytes(dst);
    const g = gw ? ipBytes(gw) : undefined;
    if (g && g.family !== d.family) throw new LineFailure(`Error: inet address is expected rather than "${gw}".`);
    // ip's default scope: IPv4 routes with no gateway are link-scoped, everything else global.
    const sc = scope ?? (d.family === AF_INET && !g ? RT_SCOPE.link! : 0);
    const rt = new Uint8Array(12);
    rt.set([d.family, d.prefix, 0, 0, table < 256 ? table : 0, RTPROT_BOOT, sc, RTN_UNICAST]);
    const parts = [rt, attr(RTA_TABLE, u32(table)), attr(RTA_OIF, u32(indexOf(c, dev!)))];
    if (d.prefix > 0) parts.push(attr(RTA_DST, d.bytes));
    if (g) parts.push(attr(RTA_GATEWAY, g.bytes));
    if (metric !== undefined) parts.push(attr(RTA_PRIORITY, u32(metric)));
    if (metrics.length) parts.push(nest(RTA_METRICS, metrics));
    c.nl.call(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | (append ? NLM_F_APPEND : NLM_F_EXCL), parts, "route");
  };
}

function addrChange(c: Ctx, add: boolean, cidr: string, dev: string, nodad: boolean): void {
  const a = ipBytes(cidr);
  const msg = new Uint8Array(IFADDR);
  const v = new DataView(msg.buffer);
  // ip's default scope: host for 127/8, global otherwise (the kernel picks IPv6 scopes itself).
  msg.set([a.family, a.prefix, nodad ? IFA_F_NODAD : 0, a.family === AF_INET && a.bytes[0] === 127 ? RT_SCOPE.host! : 0]);
  v.setUint32(4, indexOf(c, dev), true);
  const parts = [msg, attr(IFA_LOCAL, a.bytes), attr(IFA_ADDRESS, a.bytes)];
  c.nl.call(add ? RTM_NEWADDR : RTM_DELADDR, NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0), parts, "addr");
}

interface RawLink {
  info: LinkInfo;
  masterIndex?: number;
}

/** ip's names for the link flags that are set, in ip's order. */
function flagNames(flags: number): string[] {
  const out: string[] = [];
  if (flags & IFF_UP && !(flags & 0x10000)) out.push("NO-CARRIER");
  for (let i = 0; i < FLAG_NAMES.length; i++) if (flags & FLAG_NAMES[i]![0]) out.push(FLAG_NAMES[i]![1]);
  return out;
}

/**
 * A 32-bit little-endian attribute, signed (`>>> 0` for unsigned): read from the bytes, since a
 * link carries some fifty attributes and a DataView for each is most of the cost of reading it.
 */
const le32 = (d: Uint8Array) => d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24);

function parseLinkMsg(m: Uint8Array): RawLink | undefined {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (v.getUint16(4, true) !== RTM_NEWLINK) return undefined;
  const index = v.getInt32(HDR + 4, true);
  const flags = v.getUint32(HDR + 8, true);
  const info: LinkInfo = { ifindex: index, ifname: "", flags: [], mtu: 0 };
  let masterIndex: number | undefined;
  for (const a of parseAttrs(m, HDR + IFINFO, m.length)) {
    if (a.type === IFLA_IFNAME) info.ifname = new TextDecoder().decode(a.data).replace(/\0.*$/s, "");
    else if (a.type === IFLA_MTU) info.mtu = le32(a.data) >>> 0;
    else if (a.type === IFLA_ADDRESS) info.address = hexMac(a.data);
    else if (a.type === IFLA_OPERSTATE) info.operstate = OPERSTATES[a.data[0]!] ?? "UNKNOWN";
    else if (a.type === IFLA_MASTER) masterIndex = le32(a.data) >>> 0;
    else if (a.type === IFLA_LINK) info.link_index = le32(a.data);
    else if (a.type === IFLA_LINK_NETNSID) info.link_netnsid = le32(a.data);
    else if (a.type === IFLA_LINKINFO) {
      const li: NonNullable<LinkInfo["linkinfo"]> = {};
      for (const s of parseAttrs(a.data, 0, a.data.length)) {
        if (s.type === IFLA_INFO_KIND) li.info_kind = new TextDecoder().decode(s.data).replace(/\0.*$/s, "");
        else if (s.type === IFLA_INFO_SLAVE_KIND) li.info_slave_kind = new TextDecoder().decode(s.data).replace(/\0.*$/s, "");
      }
      info.linkinfo = li;
    }
  }
  // A link that names itself as its own parent has none (a peer in another netns may share the index).
  if (info.link_index === index && info.link_netnsid === undefined) delete info.link_index;
  info.flags = flagNames(flags);
  return { info, masterIndex };
}

function dumpLinks(nl: Rtnl): LinkInfo[] {
  const raw = nl.call(RTM_GETLINK, NLM_F_DUMP, [ifinfo()], "list links").map(parseLinkMsg).filter((r): r is RawLink => r !== undefined);
  const names = new Map(raw.map((r) => [r.info.ifindex, r.info.ifname]));
  return raw.map((r) => (r.masterIndex !== undefined && names.has(r.masterIndex) ? { ...r.info, master: names.get(r.masterIndex) } : r.info));
}

function getLink(nl: Rtnl, name: string): RawLink | undefined {
  try {
    const [m] = nl.call(RTM_GETLINK, 0, [ifinfo(), attr(IFLA_IFNAME, cstring(name))], "show");
    return m ? parseLinkMsg(m) : undefined;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === 19) return undefined;
    throw e;
  }
}

/** The index of link `name`: from the batch's cache, else from the header of a GETLINK answer. */
function indexOf(c: Ctx, name: string): number {
  const known = c.index.get(name);
  if (known !== undefined) return known;
  let m: Uint8Array | undefined;
  try {
    [m] = c.nl.call(RTM_GETLINK, 0, [ifinfo(), attr(IFLA_IFNAME, cstring(name))], "show");
  } catch (e) {
    if (!(e instanceof NetlinkError && e.errno === 19)) throw e;
  }
  const v = m && new DataView(m.buffer, m.byteOffset, m.byteLength);
  if (!v || v.getUint16(4, true) !== RTM_NEWLINK) throw new LineFailure(`Cannot find device "${name}"`);
  const index = v.getInt32(HDR + 4, true);
  c.index.set(name, index);
  return index;
}

/** `ip -j -d addr show dev NAME`: the link, its master's name, its addresses. */
function showLink(nl: Rtnl, name: string, missing: string): LinkInfo {
  const l = getLink(nl, name);
  if (!l) throw new LineFailure(missing);
  const info = { ...l.info };
  if (l.masterIndex !== undefined) {
    const [m] = nl.call(RTM_GETLINK, 0, [ifinfo(l.masterIndex)], "show master");
    const master = m ? parseLinkMsg(m) : undefined;
    if (master) info.master = master.info.ifname;
  }
  info.addr_info = addressesOf(nl, info.ifindex);
  return info;
}

/** The IPv4 and IPv6 addresses of link `index`, as ip's `addr_info`. */
function addressesOf(nl: Rtnl, index: number): AddrInfo[] {
  const out: AddrInfo[] = [];
  for (const m of nl.call(RTM_GETADDR, NLM_F_DUMP, [new Uint8Array(IFADDR)], "list addresses", addrOfLink(index))) {
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    if (v.getUint16(4, true) !== RTM_NEWADDR || v.getUint32(HDR + 4, true) !== index) continue;
    const fam = v.getUint8(HDR);
    if (fam !== AF_INET && fam !== AF_INET6) continue;
    let local: Uint8Array | undefined, address: Uint8Array | undefined;
    for (const a of parseAttrs(m, HDR + IFADDR, m.length)) {
      if (a.type === IFA_LOCAL) local = a.data;
      else if (a.type === IFA_ADDRESS) address = a.data;
    }
    const raw = local ?? address;
    if (!raw) continue;
    const scope = v.getUint8(HDR + 3);
    out.push({ family: fam === AF_INET ? "inet" : "inet6", local: bytesToAddr(raw), prefixlen: v.getUint8(HDR + 1), scope: SCOPE_NAMES[scope] ?? String(scope) });
  }
  return out;
}

/**
 * `ip -j -d link show` of the one link with `index` in `netns` (or here), over rtnetlink: the
 * link, null when there is none, undefined when netlink is not available (then list with ip).
 */
export function linkByIndex(index: number, netns?: string): LinkInfo | null | undefined {
  const nl = Rtnl.open(netns);
  if (!nl) return undefined;
  try {
    let msgs: Uint8Array[];
    try {
      msgs = nl.call(RTM_GETLINK, 0, [ifinfo(index)], "show");
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === 19) return null;
      throw e;
    }
    const raw = msgs[0] ? parseLinkMsg(msgs[0]) : undefined;
    if (!raw) return null;
    if (raw.masterIndex === undefined) return raw.info;
    const [m] = nl.call(RTM_GETLINK, 0, [ifinfo(raw.masterIndex)], "show master");
    const master = m ? parseLinkMsg(m) : undefined;
    return master ? { ...raw.info, master: master.info.ifname } : raw.info;
  } finally {
    nl.close();
  }
}

/**
 * Which of `names` are links in this process's netns, asked over rtnetlink one name at a time
 * (a node with a hundred pods has a hundred veths to list otherwise); undefined without netlink.
 */
export function linksPresent(names: string[]): Set<string> | undefined {
  const nl = Rtnl.open();
  if (!nl) return undefined;
  try {
    const c: Ctx = { nl, out: [], index: new Map() };
    const present = new Set<string>();
    for (let i = 0; i < names.length; i++) {
      try {
        indexOf(c, names[i]!);
        present.add(names[i]!);
      } catch (e) {
        if (!(e instanceof LineFailure)) throw e;
      }
    }
    return present;
  } finally {
    nl.close();
  }
}

/**
 * lo in `netns`, brought up first when `up`: what `ip link set dev lo up; ip -j addr show dev lo`
 * gives, read with the same parsers as the batch lines but without planning lines, resolving lo
 * for the change (the kernel finds it by name) and writing and re-reading ip's JSON. The
 * loopback plugin runs on every pod's ADD; this costs it about 0.6 M instructions less than the
 * batch (callgrind). Undefined when netlink is not available (then use ip).
 */
export function loopbackOverNetlink(netns: string, up: boolean): LinkInfo | undefined {
  const nl = Rtnl.open(netns);
  if (!nl) return undefined;
  try {
    const byName = attr(IFLA_IFNAME, cstring("lo"));
    if (up) nl.call(RTM_NEWLINK, NLM_F_ACK, [ifinfo(0, IFF_UP, IFF_UP), byName], "set");
    const lo = getLink(nl, "lo");
    if (!lo) throw new NetlinkError(19, "show");
    return { ...lo.info, addr_info: addressesOf(nl, lo.info.ifindex) };
  } finally {
    nl.close();
  }
}

/** Each line followed by a newline, as ip prints them. */
function joinLines(lines: string[]): string {
  let s = "";
  for (const l of lines) s += `${l}\n`;
  return s;
}

/**
 * Runs `lines` as `ip [-j] -batch -` would, in `netns` or here, over rtnetlink. Undefined when
 * netlink is not available (Node) or a line is outside the grammar: then run ip.
 */
export function batchOverNetlink(lines: (string | number)[][], opts: { netns?: string; json?: boolean }): BatchOutcome | undefined {
  // Loops, not map/some: each array builtin costs a compiled plugin on its first call.
  const planned: ((c: Ctx) => void)[] = [];
  for (const l of lines) {
    const words: string[] = [];
    for (const w of l) words.push(String(w));
    const p = plan(words, opts.json ?? false);
    if (!p) return undefined;
    planned.push(p);
  }
  let nl: Rtnl | undefined;
  try {
    nl = Rtnl.open(opts.netns);
  } catch (e) {
    if (e instanceof NetnsError) return { status: 1, stdout: "", stderr: `${e.stderr}\n` };
    throw e;
  }
  if (!nl) return undefined;
  const c: Ctx = { nl, out: [], index: new Map() };
  try {
    for (let i = 0; i < planned.length; i++) {
      try {
        planned[i]!(c);
      } catch (e) {
        const text = e instanceof NetlinkError ? NetlinkError.answer(e.errno) : e instanceof LineFailure ? e.message : undefined;
        if (text === undefined) throw e;
        return { status: 1, stdout: joinLines(c.out), stderr: `${text}\nCommand failed -:${i + 1}\n`, failedLine: i + 1 };
      }
    }
    return { status: 0, stdout: joinLines(c.out), stderr: "" };
  } finally {
    nl.close();
  }
}
