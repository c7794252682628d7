// portmap: a chained plugin that forwards host ports to the container's addresses with nftables
// in the netns it runs in (the node). See rules.ts for the table layout.
import { CniError, ErrCode, invalidConfig } from "../pkg/errors.ts";
import { runAsync } from "../pkg/exec.ts";
import type { Plugin, PluginContext } from "../pkg/skel.ts";
import type { Result } from "../pkg/types.ts";
import { containerIPs, parseConfig, type ContainerIPs } from "./config.ts";
import { deleteStaleUdpEntries, enableRouteLocalnet, routeInterfaceV4, routeLocalnetEnabled } from "./host.ts";
import {
  attachmentChainSpecs,
  chainsOf,
  deleteChainsIfPresentScript,
  deleteChainsScript,
  chainNames,
  networkPrefix,
  writeChainsScript,
  type Attachment,
} from "./rules.ts";
import { chainProblems, chainsPresent, listTable } from "./state.ts";

const NOT_CHAINED = "must be called as chained plugin";

function attachmentOf(ctx: PluginContext): Attachment {
  return { network: ctx.conf.name, containerID: ctx.env.containerID, ifname: ctx.env.ifname };
}

function requirePrevResult(ctx: PluginContext): Result {
  if (!ctx.prevResult) throw invalidConfig(NOT_CHAINED, "portmap forwards host ports to the addresses in prevResult; put it after an interface plugin such as bridge");
  return ctx.prevResult;
}

function requireIPs(prev: Result, ifname: string): ContainerIPs {
  const ips = containerIPs(prev, ifname);
  if (!ips.v4 && !ips.v6) {
    throw invalidConfig(`prevResult has no IP address on interface ${ifname} in the sandbox to forward host ports to`, JSON.stringify(prev.ips ?? []));
  }
  return ips;
}

/**
 * Runs one `nft -f -` transaction. When nft rejects a line that carries user conditions, the
 * conditions are the bad input (code 7); any other failure is the kernel's.
 */
async function applyScript(lines: string[], what: string, userLines: (line: string) => boolean = () => false): Promise<void> {
  const r = await runAsync("nft", ["-f", "-"], { input: lines.join("\n") + "\n", allowFail: true });
  if (r.status === 0) return;
  const msg = r.stderr.trim() || `exit status ${r.status}`;
  const lineNo = Number(/\/dev\/stdin:(\d+):/.exec(r.stderr)?.[1] ?? 0);
  if (lineNo > 0 && userLines(lines[lineNo - 1] ?? "")) {
    throw invalidConfig("nftables rejected conditionsV4/conditionsV6", msg);
  }
  throw new CniError(ErrCode.Kernel, `unable to ${what}: ${msg.split("\n")[0]}`, msg);
}

function hasMappings(ctx: PluginContext): boolean {
  const pm = (ctx.conf.runtimeConfig as Record<string, unknown> | undefined)?.portMappings;
  return Array.isArray(pm) && pm.length > 0;
}

/** Removes the attachment's chains; succeeds when they (or the whole table) are already gone. */
async function removeAttachment(att: Attachment, tryDirect: boolean): Promise<void> {
  const names = chainNames(chainsOf(att));
  // The common case, chains present, is one transaction; only when they are not do we look.
  if (tryDirect && (await runAsync("nft", ["-f", "-"], { input: deleteChainsScript(names).join("\n") + "\n", allowFail: true })).status === 0) return;
  // Most DELs (pods without host ports) find nothing: asked over netlink, that costs no process.
  if (chainsPresent(names)?.size === 0) return;
  const listed = await listTable();
  if (!listed) return;
  const present = names.filter((n) => listed.has(n));
  if (present.length) await applyScript(deleteChainsIfPresentScript(present), "delete the host port rules");
}

export const portmap: Plugin = {
  name: "portmap",

  async add(ctx) {
    const prev = requirePrevResult(ctx);
    const conf = parseConfig(ctx.conf);
    if (conf.mappings.length === 0) return prev;
    const ips = requireIPs(prev, ctx.env.ifname);
    const chains = attachmentChainSpecs(attachmentOf(ctx), conf, ips);
    if (conf.snat && ips.v4) {
      // 127.0.0.1:PORT on the node: the DNATed packet keeps its loopback source until it is
      // masqueraded, so the interface toward the pod must accept routing it.
      const iface = routeInterfaceV4(ips.v4);
      if (iface) {
        try {
          enableRouteLocalnet(iface);
        } catch (e) {
          throw new CniError(ErrCode.Kernel, `unable to enable route_localnet on ${iface}: ${(e as Error).message}`);
        }
      }
    }
    const userCond = new Set([...conf.conditionsV4, ...conf.conditionsV6]);
    await applyScript(writeChainsScript(chains), "set up nftables rules for port mappings", (line) => [...userCond].some((c) => line.includes(c)));
    await deleteStaleUdpEntries(conf.mappings, [...(ips.v4 ? [4 as const] : []), ...(ips.v6 ? [6 as const] : [])]);
    return prev;
  },

  async check(ctx) {
    const prev = requirePrevResult(ctx);
    const conf = parseConfig(ctx.conf);
    if (conf.mappings.length === 0) return;
    const ips = requireIPs(prev, ctx.env.ifname);
    const chains = attachmentChainSpecs(attachmentOf(ctx), conf, ips);
    const listed = (await listTable()) ?? new Map();
    const problems = chains.flatMap((c) => chainProblems(c, listed.get(c.name)));
    if (conf.snat && ips.v4) {
      const iface = routeInterfaceV4(ips.v4);
      if (iface && !routeLocalnetEnabled(iface)) problems.push(`route_localnet is off on ${iface}, the interface toward ${ips.v4}`);
    }
    if (problems.length) {
      throw new CniError(ErrCode.Kernel, `host port forwarding of container ${ctx.env.containerID} (${ctx.env.ifname}) is not in place: ${problems[0]}`, problems.join("; "));
    }
  },

  async del(ctx) {
    // DEL needs no mappings or prevResult: the chains are found by the attachment's identity,
    // so even a DEL without runtimeConfig removes them.
    await removeAttachment(attachmentOf(ctx), hasMappings(ctx));
  },

  async gc(ctx) {
    const raw = ctx.conf["cni.dev/valid-attachments"];
    if (!Array.isArray(raw)) throw invalidConfig("GC needs cni.dev/valid-attachments, the list of attachments to keep");
    const keep = new Set<string>();
    raw.forEach((a, i) => {
      if (!a || typeof a !== "object" || typeof a.containerID !== "string" || typeof a.ifname !== "string") {
        throw invalidConfig(`cni.dev/valid-attachments[${i}] must be {"containerID": string, "ifname": string}`);
      }
      for (const n of chainNames(chainsOf({ network: ctx.conf.name, containerID: a.containerID, ifname: a.ifname }))) keep.add(n);
    });
    const listed = await listTable();
    if (!listed) return;
    const prefix = networkPrefix(ctx.conf.name);
    const stale = [...listed.keys()].filter((n) => n.startsWith(prefix) && !keep.has(n));
    if (stale.length === 0) return;
    await applyScript(deleteChainsIfPresentScript(stale), "delete the host port rules of stale attachments");
  },
};
