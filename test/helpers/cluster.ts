// An emulated cluster for end-to-end tests: `podnet up` with a unique name and a temp state root,
// and `podnet down` when the test file ends (also after a failure). One cluster per test file:
// bring it up in test.before and share it between the file's tests.
import type { TestFn } from "ava";
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { layout, type ClusterLayout } from "../../cluster/layout.ts";
import { loadConfig } from "../../cluster/config.ts";
import { waitFor } from "../../cluster/up.ts";
import { ApiClient } from "../../apiserver/client.ts";
import type { ClusterContext } from "../../cluster/context.ts";
import { PODNET } from "./podnet.ts";
import { uniqueName } from "./netns.ts";

export interface TestCluster extends ClusterContext {
  name: string;
  env: Record<string, string>;
  /** Runs `podnet ARGS` against this cluster; never throws, check exitCode. */
  podnet(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  down(): Promise<void>;
}

export interface ClusterOptions {
  nodes?: number;
  /** Extra `podnet up` flags, e.g. ["--node-monitor-grace-period", "6s"]. */
  upArgs?: string[];
}

export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const name = uniqueName("e");
  const root = mkdtempSync(join(tmpdir(), "podnet-e2e-"));
  const env = { PODNET_CLUSTER: name, PODNET_STATE_ROOT: join(root, "state"), PODNET_RUN_ROOT: join(root, "run") };
  const podnet = async (...args: string[]) => {
    const r = await execa(process.execPath, [PODNET, ...args], { env, reject: false });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const down = async () => {
    await podnet("down");
    rmSync(root, { recursive: true, force: true });
  };
  const up = await podnet("up", "--nodes", String(opts.nodes ?? 3), ...(opts.upArgs ?? []));
  if (up.exitCode !== 0) {
    await down();
    throw new Error(`podnet up failed:\n${up.stdout}\n${up.stderr}`);
  }
  const cfg = loadConfig(join(env.PODNET_STATE_ROOT, name))!;
  const l: ClusterLayout = layout(cfg);
  return { name, env, cfg, layout: l, api: new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-e2e" }), podnet, down };
}

/** Registers a cluster for the whole test file: up before the first test, down after the last. */
export function useCluster(test: TestFn, opts: ClusterOptions = {}): () => TestCluster {
  let cluster: TestCluster | undefined;
  test.before(async () => {
    cluster = await startCluster(opts);
  });
  test.after.always(async () => {
    await cluster?.down();
  });
  return () => {
    if (!cluster) throw new Error("the cluster did not come up");
    return cluster;
  };
}

/** Polls `probe` (every 200 ms) until it returns a value other than undefined, or fails after `timeoutMs`. */
export function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return waitFor(what, timeoutMs, probe, 200);
}

/** `podnet down` must also work when the cluster's namespaces are all that is left. */
export async function netnsOf(name: string): Promise<string[]> {
  const r = await execa("ip", ["-j", "netns", "list"], { reject: false });
  const list = String(r.stdout).trim() ? (JSON.parse(String(r.stdout)) as { name: string }[]) : [];
  return list.map((n) => n.name).filter((n) => n.startsWith(`pn-${name}-`));
}
