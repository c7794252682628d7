// loopback: brings `lo` up in the container and reports its addresses. Over rtnetlink in the
// Bun-compiled plugin (no process start; ipnl.ts's loopbackOverNetlink), through `ip` otherwise.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { ipBatch, ipBatchJSON, type LinkInfo } from "../pkg/ip.ts";
import { loopbackOverNetlink } from "../pkg/ipnl.ts";
import { netnsExists, requireNetns } from "../pkg/netns.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import type { Result } from "../pkg/types.ts";

function showLo(netns: string, up: boolean): LinkInfo {
  const direct = loopbackOverNetlink(netns, up);
  if (direct) return direct;
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
  // Plain loops: this runs at every pod's start, where each first use of an array builtin costs.
  const addrs = lo.addr_info ?? [];
  let v4: string | undefined, v6: string | undefined;
  for (let i = 0; i < addrs.length; i++) {
    const a = addrs[i]!;
    if (a.family === "inet" ? !a.local.startsWith("127.") : a.local !== "::1") {
      throw new CniError(ErrCode.Internal, `loopback interface found with non-loopback address "${a.local}"`);
    }
    if (a.family === "inet") v4 ??= `${a.local}/${a.prefixlen}`;
    else v6 ??= `${a.local}/${a.prefixlen}`;
  }
  const ips: string[] = [];
  if (v4) ips.push(v4);
  if (v6) ips.push(v6);
  return ips;
}

function resultFor(lo: LinkInfo, ips: string[], netns: string): Result {
  const result: Result = { cniVersion: "1.1.0", interfaces: [{ name: "lo", mac: lo.address ?? "00:00:00:00:00:00", sandbox: netns }], ips: [] };
  for (let i = 0; i < ips.length; i++) result.ips!.push({ interface: 0, address: ips[i]! });
  return result;
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
