// The request configuration a plugin gets on stdin (SPEC section 3, "Deriving request
// configuration from plugin configuration"): the plugin's configuration object unchanged,
// except that the runtime
//   - inserts `cniVersion` (the selected version) and `name` (the network's),
//   - for ADD/DEL/CHECK inserts `runtimeConfig`: the capability args the caller gave whose
//     capability the plugin declares (omitted when nothing matches, as libcni does),
//   - inserts `prevResult` when there is one (never for the first ADD of a chain),
//   - for GC inserts `cni.dev/valid-attachments`,
//   - removes `capabilities`, and any `runtimeConfig` or `cni.dev/*` key written in the file,
//     because those are reserved for the runtime to generate.
// Every other key passes through untouched, in its original order.
import type { PluginConf } from "./config.ts";
import type { PluginCommand } from "./errors.ts";

export interface GCAttachment {
  containerID: string;
  ifname: string;
}

export interface RequestParams {
  name: string;
  cniVersion: string;
  command: Exclude<PluginCommand, "VERSION">;
  capabilityArgs?: Record<string, unknown>;
  prevResult?: unknown;
  validAttachments?: GCAttachment[];
  /** Also send the legacy `cni.dev/attachments` key on GC (default true, as libcni). */
  legacyAttachmentsKey?: boolean;
}

/** runtimeConfig = declared capabilities ∩ capability args provided. */
export function runtimeConfigFor(plugin: PluginConf, capabilityArgs: Record<string, unknown> = {}): Record<string, unknown> {
  const rc: Record<string, unknown> = {};
  const caps = plugin.capabilities && typeof plugin.capabilities === "object" ? plugin.capabilities : {};
  for (const [cap, enabled] of Object.entries(caps)) {
    if (enabled === true && Object.prototype.hasOwnProperty.call(capabilityArgs, cap) && capabilityArgs[cap] !== undefined) rc[cap] = capabilityArgs[cap];
  }
  return rc;
}

export function buildRequest(plugin: PluginConf, p: RequestParams): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: p.cniVersion, name: p.name };
  for (const [k, v] of Object.entries(plugin)) {
    if (k === "cniVersion" || k === "name" || k === "capabilities" || k === "runtimeConfig" || k === "prevResult" || k.startsWith("cni.dev/")) continue;
    out[k] = v;
  }
  const attachmentOp = p.command === "ADD" || p.command === "DEL" || p.command === "CHECK";
  if (attachmentOp) {
    const rc = runtimeConfigFor(plugin, p.capabilityArgs);
    if (Object.keys(rc).length) out.runtimeConfig = rc;
    if (p.prevResult !== undefined && p.prevResult !== null) out.prevResult = p.prevResult;
  }
  if (p.command === "GC") {
    const list = (p.validAttachments ?? []).map((a) => ({ containerID: a.containerID, ifname: a.ifname }));
    out["cni.dev/valid-attachments"] = list;
    // The key's first published name; libcni still sends both so plugins built against that
    // text keep working (containernetworking/cni#1101).
    if (p.legacyAttachmentsKey !== false) out["cni.dev/attachments"] = list;
  }
  return out;
}
