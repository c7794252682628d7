// End to end on a 3-node emulated cluster: EndpointSlices follow the pods the kubelets run.
// Scaling past 100 endpoints (a second slice), readiness flips from a real exec probe, graceful
// deletion (terminating but still serving), named target ports resolved per pod, and a rolling
// update that replaces every pod without dropping below the available count.
import test, { type ExecutionContext } from "ava";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resourcePath } from "../../apiserver/client.ts";
import type { Deployment, Endpoint, EndpointSlice, Pod, ReplicaSet, Service } from "../../apiserver/types.ts";
import { curlArgs } from "../../cluster/probe.ts";
import { eventually, useCluster } from "../helpers/cluster.ts";
import { uniqueName } from "../helpers/netns.ts";
import { deploymentManifest, inNetns, isReady, listPods, netexecContainer, podManifest, podRun, readyPods, sleeperContainer, slicesOf, testNamespace } from "./cluster-helpers.ts";

const cluster = useCluster(test);

function serviceManifest(name: string, selector: Record<string, string>, ports: Service["spec"]["ports"], extra: Partial<Service["spec"]> = {}): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name }, spec: { selector, ports, ...extra } };
}

const endpointsOf = (slices: EndpointSlice[]) => slices.flatMap((s) => s.endpoints ?? []);

/** The one endpoint of `pod` in the Service's slices (undefined when there is none). */
async function endpointOf(ns: string, svc: string, pod: string): Promise<Endpoint | undefined> {
  return endpointsOf(await slicesOf(cluster(), ns, svc)).find((e) => e.targetRef?.name === pod);
}

test.serial("scaling a Deployment past 100 replicas gives its Service a second EndpointSlice, every endpoint ready", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "many");
  await c.api.create(resourcePath("services", ns), serviceManifest("many", { app: "many" }, [{ name: "http", port: 80, targetPort: 8080 }]));
  await c.api.create(resourcePath("deployments", ns), deploymentManifest("many", 3, { containers: [sleeperContainer()] }));
  await readyPods(c, ns, "app=many", 3);
  const small = await eventually("one slice with 3 ready endpoints", async () => {
    const s = await slicesOf(c, ns, "many");
    return s.length === 1 && endpointsOf(s).filter((e) => e.conditions.ready).length === 3 ? s : undefined;
  });
  t.is(small[0]!.metadata.labels?.["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
  t.deepEqual(small[0]!.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);

  const replicas = 105;
  await c.api.patch(resourcePath("deployments", ns, "many"), { spec: { replicas } });
  const pods = await readyPods(c, ns, "app=many", replicas, 170_000);
  const slices = await eventually(
    `${replicas} ready endpoints`,
    async () => {
      const s = await slicesOf(c, ns, "many");
      return endpointsOf(s).filter((e) => e.conditions.ready).length === replicas ? s : undefined;
    },
    60_000,
  );
  t.is(slices.length, 2, `slice sizes ${slices.map((s) => s.endpoints.length).join(", ")}`);
  for (const s of slices) {
    t.true(s.endpoints.length <= 100, `${s.metadata.name} has ${s.endpoints.length} endpoints`);
    t.is(s.addressType, "IPv4");
    t.deepEqual(s.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
    t.is(s.metadata.ownerReferences?.[0]?.kind, "Service");
  }
  t.is(Math.max(...slices.map((s) => s.endpoints.length)), 100, "the first slice is filled before a second is made");
  // Exactly the pods, each once, with its IP, node and ready/serving conditions.
  const byIP = new Map(pods.map((p) => [p.status!.podIP!, p]));
  const eps = endpointsOf(slices);
  t.is(new Set(eps.map((e) => e.addresses[0])).size, replicas);
  for (const e of eps) {
    const p = byIP.get(e.addresses[0]!);
    t.truthy(p, `endpoint ${e.addresses[0]} is a pod of the Deployment`);
    t.is(e.targetRef?.name, p?.metadata.name);
    t.is(e.nodeName, p?.spec.nodeName);
    t.deepEqual(e.conditions, { ready: true, serving: true, terminating: false });
  }
  const dep = await eventually("the Deployment's status", async () => {
    const d = await c.api.get<Deployment>(resourcePath("deployments", ns, "many"));
    return d.status?.availableReplicas === replicas ? d : undefined;
  });
  t.is(dep.status?.readyReplicas, replicas);

  // Back to 3: the endpoints left are the Deployment's 3 pods. Which slices keep them depends on
  // which pods the ReplicaSet deletes: like Kubernetes' controller ours does not rebalance, so the
  // 3 may stay split over both slices; an emptied slice is deleted, never left empty.
  await c.api.patch(resourcePath("deployments", ns, "many"), { spec: { replicas: 3 } });
  const after = await eventually(
    "3 endpoints left",
    async () => {
      const s = await slicesOf(c, ns, "many");
      const left = (await listPods(c, ns, "app=many")).filter((p) => !p.metadata.deletionTimestamp);
      return endpointsOf(s).length === 3 && left.length === 3 ? { s, left } : undefined;
    },
    120_000,
  );
  t.log(`after scaling down: slice sizes ${after.s.map((s) => s.endpoints.length).join(", ")}`);
  t.true(after.s.length >= 1 && after.s.length <= 2, `${after.s.length} slices`);
  t.deepEqual(after.s.map((s) => s.endpoints.length).filter((n) => n === 0), [], "no empty slice is left");
  t.deepEqual(endpointsOf(after.s).map((e) => e.addresses[0]).sort(), after.left.map((p) => p.status!.podIP!).sort());
});

test.serial("an exec readiness probe flips the pod's endpoint between ready and not ready; publishNotReadyAddresses keeps it ready", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "ready");
  // Containers see the host's filesystem: the probe's file is a host path of this test's own.
  const flag = join(tmpdir(), `${uniqueName("podnet-e2e-ready")}`);
  t.teardown(() => rmSync(flag, { force: true }));
  const probe = { exec: { command: ["test", "-e", flag] }, periodSeconds: 1, failureThreshold: 1, successThreshold: 1 };
  await c.api.create(resourcePath("pods", ns), podManifest("flip", { containers: [{ ...netexecContainer(), readinessProbe: probe }] }, { app: "flip" }));
  await c.api.create(resourcePath("services", ns), serviceManifest("flip", { app: "flip" }, [{ name: "http", port: 80, targetPort: "http" }]));
  await c.api.create(resourcePath("services", ns), serviceManifest("flip-all", { app: "flip" }, [{ name: "http", port: 80, targetPort: "http" }], { publishNotReadyAddresses: true }));

  const running = await eventually("pod flip to run with an IP", async () => {
    const p = await c.api.get<Pod>(resourcePath("pods", ns, "flip"));
    return p.status?.phase === "Running" && p.status.podIP && p.status.containerStatuses?.[0]?.state.running ? p : undefined;
  });
  const notReady = { ready: false, serving: false, terminating: false };
  const ready = { ready: true, serving: true, terminating: false };
  const conditionsOf = async (svc: string) => (await endpointOf(ns, svc, "flip"))?.conditions;
  const waitConditions = (svc: string, want: Endpoint["conditions"], what: string) =>
    eventually(`${what}: endpoint of flip in ${svc} ${JSON.stringify(want)}`, async () => (JSON.stringify(await conditionsOf(svc)) === JSON.stringify(want) ? true : undefined), 30_000);

  // No file yet: the pod runs but is not Ready; its endpoint is listed, not ready.
  await waitConditions("flip", notReady, "before the file exists");
  t.false(isReady(await c.api.get<Pod>(resourcePath("pods", ns, "flip"))));
  const ep = await endpointOf(ns, "flip", "flip");
  t.deepEqual(ep?.addresses, [running.status!.podIP]);
  await waitConditions("flip-all", { ready: true, serving: false, terminating: false }, "publishNotReadyAddresses");

  // The file, made from inside the pod: Ready, and so is the endpoint.
  await podRun(c, ns, "flip", ["touch", flag]);
  await waitConditions("flip", ready, "after touch");
  t.true(isReady(await c.api.get<Pod>(resourcePath("pods", ns, "flip"))));
  await waitConditions("flip-all", ready, "publishNotReadyAddresses after touch");

  // And back.
  await podRun(c, ns, "flip", ["rm", flag]);
  await waitConditions("flip", notReady, "after rm");
  await waitConditions("flip-all", { ready: true, serving: false, terminating: false }, "publishNotReadyAddresses after rm");
  await podRun(c, ns, "flip", ["touch", flag]);
  await waitConditions("flip", ready, "after the second touch");
  // The pod never restarted: readiness is not liveness.
  const p = await c.api.get<Pod>(resourcePath("pods", ns, "flip"));
  t.is(p.status?.containerStatuses?.[0]?.restartCount, 0);
});

test.serial("endpoints follow pod labels and the Service's selector, and go with the Service", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "labels");
  await c.api.create(resourcePath("pods", ns), podManifest("one", { containers: [sleeperContainer()] }, { app: "lab", tier: "a" }));
  await c.api.create(resourcePath("pods", ns), podManifest("two", { containers: [sleeperContainer()] }, { app: "lab", tier: "b" }));
  await c.api.create(resourcePath("services", ns), serviceManifest("lab", { app: "lab" }, [{ name: "x", port: 80, targetPort: 8080 }]));
  await readyPods(c, ns, "app=lab", 2);
  const names = async () => endpointsOf(await slicesOf(c, ns, "lab")).map((e) => e.targetRef?.name).sort().join(",");
  const waitNames = (want: string, what: string) => eventually(`${what}: endpoints [${want}]`, async () => ((await names()) === want ? true : undefined), 30_000);
  await waitNames("one,two", "both selected");

  await c.api.patch(resourcePath("pods", ns, "one"), { metadata: { labels: { app: "other" } } });
  await waitNames("two", "one relabelled away");
  await c.api.patch(resourcePath("pods", ns, "one"), { metadata: { labels: { app: "lab" } } });
  await waitNames("one,two", "one relabelled back");
  await c.api.patch(resourcePath("services", ns, "lab"), { spec: { selector: { app: "lab", tier: "b" } } });
  await waitNames("two", "selector narrowed");
  await c.api.patch(resourcePath("services", ns, "lab"), { spec: { selector: { app: "nothing" } } });
  // A Service that selects nothing keeps one empty slice, as Kubernetes does.
  const empty = await eventually("an empty slice", async () => {
    const s = await slicesOf(c, ns, "lab");
    return s.length === 1 && s[0]!.endpoints.length === 0 ? s : undefined;
  });
  t.is(empty.length, 1);
  await c.api.delete(resourcePath("services", ns, "lab"));
  await eventually("the slices to go with the Service", async () => ((await slicesOf(c, ns, "lab")).length === 0 ? true : undefined));
  t.deepEqual(await slicesOf(c, ns, "lab"), []);
});

test.serial("a pod deleted gracefully stays in the slice as terminating (still serving) until it is gone", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "term");
  const grace = 12;
  // The container ignores SIGTERM, so it lives until the grace period ends and SIGKILL comes.
  const stubborn = { name: "stubborn", image: "busybox", command: ["sh", "-c", 'trap "" TERM; sleep 1000'] };
  await c.api.create(resourcePath("pods", ns), podManifest("stubborn", { terminationGracePeriodSeconds: grace, containers: [stubborn] }, { app: "term" }));
  await c.api.create(resourcePath("pods", ns), podManifest("stays", { containers: [sleeperContainer()] }, { app: "term" }));
  await c.api.create(resourcePath("services", ns), serviceManifest("term", { app: "term" }, [{ name: "x", port: 80, targetPort: 8080 }]));
  const pods = await readyPods(c, ns, "app=term", 2);
  const stubbornIP = pods.find((p) => p.metadata.name === "stubborn")!.status!.podIP;
  await eventually("2 ready endpoints", async () => (endpointsOf(await slicesOf(c, ns, "term")).filter((e) => e.conditions.ready).length === 2 ? true : undefined));

  await c.api.delete(resourcePath("pods", ns, "stubborn"));
  const deleting = await c.api.get<Pod>(resourcePath("pods", ns, "stubborn"));
  t.truthy(deleting.metadata.deletionTimestamp);
  t.is(deleting.metadata.deletionGracePeriodSeconds, grace);
  const terminating = await eventually("the endpoint of stubborn to be terminating", async () => {
    const e = await endpointOf(ns, "term", "stubborn");
    return e?.conditions.terminating ? e : undefined;
  });
  t.deepEqual(terminating.conditions, { ready: false, serving: true, terminating: true }, "terminating, not ready, still serving (the pod is still Ready)");
  t.deepEqual(terminating.addresses, [stubbornIP]);
  // It ignored SIGTERM: the pod is still there, still running, and still answers exec.
  t.is((await podRun(c, ns, "stubborn", ["echo", "alive"])).trim(), "alive");
  t.deepEqual((await endpointOf(ns, "term", "stays"))?.conditions, { ready: true, serving: true, terminating: false });

  // After the grace period the kubelet kills it and confirms; the endpoint goes with the pod.
  await eventually(
    "pod stubborn to be gone",
    async () => {
      const left = await listPods(c, ns, "app=term");
      return left.some((p) => p.metadata.name === "stubborn") ? undefined : true;
    },
    (grace + 30) * 1000,
  );
  await eventually("the endpoint of stubborn to be gone", async () => ((await endpointOf(ns, "term", "stubborn")) ? undefined : true));
  const rest = endpointsOf(await slicesOf(c, ns, "term"));
  t.deepEqual(rest.map((e) => e.targetRef?.name), ["stays"]);
});

test.serial("a named targetPort is resolved per pod: two port numbers, two slices, and the Service reaches both", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "named");
  const server = (port: number) => ({
    name: "netexec",
    image: "agnhost",
    command: ["podnet", "agnhost", "netexec", "--http-port", String(port), "--udp-port", "0"],
    ports: [{ name: "web", containerPort: port }],
    readinessProbe: { httpGet: { path: "/healthz", port: "web" }, periodSeconds: 1 },
  });
  await c.api.create(resourcePath("pods", ns), podManifest("on-8080", { containers: [server(8080)] }, { app: "named" }));
  await c.api.create(resourcePath("pods", ns), podManifest("on-9090", { containers: [server(9090)] }, { app: "named" }));
  const svc = await c.api.create<Service>(resourcePath("services", ns), serviceManifest("named", { app: "named" }, [{ name: "http", port: 80, targetPort: "web" }]));
  const pods = await readyPods(c, ns, "app=named", 2);
  const ipOf = (name: string) => pods.find((p) => p.metadata.name === name)!.status!.podIP!;

  const slices = await eventually("two slices with one ready endpoint each", async () => {
    const s = await slicesOf(c, ns, "named");
    return s.length === 2 && s.every((x) => x.endpoints.length === 1 && x.endpoints[0]!.conditions.ready) ? s : undefined;
  });
  const byPort = Object.fromEntries(slices.map((s) => [String(s.ports?.[0]?.port), { ports: s.ports, pod: s.endpoints[0]!.targetRef?.name, ip: s.endpoints[0]!.addresses[0] }]));
  t.deepEqual(byPort, {
    "8080": { ports: [{ name: "http", port: 8080, protocol: "TCP" }], pod: "on-8080", ip: ipOf("on-8080") },
    "9090": { ports: [{ name: "http", port: 9090, protocol: "TCP" }], pod: "on-9090", ip: ipOf("on-9090") },
  });

  // Through the ClusterIP (kube-proxy reads those slices) both pods answer, each on its own port.
  const node = c.layout.nodes[0]!;
  const seen = new Set<string>();
  await eventually(
    "both pods to answer through the ClusterIP",
    async () => {
      seen.add((await inNetns(node.netns, curlArgs(`http://${svc.spec.clusterIP}/hostname`))).trim());
      return seen.has("on-8080") && seen.has("on-9090") ? true : undefined;
    },
    30_000,
  );
  t.deepEqual([...seen].sort(), ["on-8080", "on-9090"]);
  // And the pod's own port really is the one in its slice.
  t.is((await podRun(c, ns, "on-9090", curlArgs(`http://${ipOf("on-8080")}:8080/hostname`))).trim(), "on-8080");
});

interface RolloutSample {
  readyPods: number;
  readyEndpoints: number;
  available?: number;
  desiredSum: number;
}

/** The number of pods a maxSurge/maxUnavailable value means for `replicas`, as Kubernetes rounds it. */
function resolve(v: number | string, replicas: number, roundUp: boolean): number {
  if (typeof v === "number") return v;
  const pct = (Number(v.replace("%", "")) * replicas) / 100;
  return roundUp ? Math.ceil(pct) : Math.floor(pct);
}

async function rollout(t: ExecutionContext, prefix: string, replicas: number, maxSurge: number | string, maxUnavailable: number | string): Promise<void> {
  const c = cluster();
  const ns = await testNamespace(t, c, prefix);
  const surge = resolve(maxSurge, replicas, true), unavailable = resolve(maxUnavailable, replicas, false);
  const spec = { containers: [netexecContainer()] };
  await c.api.create(resourcePath("services", ns), serviceManifest("roll", { app: "roll" }, [{ name: "http", port: 80, targetPort: "http" }]));
  await c.api.create(resourcePath("deployments", ns), deploymentManifest("roll", replicas, spec, { strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge, maxUnavailable } } }));
  const before = await readyPods(c, ns, "app=roll", replicas);
  await eventually("the Deployment to be available", async () => ((await c.api.get<Deployment>(resourcePath("deployments", ns, "roll"))).status?.availableReplicas === replicas ? true : undefined));
  await eventually(`${replicas} ready endpoints`, async () => (endpointsOf(await slicesOf(c, ns, "roll")).filter((e) => e.conditions.ready).length === replicas ? true : undefined));

  // Sample what clients see while the rollout runs.
  const samples: RolloutSample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [pods, slices, dep, rss] = await Promise.all([
        listPods(c, ns, "app=roll"),
        slicesOf(c, ns, "roll"),
        c.api.get<Deployment>(resourcePath("deployments", ns, "roll")),
        c.api.list<ReplicaSet>(resourcePath("replicasets", ns), { labelSelector: "app=roll" }),
      ]);
      samples.push({
        readyPods: pods.filter((p) => isReady(p) && !p.metadata.deletionTimestamp).length,
        readyEndpoints: endpointsOf(slices).filter((e) => e.conditions.ready).length,
        available: dep.status?.availableReplicas,
        desiredSum: rss.items.reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0),
      });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.teardown(() => {
    sampling = false;
  });

  // A template change (an env var) makes a new ReplicaSet.
  await c.api.patch(resourcePath("deployments", ns, "roll"), { spec: { template: { spec: { containers: [{ ...netexecContainer(), env: [{ name: "VERSION", value: "2" }] }] } } } }, { type: "strategic" });
  const done = await eventually(
    "the rollout to finish",
    async () => {
      const d = await c.api.get<Deployment>(resourcePath("deployments", ns, "roll"));
      const pods = await listPods(c, ns, "app=roll");
      const st = d.status;
      const finished = st?.observedGeneration === d.metadata.generation && st?.updatedReplicas === replicas && st?.replicas === replicas && st?.availableReplicas === replicas && pods.length === replicas;
      return finished ? { d, pods } : undefined;
    },
    120_000,
  );
  sampling = false;
  await sampler;

  // Every pod was replaced, by pods of the new template.
  const oldNames = new Set(before.map((p) => p.metadata.name));
  t.true(done.pods.every((p) => !oldNames.has(p.metadata.name)), "no pod of the old ReplicaSet is left");
  t.true(done.pods.every((p) => p.spec.containers[0]!.env?.some((e) => e.name === "VERSION" && e.value === "2")));
  const hashes = new Set(done.pods.map((p) => p.metadata.labels?.["pod-template-hash"]));
  t.is(hashes.size, 1);
  const rss = (await c.api.list<ReplicaSet>(resourcePath("replicasets", ns), { labelSelector: "app=roll" })).items;
  t.is(rss.length, 2);
  for (const rs of rss) t.is(rs.spec.replicas, rs.metadata.labels?.["pod-template-hash"] === [...hashes][0] ? replicas : 0);
  await eventually(`${replicas} ready endpoints of the new pods`, async () => {
    const eps = endpointsOf(await slicesOf(c, ns, "roll")).filter((e) => e.conditions.ready);
    return eps.length === replicas && eps.every((e) => !oldNames.has(e.targetRef?.name)) ? true : undefined;
  });

  // What clients saw while it ran.
  t.true(samples.length > 5, `${samples.length} samples`);
  const floor = replicas - unavailable;
  const low = (k: keyof RolloutSample) => Math.min(...samples.map((s) => s[k] ?? Infinity));
  const high = Math.max(...samples.map((s) => s.desiredSum));
  t.log(`${samples.length} samples: lowest ready pods ${low("readyPods")}, ready endpoints ${low("readyEndpoints")}, availableReplicas ${low("available")}; most pods wanted ${high} (floor ${floor}, ceiling ${replicas + surge})`);
  t.true(low("readyPods") >= floor, `ready pods went down to ${low("readyPods")}`);
  t.true(low("readyEndpoints") >= floor, `ready endpoints went down to ${low("readyEndpoints")}`);
  t.true(low("available") >= floor, `availableReplicas went down to ${low("available")}`);
  t.true(high <= replicas + surge, `never more than replicas + maxSurge pods wanted (saw ${high})`);
}

test.serial("a rolling update replaces every pod and never drops below replicas - maxUnavailable", (t) => rollout(t, "roll", 4, 1, 1));

test.serial("a surge-only rolling update (maxUnavailable 0, maxSurge 50%) keeps every replica available", (t) => rollout(t, "surge", 3, "50%", 0));
