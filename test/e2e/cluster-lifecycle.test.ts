// `podnet up` then `podnet down` leaves the machine as it was: no network namespace, link in the
// root netns, nftables table in the root netns, process, mount or state directory of the cluster
// is left, also when `podnet down` runs twice, on a cluster whose API server was killed, and on
// a cluster whose `podnet up` was killed half way.
import test, { type ExecutionContext } from "ava";
import { execa } from "execa";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient, resourcePath } from "../../apiserver/client.ts";
import { apiserverSpec } from "../../cluster/components.ts";
import { loadConfig } from "../../cluster/config.ts";
import { layout } from "../../cluster/layout.ts";
import { runningPid } from "../../cluster/processes.ts";
import { eventually, type TestCluster } from "../helpers/cluster.ts";
import { uniqueName } from "../helpers/netns.ts";
import { PODNET } from "../helpers/podnet.ts";
import { deploymentManifest, netexecContainer, readyPods } from "./cluster-helpers.ts";

interface Proc {
  pid: number;
  startTime: string;
  cmdline: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // A zombie has exited (it holds nothing but its pid until its parent reaps it).
      if (fields[0] === "Z") continue;
      out.push({ pid: Number(d), startTime: fields[19]!, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

async function json<T>(cmd: string, args: string[]): Promise<T> {
  const r = await execa(cmd, args);
  return JSON.parse(String(r.stdout) || "null") as T;
}

/** What a cluster could leave on the machine; `marks` are strings naming it (its name, its state root). */
interface Snapshot {
  netns: string[];
  rootLinks: string[];
  rootTables: string[];
  procs: Proc[];
  mounts: string[];
}

async function snapshot(netnsPrefix: string, marks: string[]): Promise<Snapshot> {
  const netns = ((await json<{ name: string }[] | null>("ip", ["-j", "netns", "list"])) ?? []).map((n) => n.name);
  const rootLinks = (await json<{ ifname: string }[]>("ip", ["-j", "link", "show"])).map((l) => l.ifname).sort();
  // By absolute path: under npx, node_modules/.bin has an unrelated "nft" (@vercel/nft) first on PATH.
  const tables = (await json<{ nftables: { table?: { family: string; name: string } }[] }>("/usr/sbin/nft", ["-j", "list", "tables"])).nftables;
  const rootTables = tables.flatMap((x) => (x.table ? [`${x.table.family} ${x.table.name}`] : [])).sort();
  const ours = netns.filter((n) => n.startsWith(netnsPrefix));
  // Processes of the cluster: those naming its state, and every process inside its namespaces.
  const inNetns = new Set<number>();
  for (const ns of ours) {
    const r = await execa("ip", ["netns", "pids", ns], { reject: false });
    for (const p of String(r.stdout).split(/\s+/).filter(Boolean)) inNetns.add(Number(p));
  }
  const procs = processes().filter((p) => p.pid !== process.pid && (inNetns.has(p.pid) || marks.some((m) => p.cmdline.includes(m))));
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => marks.some((m) => l.includes(m)));
  return { netns: ours, rootLinks, rootTables, procs, mounts };
}

/** Asserts that nothing of the cluster is left and the root netns is as it was. */
async function assertClean(t: ExecutionContext, before: Snapshot, during: Snapshot, prefix: string, marks: string[], dirs: string[]): Promise<void> {
  const after = await snapshot(prefix, marks);
  t.deepEqual(after.netns, [], "no network namespace of the cluster is left");
  t.deepEqual(after.rootLinks, before.rootLinks, "the root netns has the links it had");
  t.deepEqual(after.rootTables, before.rootTables, "the root netns has the nftables tables it had");
  t.deepEqual(after.procs.map((p) => p.cmdline), [], "no process of the cluster is left");
  // Also by pid and start time: a process that has dropped its netns or renamed itself is still found.
  const now = new Set(processes().map((p) => `${p.pid}/${p.startTime}`));
  t.deepEqual(during.procs.filter((p) => now.has(`${p.pid}/${p.startTime}`)).map((p) => `${p.pid} ${p.cmdline}`), [], "every process the cluster ran is gone");
  t.deepEqual(after.mounts, [], "no mount of the cluster is left");
  for (const d of dirs) t.false(existsSync(d), `${d} is removed`);
}

interface Fresh {
  name: string;
  root: string;
  env: Record<string, string>;
  prefix: string;
  /** Strings that name this cluster: its netns prefix and its temp state root. */
  marks: string[];
  podnet(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string; signal?: string }>;
}

/** A name and a temp root for a cluster not made yet, removed (with `podnet down`) when the test ends. */
function freshCluster(t: ExecutionContext): Fresh {
  const name = uniqueName("e");
  const root = mkdtempSync(join(tmpdir(), "podnet-e2e-"));
  const env = { PODNET_CLUSTER: name, PODNET_STATE_ROOT: join(root, "state"), PODNET_RUN_ROOT: join(root, "run") };
  const podnet = async (...args: string[]) => {
    const r = await execa(process.execPath, [PODNET, ...args], { env, reject: false });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), signal: r.signal };
  };
  t.teardown(async () => {
    await podnet("down");
    rmSync(root, { recursive: true, force: true });
  });
  return { name, root, env, prefix: `pn-${name}-`, marks: [`pn-${name}-`, root], podnet };
}

async function up(f: Fresh, nodes: number): Promise<TestCluster> {
  const r = await f.podnet("up", "--nodes", String(nodes));
  if (r.exitCode !== 0) throw new Error(`podnet up failed:\n${r.stdout}\n${r.stderr}`);
  const cfg = loadConfig(join(f.env.PODNET_STATE_ROOT!, f.name));
  if (!cfg) throw new Error(`podnet up wrote no cluster.json for ${f.name}`);
  const l = layout(cfg);
  return { name: f.name, env: f.env, cfg, layout: l, api: new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-e2e" }), podnet: f.podnet, down: async () => void (await f.podnet("down")) };
}

const dirsOf = (f: Fresh) => [join(f.root, "state", f.name), join(f.root, "run", f.name)];

test.serial("podnet up then podnet down leaves the machine as before, and podnet down twice is fine", async (t) => {
  const f = freshCluster(t);
  const before = await snapshot(f.prefix, f.marks);
  t.deepEqual(before.netns, []);
  t.deepEqual(before.procs, []);
  const c = await up(f, 2);
  // A workload, so that pods (namespaces, veths, holders, containers) and kube-proxy rules exist.
  await c.api.create(resourcePath("deployments", "default"), deploymentManifest("web", 3, { containers: [netexecContainer()] }));
  await c.api.create(resourcePath("services", "default"), { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { type: "NodePort", selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] } });
  await readyPods(c, "default", "app=web", 3);
  const during = await snapshot(f.prefix, f.marks);
  // What the checks look for is really there while the cluster runs...
  for (const ns of ["fabric", "external", "node-1", "node-2"]) t.true(during.netns.includes(`${f.prefix}${ns}`), `netns ${f.prefix}${ns}`);
  t.true(during.netns.filter((n) => n.startsWith(`${f.prefix}p-`)).length >= 5, `pod namespaces: ${during.netns.join(", ")}`);
  t.true(during.procs.some((p) => p.cmdline.includes(" apiserver ")) && during.procs.some((p) => p.cmdline.includes(" kubelet ")) && during.procs.some((p) => p.cmdline.includes(" kube-proxy ")));
  t.true(during.procs.some((p) => p.cmdline.includes("agnhost netexec")), "the pods' containers are counted");
  t.true(during.mounts.some((l) => l.includes(`/run/netns/${f.prefix}node-1`)));
  // ...and the root netns is untouched while it runs.
  t.deepEqual(during.rootLinks, before.rootLinks, "podnet up adds no link to the root netns");
  t.deepEqual(during.rootTables, before.rootTables, "podnet up adds no nftables table to the root netns");

  const down = await f.podnet("down");
  t.is(down.exitCode, 0, down.stderr);
  t.regex(down.stdout, new RegExp(`cluster "${f.name}" removed: ${during.netns.length} network namespaces`));
  await assertClean(t, before, during, f.prefix, f.marks, dirsOf(f));

  // Again: nothing to do, and no error.
  const again = await f.podnet("down");
  t.is(again.exitCode, 0, again.stderr);
  t.regex(again.stdout, /removed: 0 network namespaces, 0 leftover processes/);
  await assertClean(t, before, during, f.prefix, f.marks, dirsOf(f));
  // And the cluster is known to be gone.
  const status = await f.podnet("status");
  t.not(status.exitCode, 0);
  t.regex(status.stderr, new RegExp(`no cluster "${f.name}"`));
});

test.serial("podnet down cleans up a cluster whose API server was killed", async (t) => {
  const f = freshCluster(t);
  const before = await snapshot(f.prefix, f.marks);
  const c = await up(f, 2);
  await c.api.create(resourcePath("deployments", "default"), deploymentManifest("web", 2, { containers: [netexecContainer()] }));
  await readyPods(c, "default", "app=web", 2);
  const during = await snapshot(f.prefix, f.marks);
  const pidFile = apiserverSpec(c.layout).pidFile;
  const pid = runningPid(pidFile);
  if (!pid) throw new Error("the API server is not running");
  process.kill(pid, "SIGKILL");
  await eventually("the API server to be gone", async () => (runningPid(pidFile) ? undefined : true));

  const down = await f.podnet("down");
  t.is(down.exitCode, 0, down.stderr);
  await assertClean(t, before, during, f.prefix, f.marks, dirsOf(f));
});

test.serial("podnet down cleans up after a podnet up that was killed half way", async (t) => {
  const f = freshCluster(t);
  const before = await snapshot(f.prefix, f.marks);
  const upRun = execa(process.execPath, [PODNET, "up", "--nodes", "2"], { env: f.env, reject: false });
  t.teardown(async () => {
    upRun.kill("SIGKILL");
    await upRun;
  });
  // Killed as soon as the last node's namespace exists (the API server runs by then), long
  // before the nodes are Ready.
  const deadline = Date.now() + 60_000;
  const nodeNetns = `/run/netns/${f.prefix}node-2`;
  while (!existsSync(nodeNetns) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  upRun.kill("SIGKILL");
  const r = await upRun;
  t.is(r.signal, "SIGKILL", `podnet up was killed before it finished: ${String(r.stdout)}`);
  const half = await snapshot(f.prefix, f.marks);
  t.true(half.netns.includes(`${f.prefix}node-2`));
  t.true(half.procs.some((p) => p.cmdline.includes(" apiserver ")), "the API server was started");

  const down = await f.podnet("down");
  t.is(down.exitCode, 0, down.stderr);
  // Daemons podnet up started after the snapshot are found by the checks of assertClean too.
  await assertClean(t, before, half, f.prefix, f.marks, dirsOf(f));
});
