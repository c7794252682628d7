// loopback: brings `lo` up in the container and reports its addresses.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { ipBatchJSON, type LinkInfo } from "../pkg/ip.ts";
import { netnsExists, requireNetns } from "../pkg/netns.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import type { Result } from "../pkg/types.ts";
import { run } from "../pkg/exec.ts";

function showLo(netns: string, up: boolean): LinkInfo {
  const lines: string[][] = up ? [["link", "set", "lo", "up"], ["addr", "show", "dev", "lo"]] : [["addr", "show", "dev", "lo"]];
  const [lo] = ipBatchJSON<LinkInfo[]>(lines, { netns });
  if (!lo?.[0]) throw new CniError(ErrCode.Kernel, "no lo interface in the container");
  return lo[0];
}

function resultFor(lo: LinkInfo, netns: string): Result {
  return {
    cniVersion: "1.1.0",
    interfaces: [{ name: "lo", mac: lo.address ?? "00:00:00:00:00:00", sandbox: netns }],
    ips: (lo.addr_info ?? []).map((a) => ({ interface: 0, address: `${a.local}/${a.prefixlen}` })),
  };
}

export const loopback: Plugin = {
  name: "loopback",
  add(ctx: PluginContext) {
    requireNetns(ctx.env.netns);
    const lo = showLo(ctx.env.netns, true);
    // A chained loopback passes the previous result through unchanged, as the spec asks.
    return ctx.prevResult ?? resultFor(lo, ctx.env.netns);
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
    run("ip", ["link", "set", "lo", "down"], { netns: ctx.env.netns, allowFail: true });
  },
};
