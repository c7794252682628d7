// The scheduler: spreads pods over Ready nodes, honours nodeName and nodeSelector, leaves pods
// that fit nowhere Pending with PodScheduled=False/Unschedulable, and retries when nodes change.
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
