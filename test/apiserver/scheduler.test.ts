// The scheduler: spreads pods over Ready nodes, honours nodeName and nodeSelector, keeps pods whose
// host ports are taken off a node, leaves pods that fit nowhere Pending with
// PodScheduled=False/Unschedulable, and retries when nodes change or host ports are freed.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Node, Pod } from "../../apiserver/types.ts";
import { createReadyNode, eventually, startTestServer } from "./helpers.ts";

const podSpec = { containers: [{ name: "app", image: "podnet/agnhost" }] };

test("pods are spread over 3 Ready nodes, least loaded first", async (t) => {
  const { client } = await startTestServer(t);
  for (const n of ["n1", "n2", "n3"]) await createReadyNode(client, n);
  for (let i = 0; i < 9; i++) await client.create(resourcePath("pods", "default"), { metadata: { name: `p${i}` }, spec: podSpec });
  const pods = await eventually("all bound", async () => {
    const items = (await client.list<Pod>(resourcePath("pods", "default"))).items;
    return items.every((p) => p.spec.nodeName) && items;
  });
  const counts: Record<string, number> = {};
  for (const p of pods) counts[p.spec.nodeName!] = (counts[p.spec.nodeName!] ?? 0) + 1;
  t.deepEqual(counts, { n1: 3, n2: 3, n3: 3 });
  for (const p of pods) {
    const c = p.status?.conditions?.find((x) => x.type === "PodScheduled");
    t.is(c?.status, "True");
  }
  // The spec records the binding, the pod stays as the user made it otherwise.
  t.is(pods[0].metadata.generation, 1);
  // A fourth node gets the next pods until it catches up.
  await createReadyNode(client, "n4");
  for (let i = 9; i < 12; i++) await client.create(resourcePath("pods", "default"), { metadata: { name: `p${i}` }, spec: podSpec });
  const onN4 = await eventually("new pods bound", async () => {
    const items = (await client.list<Pod>(resourcePath("pods", "default"))).items;
    return items.every((p) => p.spec.nodeName) && items.filter((p) => p.spec.nodeName === "n4");
  });
  t.deepEqual(onN4.map((p) => p.metadata.name).sort(), ["p10", "p11", "p9"]);
});

test("nodeName is honoured as given; nodeSelector picks matching nodes only", async (t) => {
  const { client } = await startTestServer(t);
  await createReadyNode(client, "n1", { disk: "ssd" });
  await createReadyNode(client, "n2");
  await createReadyNode(client, "n3");
  await client.create(resourcePath("pods", "default"), { metadata: { name: "pinned" }, spec: { ...podSpec, nodeName: "n3" } });
  await client.create(resourcePath("pods", "default"), { metadata: { name: "ghost" }, spec: { ...podSpec, nodeName: "does-not-exist" } });
  for (let i = 0; i < 4; i++) await client.create(resourcePath("pods", "default"), { metadata: { name: `ssd${i}` }, spec: { ...podSpec, nodeSelector: { disk: "ssd" } } });
  await eventually("ssd pods bound", async () => (await client.list<Pod>(resourcePath("pods", "default"), { fieldSelector: "spec.nodeName=n1" })).items.length === 4);
  t.is((await client.get<Pod>(resourcePath("pods", "default", "pinned"))).spec.nodeName, "n3");
  const ghost = await client.get<Pod>(resourcePath("pods", "default", "ghost"));
  t.is(ghost.spec.nodeName, "does-not-exist", "the scheduler never moves a pod that names its node");
  t.is(ghost.status?.conditions, undefined);
});

test("a pod that fits nowhere stays Pending as Unschedulable, and is scheduled when a node fits", async (t) => {
  const { client } = await startTestServer(t);
  await createReadyNode(client, "n1");
  await client.create<Node>(resourcePath("nodes"), { metadata: { name: "n2", labels: { gpu: "yes" } } }); // never reported Ready
  await client.patch(resourcePath("nodes", undefined, "n1"), { spec: { unschedulable: true } });
  await client.create(resourcePath("pods", "default"), { metadata: { name: "picky" }, spec: { ...podSpec, nodeSelector: { gpu: "yes" } } });
  const pending = await eventually("Unschedulable condition", async () => {
    const p = await client.get<Pod>(resourcePath("pods", "default", "picky"));
    return p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False") && p;
  });
  const cond = pending.status!.conditions!.find((c) => c.type === "PodScheduled")!;
  t.is(cond.reason, "Unschedulable");
  t.is(cond.message, "0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable.");
  t.is(pending.status?.phase, "Pending");
  t.is(pending.spec.nodeName, undefined);
  // n2 reports Ready: the pod goes there.
  await client.patch(resourcePath("nodes", undefined, "n2"), { status: { conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date().toISOString() }] } }, { subresource: "status" });
  const bound = await eventually("bound to n2", async () => {
    const p = await client.get<Pod>(resourcePath("pods", "default", "picky"));
    return p.spec.nodeName ? p : undefined;
  });
  t.is(bound.spec.nodeName, "n2");
  t.is(bound.status?.conditions?.find((c) => c.type === "PodScheduled")?.status, "True");
});

test("host ports: a pod goes only where its hostPorts (a hostNetwork pod's container ports) are free", async (t) => {
  const { client } = await startTestServer(t);
  await createReadyNode(client, "n1");
  await createReadyNode(client, "n2");
  const pods = resourcePath("pods", "default");
  const web = (port: number, protocol = "TCP", hostIP?: string) => ({ containers: [{ name: "app", image: "podnet/agnhost", ports: [{ containerPort: port, hostPort: port, protocol, ...(hostIP ? { hostIP } : {}) }] }] });
  const nodeOf = (name: string) =>
    eventually(`${name} bound`, async () => {
      const p = await client.get<Pod>(resourcePath("pods", "default", name));
      return p.spec.nodeName;
    });
  await client.create(pods, { metadata: { name: "a" }, spec: web(8080) });
  // A hostNetwork pod takes its container ports on the node (the API server defaults hostPort).
  await client.create(pods, { metadata: { name: "b" }, spec: { hostNetwork: true, containers: [{ name: "app", image: "podnet/agnhost", ports: [{ containerPort: 8080 }] }] } });
  const [na, nb] = [await nodeOf("a"), await nodeOf("b")];
  t.not(na, nb, "the same TCP host port twice: two nodes");
  // Other protocols and other ports fit beside them; a third 8080/TCP fits nowhere.
  await client.create(pods, { metadata: { name: "udp" }, spec: web(8080, "UDP") });
  await client.create(pods, { metadata: { name: "other" }, spec: web(8081) });
  t.truthy(await nodeOf("udp"));
  t.truthy(await nodeOf("other"));
  await client.create(pods, { metadata: { name: "c" }, spec: web(8080, "TCP", "10.0.0.1") });
  const pending = await eventually("c Unschedulable", async () => {
    const p = await client.get<Pod>(resourcePath("pods", "default", "c"));
    return p.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False");
  });
  t.is(pending.message, "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.", "a wildcard host port takes every address");
  // Deleting one of them frees its node's port.
  await client.delete(resourcePath("pods", "default", "a"), { gracePeriodSeconds: 0 });
  t.is(await nodeOf("c"), na);
});

test("host ports: a pod that ends frees its node's host ports at once, without waiting for the periodic retry", async (t) => {
  // The periodic retry is an hour away: only the pod's status change can get "b" scheduled.
  const { client } = await startTestServer(t, { schedulerRetryMs: 3_600_000 });
  await createReadyNode(client, "n1");
  const pods = resourcePath("pods", "default");
  const spec = { containers: [{ name: "app", image: "podnet/agnhost", ports: [{ containerPort: 9000, hostPort: 9000 }] }] };
  await client.create(pods, { metadata: { name: "a" }, spec });
  await eventually("a bound", async () => (await client.get<Pod>(resourcePath("pods", "default", "a"))).spec.nodeName);
  await client.create(pods, { metadata: { name: "b" }, spec });
  await eventually("b Unschedulable", async () => (await client.get<Pod>(resourcePath("pods", "default", "b"))).status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False"));
  // The kubelet reports "a" finished; it stays in the API, but its port is free.
  await client.patch(resourcePath("pods", "default", "a"), { status: { phase: "Failed" } }, { subresource: "status", type: "merge" });
  t.is(await eventually("b bound", async () => (await client.get<Pod>(resourcePath("pods", "default", "b"))).spec.nodeName), "n1");
});

test("the pods/binding subresource binds like the scheduler and refuses a second binding", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  await client.create(resourcePath("pods", "default"), { metadata: { name: "p" }, spec: podSpec });
  await client.create(`${resourcePath("pods", "default", "p")}/binding`, { apiVersion: "v1", kind: "Binding", metadata: { name: "p" }, target: { apiVersion: "v1", kind: "Node", name: "n7" } });
  const p = await client.get<Pod>(resourcePath("pods", "default", "p"));
  t.is(p.spec.nodeName, "n7");
  const again = await client.create(`${resourcePath("pods", "default", "p")}/binding`, { target: { name: "n8" } }).catch((e) => e);
  t.is(again.status, 409);
  t.regex(again.message, /already assigned to node "n7"/);
});
