// The conformance harness: calls the plugins of one network configuration directly (never
// through the library's chain logic, so each plugin's own behaviour is what gets judged),
// inside the run's node netns, and records every invocation for the checks that look across
// all of them (stdout carrying only JSON, error objects).
import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { NetworkConfigList, PluginConf } from "../cni/config.ts";
import type { PluginCommand } from "../cni/errors.ts";
import { execPlugin, SYSTEM_PATH, type ExecOutcome } from "../cni/exec.ts";
import { buildRequest, type GCAttachment } from "../cni/request.ts";
import { ip, type Ns, type Sandbox } from "./sandbox.ts";

const run = promisify(execFile);

export interface Att {
  containerID: string;
  netns: string;
  ifname: string;
}

export interface PluginUnderTest {
  index: number;
  type: string;
  /** How reports name it: the type, or type[index] when a type appears twice in the list. */
  label: string;
  path: string;
  conf: PluginConf;
  supportedVersions?: string[];
}

export interface CallSpec {
  plugin: PluginUnderTest;
  command: PluginCommand;
  version: string;
  att?: Att;
  prevResult?: unknown;
  capArgs?: Record<string, unknown>;
  validAttachments?: GCAttachment[];
  /** Environment changes; an undefined value removes the variable. */
  env?: Record<string, string | undefined>;
  /** Replaces the request entirely (raw bytes on stdin). */
  stdin?: string;
  /** Edits the request before it is sent. */
  edit?: (req: Record<string, unknown>) => void;
  /** What the call is for, shown when a cross-cutting check points at it. */
  label: string;
}

export interface Invocation extends ExecOutcome {
  label: string;
  plugin: string;
  command: PluginCommand;
  env: Record<string, string>;
  stdin: string;
  /** stdout parsed, when it is exactly one JSON value. */
  json?: unknown;
  /** Why stdout is not one JSON value (empty stdout is fine and leaves both unset). */
  notJSON?: string;
}

export interface ChainOutcome {
  ok: boolean;
  /** Each plugin's invocation and parsed result (for the ones that ran). */
  steps: { plugin: PluginUnderTest; inv: Invocation; result?: Record<string, unknown> }[];
  /** The last successful plugin's result. */
  result?: Record<string, unknown>;
  failed?: { plugin: PluginUnderTest; inv: Invocation };
}

export interface HarnessOptions {
  list: NetworkConfigList;
  /** The unique name the run gives the network (isolates IPAM stores of parallel runs). */
  network: string;
  plugins: PluginUnderTest[];
  cniPath: string[];
  sandbox: Sandbox;
  node: Ns;
  timeoutMs: number;
  signal: AbortSignal;
  /** Capability args for an attachment; `n` numbers attachments so port mappings do not clash. */
  capArgsFor: (n: number) => Record<string, unknown>;
}

let attSeq = 0;

export class Harness {
  readonly o: HarnessOptions;
  readonly log: Invocation[] = [];

  constructor(o: HarnessOptions) {
    this.o = o;
  }

  get plugins(): PluginUnderTest[] {
    return this.o.plugins;
  }

  /** CNI_* variables of a call, before the spec's changes. */
  private envFor(s: CallSpec): Record<string, string> {
    const env: Record<string, string> = { CNI_COMMAND: s.command, CNI_PATH: this.o.cniPath.join(":") };
    if (s.att && s.command !== "GC" && s.command !== "STATUS" && s.command !== "VERSION") {
      env.CNI_CONTAINERID = s.att.containerID;
      if (s.att.netns) env.CNI_NETNS = s.att.netns;
      env.CNI_IFNAME = s.att.ifname;
    }
    for (const [k, v] of Object.entries(s.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  request(s: CallSpec): Record<string, unknown> {
    if (s.command === "VERSION") return { cniVersion: s.version };
    const req = buildRequest(s.plugin.conf, {
      name: this.o.network,
      cniVersion: s.version,
      command: s.command,
      capabilityArgs: s.capArgs,
      prevResult: s.prevResult,
      validAttachments: s.validAttachments,
      legacyAttachmentsKey: false,
    });
    s.edit?.(req);
    return req;
  }

  async call(s: CallSpec): Promise<Invocation> {
    const env = this.envFor(s);
    const stdin = s.stdin ?? JSON.stringify(this.request(s));
    const { CNI_COMMAND, ...cniEnv } = env;
    const out = await execPlugin({
      path: s.plugin.path,
      type: s.plugin.type,
      // An unknown CNI_COMMAND is one of the things tested: pass whatever the spec says verbatim.
      command: (CNI_COMMAND ?? "") as PluginCommand,
      cniEnv,
      stdin,
      timeoutMs: this.o.timeoutMs,
      netns: this.o.node.path,
      baseEnv: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
      signal: this.o.signal,
    });
    const inv: Invocation = { ...out, label: s.label, plugin: s.plugin.label, command: s.command, env, stdin };
    if (out.stdout.trim() !== "") {
      try {
        inv.json = JSON.parse(out.stdout);
      } catch (e) {
        inv.notJSON = (e as Error).message;
      }
    }
    this.log.push(inv);
    return inv;
  }

  /** A fresh attachment in a new container netns. */
  async newAttachment(ifname: string): Promise<{ att: Att; ns: Ns; n: number }> {
    const ns = await this.o.sandbox.create();
    const n = ++attSeq;
    return { att: { containerID: `${this.o.sandbox.runId}-c${String(n).padStart(4, "0")}`, netns: ns.path, ifname }, ns, n };
  }

  /** ADD through the whole chain in order, as a runtime does; stops at the first failure. */
  async chainAdd(att: Att, version: string, capArgs: Record<string, unknown>, label: string): Promise<ChainOutcome> {
    const out: ChainOutcome = { ok: true, steps: [] };
    let prev: Record<string, unknown> | undefined;
    for (const p of this.plugins) {
      const inv = await this.call({ plugin: p, command: "ADD", version, att, prevResult: prev, capArgs, label: `${label}: ${p.type} ADD` });
      const result = inv.exitCode === 0 && inv.json && typeof inv.json === "object" && !Array.isArray(inv.json) ? (inv.json as Record<string, unknown>) : undefined;
      out.steps.push({ plugin: p, inv, result });
      if (!result) {
        out.ok = false;
        out.failed = { plugin: p, inv };
        return out;
      }
      prev = result;
      out.result = result;
    }
    return out;
  }

  /** DEL through the chain in reverse; returns every invocation (it does not stop, to clean up as much as it can). */
  async chainDel(att: Att, version: string, prevResult: unknown, capArgs: Record<string, unknown>, label: string, env?: Record<string, string | undefined>): Promise<Invocation[]> {
    const out: Invocation[] = [];
    for (const p of [...this.plugins].reverse()) {
      out.push(await this.call({ plugin: p, command: "DEL", version, att, prevResult, capArgs, env, label: `${label}: ${p.type} DEL` }));
    }
    return out;
  }

  async chainCheck(att: Att, version: string, prevResult: unknown, capArgs: Record<string, unknown>, label: string): Promise<Invocation[]> {
    const out: Invocation[] = [];
    for (const p of this.plugins) out.push(await this.call({ plugin: p, command: "CHECK", version, att, prevResult, capArgs, label: `${label}: ${p.type} CHECK` }));
    return out;
  }

  /** `ip -j addr` of one of the run's namespaces: every link with its addresses. */
  async links(ns: Ns): Promise<{ ifname: string; address?: string; addr_info?: { local: string; prefixlen: number }[] }[]> {
    return JSON.parse((await ip(["-n", ns.name, "-j", "addr", "show"])) || "[]");
  }

  /**
   * Where a container ID shows up in state that plugins keep outside the container: rules in
   * the node netns (nftables, iptables) and files in the IPAM stores the configuration names
   * (dataDir) or host-local's default store.
   */
  async traces(containerID: string): Promise<string[]> {
    const found: string[] = [];
    // nftables rules (ours and iptables-nft's), and iptables' own view, whose comments (where the
    // reference plugins put the container ID) nft does not print.
    for (const [tool, args, what] of [["nft", ["list", "ruleset"], "nftables rule"], ["iptables-save", [], "iptables rule"], ["ip6tables-save", [], "ip6tables rule"]] as const) {
      try {
        const { stdout } = await run("nsenter", [`--net=${this.o.node.path}`, "--", tool, ...args], { maxBuffer: 64 * 1024 * 1024, env: { PATH: SYSTEM_PATH } });
        for (const line of stdout.split("\n")) if (line.includes(containerID)) found.push(`${what}: ${line.trim()}`);
      } catch {
        /* tool not installed: the other places are still looked at */
      }
    }
    for (const dir of this.stateDirs()) {
      for (const f of await filesUnder(dir)) {
        const text = await readFile(f, "utf8").catch(() => "");
        if (text.includes(containerID) || f.includes(containerID)) found.push(`file ${f}`);
      }
    }
    return found;
  }

  /** IPAM store directories this run's network may write (all named after the run's unique network). */
  stateDirs(): string[] {
    const dirs = new Set<string>([join("/var/lib/cni/networks", this.o.network)]);
    const visit = (o: unknown) => {
      if (!o || typeof o !== "object") return;
      for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
        if (k === "dataDir" && typeof v === "string" && isAbsolute(v)) dirs.add(join(v, this.o.network));
        else if (v && typeof v === "object" && k !== "prevResult") visit(v);
      }
    };
    for (const p of this.plugins) visit(p.conf);
    return [...dirs];
  }
}

async function filesUnder(dir: string, depth = 0): Promise<string[]> {
  if (depth > 3) return [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p, depth + 1)));
    else if (e.isFile() && (await stat(p)).size < 1024 * 1024) out.push(p);
  }
  return out;
}
