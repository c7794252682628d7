// What ADD asks of the kernel, as iproute2 batch steps: the bridge and the host end of the
// pair (plugin's netns), the gateway address, VLANs, and the container's addresses and routes.
import { CniError, ErrCode } from "../pkg/errors.ts";
import type { AddrInfo } from "../pkg/ip.ts";
import type { IPConfig, Route } from "../pkg/types.ts";
import { familyOf } from "../pkg/ip.ts";
import { parseCIDR } from "../pkg/result.ts";
import { formatPrefix, prefixContains, sameIP, subnetOf } from "./cidr.ts";
import { usesVlans, type BridgeConf } from "./config.ts";
import { EXISTS, MISSING, type Step } from "./link.ts";

// A concurrent ADD may have put the same gateway there first.
const ADDRESS_EXISTS = /File exists|Address already assigned/;

export interface HostPlan {
  conf: BridgeConf;
  hostVeth: string;
  /** Whether the bridge was there before this ADD. */
  bridgeExists: boolean;
  /** The MAC a bridge ADD creates gets. */
  bridgeMac: string;
  /** The VLAN gateway interface (bridge.vlan) when one is wanted, existing or to create. */
  vlanGateway?: { name: string; exists: boolean; mac: string; peer: string; peerMac: string };
}

/**
 * Bridge up (created if missing), host end of the pair on it and up; ends by reading the
 * bridge (and the VLAN gateway interface) as they are then: kind, MAC, addresses.
 */
export function hostPortSteps(p: HostPlan): Step[] {
  const { conf } = p;
  const br = conf.bridge;
  const steps: Step[] = [];
  if (!p.bridgeExists) {
    // An explicit address pins the bridge's MAC: otherwise it follows the lowest port's MAC as pods come and go.
    steps.push({
      args: ["link", "add", "name", br, "address", p.bridgeMac, ...(conf.mtu ? ["mtu", conf.mtu] : []), "type", "bridge", ...(usesVlans(conf) ? ["vlan_filtering", 1] : [])],
      tolerate: EXISTS, // another ADD made it first
    });
  } else if (usesVlans(conf)) {
    steps.push({ args: ["link", "set", "dev", br, "type", "bridge", "vlan_filtering", 1] });
  }
  if (conf.promiscMode) steps.push({ args: ["link", "set", "dev", br, "promisc", "on"] });
  steps.push({ args: ["link", "set", "dev", br, "up"] });
  steps.push({ args: ["link", "set", "dev", p.hostVeth, "master", br] });
  const port = [...(conf.hairpinMode ? ["hairpin", "on"] : []), ...(conf.portIsolation ? ["isolated", "on"] : [])];
  if (port.length) steps.push({ args: ["link", "set", "dev", p.hostVeth, "type", "bridge_slave", ...port] });
  steps.push({ args: ["link", "set", "dev", p.hostVeth, "up"] });
  const g = p.vlanGateway;
  if (g && !g.exists) {
    steps.push({ args: ["link", "add", "name", g.name, "address", g.mac, ...(conf.mtu ? ["mtu", conf.mtu] : []), "type", "veth", "peer", "name", g.peer, "address", g.peerMac, ...(conf.mtu ? ["mtu", conf.mtu] : [])] });
    steps.push({ args: ["link", "set", "dev", g.peer, "master", br] }, { args: ["link", "set", "dev", g.peer, "up"] }, { args: ["link", "set", "dev", g.name, "up"] });
  }
  steps.push({ args: ["addr", "show", "dev", br] });
  if (g) steps.push({ args: ["addr", "show", "dev", g.name] });
  return steps;
}

/** Contiguous VLAN IDs as bridge(8) ranges: [1,2,3,7] -> ["1-3", "7"]. */
function vidRanges(ids: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    out.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return out;
}

/** bridge(8) steps: the pod's port gets its VLAN untagged (and trunk VLANs tagged). */
export function vlanSteps(p: HostPlan): Step[] {
  const { conf } = p;
  if (!usesVlans(conf)) return [];
  const steps: Step[] = [];
  const port = (dev: string, vlan: number, trunk: number[]) => {
    if (!conf.preserveDefaultVlan) steps.push({ args: ["vlan", "del", "dev", dev, "vid", 1], tolerate: MISSING });
    if (vlan) steps.push({ args: ["vlan", "add", "dev", dev, "vid", vlan, "pvid", "untagged"] });
    for (const r of vidRanges(trunk)) steps.push({ args: ["vlan", "add", "dev", dev, "vid", r] });
    if (!vlan && trunk.length) steps.push({ args: ["vlan", "add", "dev", dev, "vid", 1, "pvid", "untagged"] });
  };
  port(p.hostVeth, conf.vlan, conf.vlanTrunk);
  const g = p.vlanGateway;
  if (g && !g.exists) port(g.peer, conf.vlan, []);
  return steps;
}

/** A gateway address for the bridge (or its VLAN interface): "10.244.0.1/24". */
export interface Gateway {
  cidr: string;
  family: 4 | 6;
}

/**
 * Puts the gateway addresses on `dev`. An IPv4 address already there that differs, or an IPv6
 * one whose subnet overlaps, is a conflict: replaced with forceAddress, an error otherwise.
 */
export function gatewaySteps(conf: BridgeConf, dev: string, current: AddrInfo[], gateways: Gateway[], pinMac?: string): Step[] {
  const steps: Step[] = [];
  const have = [...current];
  for (const gw of gateways) {
    const want = parseCIDR(gw.cidr)!;
    const wantNet = subnetOf(gw.cidr);
    let there = false;
    for (const a of have) if (a.prefixlen === want.prefix && sameIP(a.local, want.ip)) there = true;
    if (there) continue;
    for (const a of have) {
      if (familyOf(a.local) !== gw.family || (gw.family === 6 && a.scope === "link")) continue;
      const theirs = subnetOf(`${a.local}/${a.prefixlen}`);
      const conflict = gw.family === 4 || prefixContains(theirs, want.ip) || prefixContains(wantNet, a.local);
      if (!conflict) continue;
      if (!conf.forceAddress) {
        throw new CniError(ErrCode.InvalidConfig, `bridge ${dev} already has an IP address different from ${gw.cidr}`, `${dev} has ${a.local}/${a.prefixlen}; set "forceAddress": true to replace it`);
      }
      steps.push({ args: ["addr", "del", `${a.local}/${a.prefixlen}`, "dev", dev], tolerate: MISSING });
    }
    // No duplicate address detection: the subnet is ours, and DAD would hold the gateway back for seconds.
    steps.push({ args: ["addr", "add", gw.cidr, "dev", dev, ...(gw.family === 6 ? ["nodad"] : [])], tolerate: ADDRESS_EXISTS });
    have.push({ family: gw.family === 4 ? "inet" : "inet6", local: want.ip, prefixlen: want.prefix });
  }
  // Like the reference: pin a bridge someone else made to its current MAC once it carries a gateway.
  if (steps.length && pinMac) steps.push({ args: ["link", "set", "dev", dev, "address", pinMac] });
  return steps;
}

/** The gateway a route goes through: its own, else that of the first address of its family. */
export function routeGateway(route: Route, ips: IPConfig[]): string | undefined {
  if (route.gw) return route.gw;
  const fam = familyOf(route.dst);
  for (const ip of ips) if (familyOf(ip.address) === fam && ip.gateway) return ip.gateway;
  return undefined;
}

/** Addresses, link up, then routes (a route via a gateway needs the link up). */
export function containerSteps(ifname: string, ips: IPConfig[], routes: Route[], enableDad: boolean): Step[] {
  const steps: Step[] = [];
  for (const ip of ips) {
    steps.push({ args: ["addr", "add", ip.address, "dev", ifname, ...(familyOf(ip.address) === 6 && !enableDad ? ["nodad"] : [])] });
  }
  steps.push({ args: ["link", "set", "dev", ifname, "up"] });
  for (const r of routes) {
    const gw = routeGateway(r, ips);
    // "append", not "add": another interface of the same pod may already route this destination
    // (two attachments with a default route); each keeps its own, so either survives the other's DEL.
    const args: (string | number)[] = ["route", "append", formatPrefix(subnetOf(r.dst)), ...(gw ? ["via", gw] : []), "dev", ifname];
    if (r.priority !== undefined) args.push("metric", r.priority);
    if (r.table !== undefined) args.push("table", r.table);
    if (r.scope !== undefined) args.push("scope", r.scope);
    if (r.mtu !== undefined) args.push("mtu", r.mtu);
    if (r.advmss !== undefined) args.push("advmss", r.advmss);
    // The very same route twice in the list: the first one wins.
    steps.push({ args, tolerate: EXISTS });
  }
  return steps;
}

