// End to end on a 3-node emulated cluster with a short node-monitor grace period: a node whose
// kubelet stops (SIGSTOP, or killed and started again by `podnet up`) turns NotReady and its
// pods' endpoints not ready, then recovers; the API server killed and restarted by `podnet up`
// keeps every object, ClusterIP and NodePort, and the pods keep running and serving.
import test from "ava";
import { readFileSync } from "node:fs";
import { resourcePath } from "../../apiserver/client.ts";
import type { Node, Pod, ReplicaSet, Service } from "../../apiserver/types.ts";
import { apiserverSpec, kubeletSpec } from "../../cluster/components.ts";
import { curlArgs, execExternal } from "../../cluster/probe.ts";
import { runningPid } from "../../cluster/processes.ts";
import { eventually, useCluster, type TestCluster } from "../helpers/cluster.ts";
import {
  deploymentManifest,
  inNetns,
  isReady,
  listPods,
  netexecContainer,
  nodeReadyStatus,
  podManifest,
  readyPods,
  sleeperContainer,
  slicesOf,
  testNamespace,
} from "./cluster-helpers.ts";

const GRACE = "6s";
const cluster = useCluster(test, { upArgs: ["--node-monitor-grace-period", GRACE] });

function daemonPid(pidFile: string, what: string): number {
  const pid = runningPid(pidFile);
  if (!pid) throw new Error(`${what} is not running (pid file ${pidFile})`);
  return pid;
}

const kubeletPidFile = (c: TestCluster, node: string) => kubeletSpec(c.layout, c.layout.nodes.find((n) => n.name === node)!).pidFile;

async function nodeNamed(c: TestCluster, name: string): Promise<Node> {
  return c.api.get<Node>(resourcePath("nodes", undefined, name));
}

function waitNode(c: TestCluster, name: string, status: string, timeoutMs = 60_000): Promise<Node> {
  return eventually(`node ${name} Ready=${status}`, async () => {
    const n = await nodeNamed(c, name);
    return nodeReadyStatus(n) === status ? n : undefined;
  }, timeoutMs);
}

const svc = (name: string, selector: Record<string, string>, extra: Partial<Service["spec"]> = {}): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name },
  spec: { selector, ports: [{ name: "http", port: 80, targetPort: "http" }], ...extra },
});

/** The ready condition of each pod's endpoint in the Service's slices, by pod name. */
async function endpointReadiness(c: TestCluster, ns: string, service: string): Promise<Record<string, boolean | undefined>> {
  const out: Record<string, boolean | undefined> = {};
  const eps = (await slicesOf(c, ns, service)).flatMap((s) => s.endpoints ?? []);
  for (const e of eps.sort((a, b) => (a.targetRef!.name ?? "").localeCompare(b.targetRef!.name ?? ""))) out[e.targetRef!.name ?? ""] = e.conditions.ready;
  return out;
}

function waitEndpoints(c: TestCluster, ns: string, service: string, want: Record<string, boolean>, what: string, timeoutMs = 60_000) {
  return eventually(`${what}: endpoints ${JSON.stringify(want)}`, async () => (JSON.stringify(await endpointReadiness(c, ns, service)) === JSON.stringify(want) ? true : undefined), timeoutMs);
}

/** A netexec pod on each of node-1 and node-2, behind one Service, all ready. */
async function victimAndBystander(c: TestCluster, ns: string): Promise<Pod[]> {
  await c.api.create(resourcePath("pods", ns), podManifest("bystander", { nodeName: "node-1", containers: [netexecContainer()] }, { app: "nf" }));
  await c.api.create(resourcePath("pods", ns), podManifest("victim", { nodeName: "node-2", containers: [netexecContainer()] }, { app: "nf" }));
  await c.api.create(resourcePath("services", ns), svc("nf", { app: "nf" }));
  const pods = await readyPods(c, ns, "app=nf", 2);
  await waitEndpoints(c, ns, "nf", { bystander: true, victim: true }, "before");
  return pods;
}

const hasTaint = (n: Node, key: string) => (n.spec?.taints ?? []).some((t) => t.key === key && t.effect === "NoSchedule");

test.serial("a node whose kubelet is stopped turns NotReady, its endpoints not ready, and it recovers when the kubelet continues", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "stop");
  const pods = await victimAndBystander(c, ns);
  const victimIP = pods.find((p) => p.metadata.name === "victim")!.status!.podIP!;

  const pid = daemonPid(kubeletPidFile(c, "node-2"), "node-2's kubelet");
  process.kill(pid, "SIGSTOP");
  let stopped = true;
  t.teardown(() => {
    if (stopped) process.kill(pid, "SIGCONT");
  });

  const down = await waitNode(c, "node-2", "Unknown");
  const ready = down.status!.conditions!.find((x) => x.type === "Ready")!;
  t.is(ready.reason, "NodeStatusUnknown");
  t.true(hasTaint(await eventually("the unreachable taint", async () => {
    const n = await nodeNamed(c, "node-2");
    return hasTaint(n, "node.kubernetes.io/unreachable") ? n : undefined;
  }), "node.kubernetes.io/unreachable"));
  // Its pod is no longer Ready, so its endpoint is not; the other node's pod is untouched.
  await waitEndpoints(c, ns, "nf", { bystander: true, victim: false }, "node-2 NotReady");
  const victim = await c.api.get<Pod>(resourcePath("pods", ns, "victim"));
  t.false(isReady(victim));
  t.is(victim.status?.conditions?.find((x) => x.type === "Ready")?.reason, "NodeNotReady");
  for (const other of ["node-1", "node-3"]) t.is(nodeReadyStatus(await nodeNamed(c, other)), "True", other);
  // New pods avoid the NotReady node.
  await c.api.create(resourcePath("deployments", ns), deploymentManifest("during", 4, { containers: [sleeperContainer()] }));
  const during = await readyPods(c, ns, "app=during", 4);
  t.deepEqual(during.filter((p) => p.spec.nodeName === "node-2").map((p) => p.metadata.name), []);
  // The data plane does not need the kubelet: the pod itself still answers...
  t.is((await inNetns(c.layout.nodes[0]!.netns, curlArgs(`http://${victimIP}:8080/hostname`))).trim(), "victim");
  // ...but the Service sends nobody there any more (kube-proxy follows the endpoints' readiness).
  const clusterIP = (await c.api.get<Service>(resourcePath("services", ns, "nf"))).spec.clusterIP!;
  const answers = await eventually("12 answers in a row from bystander only", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add((await inNetns(c.layout.nodes[2]!.netns, curlArgs(`http://${clusterIP}/hostname`))).trim());
    return seen.size === 1 && seen.has("bystander") ? seen : undefined;
  }, 30_000);
  t.deepEqual([...answers], ["bystander"]);

  process.kill(pid, "SIGCONT");
  stopped = false;
  await waitNode(c, "node-2", "True");
  await eventually("the taint to go", async () => (hasTaint(await nodeNamed(c, "node-2"), "node.kubernetes.io/unreachable") ? undefined : true));
  await waitEndpoints(c, ns, "nf", { bystander: true, victim: true }, "node-2 back");
  const again = new Set<string>();
  await eventually("the Service to send traffic to victim again", async () => {
    again.add((await inNetns(c.layout.nodes[2]!.netns, curlArgs(`http://${clusterIP}/hostname`))).trim());
    return again.has("victim") ? true : undefined;
  });
  const back = await c.api.get<Pod>(resourcePath("pods", ns, "victim"));
  t.true(isReady(back));
  t.is(back.status?.podIP, victimIP);
  t.is(back.status?.containerStatuses?.[0]?.restartCount, 0);
});

test.serial("a node whose kubelet is killed turns NotReady; `podnet up` starts it again and the node and its pods recover", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "kill");
  const pods = await victimAndBystander(c, ns);
  const victim = pods.find((p) => p.metadata.name === "victim")!;

  const pidFile = kubeletPidFile(c, "node-2");
  const pid = daemonPid(pidFile, "node-2's kubelet");
  process.kill(pid, "SIGKILL");
  t.teardown(async () => {
    if (!runningPid(pidFile)) await c.podnet("up");
  });
  await eventually("the kubelet to be gone", async () => (runningPid(pidFile) ? undefined : true));
  await waitNode(c, "node-2", "Unknown");
  await waitEndpoints(c, ns, "nf", { bystander: true, victim: false }, "kubelet killed");
  const status = await c.podnet("status");
  t.is(status.exitCode, 1, "podnet status reports the missing daemon");
  t.regex(status.stdout, /node-2\/kubelet\s+-\s+NOT RUNNING/);

  const up = await c.podnet("up");
  t.is(up.exitCode, 0, up.stderr);
  t.not(runningPid(pidFile), undefined);
  await waitNode(c, "node-2", "True");
  await waitEndpoints(c, ns, "nf", { bystander: true, victim: true }, "kubelet started again");
  // The new kubelet adopted the running pod: same sandbox (IP), container not restarted.
  const after = await c.api.get<Pod>(resourcePath("pods", ns, "victim"));
  t.is(after.metadata.uid, victim.metadata.uid);
  t.is(after.status?.podIP, victim.status?.podIP);
  t.is(after.status?.containerStatuses?.[0]?.containerID, victim.status?.containerStatuses?.[0]?.containerID);
  t.is(after.status?.containerStatuses?.[0]?.restartCount, 0);
  // And it still runs new pods.
  await c.api.create(resourcePath("pods", ns), podManifest("after", { nodeName: "node-2", containers: [sleeperContainer()] }, { app: "after" }));
  await readyPods(c, ns, "app=after", 1);
  t.is((await c.podnet("status")).exitCode, 0);
});

test.serial("the API server killed and started again by `podnet up` keeps objects, ClusterIPs and NodePorts; pods keep running and serving", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "api");
  await c.api.create(resourcePath("deployments", ns), deploymentManifest("web", 3, { containers: [netexecContainer()] }));
  const web = await c.api.create<Service>(resourcePath("services", ns), svc("web", { app: "web" }, { type: "NodePort" }));
  const pods = await readyPods(c, ns, "app=web", 3);
  const clusterIP = web.spec.clusterIP!;
  const nodePort = web.spec.ports![0]!.nodePort!;
  const node1 = c.layout.nodes[0]!;
  const serving = async (ip: string, port: number, via: "node" | "external") => {
    const url = `http://${ip}:${port}/hostname`;
    const out = via === "node" ? await inNetns(node1.netns, curlArgs(url)) : (await execExternal(c, curlArgs(url))).stdout;
    return out.trim();
  };
  const names = new Set(pods.map((p) => p.metadata.name));
  await eventually("the Service to answer", async () => (names.has(await serving(clusterIP, 80, "node")) ? true : undefined));
  const nodesBefore = (await c.api.list<Node>(resourcePath("nodes"))).items.map((n) => [n.metadata.name, n.metadata.uid, n.spec?.podCIDR]).sort();
  const svcsBefore = (await c.api.list<Service>(resourcePath("services"))).items.map((s) => [s.metadata.namespace, s.metadata.name, s.metadata.uid, s.spec.clusterIP, JSON.stringify(s.spec.ports)]).sort();
  const slicesNow = async () => (await slicesOf(c, ns, "web")).map((s) => [s.metadata.name, s.metadata.resourceVersion, JSON.stringify(s.endpoints)]);
  const rsNow = async () => (await c.api.list<ReplicaSet>(resourcePath("replicasets", ns))).items.map((r) => [r.metadata.uid, r.spec.replicas]);
  await eventually("3 ready endpoints", async () => ((await slicesOf(c, ns, "web")).flatMap((s) => s.endpoints).filter((e) => e.conditions.ready).length === 3 ? true : undefined));
  const slicesBefore = await slicesNow();
  const rsBefore = await rsNow();

  const pidFile = apiserverSpec(c.layout).pidFile;
  process.kill(daemonPid(pidFile, "the API server"), "SIGKILL");
  t.teardown(async () => {
    if (!runningPid(pidFile)) await c.podnet("up");
  });
  await eventually("the API server to be gone", async () => (runningPid(pidFile) ? undefined : true));
  await t.throwsAsync(c.api.get("/version"));
  // Without its API server the data plane keeps working.
  t.true(names.has(await serving(clusterIP, 80, "node")));
  t.true(names.has(await serving(node1.underlayIP, nodePort, "external")));

  const up = await c.podnet("up");
  t.is(up.exitCode, 0, up.stderr);
  // `podnet up` without flags repairs the cluster as it was made (its grace period, not the default).
  const argv = readFileSync(`/proc/${daemonPid(pidFile, "the API server")}/cmdline`, "utf8").split("\0");
  t.is(argv[argv.indexOf("--node-monitor-grace-period") + 1], GRACE);
  // Nothing was lost or renumbered.
  t.deepEqual((await c.api.list<Node>(resourcePath("nodes"))).items.map((n) => [n.metadata.name, n.metadata.uid, n.spec?.podCIDR]).sort(), nodesBefore);
  t.deepEqual((await c.api.list<Service>(resourcePath("services"))).items.map((s) => [s.metadata.namespace, s.metadata.name, s.metadata.uid, s.spec.clusterIP, JSON.stringify(s.spec.ports)]).sort(), svcsBefore);
  const podsAfter = await listPods(c, ns, "app=web");
  t.deepEqual(podsAfter.map((p) => [p.metadata.uid, p.status?.podIP, p.spec.nodeName]).sort(), pods.map((p) => [p.metadata.uid, p.status?.podIP, p.spec.nodeName]).sort());
  // The nodes stay Ready across the restart (the grace period counts from the restart).
  for (const n of c.layout.nodes) t.is(nodeReadyStatus(await nodeNamed(c, n.name)), "True", n.name);
  await readyPods(c, ns, "app=web", 3);
  for (const p of await listPods(c, ns, "app=web")) t.is(p.status?.containerStatuses?.[0]?.restartCount, 0, `${p.metadata.name} was not restarted`);
  t.true(names.has(await serving(clusterIP, 80, "node")));
  t.true(names.has(await serving(node1.underlayIP, nodePort, "external")));

  // The restarted controllers find everything as it should be: no slice or ReplicaSet rewritten.
  t.deepEqual(await slicesNow(), slicesBefore);
  t.deepEqual(await rsNow(), rsBefore);
  // New allocations do not reuse what is taken, and the node agents follow the new server:
  // a new Service's ClusterIP answers, and a scale-up runs pods.
  const second = await c.api.create<Service>(resourcePath("services", ns), svc("web2", { app: "web" }, { type: "NodePort" }));
  t.not(second.spec.clusterIP, clusterIP);
  t.false(svcsBefore.some((s) => s[3] === second.spec.clusterIP), "a ClusterIP in use is not handed out again");
  t.not(second.spec.ports![0]!.nodePort, nodePort);
  await c.api.patch(resourcePath("deployments", ns, "web"), { spec: { replicas: 4 } });
  const four = await readyPods(c, ns, "app=web", 4);
  const fourNames = new Set(four.map((p) => p.metadata.name));
  await eventually("the new Service to answer", async () => (fourNames.has(await serving(second.spec.clusterIP!, 80, "node")) ? true : undefined), 30_000);
  await eventually("the new NodePort to answer", async () => (fourNames.has(await serving(node1.underlayIP, second.spec.ports![0]!.nodePort!, "external")) ? true : undefined), 30_000);
});
