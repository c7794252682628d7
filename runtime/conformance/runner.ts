// `podnet cni conformance`: checks the plugins of one network configuration against the CNI
// spec. Everything happens in namespaces the run creates (a node netns where the plugins run,
// and one netns per container) and is removed at the end, also when a check throws or the run
// is aborted (the CLI aborts it on SIGINT/SIGTERM). The network is renamed to the run's unique
// id, so IPAM stores of parallel runs never meet, and those stores are removed at the end too.
import { existsSync } from "node:fs";
import { rm, rmdir } from "node:fs/promises";
import { dirname } from "node:path";
import { loadConfigFile } from "../cni/config.ts";
import { CniRuntimeError } from "../cni/errors.ts";
import { findPlugin, DEFAULT_EXEC_TIMEOUT_MS } from "../cni/exec.ts";
import { Aborted, CHECK_GROUPS, CHECK_IDS, checkDetects, concurrency, delAfterFailedAdd, delNetnsGone, errorChecks, existingIfname, gcChecks, mainChecks, outputChecks, otherVersions, selectVersions, statusChecks, versionChecks, type Ctx } from "./checks.ts";
import { Harness, type PluginUnderTest } from "./harness.ts";
import { summarize, type CheckResult, type ConformanceReport } from "./report.ts";
import { ip, Sandbox } from "./sandbox.ts";

export interface ConformanceOptions {
  /** A network configuration: a .conflist, or one plugin's .conf/.json. */
  configFile: string;
  /** Directories the plugins are found in (CNI_PATH). */
  cniPath: string[];
  /** CNI_IFNAME for the containers; "eth0", or "lo" when the first plugin is loopback. */
  ifname?: string;
  /** Limit for each plugin execution. */
  timeoutMs?: number;
  /** Capability args for every attachment (merged over the defaults: a portMappings entry when a plugin declares it). */
  capArgs?: Record<string, unknown>;
  /**
   * Run only these checks (ids of CHECK_IDS), besides the VERSION and main ADD/CHECK/DEL checks
   * the others build on and the stdout/error checks over what ran. "add-schema" also selects
   * the results at the other versions.
   */
  only?: string[];
  signal?: AbortSignal;
  /** Called before the first check, with the run's identity. */
  onStart?: (r: Pick<ConformanceReport, "runId" | "config" | "network" | "cniPath" | "ifname" | "plugins">) => void;
  /** Called as each check finishes. */
  onCheck?: (c: CheckResult) => void;
  runId?: string;
}

export { Aborted };

/** Directories the run may create (IPAM stores named after the run) and which ancestors were missing before. */
async function removeStateDirs(dirs: string[], missingBefore: Set<string>): Promise<void> {
  for (const d of dirs) {
    await rm(d, { recursive: true, force: true }).catch(() => undefined);
    // Ancestors the plugins had to create for this run go too, if nothing else uses them.
    for (let p = dirname(d); p !== "/" && missingBefore.has(p); p = dirname(p)) {
      try {
        await rmdir(p);
      } catch {
        break;
      }
    }
  }
}

function missingAncestors(dirs: string[]): Set<string> {
  const out = new Set<string>();
  for (const d of dirs) for (let p = dirname(d); p !== "/"; p = dirname(p)) if (!existsSync(p)) out.add(p);
  return out;
}

export async function runConformance(o: ConformanceOptions): Promise<ConformanceReport> {
  const unknown = (o.only ?? []).filter((id) => !CHECK_IDS.includes(id));
  if (unknown.length) throw new CniRuntimeError(`unknown check ${unknown.map((u) => JSON.stringify(u)).join(", ")}; the checks are: ${CHECK_IDS.join(", ")}`);
  const wanted = (group: keyof typeof CHECK_GROUPS) => !o.only || CHECK_GROUPS[group].some((id) => o.only!.includes(id));
  const list = await loadConfigFile(o.configFile);
  const counts = new Map<string, number>();
  for (const p of list.plugins) counts.set(p.type, (counts.get(p.type) ?? 0) + 1);
  const plugins: PluginUnderTest[] = list.plugins.map((conf, index) => ({
    index,
    type: conf.type,
    label: counts.get(conf.type)! > 1 ? `${conf.type}[${index}]` : conf.type,
    path: findPlugin(conf.type, o.cniPath),
    conf,
  }));
  const ifname = o.ifname ?? (plugins[0]!.type === "loopback" ? "lo" : "eth0");
  const sandbox = new Sandbox(o.runId);
  const network = sandbox.runId;
  const portMappings = plugins.some((p) => p.conf.capabilities?.portMappings === true);
  const capArgsFor = (n: number): Record<string, unknown> => ({
    ...(portMappings ? { portMappings: [{ hostPort: 20000 + (n % 10000), containerPort: 80, protocol: "tcp" }] } : {}),
    ...(o.capArgs ?? {}),
  });

  const abort = new AbortController();
  const onAbort = () => abort.abort();
  if (o.signal?.aborted) abort.abort();
  o.signal?.addEventListener("abort", onAbort, { once: true });

  const checks: CheckResult[] = [];
  const report: ConformanceReport = {
    runId: sandbox.runId,
    config: o.configFile,
    network: { name: list.name, runName: network },
    cniPath: o.cniPath,
    ifname,
    plugins: [],
    otherVersions: [],
    checks,
    summary: { total: 0, pass: 0, fail: 0, skip: 0 },
  };
  let harness: Harness | undefined;
  let missingBefore = new Set<string>();
  try {
    const node = await sandbox.create("node");
    await ip(["-n", node.name, "link", "set", "lo", "up"]);
    harness = new Harness({ list, network, plugins, cniPath: o.cniPath, sandbox, node, timeoutMs: o.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, signal: abort.signal, capArgsFor });
    missingBefore = missingAncestors(harness.stateDirs());
    o.onStart?.({ runId: report.runId, config: report.config, network: report.network, cniPath: report.cniPath, ifname, plugins: plugins.map((p) => ({ type: p.type, path: p.path })) });
    const ctx: Ctx = {
      h: harness,
      ifname,
      signal: abort.signal,
      common: [],
      emit: (c) => {
        checks.push(c);
        o.onCheck?.(c);
      },
    };
    await versionChecks(ctx);
    selectVersions(ctx);
    report.version = ctx.version;
    await mainChecks(ctx);
    if (wanted("checkDetects")) await checkDetects(ctx);
    if (wanted("existingIfname")) await existingIfname(ctx);
    if (wanted("delNetnsGone")) await delNetnsGone(ctx);
    if (wanted("delAfterFailedAdd")) await delAfterFailedAdd(ctx);
    if (wanted("errors")) await errorChecks(ctx);
    if (!o.only || o.only.includes("add-schema")) report.otherVersions = await otherVersions(ctx);
    if (wanted("concurrency")) await concurrency(ctx);
    if (wanted("gc")) await gcChecks(ctx);
    if (wanted("status")) await statusChecks(ctx);
    outputChecks(ctx);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    await sandbox.removeAll();
    if (harness) await removeStateDirs(harness.stateDirs(), missingBefore);
  }
  report.plugins = plugins.map((p) => ({ type: p.label, path: p.path, ...(p.supportedVersions ? { supportedVersions: p.supportedVersions } : {}) }));
  report.summary = summarize(checks);
  return report;
}
