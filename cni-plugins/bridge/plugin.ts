// bridge: pods on a Linux bridge through veth pairs, addresses from an IPAM plugin.
// Behaves like the reference plugin (containernetworking/plugins main/bridge) with these
// differences on purpose: a failed ADD also removes its veth pair; masquerade and spoof-check
// rules are nftables rules per attachment (network, container, ifname), so two interfaces of
// one container keep their own rules and DEL and GC find them without the container's IP.
import { CniError, ErrCode } from "../pkg/errors.ts";
import { delegate } from "../pkg/invoke.ts";
import { batchAsync, type LinkInfo } from "../pkg/ip.ts";
import { linkByIndex } from "../pkg/ipnl.ts";
import { netnsExists } from "../pkg/netns.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import { cmdAdd } from "./add.ts";
import { cmdCheck } from "./check.ts";
import { parseBridgeConf, type BridgeConf } from "./config.ts";
import { kindOf, MISSING, runSteps, showContainerLink } from "./link.ts";
import { ofAttachment, removeRules, staleOf, type RuleKind } from "./rules.ts";

const ruleKinds = (conf: BridgeConf): RuleKind[] => [...(conf.ipMasq && conf.ipamType ? ["masq" as const] : []), ...(conf.macspoofchk ? ["spoof" as const] : [])];

/**
 * Removes the container's end of our pair, by deleting the host end in our netns. Only a veth
 * whose peer is here and on our bridge (or on no bridge any more) is ours: after an ADD that
 * failed because CNI_IFNAME was taken, the runtime's DEL must not remove someone else's link.
 */
async function removeVeth(conf: BridgeConf, netns: string, ifname: string): Promise<void> {
  const cont = await showContainerLink(netns, ifname);
  if (!cont) return; // already gone
  const host = kindOf(cont) === "veth" ? await hostLinks(cont.link_index) : [];
  const peer = kindOf(cont) === "veth" ? host.find((l) => l.ifindex === cont.link_index && l.link_index === cont.ifindex && (l.master === conf.bridge || !l.master)) : undefined;
  if (!peer) {
    process.stderr.write(`bridge: leaving ${ifname} in ${netns}: it is not a veth of bridge ${conf.bridge}\n`);
    return;
  }
  await runSteps("ip", [{ args: ["link", "del", "dev", peer.ifname], tolerate: MISSING }], { where: "in the plugin's netns" });
}

/**
 * The host end's candidates: over netlink, just the link with the peer's index (a node with a
 * hundred pods has a hundred veths to read otherwise); else every veth, listed by ip.
 */
async function hostLinks(peerIndex: number | undefined): Promise<LinkInfo[]> {
  if (peerIndex !== undefined) {
    const one = linkByIndex(peerIndex);
    if (one !== undefined) return one && kindOf(one) === "veth" ? [one] : [];
  }
  const out = await batchAsync("ip", [["link", "show", "type", "veth"]], { json: true });
  if (out.status !== 0) throw new CniError(ErrCode.Kernel, `cannot list the veths of the plugin's netns: ${out.stderr.trim()}`);
  return JSON.parse(out.stdout.trim() || "[]") as LinkInfo[];
}

async function cmdDel(ctx: PluginContext): Promise<void> {
  const conf = parseBridgeConf(ctx);
  const { netns, ifname, containerID } = ctx.env;
  // Rules are found by attachment, not by IP or link: their removal runs beside everything else.
  const rules = removeRules(ruleKinds(conf), ofAttachment({ network: conf.network, containerID, ifname }));
  try {
    if (netns && netnsExists(netns)) await removeVeth(conf, netns, ifname);
    // The address is released only once no interface holds it any more.
    if (conf.ipamType) await delegate("DEL", conf.ipamType, ctx.stdin, ctx.env.path);
  } finally {
    await rules.catch(() => undefined);
  }
  await rules;
}

async function cmdGC(ctx: PluginContext): Promise<void> {
  const conf = parseBridgeConf(ctx);
  if (conf.ipamType) await delegate("GC", conf.ipamType, ctx.stdin, ctx.env.path);
  // Without the list the runtime's knowledge is unknown: remove nothing rather than everything.
  if (conf.validAttachments) {
    const valid = conf.validAttachments.map((a) => ({ network: conf.network, containerID: a.containerID, ifname: a.ifname }));
    await removeRules(["masq", "spoof"], staleOf(conf.network, valid));
  }
}

async function cmdStatus(ctx: PluginContext): Promise<void> {
  const conf = parseBridgeConf(ctx);
  if (conf.ipamType) await delegate("STATUS", conf.ipamType, ctx.stdin, ctx.env.path);
}

export const bridge: Plugin = {
  name: "bridge",
  // MAC is ours; IP is for the IPAM plugin, which gets the same CNI_ARGS.
  knownArgs: ["MAC", "IP"],
  add: cmdAdd,
  check: cmdCheck,
  del: cmdDel,
  gc: cmdGC,
  status: cmdStatus,
};
