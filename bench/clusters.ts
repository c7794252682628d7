// Emulated clusters for the benchmarks: `podnet up` (the real command, as a user runs it) with a
// unique name and temp state roots, and `podnet down` plus removal of the roots afterwards, also
// when the run fails or is interrupted. Helpers to run programs in a node's netns or a pod, and
// to measure the memory of one node's processes.
import { execa } from "execa";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient, isApiError, resourcePath } from "../apiserver/client.ts";
import type { KObject, Pod } from "../apiserver/types.ts";
import { nodeSpecs } from "../cluster/components.ts";
import { loadConfig, makeConfig } from "../cluster/config.ts";
import type { ClusterContext } from "../cluster/context.ts";
import { down } from "../cluster/down.ts";
import { layout, type NodeLayout } from "../cluster/layout.ts";
import { execInPod, type ExecOutcome } from "../cluster/probe.ts";
import { podnetEntry, runningPid } from "../cluster/processes.ts";
import { listNetns, netnsPids } from "../cluster/sh.ts";
import { registerCleanup } from "./cleanup.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
    await sleep(everyMs);
  }
}

export interface BenchCluster extends ClusterContext {
  name: string;
  /** performance.now() when `podnet up` was spawned, and how long it took until it exited. */
  startedAt: number;
  upMs: number;
  /** `podnet down` and removal of the temp roots; idempotent. */
  remove(): Promise<{ ms: number }>;
}

/** A fresh cluster name: short (it goes into netns names), unique, recognisably a benchmark's. */
export const benchClusterName = () => `pnb${randomBytes(4).toString("hex")}`;

/**
 * Runs `podnet up --nodes N` for a new cluster; the cleanup is registered before anything is made.
 * Throws (after removing what was made) when `podnet up` fails.
 */
export async function upCluster(nodes = 3): Promise<BenchCluster> {
  const name = benchClusterName();
  const root = mkdtempSync(join(tmpdir(), "podnet-bench-"));
  const stateRoot = join(root, "state"), runRoot = join(root, "run");
  const env = { PODNET_CLUSTER: name, PODNET_STATE_ROOT: stateRoot, PODNET_RUN_ROOT: runRoot };
  const cfgFallback = makeConfig(name, { nodes, stateDir: join(stateRoot, name), runDir: join(runRoot, name) });
  const remove = registerCleanup(`cluster ${name}`, async () => {
    await down(loadConfig(cfgFallback.stateDir) ?? cfgFallback);
    rmSync(root, { recursive: true, force: true });
  });
  let removed: Promise<{ ms: number }> | undefined;
  const timedRemove = () =>
    (removed ??= (async () => {
      const t0 = performance.now();
      await remove();
      return { ms: performance.now() - t0 };
    })());
  const t0 = performance.now();
  const r = await execa(process.execPath, [podnetEntry(), "up", "--nodes", String(nodes)], { env, reject: false, timeout: 180_000 });
  const upMs = performance.now() - t0;
  if (r.exitCode !== 0) {
    await timedRemove();
    throw new Error(`podnet up failed (exit ${r.exitCode}):\n${String(r.stdout)}\n${String(r.stderr)}`);
  }
  const cfg = loadConfig(cfgFallback.stateDir)!;
  const l = layout(cfg);
  return { name, cfg, layout: l, api: new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-bench" }), startedAt: t0, upMs, remove: timedRemove };
}

/** Runs a program in a node's netns (only the network namespace changes). */
export async function inNode(n: NodeLayout, cmd: string[], timeoutMs = 30_000): Promise<ExecOutcome> {
  const r = await execa("nsenter", [`--net=${n.netnsPath}`, "--", ...cmd], { reject: false, timeout: timeoutMs });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs a program in a pod's container; throws with its output when it fails. */
export async function inPod(c: ClusterContext, pod: string, cmd: string[], container?: string, timeoutSeconds = 60): Promise<string> {
  const r = await execInPod(c, "default", pod, cmd, container, timeoutSeconds);
  if (r.exitCode !== 0) throw new Error(`${cmd[0]} in pod ${pod} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r.stdout;
}

/** Creates an object, keeping an existing one. */
export async function ensure<T extends KObject>(api: ApiClient, path: string, obj: T): Promise<void> {
  try {
    await api.create(path, obj);
  } catch (e) {
    if (!isApiError(e, 409)) throw e;
  }
}

/** Waits until pod `name` (namespace default) is Running and Ready with an IP; returns it. */
export function podReady(c: ClusterContext, name: string, timeoutMs = 60_000, namespace = "default"): Promise<Pod> {
  return until(`pod ${namespace}/${name} to be Ready`, timeoutMs, async () => {
    const p = await c.api.get<Pod>(resourcePath("pods", namespace, name));
    const ready = p.status?.phase === "Running" && p.status.podIP && p.status.conditions?.some((x) => x.type === "Ready" && x.status === "True");
    return ready ? p : undefined;
  }, 200);
}

export interface NodeMemory {
  /** runtime + kubelet + kube-proxy */
  daemons: { pss: number; rss: number };
  /** every process in the node's netns and in the netns of its pods */
  all: { pss: number; rss: number; processes: number };
}

/** Rss and Pss of one process in MB (0 when it is gone). */
function memOf(pid: number): { pss: number; rss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { pss: kb("Pss") / 1024, rss: kb("Rss") / 1024 };
  } catch {
    return { pss: 0, rss: 0 };
  }
}

/**
 * The memory of one emulated node: every process whose network namespace is the node's (the
 * runtime, kubelet, kube-proxy, the container monitors) or one of its pods' (sandbox holders and
 * the containers' processes), and separately its three daemons.
 */
export async function nodeMemory(c: ClusterContext, n: NodeLayout): Promise<NodeMemory> {
  const podPrefix = `${c.layout.podNetnsPrefix}${n.index}-`;
  const namespaces = [n.netns, ...(await listNetns()).filter((x) => x.startsWith(podPrefix))];
  const pids = new Set<number>();
  for (const ns of namespaces) for (const p of await netnsPids(ns)) pids.add(p);
  const daemonPids = new Set(nodeSpecs(c.layout, n).map((s) => runningPid(s.pidFile)).filter((p): p is number => p !== undefined));
  const daemons = { pss: 0, rss: 0 }, all = { pss: 0, rss: 0, processes: 0 };
  for (const pid of pids) {
    const m = memOf(pid);
    if (m.rss === 0) continue;
    all.pss += m.pss;
    all.rss += m.rss;
    all.processes++;
    if (daemonPids.has(pid)) {
      daemons.pss += m.pss;
      daemons.rss += m.rss;
    }
  }
  return { daemons, all };
}
