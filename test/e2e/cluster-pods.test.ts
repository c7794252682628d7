// End to end on a 3-node emulated cluster: scheduling, pod addressing, and the shape of
// Kubernetes' "Networking Granular Checks: Pods": pod to pod over HTTP and UDP between every pair
// of nodes (and on one node), and from each node to every pod, with the source IP preserved.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Deployment, Node, Pod } from "../../apiserver/types.ts";
import { curlArgs } from "../../cluster/probe.ts";
import { eventually, useCluster } from "../helpers/cluster.ts";
import { uniqueName } from "../helpers/netns.ts";
import {
  deploymentManifest,
  hostOf,
  inCIDR,
  inNetns,
  listPods,
  netexecContainer,
  nodes,
  podManifest,
  podRun,
  readyPods,
  sleeperContainer,
  testNamespace,
  udpAskIn,
} from "./cluster-helpers.ts";

const cluster = useCluster(test);

const internalIP = (n: Node) => n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;

/** Bound, non-finished pods per node, over every namespace (what the scheduler counts). */
async function loadByNode(names: string[]): Promise<Map<string, number>> {
  const load = new Map(names.map((n) => [n, 0]));
  for (const p of await listPods(cluster(), undefined)) {
    const n = p.spec.nodeName;
    if (n && load.has(n) && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed") load.set(n, load.get(n)! + 1);
  }
  return load;
}

test.serial("pods are spread over the nodes, nodeName and nodeSelector are honoured, and every pod gets an IP from its node's podCIDR", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "sched");
  const all = await nodes(c);
  t.deepEqual(all.map((n) => n.metadata.name), ["node-1", "node-2", "node-3"]);
  // One /24 per node, distinct, inside the cluster CIDR.
  const cidrs = all.map((n) => n.spec?.podCIDR ?? "");
  for (const cidr of cidrs) {
    t.regex(cidr, /^\d+\.\d+\.\d+\.0\/24$/);
    t.true(inCIDR(cidr.split("/")[0]!, c.cfg.clusterCIDR), `${cidr} is inside ${c.cfg.clusterCIDR}`);
  }
  t.is(new Set(cidrs).size, 3);
  const byName = new Map(all.map((n) => [n.metadata.name!, n]));
  // `podnet status` shows the same: every node Ready with its podCIDR, every daemon running.
  const st = await c.podnet("status", "-o", "json");
  t.is(st.exitCode, 0, st.stderr);
  const report = JSON.parse(st.stdout) as { nodes: { name: string; ready: string; podCIDR?: string; internalIP?: string }[]; processes: { name: string; running: boolean }[] };
  t.deepEqual(
    report.nodes.sort((a, b) => a.name.localeCompare(b.name)),
    all.map((n) => ({ name: n.metadata.name!, ready: "True", podCIDR: n.spec!.podCIDR, internalIP: internalIP(n) })),
  );
  t.deepEqual(report.nodes.map((n) => n.internalIP), c.layout.nodes.map((n) => n.underlayIP));
  // The API server and the cloud's load balancer, then runtime, kubelet and kube-proxy per node.
  t.deepEqual(report.processes.slice(0, 2).map((p) => p.name), ["apiserver", "cloud-lb"]);
  t.is(report.processes.length, 2 + 3 * 3);
  t.true(report.processes.every((p) => p.running), JSON.stringify(report.processes));

  // A label of this test's own on node-1, for a nodeSelector.
  const role = uniqueName("r");
  await c.api.patch(resourcePath("nodes", undefined, "node-1"), { metadata: { labels: { "e2e.podnet.io/role": role } } });
  t.teardown(() => c.api.patch(resourcePath("nodes", undefined, "node-1"), { metadata: { labels: { "e2e.podnet.io/role": null } } }).then(() => undefined));

  const pods = resourcePath("pods", ns);
  await c.api.create(pods, podManifest("pinned", { nodeName: "node-3", containers: [sleeperContainer()] }, { e2e: "placed" }));
  await c.api.create(pods, podManifest("by-label", { nodeSelector: { "e2e.podnet.io/role": role }, containers: [sleeperContainer()] }, { e2e: "placed" }));
  await c.api.create(pods, podManifest("by-hostname", { nodeSelector: { "kubernetes.io/hostname": "node-2" }, containers: [sleeperContainer()] }, { e2e: "placed" }));
  await c.api.create(pods, podManifest("nowhere", { nodeSelector: { "e2e.podnet.io/role": "no-such-node" }, containers: [sleeperContainer()] }));

  const placed = await readyPods(c, ns, "e2e=placed", 3);
  const where = Object.fromEntries(placed.map((p) => [p.metadata.name!, p.spec.nodeName]));
  t.deepEqual(where, { pinned: "node-3", "by-label": "node-1", "by-hostname": "node-2" });

  // A selector no node matches: Pending, with the scheduler's reason.
  const nowhere = await eventually("pod nowhere to be marked unschedulable", async () => {
    const p = await c.api.get<Pod>(resourcePath("pods", ns, "nowhere"));
    return p.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False") ? p : undefined;
  });
  t.is(nowhere.spec.nodeName, undefined);
  t.is(nowhere.status?.phase, "Pending");
  const cond = nowhere.status?.conditions?.find((x) => x.type === "PodScheduled");
  t.is(cond?.reason, "Unschedulable");
  t.is(cond?.message, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");

  // Least loaded: the scheduler places pods one at a time on the node with the fewest pods (ties
  // by name), so from the current load the outcome is known exactly.
  const names = [...byName.keys()];
  const load = await loadByNode(names);
  const expected = new Map(names.map((n) => [n, 0]));
  const replicas = 9;
  for (let i = 0; i < replicas; i++) {
    const next = [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]![0];
    load.set(next, load.get(next)! + 1);
    expected.set(next, expected.get(next)! + 1);
  }
  await c.api.create(resourcePath("deployments", ns), deploymentManifest("spread", replicas, { containers: [sleeperContainer()] }));
  const spread = await readyPods(c, ns, "app=spread", replicas);
  const got = new Map(names.map((n) => [n, spread.filter((p) => p.spec.nodeName === n).length]));
  t.deepEqual(Object.fromEntries(got), Object.fromEntries(expected), `placement from load ${JSON.stringify(Object.fromEntries(load))}`);
  for (const n of names) t.true(got.get(n)! >= 2, `${n} got ${got.get(n)} of ${replicas} pods`);

  // Every pod (ours and the cluster DNS) has an IP from its node's podCIDR, distinct, and the
  // node's address as hostIP.
  const everyPod = [...placed, ...spread, ...(await listPods(c, "kube-system"))];
  const ips = new Set<string>();
  for (const p of everyPod) {
    const node = byName.get(p.spec.nodeName!)!;
    const ip = p.status?.podIP ?? "";
    t.true(inCIDR(ip, node.spec!.podCIDR!), `pod ${p.metadata.name} on ${node.metadata.name} has ${ip}, outside ${node.spec!.podCIDR}`);
    t.not(ip, node.spec!.podCIDR!.replace(/0\/24$/, "1"), "the gateway address is not handed to a pod");
    t.is(p.status?.hostIP, internalIP(node));
    ips.add(ip);
  }
  t.is(ips.size, everyPod.length, "no two pods share an IP");

  // The pod's own eth0 carries the IP the API server shows.
  const eth0 = await podRun(c, ns, "pinned", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
  t.is(/inet (\S+)\//.exec(eth0)?.[1], placed.find((p) => p.metadata.name === "pinned")!.status!.podIP);

  // Scale down: the deployment's pods go, the rest stay where they were.
  await c.api.patch(resourcePath("deployments", ns, "spread"), { spec: { replicas: 0 } });
  await eventually("deployment spread to have no pods", async () => ((await listPods(c, ns, "app=spread")).length === 0 ? true : undefined));
  const d = await c.api.get<Deployment>(resourcePath("deployments", ns, "spread"));
  t.is(d.status?.replicas ?? 0, 0);
});

interface DialAnswer {
  responses: string[];
  errors: string[];
}

/** netexec's /dial from inside pod `from`: asks `host:port` once and returns what came back. */
async function dial(ns: string, from: string, host: string, port: number, protocol: "http" | "udp", request: string): Promise<DialAnswer> {
  const url = `http://localhost:8080/dial?host=${host}&port=${port}&protocol=${protocol}&request=${encodeURIComponent(request)}&tries=1`;
  return JSON.parse(await podRun(cluster(), ns, from, curlArgs(url))) as DialAnswer;
}

async function netexecPods(ns: string): Promise<Pod[]> {
  const c = cluster();
  const placement: [string, string][] = [
    ["a-node-1", "node-1"],
    ["b-node-1", "node-1"],
    ["c-node-2", "node-2"],
    ["d-node-3", "node-3"],
  ];
  for (const [name, node] of placement) await c.api.create(resourcePath("pods", ns), podManifest(name, { nodeName: node, containers: [netexecContainer()] }, { app: "netexec" }));
  return (await readyPods(c, ns, "app=netexec", placement.length)).sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
}

test.serial("pod to pod over HTTP and UDP, on one node and between every pair of nodes, keeps the source IP", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "p2p");
  const pods = await netexecPods(ns);

  for (const a of pods) {
    const name = a.metadata.name!;
    // What the pod sees as its own address is what the API server shows.
    const eth0 = await podRun(c, ns, name, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    t.is(/inet (\S+)\//.exec(eth0)?.[1], a.status!.podIP, `${name}'s eth0`);
    for (const b of pods) {
      if (a === b) continue;
      const pair = `${name} (${a.spec.nodeName}, ${a.status!.podIP}) -> ${b.metadata.name} (${b.spec.nodeName}, ${b.status!.podIP})`;
      // HTTP straight from the pod (curl), and through netexec's /dial (the agnhost way).
      const seen = await podRun(c, ns, name, curlArgs(`http://${b.status!.podIP}:8080/clientip`));
      t.is(hostOf(seen), a.status!.podIP!, `HTTP ${pair}: source seen`);
      const http = await dial(ns, name, b.status!.podIP!, 8080, "http", "hostname");
      t.deepEqual(http, { responses: [b.metadata.name!], errors: [] }, `HTTP dial ${pair}`);
      // UDP: the peer reports the source address of the datagram it got.
      const udp = await dial(ns, name, b.status!.podIP!, 8081, "udp", "clientip");
      t.deepEqual(udp.errors, [], `UDP ${pair}`);
      t.is(hostOf(udp.responses[0] ?? ""), a.status!.podIP!, `UDP ${pair}: source seen`);
      const udpName = await dial(ns, name, b.status!.podIP!, 8081, "udp", "hostname");
      t.deepEqual(udpName, { responses: [b.metadata.name!], errors: [] }, `UDP hostname ${pair}`);
    }
  }
});

test.serial("every node reaches every pod over HTTP and UDP, and the pod sees the node's own address", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "n2p");
  const pods = await netexecPods(ns);
  const byName = new Map((await nodes(c)).map((n) => [n.metadata.name!, n]));

  for (const n of c.layout.nodes) {
    const node = byName.get(n.name)!;
    const addrs = (JSON.parse(await inNetns(n.netns, ["ip", "-j", "-4", "addr", "show"])) as { addr_info: { local: string }[] }[]).flatMap((l) => l.addr_info.map((a) => a.local));
    for (const p of pods) {
      const ip = p.status!.podIP!;
      const what = `${n.name} -> ${p.metadata.name} (${p.spec.nodeName}, ${ip})`;
      // The source address the node's routing picks: cni0's gateway for its own pods, eth0's
      // underlay address for pods on other nodes (host-gw, no tunnel, no NAT).
      const route = (JSON.parse(await inNetns(n.netns, ["ip", "-j", "route", "get", ip])) as { prefsrc: string; dev: string }[])[0]!;
      t.true(addrs.includes(route.prefsrc), `${what}: source ${route.prefsrc} is the node's own`);
      if (p.spec.nodeName === n.name) {
        t.is(route.dev, "cni0", what);
        t.true(inCIDR(route.prefsrc, node.spec!.podCIDR!), `${what}: source ${route.prefsrc} is the node's gateway`);
      } else {
        t.is(route.dev, "eth0", what);
        t.is(route.prefsrc, n.underlayIP, `${what}: source is the node's underlay address`);
      }
      const seen = await inNetns(n.netns, curlArgs(`http://${ip}:8080/clientip`));
      t.is(hostOf(seen), route.prefsrc, `HTTP ${what}: source seen`);
      const host = await inNetns(n.netns, curlArgs(`http://${ip}:8080/hostname`));
      t.is(host.trim(), p.metadata.name!, `HTTP ${what}: answered by`);
      const udp = await udpAskIn(n.netns, ip, 8081, "clientip");
      t.is(hostOf(udp), route.prefsrc, `UDP ${what}: source seen`);
    }
  }
});
