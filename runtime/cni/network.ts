// CniNetwork: executes one network configuration list (SPEC section 3) for attachments.
// See index.ts for the overview and an example.
import { ifnameProblem, validContainerID } from "../../cni-plugins/pkg/env.ts";
import { convertResult, parseResult } from "../../cni-plugins/pkg/result.ts";
import { atLeast } from "../../cni-plugins/pkg/version.ts";
import { cachePath, listEntries, readEntry, removeEntry, writeEntry, type CacheEntry } from "./cache.ts";
import { loadConfDir, loadConfigFile, parseNetworkConfig, selectNetwork, type NetworkConfigList, type PluginConf } from "./config.ts";
import { CniRuntimeError, PluginError, type PluginCommand } from "./errors.ts";
import { execPlugin, failureOf, findPlugin, parseOutputObject, type ExecRequest } from "./exec.ts";
import { containerLocks, gateFor } from "./locks.ts";
import { buildRequest, type GCAttachment } from "./request.ts";
import { pluginVersionInfo, selectVersion } from "./version.ts";

/** One attachment of a container to the network: the (containerID, ifname) pair plus its parameters. */
export interface Attachment {
  containerID: string;
  /** Path of the container's network namespace, e.g. /run/netns/NAME. May be "" for DEL when it is gone. */
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs, in order. For CHECK and DEL the ones cached by ADD are used when absent. */
  args?: [string, string][];
}

export type CapabilityArgs = Record<string, unknown>;

export interface CniNetworkOptions {
  /** A directory of configurations (libcni's search rules), with `name` picking one (the first otherwise). */
  confDir?: string;
  name?: string;
  /** Or one configuration file (.conflist, .conf or .json). */
  configFile?: string;
  /** Or a configuration object: a list ({name, cniVersion, plugins}) or one plugin's ({name, cniVersion, type}). */
  conflist?: Record<string, unknown>;
  /** Directories to find plugins in (CNI_PATH); a ':'-separated string is split. */
  cniPath: string | string[];
  /** Result cache root, e.g. /var/lib/cni; entries go to <cacheDir>/results. */
  cacheDir: string;
  /** Limit for one plugin execution; the plugin (and what it started) is killed after it. */
  execTimeoutMs?: number;
  /** Run the plugins inside this network namespace (the runtime's networking domain). */
  pluginNetns?: string;
  /** Environment the plugins inherit besides CNI_*; the process environment by default. */
  env?: NodeJS.ProcessEnv;
  /** Receives what a successful plugin wrote to stderr (failures carry it in the PluginError). */
  onStderr?: (plugin: string, command: PluginCommand, text: string) => void;
}

export interface GcReport {
  /** Set when nothing ran, and why (disableGC). */
  skipped?: string;
  /** The valid attachments sent to the plugins. */
  validAttachments: GCAttachment[];
  /** Cached attachments that were not valid and were deleted with DEL first (as libcni does). */
  deleted: GCAttachment[];
  /** Whether the plugins were sent GC (only from version 1.1.0). */
  pluginsAsked: boolean;
  /** Every failure, in order; GC continues past each. */
  errors: Error[];
}

export interface StatusReport {
  version: string;
  /** Set when the plugins were not asked, and why. */
  skipped?: string;
  ok: boolean;
  plugins: { type: string; ok: boolean; error?: Error }[];
}

function validateAttachment(a: Attachment, op: string): void {
  if (!a || typeof a !== "object") throw new CniRuntimeError(`${op}: an attachment {containerID, netns, ifname} is required`);
  if (typeof a.containerID !== "string" || !validContainerID(a.containerID)) {
    throw new CniRuntimeError(`${op}: invalid container ID ${JSON.stringify(a.containerID)}: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`);
  }
  const ip = typeof a.ifname === "string" ? ifnameProblem(a.ifname) : "interface name missing";
  if (ip) throw new CniRuntimeError(`${op}: ${ip}: ${JSON.stringify(a.ifname)}`);
  if (typeof a.netns !== "string" || a.netns.includes("\0")) throw new CniRuntimeError(`${op}: netns must be a path`);
  if (a.netns === "" ? op !== "DEL" : !a.netns.startsWith("/")) throw new CniRuntimeError(`${op}: netns must be an absolute path, got ${JSON.stringify(a.netns)}`);
  if (a.args !== undefined) {
    if (!Array.isArray(a.args)) throw new CniRuntimeError(`${op}: args must be a list of [key, value] pairs`);
    for (const p of a.args) {
      if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "string" || typeof p[1] !== "string") throw new CniRuntimeError(`${op}: args must be a list of [key, value] string pairs`);
      if (p[0] === "" || /[;=\0]/.test(p[0]) || /[;\0]/.test(p[1])) throw new CniRuntimeError(`${op}: CNI_ARGS pair ${JSON.stringify(p)} is invalid: keys are non-empty without ';' or '=', values have no ';'`);
    }
  }
}

/**
 * Pre-1.0 results must carry ips[].version, which some plugins leave out (the reference loopback
 * among them); it follows from the address, so the runtime fills it in rather than failing a
 * pod over it. The conformance runner is where such deviations are reported.
 */
function tolerant(raw: Record<string, unknown>, version: string): Record<string, unknown> {
  const v = typeof raw.cniVersion === "string" ? raw.cniVersion : version;
  if (!/^0\./.test(v) || !Array.isArray(raw.ips)) return raw;
  const ips = raw.ips.map((ip) => {
    if (!ip || typeof ip !== "object" || (ip as { version?: unknown }).version !== undefined) return ip;
    const address = (ip as { address?: unknown }).address;
    return typeof address === "string" ? { ...ip, version: address.includes(":") ? "6" : "4" } : ip;
  });
  return { ...raw, ips };
}

const formatArgs = (args: [string, string][] | undefined) => (args?.length ? args.map(([k, v]) => `${k}=${v}`).join(";") : undefined);
const key = (a: GCAttachment) => `${a.containerID}\0${a.ifname}`;

interface ResolvedPlugin {
  conf: PluginConf;
  type: string;
  path?: string;
  error?: Error;
}

export class CniNetwork {
  private readonly opts: CniNetworkOptions;
  private readonly cniPath: string[];
  private loaded?: Promise<NetworkConfigList>;

  constructor(opts: CniNetworkOptions) {
    const sources = [opts.confDir, opts.configFile, opts.conflist].filter((x) => x !== undefined).length;
    if (sources !== 1) throw new CniRuntimeError("CniNetwork: give exactly one of confDir, configFile or conflist");
    if (!opts.cacheDir || !opts.cacheDir.startsWith("/")) throw new CniRuntimeError("CniNetwork: cacheDir must be an absolute path");
    this.opts = opts;
    this.cniPath = (Array.isArray(opts.cniPath) ? opts.cniPath : opts.cniPath.split(":")).filter((p) => p !== "");
  }

  /** The network configuration, loaded once (call reload() to read it again). */
  config(): Promise<NetworkConfigList> {
    this.loaded ??= this.load();
    // A failed load is retried on the next call rather than remembered forever.
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }

  reload(): Promise<NetworkConfigList> {
    this.loaded = undefined;
    return this.config();
  }

  private async load(): Promise<NetworkConfigList> {
    const o = this.opts;
    if (o.conflist) {
      const text = JSON.stringify(o.conflist);
      return parseNetworkConfig(text, "(inline)", { single: !("plugins" in o.conflist) });
    }
    if (o.configFile) return loadConfigFile(o.configFile);
    return selectNetwork(await loadConfDir(o.confDir!), o.name);
  }

  private execBase(): Pick<ExecRequest, "timeoutMs" | "netns" | "baseEnv"> {
    return { timeoutMs: this.opts.execTimeoutMs, netns: this.opts.pluginNetns, baseEnv: this.opts.env };
  }

  private resolve(list: NetworkConfigList): ResolvedPlugin[] {
    return list.plugins.map((conf) => {
      try {
        return { conf, type: conf.type, path: findPlugin(conf.type, this.cniPath) };
      } catch (e) {
        return { conf, type: conf.type, error: e as Error };
      }
    });
  }

  /** Version for the plugins that were found; the missing ones are the caller's to report. */
  private async versionFor(list: NetworkConfigList, plugins: ResolvedPlugin[]): Promise<string> {
    const infos = [];
    for (const p of plugins) if (p.path) infos.push({ type: p.type, info: await pluginVersionInfo(p.path, p.type, this.execBase()) });
    return selectVersion(list, infos);
  }

  /** Loads the list, finds every plugin (a missing one is an error) and selects the version. */
  private async prepare(): Promise<{ list: NetworkConfigList; plugins: (ResolvedPlugin & { path: string })[]; version: string }> {
    const list = await this.config();
    const plugins = this.resolve(list);
    const missing = plugins.find((p) => p.error);
    if (missing) throw missing.error;
    const version = await this.versionFor(list, plugins);
    return { list, plugins: plugins as (ResolvedPlugin & { path: string })[], version };
  }

  /** The protocol version this network runs with (SPEC section 1, version selection). */
  async version(): Promise<string> {
    return (await this.prepare()).version;
  }

  private async run(p: ResolvedPlugin & { path: string }, command: Exclude<PluginCommand, "VERSION">, request: Record<string, unknown>, env: Record<string, string | undefined>): Promise<string> {
    const req: ExecRequest = { ...this.execBase(), path: p.path, type: p.type, command, cniEnv: { ...env, CNI_PATH: this.cniPath.join(":") }, stdin: JSON.stringify(request) };
    const out = await execPlugin(req);
    const err = failureOf(req, out);
    if (err) throw err;
    if (out.stderr && this.opts.onStderr) this.opts.onStderr(p.type, command, out.stderr);
    return out.stdout;
  }

  private attachmentEnv(a: Attachment, args: [string, string][] | undefined): Record<string, string | undefined> {
    return { CNI_CONTAINERID: a.containerID, CNI_NETNS: a.netns || undefined, CNI_IFNAME: a.ifname, CNI_ARGS: formatArgs(args) };
  }

  /** Runs an attachment operation with the ordering rules: GC excluded, one operation per container. */
  private async exclusiveFor<T>(a: Attachment, fn: () => Promise<T>): Promise<T> {
    const list = await this.config();
    return gateFor(this.opts.cacheDir, list.name).shared(() => containerLocks.run(a.containerID, fn));
  }

  /**
   * ADD: runs the chain in order, each plugin getting the previous one's result as prevResult,
   * and caches the final result. Returns that result in the network's version. On failure the
   * cache keeps what the plugins that succeeded returned, so del() can undo the partial ADD.
   */
  async add(a: Attachment, capabilityArgs: CapabilityArgs = {}): Promise<Record<string, unknown>> {
    validateAttachment(a, "ADD");
    if (!a.netns) throw new CniRuntimeError("ADD: netns is required");
    return this.exclusiveFor(a, async () => {
      const { list, plugins, version } = await this.prepare();
      const existing = await readEntry(this.opts.cacheDir, list.name, a.containerID, a.ifname);
      if ("entry" in existing) {
        throw new CniRuntimeError(
          `ADD: container ${a.containerID} interface ${a.ifname} is already attached to network "${list.name}"${existing.entry.incomplete ? " (by an ADD that did not complete)" : ""}; DEL it first`,
        );
      }
      const base = { containerId: a.containerID, ifName: a.ifname, networkName: list.name, netns: a.netns, config: Buffer.from(list.bytes).toString("base64"), cniArgs: a.args, capabilityArgs };
      // Written before the first plugin runs: if this process dies mid-ADD, DEL and GC still
      // know the attachment exists.
      await writeEntry(this.opts.cacheDir, { ...base, incomplete: true });
      let prev: Record<string, unknown> | undefined;
      for (const [i, p] of plugins.entries()) {
        const request = buildRequest(p.conf, { name: list.name, cniVersion: version, command: "ADD", capabilityArgs, prevResult: prev });
        const stdout = await this.run(p, "ADD", request, this.attachmentEnv(a, a.args));
        const req = { type: p.type, path: p.path, command: "ADD" as const };
        let result: Record<string, unknown>;
        try {
          // Read in whatever version the plugin answered, handed on in the network's version.
          result = convertResult(parseResult(tolerant(parseOutputObject({ ...req, cniEnv: {}, stdin: "" }, stdout), version), version), version);
        } catch (e) {
          if (e instanceof PluginError) throw e;
          const details = (e as { details?: string }).details;
          throw new PluginError({ ...req, stdout, stderr: "", exitCode: 0, signal: null, timedOut: false }, `printed an invalid result: ${details ?? (e as Error).message}`);
        }
        prev = result;
        await writeEntry(this.opts.cacheDir, { ...base, result: prev, incomplete: i < plugins.length - 1 });
      }
      return prev!;
    });
  }

  private async cachedPrevResult(list: NetworkConfigList, version: string, entry: CacheEntry | undefined): Promise<Record<string, unknown> | undefined> {
    if (!entry?.result) return undefined;
    return convertResult(parseResult(entry.result, typeof entry.result.cniVersion === "string" ? entry.result.cniVersion : version, "cached result"), version);
  }

  /**
   * CHECK: every plugin in order, with the cached ADD result as prevResult and the ADD's
   * parameters; stops at the first error. Does nothing when the list sets disableCheck.
   */
  async check(a: Attachment, capabilityArgs?: CapabilityArgs): Promise<void> {
    validateAttachment(a, "CHECK");
    return this.exclusiveFor(a, async () => {
      const list = await this.config();
      if (list.disableCheck) return;
      const { plugins, version } = await this.prepare();
      if (!atLeast(version, "0.4.0")) throw new CniRuntimeError(`CHECK: network "${list.name}" runs version ${version}; CHECK exists from 0.4.0`);
      const read = await readEntry(this.opts.cacheDir, list.name, a.containerID, a.ifname);
      if ("missing" in read) throw new CniRuntimeError(`CHECK: container ${a.containerID} interface ${a.ifname} has no cached ADD result on network "${list.name}" (${cachePath(this.opts.cacheDir, list.name, a.containerID, a.ifname)}): it was never added, or was deleted`);
      if ("unreadable" in read) throw new CniRuntimeError(`CHECK: the cached ADD result is unusable: ${read.unreadable}`);
      if (read.entry.incomplete) throw new CniRuntimeError(`CHECK: the last ADD of container ${a.containerID} interface ${a.ifname} on network "${list.name}" did not complete; DEL it`);
      const prev = await this.cachedPrevResult(list, version, read.entry);
      const caps = capabilityArgs ?? read.entry.capabilityArgs ?? {};
      const env = this.attachmentEnv(a, a.args ?? read.entry.cniArgs);
      for (const p of plugins) {
        await this.run(p, "CHECK", buildRequest(p.conf, { name: list.name, cniVersion: version, command: "CHECK", capabilityArgs: caps, prevResult: prev }), env);
      }
    });
  }

  /**
   * DEL: every plugin in reverse order with the cached ADD result (complete or partial) as
   * prevResult, then the cache entry is removed. Works with no cache entry and with the
   * netns gone. Stops at the first error and keeps the entry, so DEL can be retried.
   */
  async del(a: Attachment, capabilityArgs?: CapabilityArgs): Promise<void> {
    validateAttachment(a, "DEL");
    return this.exclusiveFor(a, () => this.delLocked(a, capabilityArgs));
  }

  private async delLocked(a: Attachment, capabilityArgs?: CapabilityArgs): Promise<void> {
    const { list, plugins, version } = await this.prepare();
    const read = await readEntry(this.opts.cacheDir, list.name, a.containerID, a.ifname);
    const entry = "entry" in read ? read.entry : undefined;
    let prev: Record<string, unknown> | undefined;
    // prevResult on DEL exists from 0.4.0; an unusable cached result is dropped, as libcni does.
    if (atLeast(version, "0.4.0")) prev = await this.cachedPrevResult(list, version, entry).catch(() => undefined);
    const caps = capabilityArgs ?? entry?.capabilityArgs ?? {};
    const env = this.attachmentEnv(a, a.args ?? entry?.cniArgs);
    for (const p of [...plugins].reverse()) {
      await this.run(p, "DEL", buildRequest(p.conf, { name: list.name, cniVersion: version, command: "DEL", capabilityArgs: caps, prevResult: prev }), env);
    }
    await removeEntry(this.opts.cacheDir, list.name, a.containerID, a.ifname);
  }

  /** The cached ADD result of an attachment (in the network's version), if any. */
  async cachedResult(a: Pick<Attachment, "containerID" | "ifname">): Promise<Record<string, unknown> | undefined> {
    const { list, version } = await this.prepare();
    const read = await readEntry(this.opts.cacheDir, list.name, a.containerID, a.ifname);
    if (!("entry" in read) || read.entry.incomplete) return undefined;
    return this.cachedPrevResult(list, version, read.entry);
  }

  /** Every attachment of this network in the cache. */
  async cachedAttachments(): Promise<CacheEntry[]> {
    return listEntries(this.opts.cacheDir, (await this.config()).name);
  }

  /**
   * GC: with `validAttachments` (all cached attachments of the network when absent), first DELs
   * every cached attachment that is not valid, then sends GC with cni.dev/valid-attachments to
   * every plugin (from version 1.1.0). Continues past every error and returns them all. Waits
   * for ADD/DEL/CHECK in flight and holds new ones until it is done. Honours disableGC.
   */
  async gc(validAttachments?: GCAttachment[]): Promise<GcReport> {
    const list = await this.config();
    if (list.disableGC) return { skipped: `network "${list.name}" sets disableGC`, validAttachments: validAttachments ?? [], deleted: [], pluginsAsked: false, errors: [] };
    for (const v of validAttachments ?? []) {
      if (!v || typeof v.containerID !== "string" || typeof v.ifname !== "string") throw new CniRuntimeError("GC: valid attachments are {containerID, ifname} objects");
    }
    return gateFor(this.opts.cacheDir, list.name).exclusive(async () => {
      const report: GcReport = { validAttachments: [], deleted: [], pluginsAsked: false, errors: [] };
      const cached = await listEntries(this.opts.cacheDir, list.name);
      const valid = validAttachments ?? cached.map((e) => ({ containerID: e.containerId, ifname: e.ifName }));
      report.validAttachments = valid.map((v) => ({ containerID: v.containerID, ifname: v.ifname }));
      const validKeys = new Set(valid.map(key));
      for (const e of cached) {
        const att = { containerID: e.containerId, ifname: e.ifName };
        if (validKeys.has(key(att))) continue;
        try {
          await containerLocks.run(e.containerId, () => this.delLocked({ ...att, netns: e.netns ?? "", args: e.cniArgs }, e.capabilityArgs ?? {}));
          report.deleted.push(att);
        } catch (err) {
          report.errors.push(new CniRuntimeError(`GC: failed to delete stale attachment ${e.containerId} ${e.ifName}: ${(err as Error).message}`));
        }
      }
      const plugins = this.resolve(list);
      let version: string;
      try {
        version = await this.versionFor(list, plugins);
      } catch (err) {
        report.errors.push(err as Error);
        return report;
      }
      if (!atLeast(version, "1.1.0")) return report;
      report.pluginsAsked = true;
      for (const p of plugins) {
        if (p.error) {
          report.errors.push(p.error);
          continue;
        }
        const request = buildRequest(p.conf, { name: list.name, cniVersion: version, command: "GC", validAttachments: report.validAttachments });
        try {
          await this.run(p as ResolvedPlugin & { path: string }, "GC", request, {});
        } catch (err) {
          report.errors.push(err as Error);
        }
      }
      return report;
    });
  }

  /** STATUS: asks every plugin (from version 1.1.0) whether it can serve ADD; collects every answer. */
  async status(): Promise<StatusReport> {
    const list = await this.config();
    const plugins = this.resolve(list);
    const version = await this.versionFor(list, plugins);
    if (!atLeast(version, "1.1.0")) return { version, skipped: `network "${list.name}" runs version ${version}; STATUS exists from 1.1.0`, ok: true, plugins: [] };
    const report: StatusReport = { version, ok: true, plugins: [] };
    for (const p of plugins) {
      let error = p.error;
      if (!error) {
        try {
          await this.run(p as ResolvedPlugin & { path: string }, "STATUS", buildRequest(p.conf, { name: list.name, cniVersion: version, command: "STATUS" }), {});
        } catch (err) {
          error = err as Error;
        }
      }
      report.plugins.push(error ? { type: p.type, ok: false, error } : { type: p.type, ok: true });
      if (error) report.ok = false;
    }
    return report;
  }
}
