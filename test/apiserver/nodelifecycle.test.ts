// Node lifecycle with a short grace period: a node that stops heartbeating turns Ready=Unknown,
// is tainted, and its pods' endpoints become not ready; it recovers when heartbeats return.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { EndpointSlice, Node, Pod } from "../../apiserver/types.ts";
import { apiError, createReadyNode, eventually, heartbeat, runningPod, setPodStatus, startTestServer } from "./helpers.ts";

const readyOf = (n: Node) => n.status?.conditions?.find((c) => c.type === "Ready");

test("a silent node turns NotReady (Unknown), its endpoints not ready; it recovers with its heartbeats", async (t) => {
  const { client } = await startTestServer(t, { nodeMonitorGracePeriodSeconds: 2 });
  await createReadyNode(client, "n1");
  await createReadyNode(client, "n2");
  const beating = new Set(["n1", "n2"]);
  const timer = setInterval(() => {
    for (const n of beating) heartbeat(client, n).catch(() => {});
  }, 300);
  t.teardown(() => clearInterval(timer));
  await client.create(resourcePath("services", "default"), { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
  await runningPod(client, "default", "on-n1", { labels: { app: "web" }, node: "n1", ip: "10.244.0.5" });
  await runningPod(client, "default", "on-n2", { labels: { app: "web" }, node: "n2", ip: "10.244.1.5" });
  const endpoints = async () =>
    Object.fromEntries(
      (await client.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=web" })).items.flatMap((s) => s.endpoints).map((e) => [e.targetRef!.name, e.conditions.ready]),
    );
  await eventually("both endpoints ready", async () => {
    const e = await endpoints();
    return e["on-n1"] === true && e["on-n2"] === true;
  });

  // n2's kubelet stops.
  beating.delete("n2");
  const n2 = await eventually("n2 Unknown", async () => {
    const n = await client.get<Node>(resourcePath("nodes", undefined, "n2"));
    return readyOf(n)?.status === "Unknown" && n;
  });
  t.is(readyOf(n2)?.reason, "NodeStatusUnknown");
  t.is(readyOf(n2)?.message, "Kubelet stopped posting node status.");
  await eventually("unreachable taint", async () => (await client.get<Node>(resourcePath("nodes", undefined, "n2"))).spec?.taints?.some((x) => x.key === "node.kubernetes.io/unreachable" && x.effect === "NoSchedule"));
  const pod = await eventually("pod on n2 not ready", async () => {
    const p = await client.get<Pod>(resourcePath("pods", "default", "on-n2"));
    return p.status?.conditions?.find((c) => c.type === "Ready")?.status === "False" && p;
  });
  t.is(pod.status?.conditions?.find((c) => c.type === "Ready")?.reason, "NodeNotReady");
  await eventually("endpoint on n2 not ready, n1 still ready", async () => {
    const e = await endpoints();
    return e["on-n2"] === false && e["on-n1"] === true;
  });
  t.is(readyOf(await client.get<Node>(resourcePath("nodes", undefined, "n1")))?.status, "True");
  // Nothing new is scheduled there.
  for (let i = 0; i < 3; i++) await client.create(resourcePath("pods", "default"), { metadata: { name: `new-${i}` }, spec: { containers: [{ name: "c", image: "x" }] } });
  await eventually("new pods on n1", async () => {
    const ps = (await client.list<Pod>(resourcePath("pods", "default"), { labelSelector: "!app" })).items;
    return ps.length === 3 && ps.every((p) => p.spec.nodeName === "n1");
  });

  // The kubelet comes back: heartbeats, then it reports its pod ready again.
  beating.add("n2");
  await eventually("n2 Ready and untainted", async () => {
    const n = await client.get<Node>(resourcePath("nodes", undefined, "n2"));
    return readyOf(n)?.status === "True" && !n.spec?.taints?.length;
  });
  await setPodStatus(client, "default", "on-n2", "10.244.1.5", true);
  await eventually("endpoint on n2 ready again", async () => (await endpoints())["on-n2"] === true);
});

test("a node that never reports turns Unknown; pods of a deleted node are collected", async (t) => {
  const { client } = await startTestServer(t, { nodeMonitorGracePeriodSeconds: 1 });
  await client.create(resourcePath("nodes"), { metadata: { name: "silent" } });
  const n = await eventually("silent Unknown", async () => {
    const x = await client.get<Node>(resourcePath("nodes", undefined, "silent"));
    return readyOf(x)?.status === "Unknown" && x;
  });
  t.is(readyOf(n)?.reason, "NodeStatusNeverUpdated");
  await createReadyNode(client, "gone");
  await client.create(resourcePath("pods", "default"), { metadata: { name: "orphan" }, spec: { nodeName: "gone", containers: [{ name: "c", image: "x" }] } });
  await client.delete(resourcePath("nodes", undefined, "gone"));
  await eventually("orphan pod removed", async () => {
    await apiError(client.get(resourcePath("pods", "default", "orphan")), 404);
    return true;
  });
  t.is((await client.list<Pod>(resourcePath("pods"))).items.length, 0);
});

test("pods are marked not ready once, when their node stops being Ready: a kubelet's later report is not overwritten", async (t) => {
  // A kubelet that comes back reports its pods' readiness, and its first heartbeat may land after
  // that; the controller must not mark the pods again while it still sees the node NotReady.
  const { client } = await startTestServer(t, { nodeMonitorGracePeriodSeconds: 1 });
  await createReadyNode(client, "n1");
  await runningPod(client, "default", "p", { labels: { app: "p" }, node: "n1", ip: "10.244.0.9" });
  const podReady = async () => (await client.get<Pod>(resourcePath("pods", "default", "p"))).status?.conditions?.find((c) => c.type === "Ready");
  await eventually("n1 Unknown", async () => readyOf(await client.get<Node>(resourcePath("nodes", undefined, "n1")))?.status === "Unknown");
  await eventually("p marked not ready", async () => (await podReady())?.reason === "NodeNotReady");
  await setPodStatus(client, "default", "p", "10.244.0.9", true);
  // Several monitor passes (every 250 ms with a 1 s grace period) while the node stays Unknown.
  await new Promise((r) => setTimeout(r, 1500));
  t.is(readyOf(await client.get<Node>(resourcePath("nodes", undefined, "n1")))?.status, "Unknown");
  t.is((await podReady())?.status, "True");
});
