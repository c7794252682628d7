// Deployments and ReplicaSets: scaling, rolling updates that keep availability (a stand-in
// kubelet reports pods ready), Recreate, revision history, and ReplicaSets on their own.
import test from "ava";
import { resourcePath, type ApiClient } from "../../apiserver/client.ts";
import type { Deployment, Pod, ReplicaSet } from "../../apiserver/types.ts";
import { createReadyNode, eventually, FakeKubelet, startTestServer } from "./helpers.ts";

const NODES = ["n1", "n2", "n3"];

async function cluster(t: Parameters<typeof startTestServer>[0]) {
  const ts = await startTestServer(t);
  for (const n of NODES) await createReadyNode(ts.client, n);
  const kubelet = new FakeKubelet(ts.client, NODES).start();
  t.teardown(() => kubelet.stop());
  return { ...ts, kubelet };
}

function deployment(name: string, replicas: number, image: string, strategy?: Deployment["spec"]["strategy"]): Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      strategy,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image, ports: [{ name: "http", containerPort: 8080 }] }] } },
    },
  };
}

const livePods = async (client: ApiClient, app: string) => (await client.list<Pod>(resourcePath("pods", "default"), { labelSelector: `app=${app}` })).items;
const isReady = (p: Pod) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

async function settled(client: ApiClient, name: string, replicas: number) {
  return eventually(
    `deployment ${name} at ${replicas} available`,
    async () => {
      const d = await client.get<Deployment>(resourcePath("deployments", "default", name));
      const pods = (await livePods(client, name)).filter((p) => !p.metadata.deletionTimestamp);
      const s = d.status;
      return s?.observedGeneration === d.metadata.generation && s?.replicas === replicas && s.updatedReplicas === replicas && s.availableReplicas === replicas && pods.length === replicas && pods.every(isReady) && d;
    },
    30_000,
  );
}

test("a Deployment creates a ReplicaSet and pods, and scales up and down", async (t) => {
  const { client } = await cluster(t);
  await client.create(resourcePath("deployments", "default"), deployment("web", 3, "podnet/agnhost:1"));
  const d = await settled(client, "web", 3);
  t.is(d.status?.readyReplicas, 3);
  t.is(d.status?.unavailableReplicas, 0);
  const avail = d.status?.conditions?.find((c) => c.type === "Available");
  t.is(avail?.status, "True");
  t.is(avail?.reason, "MinimumReplicasAvailable");
  t.is(d.status?.conditions?.find((c) => c.type === "Progressing")?.reason, "NewReplicaSetAvailable");
  t.is(d.metadata.annotations?.["deployment.kubernetes.io/revision"], "1");
  const rss = (await client.list<ReplicaSet>(resourcePath("replicasets", "default"))).items;
  t.is(rss.length, 1);
  const rs = rss[0];
  const hash = rs.metadata.labels?.["pod-template-hash"];
  t.truthy(hash);
  t.is(rs.metadata.name, `web-${hash}`);
  t.is(rs.spec.selector.matchLabels?.["pod-template-hash"], hash);
  t.is(rs.metadata.ownerReferences?.[0].kind, "Deployment");
  t.is(rs.metadata.annotations?.["deployment.kubernetes.io/revision"], "1");
  const pods = await livePods(client, "web");
  t.true(pods.every((p) => p.metadata.name!.startsWith(`web-${hash}-`) && p.metadata.labels?.["pod-template-hash"] === hash));
  t.true(pods.every((p) => p.metadata.ownerReferences?.[0].name === rs.metadata.name && p.metadata.ownerReferences?.[0].controller));
  t.deepEqual(new Set(pods.map((p) => p.spec.nodeName)).size, 3, "spread over the three nodes");

  await client.patch(resourcePath("deployments", "default", "web"), { spec: { replicas: 7 } });
  await settled(client, "web", 7);
  await client.patch(resourcePath("deployments", "default", "web"), { spec: { replicas: 2 } });
  await settled(client, "web", 2);
  t.is((await client.list(resourcePath("replicasets", "default"))).items.length, 1, "scaling makes no new ReplicaSet");
  await client.patch(resourcePath("deployments", "default", "web"), { spec: { replicas: 0 } });
  await eventually("no pods", async () => (await livePods(client, "web")).length === 0);
});

for (const [title, strategy, replicas, minAvailable, maxTotal] of [
  ["default 25%/25%", undefined, 4, 3, 5],
  ["maxSurge 1, maxUnavailable 0", { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }, 3, 3, 4],
] as const) {
  test(`a rolling update (${title}) replaces every pod and keeps availability`, async (t) => {
    const { client, kubelet } = await cluster(t);
    // Pods take a moment to become ready, as with a readiness probe, so the rollout has steps to watch.
    kubelet.readyDelayMs = 300;
    const name = "roll";
    await client.create(resourcePath("deployments", "default"), deployment(name, replicas, "podnet/agnhost:1", strategy as Deployment["spec"]["strategy"]));
    await settled(client, name, replicas);
    const original = new Set((await livePods(client, name)).map((p) => p.metadata.name));

    await client.patch(resourcePath("deployments", "default", name), { spec: { template: { spec: { containers: [{ name: "app", image: "podnet/agnhost:2", ports: [{ name: "http", containerPort: 8080 }] }] } } } }, { type: "strategic" });
    // Sample the pods all through the rollout: never fewer ready than minAvailable, never more than the surge allows.
    let samples = 0;
    let minReady = Infinity;
    let maxActive = 0;
    await eventually(
      "rollout done",
      async () => {
        const pods = await livePods(client, name);
        const active = pods.filter((p) => !p.metadata.deletionTimestamp);
        const ready = active.filter(isReady).length;
        samples++;
        minReady = Math.min(minReady, ready);
        maxActive = Math.max(maxActive, active.length);
        const d = await client.get<Deployment>(resourcePath("deployments", "default", name));
        return (
          d.status?.observedGeneration === d.metadata.generation &&
          d.status?.updatedReplicas === replicas &&
          d.status?.availableReplicas === replicas &&
          d.status?.replicas === replicas &&
          active.length === replicas &&
          active.every((p) => p.spec.containers[0].image === "podnet/agnhost:2" && isReady(p))
        );
      },
      60_000,
      10,
    );
    t.true(samples > 10, "the rollout was observed");
    t.true(minReady >= minAvailable, `ready pods dropped to ${minReady}, below ${minAvailable}`);
    t.true(maxActive <= maxTotal, `${maxActive} pods at once, more than ${maxTotal}`);
    const now = (await livePods(client, name)).filter((p) => !p.metadata.deletionTimestamp);
    t.false(now.some((p) => original.has(p.metadata.name)), "every pod was replaced");
    const rss = (await client.list<ReplicaSet>(resourcePath("replicasets", "default"))).items;
    t.is(rss.length, 2);
    const byRev = Object.fromEntries(rss.map((rs) => [rs.metadata.annotations?.["deployment.kubernetes.io/revision"], rs.spec.replicas]));
    t.deepEqual(byRev, { "1": 0, "2": replicas });
    const d = await client.get<Deployment>(resourcePath("deployments", "default", name));
    t.is(d.metadata.annotations?.["deployment.kubernetes.io/revision"], "2");
  });
}

test("Recreate removes every old pod before new ones start; old ReplicaSets beyond revisionHistoryLimit go", async (t) => {
  const { client } = await cluster(t);
  const name = "rec";
  const d = deployment(name, 3, "img:1", { type: "Recreate" });
  d.spec.revisionHistoryLimit = 1;
  await client.create(resourcePath("deployments", "default"), d);
  await settled(client, name, 3);
  await client.patch(resourcePath("deployments", "default", name), { spec: { template: { metadata: { labels: { app: name, v: "2" } } } } });
  let mixed = false;
  await eventually(
    "recreated",
    async () => {
      const pods = await livePods(client, name);
      const versions = new Set(pods.map((p) => p.metadata.labels?.v ?? "1"));
      if (versions.size > 1) mixed = true;
      return pods.length === 3 && pods.every((p) => p.metadata.labels?.v === "2" && isReady(p));
    },
    30_000,
    10,
  );
  t.false(mixed, "old and new pods never ran together");
  for (const v of ["3", "4"]) {
    await client.patch(resourcePath("deployments", "default", name), { spec: { template: { metadata: { labels: { app: name, v } } } } });
    await eventually(`v${v}`, async () => {
      const pods = await livePods(client, name);
      return pods.length === 3 && pods.every((p) => p.metadata.labels?.v === v && isReady(p));
    });
  }
  const rss = await eventually("history pruned", async () => {
    const items = (await client.list<ReplicaSet>(resourcePath("replicasets", "default"))).items;
    return items.length === 2 && items;
  });
  t.deepEqual(rss.map((rs) => rs.metadata.annotations?.["deployment.kubernetes.io/revision"]).sort(), ["3", "4"]);
});

test("a ReplicaSet replaces deleted pods, adopts matching orphans and reports status", async (t) => {
  const { client } = await cluster(t);
  await client.create(resourcePath("pods", "default"), { metadata: { name: "stray", labels: { app: "rs" } }, spec: { containers: [{ name: "app", image: "x" }] } });
  await client.create(resourcePath("replicasets", "default"), {
    metadata: { name: "rs" },
    spec: { replicas: 3, selector: { matchLabels: { app: "rs" } }, template: { metadata: { labels: { app: "rs" } }, spec: { containers: [{ name: "app", image: "x" }] } } },
  });
  const rs = await eventually("3 ready", async () => {
    const r = await client.get<ReplicaSet>(resourcePath("replicasets", "default", "rs"));
    return r.status?.readyReplicas === 3 && r.status.availableReplicas === 3 && r.status.replicas === 3 && r;
  });
  t.is(rs.status?.observedGeneration, 1);
  const stray = await client.get<Pod>(resourcePath("pods", "default", "stray"));
  t.is(stray.metadata.ownerReferences?.[0].uid, rs.metadata.uid, "the orphan was adopted");
  const pods = await livePods(client, "rs");
  t.is(pods.length, 3);
  await client.delete(resourcePath("pods", "default", pods[0].metadata.name));
  await eventually("replaced", async () => {
    const now = (await livePods(client, "rs")).filter((p) => !p.metadata.deletionTimestamp);
    return now.length === 3 && !now.some((p) => p.metadata.name === pods[0].metadata.name) && now.every(isReady);
  });
  // A pod relabelled out of the selector is released and replaced.
  const victim = (await livePods(client, "rs"))[0];
  await client.patch(resourcePath("pods", "default", victim.metadata.name), { metadata: { labels: { app: "elsewhere" } } });
  await eventually("released and replaced", async () => {
    const released = await client.get<Pod>(resourcePath("pods", "default", victim.metadata.name));
    return !released.metadata.ownerReferences && (await livePods(client, "rs")).filter((p) => !p.metadata.deletionTimestamp).length === 3;
  });
});
