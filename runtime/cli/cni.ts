// `podnet cni`: cnitool's conventions for running a network configuration by hand, plus a
// listing of the configurations and the CNI conformance runner.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { CniNetwork, CniRuntimeError, ConfigError, loadConfDir, PluginError, type GcReport, type StatusReport } from "../cni/index.ts";
import { Aborted, runConformance } from "../conformance/runner.ts";
import { CHECK_IDS } from "../conformance/checks.ts";
import { formatHeader, formatLine, formatSummary } from "../conformance/report.ts";

const USAGE = `Usage:
  podnet cni add    NETWORK NETNS_PATH     attach: run the network's plugins (ADD), print the result
  podnet cni check  NETWORK NETNS_PATH     CHECK the attachment against the cached result
  podnet cni del    NETWORK NETNS_PATH     detach: DEL in reverse order with the cached result
  podnet cni gc     NETWORK [NETNS_PATH] [--valid ID/IFNAME[,ID/IFNAME...]]
                                           DEL cached attachments that are not valid, then GC the plugins;
                                           without --valid, every cached attachment counts as valid
                                           (--valid "" treats none as valid, as cnitool does)
  podnet cni status NETWORK [NETNS_PATH]   ask every plugin whether it can serve ADD (STATUS)
  podnet cni list                          the networks in NETCONFPATH, and the files that cannot be used
  podnet cni conformance --config FILE [--cni-path DIR] [--ifname NAME] [--cap-args JSON]
                         [--timeout SECONDS] [--only CHECK[,CHECK...]] [--json]
                                           check the plugins of a configuration against the CNI spec,
                                           inside network namespaces it creates and removes; --only
                                           runs the named checks (plus the VERSION and main ADD/CHECK/DEL
                                           checks that the others build on)

Options:
  -i, --ifname NAME    interface name in the container (overrides CNI_IFNAME)
  --timeout SECONDS    limit for each plugin execution (default 60); the plugin is killed after it
  -h, --help           this text

Environment (as cnitool):
  NETCONFPATH      configuration directory (default /etc/cni/net.d)
  CNI_PATH         plugin directories, ':'-separated
  CNI_IFNAME       interface name in the container (default eth0)
  CNI_ARGS         K=V;K=V pairs for the plugins
  CAP_ARGS         capability args as JSON, e.g. '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'
  CNI_CACHE_DIR    result cache directory (default /var/lib/cni)

The container ID is "cnitool-" followed by the first 20 hex digits of the SHA-512 of the absolute
NETNS_PATH, as cnitool makes it, so both tools find each other's cache entries. Plugins run in the
current network namespace; run podnet under nsenter or "ip netns exec" to use another.
Conformance: one line per check (spec section, PASS/FAIL/SKIP, reason) and a summary; exit status 1
when any check FAILs. It never changes the namespace it is started in.
`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["--ifname", "-i", "--timeout", "--valid", "--config", "--cni-path", "--cap-args", "--only"]);
const BOOL_FLAGS = new Set(["--json", "--help", "-h"]);

function parseArgs(argv: string[]): Parsed {
  const out: Parsed = { positional: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("-") && a !== "-") {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (BOOL_FLAGS.has(name)) {
        out.flags.set(name === "-h" ? "--help" : name, true);
      } else if (VALUE_FLAGS.has(name)) {
        const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (value === undefined) throw new UsageError(`${name} needs a value`);
        out.flags.set(name === "-i" ? "--ifname" : name, value);
      } else throw new UsageError(`unknown option ${name}`);
    } else out.positional.push(a);
  }
  return out;
}

/** cnitool's container ID: "cnitool-" + hex(sha512(absolute netns path))[:20]. */
export function cnitoolContainerID(netnsPath: string): string {
  return `cnitool-${createHash("sha512").update(resolve(netnsPath)).digest("hex").slice(0, 20)}`;
}

/** CNI_ARGS as cnitool reads it: K=V pairs separated by ';', each with a non-empty key and value. */
export function parseCniArgsEnv(raw: string | undefined): [string, string][] | undefined {
  if (!raw) return undefined;
  return raw.split(";").map((pair) => {
    const kv = pair.split("=");
    if (kv.length !== 2 || kv[0] === "" || kv[1] === "") throw new UsageError(`invalid CNI_ARGS pair ${JSON.stringify(pair)}: expected KEY=VALUE pairs separated by ';'`);
    return [kv[0]!, kv[1]!];
  });
}

function parseJSONObject(raw: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new UsageError(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function timeoutMs(flags: Parsed["flags"]): number | undefined {
  const t = flags.get("--timeout");
  if (t === undefined) return undefined;
  const n = Number(t);
  if (typeof t !== "string" || !Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not ${JSON.stringify(t)}`);
  return Math.round(n * 1000);
}

function cniPathFromEnv(): string[] {
  const p = (process.env.CNI_PATH ?? "").split(":").filter(Boolean);
  if (!p.length) throw new UsageError("CNI_PATH is not set: give the directories holding the plugins, e.g. CNI_PATH=/opt/cni/bin");
  return p;
}

function parseValid(raw: string): { containerID: string; ifname: string }[] {
  if (raw === "") return [];
  return raw.split(",").map((item) => {
    const slash = item.lastIndexOf("/");
    if (slash <= 0 || slash === item.length - 1) throw new UsageError(`--valid takes CONTAINERID/IFNAME items separated by ',', not ${JSON.stringify(item)}`);
    return { containerID: item.slice(0, slash), ifname: item.slice(slash + 1) };
  });
}

/** A user-facing account of an error: one line, plus the plugin's stderr or a config's problems. */
export function describeError(e: unknown): string {
  if (e instanceof ConfigError) {
    return [e.summary, ...e.problems.map((p) => `  - ${p}`)].join("\n");
  }
  if (e instanceof PluginError) {
    const lines = [e.message];
    if (e.cniError && e.stderr.trim()) lines.push(`  plugin stderr: ${e.stderr.trim().split("\n").join("\n    ")}`);
    return lines.join("\n");
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

function errorsOf(r: GcReport | StatusReport): string[] {
  if ("errors" in r) return r.errors.map(describeError);
  return r.plugins.filter((p) => p.error).map((p) => describeError(p.error));
}

async function attachmentCommand(cmd: string, p: Parsed): Promise<number> {
  const [network, netnsArg] = p.positional;
  const needsNetns = cmd === "add" || cmd === "check" || cmd === "del";
  if (!network || (needsNetns && !netnsArg) || p.positional.length > 2) {
    throw new UsageError(needsNetns ? `usage: podnet cni ${cmd} NETWORK NETNS_PATH` : `usage: podnet cni ${cmd} NETWORK [NETNS_PATH]`);
  }
  const net = new CniNetwork({
    confDir: process.env.NETCONFPATH || "/etc/cni/net.d",
    name: network,
    cniPath: cniPathFromEnv(),
    cacheDir: resolve(process.env.CNI_CACHE_DIR || "/var/lib/cni"),
    execTimeoutMs: timeoutMs(p.flags),
    onStderr: (_plugin, _command, text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  });
  const ifname = (p.flags.get("--ifname") as string | undefined) || process.env.CNI_IFNAME || "eth0";
  const capArgs = process.env.CAP_ARGS ? parseJSONObject(process.env.CAP_ARGS, "CAP_ARGS") : undefined;
  const args = parseCniArgsEnv(process.env.CNI_ARGS);
  const netns = netnsArg ? resolve(netnsArg) : "";
  const att = { containerID: netnsArg ? cnitoolContainerID(netnsArg) : "", netns, ifname, ...(args ? { args } : {}) };

  switch (cmd) {
    case "add": {
      const result = await net.add(att, capArgs ?? {});
      process.stdout.write(JSON.stringify(result, null, 4) + "\n");
      return 0;
    }
    case "check":
      await net.check(att, capArgs);
      return 0;
    case "del":
      await net.del(att, capArgs);
      return 0;
    case "gc": {
      const valid = p.flags.get("--valid");
      const r = await net.gc(typeof valid === "string" ? parseValid(valid) : undefined);
      process.stdout.write(JSON.stringify({ ...r, errors: r.errors.map((e) => (e instanceof PluginError ? e.toJSON() : { msg: e.message })) }, null, 4) + "\n");
      for (const line of errorsOf(r)) process.stderr.write(`podnet cni gc: ${line}\n`);
      return r.errors.length ? 1 : 0;
    }
    case "status": {
      const r = await net.status();
      const out = { ...r, plugins: r.plugins.map((x) => ({ type: x.type, ok: x.ok, ...(x.error ? { error: x.error instanceof PluginError ? x.error.toJSON() : { msg: x.error.message } } : {}) })) };
      process.stdout.write(JSON.stringify(out, null, 4) + "\n");
      for (const line of errorsOf(r)) process.stderr.write(`podnet cni status: ${line}\n`);
      return r.ok ? 0 : 1;
    }
  }
  return 2;
}

async function list(): Promise<number> {
  const dir = process.env.NETCONFPATH || "/etc/cni/net.d";
  const r = await loadConfDir(dir);
  process.stdout.write(`${dir}:\n`);
  if (!r.networks.length && !r.invalid.length) process.stdout.write("  no network configurations\n");
  for (const n of r.networks) {
    const versions = [...new Set([...(n.cniVersions ?? []), ...(n.cniVersion ? [n.cniVersion] : [])])].join(" ");
    process.stdout.write(`  ${n.name.padEnd(20)} ${n.plugins.map((p) => p.type).join(" -> ")}  [${versions}]  ${n.source}\n`);
    for (const w of n.warnings) process.stdout.write(`    warning: ${w}\n`);
  }
  for (const s of r.shadowed) process.stdout.write(`  (ignored) ${s.file}: network "${s.name}" is already defined by ${s.by}\n`);
  for (const b of r.invalid) {
    process.stdout.write(`  (invalid) ${b.file}:\n`);
    for (const p of b.problems) process.stdout.write(`    - ${p}\n`);
  }
  return r.invalid.length ? 1 : 0;
}

async function conformance(p: Parsed): Promise<number> {
  const config = p.flags.get("--config");
  if (typeof config !== "string" || !config) throw new UsageError("conformance needs --config FILE (a .conflist, or one plugin's .conf/.json)");
  if (p.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(p.positional[0])}`);
  const dir = p.flags.get("--cni-path");
  const cniPath = typeof dir === "string" ? dir.split(":").filter(Boolean).map((d) => resolve(d)) : cniPathFromEnv().map((d) => resolve(d));
  const json = p.flags.get("--json") === true;
  const capArgs = typeof p.flags.get("--cap-args") === "string" ? parseJSONObject(p.flags.get("--cap-args") as string, "--cap-args") : undefined;
  const onlyFlag = p.flags.get("--only");
  const only = typeof onlyFlag === "string" ? onlyFlag.split(",").filter(Boolean) : undefined;
  const unknown = (only ?? []).filter((id) => !CHECK_IDS.includes(id));
  if (unknown.length) throw new UsageError(`--only: unknown check ${unknown.map((u) => JSON.stringify(u)).join(", ")}; the checks are: ${CHECK_IDS.join(", ")}`);
  const ac = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = sig;
    process.stderr.write(`podnet cni conformance: ${sig}, removing what the run created...\n`);
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const report = await runConformance({
      configFile: resolve(config),
      cniPath,
      ifname: p.flags.get("--ifname") as string | undefined,
      timeoutMs: timeoutMs(p.flags),
      capArgs,
      ...(only ? { only } : {}),
      signal: ac.signal,
      onStart: (s) => (json ? process.stderr : process.stdout).write(formatHeader(s)),
      onCheck: (c) => {
        if (!json) process.stdout.write(formatLine(c) + "\n");
      },
    });
    if (json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    else process.stdout.write(formatSummary(report));
    return report.summary.fail ? 1 : 0;
  } catch (e) {
    if (e instanceof Aborted || signalled) {
      process.stderr.write("podnet cni conformance: interrupted; every namespace and store of the run was removed\n");
      return signalled === "SIGTERM" ? 143 : 130;
    }
    throw e;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  try {
    const p = parseArgs(rest);
    if (p.flags.get("--help")) {
      process.stdout.write(USAGE);
      return 0;
    }
    switch (cmd) {
      case "add":
      case "check":
      case "del":
      case "gc":
      case "status":
        return await attachmentCommand(cmd, p);
      case "list":
        return await list();
      case "conformance":
        return await conformance(p);
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`podnet cni: ${e.message}\n(podnet cni --help for usage)\n`);
      return 2;
    }
    if (e instanceof CniRuntimeError || e instanceof Error) {
      process.stderr.write(`podnet cni ${cmd}: ${describeError(e)}\n`);
      if (process.env.PODNET_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
      return 1;
    }
    throw e;
  }
}
