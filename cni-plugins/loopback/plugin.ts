// loopback: brings `lo` up in the container and reports its addresses. The ip lines go over
// rtnetlink in the Bun-compiled plugin (no process start), through `ip` otherwise.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { ipBatch, ipBatchJSON, type LinkInfo } from "../pkg/ip.ts";
import { netnsExists, requireNetns } from "../pkg/netns.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import type { Result } from "../pkg/types.ts";

function showLo(netns: string, up: boolean): LinkInfo {
  const lines: string[][] = up ? [["link", "set", "dev", "lo", "up"], ["addr", "show", "dev", "lo"]] : [["addr", "show", "dev", "lo"]];
  const [lo] = ipBatchJSON<LinkInfo[]>(lines, { netns });
  if (!lo?.[0]) throw new CniError(ErrCode.Kernel, "no lo interface in the container");
  return lo[0];
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
    try {
      ipBatch([["link", "set", "dev", "lo", "down"]], { netns: ctx.env.netns, allowFail: true });
    } catch {
      /* best effort: DEL must not fail over lo */
    }
  },
};
