// host-local: IPAM from address ranges, with a reference-compatible store on the local disk.
// It may run in-process inside another plugin (bridge's delegate), so it keeps no state
// between calls and closes every descriptor it opens.
import { CniError, ErrCode, invalidConfig } from "../../cni-plugins/pkg/errors.ts";
import type { Plugin, PluginContext } from "../../cni-plugins/pkg/skel.ts";
import type { Attachment, Result } from "../../cni-plugins/pkg/types.ts";
import { addrKey, formatAddr, parseAddr, type Addr } from "../../cni-plugins/pkg/addr.ts";
import { allocate, assignRequested } from "./allocator.ts";
import { loadConfig, loadStoreConfig } from "./config.ts";
import { allocatable, capacity, rangeFor, setString } from "./range.ts";
import { readResolvConf } from "./resolvconf.ts";
import { ownerKey, splitOwner, Store, type OwnedReservation } from "./store.ts";

/** The reservations of one attachment: its exact ones, or failing those, ID-only legacy ones. */
function reservationsOf(all: OwnedReservation[], containerID: string, ifname: string): OwnedReservation[] {
  const key = ownerKey(containerID, ifname);
  const exact = all.filter((r) => r.owner === key);
  return exact.length ? exact : all.filter((r) => r.owner === containerID);
}

async function add(ctx: PluginContext): Promise<Result> {
  const cfg = loadConfig(ctx);
  const requested = assignRequested(cfg.rangeSets, cfg.requested);
  const dns = cfg.resolvConf ? readResolvConf(cfg.resolvConf) : undefined;
  const ips = (await Store.locked(cfg.dir, true, (store) => allocate(store, cfg.rangeSets, requested, ctx.env.containerID, ctx.env.ifname)))!;
  const result: Result = { cniVersion: "1.1.0", ips };
  if (cfg.routes.length) result.routes = cfg.routes;
  if (dns) result.dns = dns;
  return result;
}

async function del(ctx: PluginContext): Promise<void> {
  // Only the store's location is needed: a DEL releases even when the ranges no longer parse.
  const { dir } = loadStoreConfig(ctx);
  await Store.locked(dir, false, (store) => {
    for (const r of reservationsOf(store.listOwned(), ctx.env.containerID, ctx.env.ifname)) store.release(r);
  });
}

async function check(ctx: PluginContext): Promise<void> {
  const cfg = loadConfig(ctx);
  const { containerID, ifname } = ctx.env;
  const held = (await Store.locked(cfg.dir, false, (store) => reservationsOf(store.listOwned(), containerID, ifname))) ?? [];
  if (held.length === 0) throw new CniError(ErrCode.AddressUnavailable, `host-local: no address is reserved for container ${containerID} interface ${ifname}`);
  if (!ctx.prevResult) return;
  const inOurRanges = (a: Addr | undefined): a is Addr => !!a && cfg.rangeSets.some((s) => rangeFor(s, a));
  const heldKeys = new Set(held.map((r) => addrKey(r.addr)));
  // Only prevResult's addresses from our ranges are ours to vouch for (a chain may add others).
  const prevOurs = (ctx.prevResult.ips ?? []).map((ip) => parseAddr(ip.address.split("/")[0])).filter(inOurRanges);
  const missing = prevOurs.filter((a) => !heldKeys.has(addrKey(a))).map(formatAddr);
  if (missing.length) throw new CniError(ErrCode.AddressUnavailable, `host-local: ${missing.join(", ")} from prevResult is not reserved for container ${containerID} interface ${ifname}`);
  const prevKeys = new Set(prevOurs.map(addrKey));
  const extra = held.filter((r) => inOurRanges(r.addr) && !prevKeys.has(addrKey(r.addr))).map((r) => formatAddr(r.addr));
  if (extra.length) throw new CniError(ErrCode.AddressUnavailable, `host-local: container ${containerID} interface ${ifname} holds ${extra.join(", ")}, which prevResult does not list`);
}

function validAttachments(ctx: PluginContext): Attachment[] {
  const key = ctx.conf["cni.dev/valid-attachments"] !== undefined ? "cni.dev/valid-attachments" : "cni.dev/attachments";
  const raw = ctx.conf[key];
  // Without the list every reservation would look stale: refuse rather than release them all.
  if (!Array.isArray(raw)) throw invalidConfig(`GC needs cni.dev/valid-attachments: a list of {containerID, ifname}`);
  return raw.map((a, i) => {
    const o = a as Record<string, unknown> | null;
    if (!o || typeof o !== "object" || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw invalidConfig(`${key}[${i}] must be an object with string containerID and ifname`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

async function gc(ctx: PluginContext): Promise<void> {
  const { dir } = loadStoreConfig(ctx);
  const valid = validAttachments(ctx);
  const keys = new Set(valid.map((a) => ownerKey(a.containerID, a.ifname)));
  const ids = new Set(valid.map((a) => a.containerID));
  const failures = (await Store.locked(dir, false, (store) => {
    const errs: string[] = [];
    for (const r of store.listOwned()) {
      const { ifname } = splitOwner(r.owner);
      const stillValid = ifname === undefined ? ids.has(r.owner) : keys.has(r.owner);
      if (stillValid) continue;
      try {
        store.release(r);
      } catch (e) {
        errs.push((e as Error).message); // keep releasing the others, as the spec asks
      }
    }
    return errs;
  })) ?? [];
  if (failures.length) throw new CniError(ErrCode.IOFailure, `GC could not release every stale reservation`, failures.join("; "));
}

async function status(ctx: PluginContext): Promise<void> {
  const cfg = loadConfig(ctx);
  const held = Store.peek(cfg.dir)?.list() ?? [];
  cfg.rangeSets.forEach((set, idx) => {
    let used = 0n;
    for (const r of held) {
      const range = rangeFor(set, r.addr);
      if (range && allocatable(range, r.addr)) used++;
    }
    if (used >= capacity(set)) {
      throw new CniError(ErrCode.NotAvailable, `no IP addresses available in range set: ${setString(set)}`, `range set ${idx} (${set.where}) has all ${used} addresses reserved`);
    }
  });
}

export const hostLocal: Plugin = {
  name: "host-local",
  // MAC too: bridge forwards its own CNI_ARGS to its IPAM delegate unchanged.
  knownArgs: ["IP", "MAC"],
  add,
  del,
  check,
  gc,
  status,
};
