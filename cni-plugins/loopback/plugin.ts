// loopback: brings `lo` up in the container and reports its addresses. Through rtnetlink in the
// Bun-compiled plugin (no process start), through `ip` otherwise; both read the same kernel state.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { ipBatchJSON, type LinkInfo } from "../pkg/ip.ts";
import { IFF_UP, Rtnl } from "../pkg/netlink.ts";
import { netnsExists, requireNetns } from "../pkg/netns.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import type { Result } from "../pkg/types.ts";
import { run } from "../pkg/exec.ts";

function noLo(): CniError {
  return new CniError(ErrCode.Kernel, "no lo interface in the container");
}

/** lo as `ip -j addr show dev lo` describes it, read over netlink (after bringing it up). */
function showLoNetlink(nl: Rtnl, up: boolean): LinkInfo {
  try {
    if (up) nl.setUp("lo", true);
    const link = nl.link("lo");
    if (!link) throw noLo();
    const addrs = nl.addresses(link.index);
    return {
      ifindex: link.index,
      ifname: link.name,
      address: link.mac,
      mtu: link.mtu,
      flags: link.flags & IFF_UP ? ["LOOPBACK", "UP"] : ["LOOPBACK"],
      addr_info: addrs.map((a) => ({ family: a.family === 4 ? "inet" : "inet6", local: a.local, prefixlen: a.prefixlen })),
    };
  } finally {
    nl.close();
  }
}

function showLo(netns: string, up: boolean): LinkInfo {
  const nl = Rtnl.open(netns);
  if (nl) return showLoNetlink(nl, up);
  const lines: string[][] = up ? [["link", "set", "lo", "up"], ["addr", "show", "dev", "lo"]] : [["addr", "show", "dev", "lo"]];
  const [lo] = ipBatchJSON<LinkInfo[]>(lines, { netns });
  if (!lo?.[0]) throw noLo();
  return lo[0];
}

function setLoDown(netns: string): void {
  let nl: Rtnl | undefined;
  try {
    nl = Rtnl.open(netns);
  } catch {
    /* best effort, as below */
  }
  if (!nl) {
    run("ip", ["link", "set", "lo", "down"], { netns, allowFail: true });
    return;
  }
  try {
    nl.setUp("lo", false);
  } catch {
    /* best effort: DEL must not fail over lo */
  } finally {
    nl.close();
  }
}

/**
 * As with the reference: lo may carry only loopback addresses (127/8, ::1), and the result names
 * the first address of each family.
 */
function loopbackIPs(lo: LinkInfo): string[] {
  const addrs = lo.addr_info ?? [];
  const bad = addrs.find((a) => (a.family === "inet" ? !a.local.startsWith("127.") : a.local !== "::1"));
  if (bad) throw new CniError(ErrCode.Internal, `loopback interface found with non-loopback address "${bad.local}"`);
  return (["inet", "inet6"] as const).flatMap((f) => {
    const a = addrs.find((x) => x.family === f);
    return a ? [`${a.local}/${a.prefixlen}`] : [];
  });
}

function resultFor(lo: LinkInfo, ips: string[], netns: string): Result {
  return {
    cniVersion: "1.1.0",
    interfaces: [{ name: "lo", mac: lo.address ?? "00:00:00:00:00:00", sandbox: netns }],
    ips: ips.map((address) => ({ interface: 0, address })),
  };
}

export const loopback: Plugin = {
  name: "loopback",
  add(ctx: PluginContext) {
    requireNetns(ctx.env.netns);
    const lo = showLo(ctx.env.netns, true);
    // A chained loopback passes the previous result through unchanged, as the spec asks.
    const ips = loopbackIPs(lo);
    return ctx.prevResult ?? resultFor(lo, ips, ctx.env.netns);
  },
  check(ctx: PluginContext) {
    requireNetns(ctx.env.netns);
    const lo = showLo(ctx.env.netns, false);
    if (!lo.flags.includes("UP")) throw new CniError(ErrCode.Kernel, "lo is down in the container");
    if (!(lo.addr_info ?? []).some((a) => a.local === "127.0.0.1")) throw new CniError(ErrCode.Kernel, "lo has no 127.0.0.1 in the container");
  },
  del(ctx: PluginContext) {
    // Best effort: a netns that is gone took its lo with it.
    if (!ctx.env.netns || !netnsExists(ctx.env.netns)) return;
    setLoDown(ctx.env.netns);
  },
};
