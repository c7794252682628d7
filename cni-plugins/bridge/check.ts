// CHECK: the attachment is still what ADD made of it (prevResult): bridge, both ends of the
// pair, the container's addresses and routes, and the nftables rules; then IPAM's own CHECK.
import { runAsync } from "../pkg/exec.ts";
import { CniError, ErrCode } from "../pkg/errors.ts";
import { delegate } from "../pkg/invoke.ts";
import { familyOf, type LinkInfo, type RouteInfo } from "../pkg/ip.ts";
import { requireNetns } from "../pkg/netns.ts";
import { parseCIDR } from "../pkg/result.ts";
import type { PluginContext } from "../pkg/skel.ts";
import type { Route } from "../pkg/types.ts";
import { formatPrefix, sameIP, subnetOf } from "./cidr.ts";
import { parseBridgeConf } from "./config.ts";
import { kindOf, runSteps } from "./link.ts";
import { listRules, masqSource, ofAttachment, type Attachment } from "./rules.ts";

const fail = (msg: string, details?: string) => new CniError(ErrCode.Kernel, msg, details);

/** "default", "10.0.0.5" and "10.0.0.0/24" as one normal form; the family from `hint` for "default". */
function normalDst(dst: string, hint: string | undefined): string | undefined {
  if (dst === "default") {
    if (!hint) return undefined;
    return familyOf(hint) === 4 ? "0.0.0.0/0" : "::/0";
  }
  const cidr = dst.includes("/") ? dst : `${dst}/${familyOf(dst) === 4 ? 32 : 128}`;
  return parseCIDR(cidr) ? formatPrefix(subnetOf(cidr)) : undefined;
}

function routePresent(want: Route, have: RouteInfo[], ifname: string): boolean {
  const dst = formatPrefix(subnetOf(want.dst));
  return have.some((r) => {
    if (r.dev !== ifname) return false;
    // A default route without a gateway does not show its family: take it as the one wanted.
    const theirs = normalDst(r.dst, r.gateway) ?? (r.dst === "default" ? (familyOf(want.dst) === 4 ? "0.0.0.0/0" : "::/0") : undefined);
    if (theirs !== dst) return false;
    if (want.gw && !(r.gateway && sameIP(r.gateway, want.gw))) return false;
    const table = r.table === undefined || r.table === "main" ? 254 : Number(r.table);
    return table === (want.table ?? 254);
  });
}

export async function cmdCheck(ctx: PluginContext): Promise<void> {
  const conf = parseBridgeConf(ctx);
  const { netns, ifname, containerID } = ctx.env;
  requireNetns(netns);
  if (!ctx.prevResult) throw new CniError(ErrCode.InvalidConfig, "CHECK needs prevResult", "pass the result of ADD as prevResult");
  if (conf.ipamType) await delegate("CHECK", conf.ipamType, ctx.stdin, ctx.env.path);
  const prev = ctx.prevResult;
  const ifaces = prev.interfaces ?? [];
  const brWant = ifaces.find((i) => i.name === conf.bridge && !i.sandbox);
  if (!brWant) throw fail(`prevResult has no interface for bridge ${conf.bridge}`);
  const contIdx = ifaces.findIndex((i) => i.name === ifname && i.sandbox === netns);
  if (contIdx < 0) throw fail(`prevResult has no interface ${ifname} in sandbox ${netns}`);
  const contWant = ifaces[contIdx]!;
  const att: Attachment = { network: conf.network, containerID, ifname };

  const [hostOut, contDocs, masq, spoof] = await Promise.all([
    runAsync("ip", ["-j", "-d", "link", "show"]),
    runSteps("ip", [{ args: ["addr", "show", "dev", ifname] }, { args: ["route", "show", "table", "all"] }], { netns, json: true, where: "in the container" }).catch((e: Error) => {
      throw fail(`interface ${ifname} not found in the container`, e.message);
    }),
    conf.ipMasq && conf.ipamType ? listRules("masq") : Promise.resolve([]),
    conf.macspoofchk ? listRules("spoof") : Promise.resolve([]),
  ]);
  const host = JSON.parse(hostOut.stdout || "[]") as LinkInfo[];
  const cont = (contDocs[0] as LinkInfo[])[0]!;
  const routes = contDocs[1] as RouteInfo[];

  const br = host.find((l) => l.ifname === conf.bridge);
  if (!br) throw fail(`bridge ${conf.bridge} not found`);
  if (kindOf(br) !== "bridge") throw fail(`${conf.bridge} is not a bridge`);
  if (brWant.mac && br.address !== brWant.mac) throw fail(`bridge ${conf.bridge} has MAC ${br.address}, prevResult says ${brWant.mac}`);
  if (br.flags.includes("PROMISC") !== conf.promiscMode) throw fail(`bridge ${conf.bridge} promiscuous mode is ${br.flags.includes("PROMISC") ? "on" : "off"}, the config wants it ${conf.promiscMode ? "on" : "off"}`);

  if (kindOf(cont) !== "veth") throw fail(`container interface ${ifname} is not a veth`);
  if (contWant.mac && cont.address !== contWant.mac) throw fail(`container interface ${ifname} has MAC ${cont.address}, prevResult says ${contWant.mac}`);
  if (!conf.disableContainerInterface && !cont.flags.includes("UP")) throw fail(`container interface ${ifname} is down`);

  // The host end: a veth of prevResult that is the container end's peer and a port of the bridge.
  const names = new Set(ifaces.filter((i) => !i.sandbox && i.name !== conf.bridge).map((i) => i.name));
  const peer = host.find((l) => names.has(l.ifname) && l.ifindex === cont.link_index && kindOf(l) === "veth" && l.master === conf.bridge);
  if (!peer) throw fail(`the veth of ${ifname} on bridge ${conf.bridge} was not found`, `looked for a port of ${conf.bridge} with ifindex ${cont.link_index} among ${[...names].join(", ") || "no interfaces"}`);
  const peerWant = ifaces.find((i) => i.name === peer.ifname)!;
  if (peerWant.mac && peer.address !== peerWant.mac) throw fail(`host veth ${peer.ifname} has MAC ${peer.address}, prevResult says ${peerWant.mac}`);

  const ips = (prev.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === contIdx);
  for (const ip of ips) {
    const c = parseCIDR(ip.address)!;
    if (!(cont.addr_info ?? []).some((a) => a.prefixlen === c.prefix && sameIP(a.local, c.ip))) throw fail(`container interface ${ifname} does not have ${ip.address}`);
  }
  for (const r of prev.routes ?? []) {
    if (!routePresent(r, routes, ifname)) throw fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} not found on ${ifname} in the container`);
  }

  const mine = ofAttachment(att);
  if (conf.ipMasq && conf.ipamType) {
    for (const ip of ips) {
      const addr = parseCIDR(ip.address)!.ip;
      if (!masq.some((r) => mine(r) && sameIP(masqSource(r) ?? "", addr))) throw fail(`masquerade rule for ${addr} not found`);
    }
  }
  if (conf.macspoofchk && !spoof.some(mine)) throw fail(`MAC spoof-check rule for ${ifname} not found`);
}
