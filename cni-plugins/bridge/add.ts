// ADD. Ordered so that a runtime's request costs few process starts and little waiting:
//   1. create the veth pair from the container's netns (this is also the check that CNI_IFNAME
//      is free: nothing else has been touched yet);
//   2. at once: bridge + host port, read back (own netns) | arp_notify in the container | IPAM ADD;
//   3. at once: container addresses and routes | gateway address | VLANs | nftables rules.
// Anything failing undoes what was done: the veth pair, the rules, the IPAM reservation.
import { delegate, delegateAdd } from "../pkg/invoke.ts";
import { CniError, ErrCode } from "../pkg/errors.ts";
import { runAsync } from "../pkg/exec.ts";
import { familyOf, type LinkInfo } from "../pkg/ip.ts";
import { getSysctl, requireNetns, setSysctl, trySysctlIn } from "../pkg/netns.ts";
import type { PluginContext } from "../pkg/skel.ts";
import type { IPConfig, Result, Route } from "../pkg/types.ts";
import { firstHost, formatPrefix, subnetOf } from "./cidr.ts";
import { parseBridgeConf, usesVlans, type BridgeConf } from "./config.ts";
import { createVeth, kindOf, linksPresent, randomMac, randomVethName, runSteps, showLinks } from "./link.ts";
import { addRules, masqRules, ofAttachment, removeRules, spoofRules, type Attachment, type RuleKind } from "./rules.ts";
import { containerSteps, gatewaySteps, hostPortSteps, vlanSteps, type Gateway, type HostPlan } from "./setup.ts";

type Undo = () => unknown;

function log(msg: string): void {
  process.stderr.write(`bridge: ${msg}\n`);
}

// Loops rather than map/filter/find/some in the ADD path: a compiled plugin compiles each array
// builtin on its first call (0.1-0.3 M instructions apiece), and every pod runs this once.

/** Waits for every started step, then throws the first failure (so undo never races a step). */
async function settle(ps: Promise<unknown>[]): Promise<unknown[]> {
  const rs = await Promise.allSettled(ps);
  const values: unknown[] = [];
  for (const r of rs) {
    if (r.status === "rejected") throw r.reason;
    values.push(r.value);
  }
  return values;
}

async function undoAll(undo: Undo[]): Promise<void> {
  for (const u of undo.reverse()) {
    try {
      await u();
    } catch (e) {
      log(`cleanup after a failed ADD: ${(e as Error).message}`);
    }
  }
}

const defaultDst = (fam: 4 | 6) => (fam === 4 ? "0.0.0.0/0" : "::/0");

/** IPs on the container interface (index 2), gateways filled in, the default route added when asked. */
function shapeIPAM(conf: BridgeConf, ipam: Result): { ips: IPConfig[]; routes: Route[]; gateways: Gateway[] } {
  if (!ipam.ips?.length) throw new CniError(ErrCode.Internal, `IPAM plugin ${conf.ipamType} returned no IP configuration`);
  const ips: IPConfig[] = [];
  for (const ip of ipam.ips) {
    const out: IPConfig = { address: ip.address, interface: 2 };
    const gw = ip.gateway ?? (conf.isGateway ? firstHost(subnetOf(ip.address)) : undefined);
    if (gw) out.gateway = gw;
    ips.push(out);
  }
  const routes: Route[] = [];
  for (const r of ipam.routes ?? []) routes.push({ ...r });
  const gateways: Gateway[] = [];
  const seen = new Set<string>();
  for (const ip of ips) {
    const fam = familyOf(ip.address);
    if (conf.isDefaultGateway && ip.gateway) {
      let has = false;
      for (const r of routes) if (r.gw && familyOf(r.dst) === fam && formatPrefix(subnetOf(r.dst)) === defaultDst(fam)) has = true;
      if (!has) routes.push({ dst: defaultDst(fam), gw: ip.gateway });
    }
    if (conf.isGateway && ip.gateway) {
      const cidr = `${ip.gateway}/${ip.address.split("/")[1]}`;
      if (!seen.has(cidr)) gateways.push({ cidr, family: fam });
      seen.add(cidr);
    }
  }
  return { ips, routes, gateways };
}

/** The clear error when `name` exists but is no bridge (asked only once something failed). */
async function notABridge(name: string): Promise<CniError | undefined> {
  const [l] = await showLinks([name]).catch(() => [undefined]);
  if (!l || kindOf(l) === "bridge") return undefined;
  return new CniError(ErrCode.InvalidConfig, `"${name}" already exists but is not a bridge`, `it is a ${kindOf(l) ?? "plain"} link; choose another "bridge" name`);
}

/** IP forwarding in our own netns, written directly (no sysctl(8) process); only when off. */
function enableForwarding(families: Set<4 | 6>): void {
  for (const f of families) {
    const k = f === 4 ? "net/ipv4/ip_forward" : "net/ipv6/conf/all/forwarding";
    if (getSysctl(k) !== "1") setSysctl(k, "1");
  }
}

/** We own the bridge's routes: no router advertisements. Best effort (IPv6 may be off). */
function noRouterAdvertisements(bridge: string): void {
  try {
    if (getSysctl(`net/ipv6/conf/${bridge}/accept_ra`) !== "0") setSysctl(`net/ipv6/conf/${bridge}/accept_ra`, "0");
  } catch {
    /* no IPv6 on this bridge */
  }
}

export async function cmdAdd(ctx: PluginContext): Promise<Result> {
  const conf = parseBridgeConf(ctx);
  const { netns, ifname, containerID } = ctx.env;
  requireNetns(netns);
  const att: Attachment = { network: conf.network, containerID, ifname };
  const vlanGwName = conf.vlan && conf.isGateway ? `${conf.bridge}.${conf.vlan}` : undefined;
  const present = linksPresent(vlanGwName ? [conf.bridge, vlanGwName] : [conf.bridge]);
  const containerMac = conf.mac ?? randomMac();
  const hostMac = randomMac();

  // Step 1: nothing else has been touched when this fails.
  const hostVeth = await createVeth({ netns, ifname, containerMac, hostMac, mtu: conf.mtu });
  const undo: Undo[] = [() => runAsync("ip", ["link", "del", "dev", hostVeth], { allowFail: true })];
  try {
    const plan: HostPlan = { conf, hostVeth, bridgeExists: present.has(conf.bridge), bridgeMac: randomMac() };
    if (vlanGwName) {
      plan.vlanGateway = { name: vlanGwName, exists: present.has(vlanGwName), mac: randomMac(), peer: randomVethName(), peerMac: randomMac() };
    }

    // Step 2: the port and the ARP setting run while IPAM allocates.
    const port = runSteps("ip", hostPortSteps(plan), { json: true, where: `on bridge ${conf.bridge}` }).catch(async (e: CniError) => {
      throw (await notABridge(conf.bridge)) ?? (usesVlans(conf) && /Operation not supported/.test(e.message)
        ? new CniError(ErrCode.Kernel, `this kernel cannot filter VLANs on bridges ("vlan"/"vlanTrunk")`, e.message)
        : e);
    });
    const arp = conf.ipamType
      ? trySysctlIn(netns, `net/ipv4/conf/${ifname}/arp_notify`, "1")
      : Promise.resolve(undefined);
    let ipam: Result | undefined;
    try {
      if (conf.ipamType) {
        ipam = await delegateAdd(conf.ipamType, ctx.stdin, ctx.env.path, ctx.version);
        const type = conf.ipamType;
        undo.push(() => delegate("DEL", type, ctx.stdin, ctx.env.path));
      }
    } finally {
      await Promise.allSettled([port, arp]);
    }
    const [portDocs] = (await settle([port, arp])) as [unknown[], unknown];
    const brNow = (portDocs[0] as LinkInfo[] | undefined)?.[0];
    if (!brNow || kindOf(brNow) !== "bridge") throw (await notABridge(conf.bridge)) ?? new CniError(ErrCode.Kernel, `cannot read bridge ${conf.bridge}`);
    const vlanGwNow = plan.vlanGateway ? (portDocs[1] as LinkInfo[] | undefined)?.[0] : undefined;
    noRouterAdvertisements(conf.bridge);

    const result: Result = {
      cniVersion: "1.1.0",
      interfaces: [
        { name: conf.bridge, mac: brNow.address ?? plan.bridgeMac },
        { name: hostVeth, mac: hostMac },
        { name: ifname, mac: containerMac, sandbox: netns },
      ],
    };

    // Step 3: everything is planned first (a plan can fail), then started together.
    const jobs: (() => Promise<unknown>)[] = [];
    let gateways: Gateway[] = [];
    if (ipam) {
      const shaped = shapeIPAM(conf, ipam);
      gateways = shaped.gateways;
      result.ips = shaped.ips;
      if (shaped.routes.length) result.routes = shaped.routes;
      if (ipam.dns) result.dns = ipam.dns;
      const steps = containerSteps(ifname, shaped.ips, shaped.routes, conf.enableDad);
      jobs.push(() => runSteps("ip", steps, { netns, where: `on ${ifname} in the container` }));
      if (gateways.length) {
        const g = plan.vlanGateway;
        const dev = g?.name ?? conf.bridge;
        const current = (g ? vlanGwNow?.addr_info : brNow.addr_info) ?? [];
        const gwSteps = gatewaySteps(conf, dev, current, gateways, !g && plan.bridgeExists ? brNow.address : undefined);
        jobs.push(() => runSteps("ip", gwSteps, { where: `on ${dev}` }));
        if (g) result.interfaces!.push({ name: g.name, mac: vlanGwNow?.address ?? g.mac });
      }
    } else if (!conf.disableContainerInterface) {
      jobs.push(() => runSteps("ip", [{ args: ["link", "set", "dev", ifname, "up"] }], { netns, where: "in the container" }));
    }
    const vlans = vlanSteps(plan);
    if (vlans.length) jobs.push(() => runSteps("bridge", vlans, { where: `on bridge ${conf.bridge}` }));
    const rules = {
      masq: conf.ipMasq && result.ips ? masqRules(att, result.ips.map((i) => i.address)) : [],
      spoof: conf.macspoofchk ? spoofRules(att, hostVeth, containerMac) : [],
    };
    if (rules.masq.length || rules.spoof.length) {
      const kinds: RuleKind[] = [...(rules.masq.length ? ["masq" as const] : []), ...(rules.spoof.length ? ["spoof" as const] : [])];
      undo.push(() => removeRules(kinds, ofAttachment(att)));
      jobs.push(() => addRules(rules));
    }
    const started: Promise<unknown>[] = [];
    for (const j of jobs) started.push(j());
    await settle(started);
    if (gateways.length) {
      const families = new Set<4 | 6>();
      for (const g of gateways) families.add(g.family);
      enableForwarding(families);
    }

    if (conf.dns && (conf.dns.nameservers?.length || conf.dns.domain || conf.dns.search?.length || conf.dns.options?.length)) result.dns = conf.dns;
    return result;
  } catch (e) {
    await undoAll(undo);
    throw e;
  }
}
