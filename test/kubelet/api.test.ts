// The kubelet joined to an API server (in-process, on a temp dir): it registers its Node and
// takes the podCIDR the server allocates, heartbeats, runs the pods bound to it and reports their
// status, completes graceful deletions, keeps mirror pods of its static pods, writes each pod's
// resolv.conf by dnsPolicy, injects the service environment variables, and keeps host-gw routes in
// step with the Node objects.
import test, { type ExecutionContext } from "ava";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { ApiClient, isApiError, resourcePath } from "../../apiserver/client.ts";
import { startApiServer } from "../../apiserver/server.ts";
import type { Node, Pod, Service } from "../../apiserver/types.ts";
import { parseResolvConf } from "../../kubelet/dns.ts";
import { inNetns } from "../helpers/netns.ts";
import { eventually, httpServer, sleep, startNode, type KubeletNode } from "./harness.ts";

interface Cluster {
  api: ApiClient;
  node: KubeletNode;
}

async function startCluster(t: ExecutionContext, extra: string[] = []): Promise<Cluster> {
  const tmp = await tmpDir({ prefix: "pnka-", unsafeCleanup: true });
  const server = await startApiServer({ stateDir: tmp.path, quiet: true, clusterCIDR: "10.246.0.0/16", nodeMonitorGracePeriodSeconds: 40 });
  t.teardown(async () => {
    await server.close();
    await tmp.cleanup();
  });
  const api = new ApiClient({ socketPath: server.socketPath, userAgent: "kubelet-test" });
  const node = await startNode(t, { api: server.socketPath, kubeletArgs: ["--cluster-cidr", "10.246.0.0/16", "--cluster-dns", "10.96.0.10", "--cluster-domain", "cluster.local", "--host-gw", "--node-status-update-frequency", "1s", "--sync-frequency", "2s", ...extra] });
  // Pods go first when the test ends, while the kubelet and the API server still run.
  t.teardown(async () => {
    const pods = await api.list<Pod>(resourcePath("pods"), { fieldSelector: `spec.nodeName=${node.name}` }).catch(() => undefined);
    await Promise.all((pods?.items ?? []).map((p) => api.delete(resourcePath("pods", p.metadata.namespace, p.metadata.name), { gracePeriodSeconds: 0 }).catch(() => undefined)));
  });
  return { api, node };
}

const ready = (p: Pod | undefined) => !!p && p.status?.phase === "Running" && !!p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True");

async function getPod(api: ApiClient, name: string, ns = "default"): Promise<Pod | undefined> {
  try {
    return await api.get<Pod>(resourcePath("pods", ns, name));
  } catch (e) {
    if (isApiError(e, 404)) return undefined;
    throw e;
  }
}

async function waitReady(c: Cluster, name: string, ns = "default"): Promise<Pod> {
  return eventually(`pod ${ns}/${name} Running and Ready in the API`, async () => {
    const p = await getPod(c.api, name, ns);
    return ready(p) ? p : undefined;
  }, 40_000).catch((e) => {
    throw new Error(`${(e as Error).message}\n${c.node.logs()}`);
  });
}

function podOn(node: KubeletNode, name: string, spec: Partial<Pod["spec"]> & Pick<Pod["spec"], "containers">, ns = "default"): Pod {
  for (const ct of spec.containers) ct.env = [...(ct.env ?? []), { name: "PODNET_TEST_MARK", value: node.mark }];
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns }, spec: { nodeName: node.name, terminationGracePeriodSeconds: 5, ...spec } };
}

test.serial("registration, podCIDR from the API server, heartbeat", async (t) => {
  const c = await startCluster(t);
  const node = await eventually("the Node to be Ready", async () => {
    const n = await c.api.get<Node>(resourcePath("nodes", c.node.name));
    return n.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True") ? n : undefined;
  });
  t.is(node.metadata.labels?.["kubernetes.io/hostname"], c.node.name);
  t.is(node.metadata.labels?.["kubernetes.io/os"], "linux");
  t.deepEqual(node.status?.addresses, [
    { type: "InternalIP", address: c.node.nodeIP },
    { type: "Hostname", address: c.node.name },
  ]);
  t.is(node.status?.capacity?.pods, "110");
  const cidr = node.spec?.podCIDR;
  t.regex(cidr ?? "", /^10\.246\.\d+\.0\/24$/, "a podCIDR allocated from the cluster CIDR");
  const conf = readFileSync(join(c.node.stateDir, "cni", "net.d", "10-podnet.conflist"), "utf8");
  t.true(conf.includes(`"subnet": "${cidr}"`), "the CNI config carries the node's podCIDR");
  t.true(existsSync(join(c.node.stateDir, "cni", "net.d", "99-loopback.conflist")));
  const hb = (n: Node) => n.status?.conditions?.find((x) => x.type === "Ready")?.lastHeartbeatTime;
  const first = hb(node);
  await eventually("the heartbeat to advance", async () => hb(await c.api.get<Node>(resourcePath("nodes", c.node.name))) !== first, 10_000);
  // A pod gets an IP from that podCIDR.
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "p1", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] }));
  const p = await waitReady(c, "p1");
  const prefix = cidr!.split(".").slice(0, 3).join(".") + ".";
  t.true(p.status!.podIP!.startsWith(prefix), `${p.status!.podIP} in ${cidr}`);
});

test.serial("a pod bound to the node runs, its status reaches the API, graceful deletion completes", async (t) => {
  const c = await startCluster(t);
  const marker = join(c.node.base, "got-sigterm");
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "web", {
    containers: [
      { name: "web", image: "host", command: httpServer(8080), readinessProbe: { httpGet: { path: "/", port: 8080 }, periodSeconds: 1 } },
      { name: "side", image: "host", command: ["sh", "-c", `trap 'echo bye > ${marker}; exit 0' TERM; while true; do sleep 0.1; done`] },
    ],
  }));
  const p = await waitReady(c, "web");
  t.truthy(p.status?.podIP);
  t.is(p.status?.hostIP, c.node.nodeIP);
  t.deepEqual(p.status?.hostIPs, [{ ip: c.node.nodeIP }]);
  t.truthy(p.status?.startTime);
  const types = (p.status?.conditions ?? []).map((x) => `${x.type}=${x.status}`).sort();
  t.deepEqual(types, ["ContainersReady=True", "Initialized=True", "PodReadyToStartContainers=True", "PodScheduled=True", "Ready=True"]);
  for (const cs of p.status!.containerStatuses!) {
    t.true(cs.ready);
    t.true(cs.started);
    t.regex(cs.containerID ?? "", /^podnet:\/\/[0-9a-f]+$/);
    t.truthy(cs.state.running?.startedAt);
  }
  // The node reaches the pod IP directly.
  const r = await eventually("the pod answering on its IP", async () => {
    const x = await inNetns(c.node.node, "curl", ["-s", "--max-time", "2", `http://${p.status!.podIP}:8080/`], { reject: false });
    return x.exitCode === 0 ? String(x.stdout) : undefined;
  });
  t.true(r.startsWith("web "));
  await c.node.recordSandboxes();
  await c.api.delete(resourcePath("pods", "default", "web"));
  const terminating = await getPod(c.api, "web");
  t.truthy(terminating?.metadata.deletionTimestamp, "graceful: the pod stays until the kubelet confirms");
  await eventually("the kubelet to confirm the deletion", async () => !(await getPod(c.api, "web")), 30_000);
  t.true(existsSync(marker), "the container got SIGTERM and its grace period");
  t.is(readFileSync(marker, "utf8").trim(), "bye");
  await c.node.assertNoLeaks(t);
});

test.serial("the node lifecycle marking pods NotReady is undone by the kubelet's status", async (t) => {
  const c = await startCluster(t);
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "steady", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] }));
  const p = await waitReady(c, "steady");
  // What the node lifecycle controller writes for an unreachable node.
  const conds = p.status!.conditions!.map((x) => (x.type === "Ready" ? { ...x, status: "False" as const, reason: "NodeNotReady" } : x));
  await c.api.patch(resourcePath("pods", "default", "steady"), { status: { conditions: conds } }, { subresource: "status" });
  await eventually("Ready to be reported True again", async () => ready(await getPod(c.api, "steady")), 20_000);
  t.true(ready(await getPod(c.api, "steady")));
  // Bursts of such writes racing the kubelet's own (a write of ours in flight while the copy
  // changes again) must end with the kubelet's status too, every time.
  for (let round = 0; round < 15; round++) {
    for (let i = 0; i < 6; i++) {
      await c.api.patch(resourcePath("pods", "default", "steady"), { status: { conditions: conds } }, { subresource: "status" });
      await new Promise((r) => setTimeout(r, i));
    }
    await eventually(`Ready to be reported True again after burst ${round}`, async () => ready(await getPod(c.api, "steady")), 20_000);
  }
});

test.serial("static pods appear as mirror pods and keep running when the mirror is deleted", async (t) => {
  const c = await startCluster(t);
  c.node.writeManifest("static-web", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] });
  const name = c.node.podName("static-web");
  const mirror = await waitReady(c, name);
  t.truthy(mirror.metadata.annotations?.["kubernetes.io/config.mirror"], "the mirror annotation");
  t.is(mirror.metadata.annotations?.["kubernetes.io/config.source"], "file");
  t.is(mirror.spec.nodeName, c.node.name);
  t.truthy(mirror.status?.podIP);
  const cid = await c.node.containerId("static-web", "c");
  // Deleting the mirror pod does not stop the static pod; the mirror comes back.
  await c.api.delete(resourcePath("pods", "default", name));
  const again = await eventually("a new mirror pod", async () => {
    const m = await getPod(c.api, name);
    return m && m.metadata.uid !== mirror.metadata.uid && ready(m) ? m : undefined;
  }, 30_000);
  t.is(again.status?.podIP, mirror.status?.podIP);
  t.is(await c.node.containerId("static-web", "c"), cid, "the static pod's container kept running");
  // Removing the manifest removes the pod and its mirror.
  await c.node.recordSandboxes();
  c.node.removeManifest("static-web");
  await eventually("the mirror pod to go", async () => !(await getPod(c.api, name)), 30_000);
  await c.node.assertNoLeaks(t);
});

test.serial("each pod's /etc/resolv.conf follows its dnsPolicy", async (t) => {
  const c = await startCluster(t);
  await c.api.create(resourcePath("namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } });
  const sleeper = [{ name: "c", image: "host", command: ["sleep", "3600"] }];
  await c.api.create(resourcePath("pods", "team-a"), podOn(c.node, "cf", { containers: structuredClone(sleeper) }, "team-a"));
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "cf-extra", { containers: structuredClone(sleeper), dnsConfig: { searches: ["corp.example"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] } }));
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "dflt", { containers: structuredClone(sleeper), dnsPolicy: "Default" }));
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "none", { containers: structuredClone(sleeper), dnsPolicy: "None", dnsConfig: { nameservers: ["192.0.2.53"], searches: ["only.example"], options: [{ name: "timeout", value: "1" }] } }));
  await Promise.all([waitReady(c, "cf", "team-a"), waitReady(c, "cf-extra"), waitReady(c, "dflt"), waitReady(c, "none")]);
  const resolv = async (name: string) => (await c.node.execIn(name, "c", ["cat", "/etc/resolv.conf"])).stdout;
  t.deepEqual(parseResolvConf(await resolv("cf")), { nameservers: ["10.96.0.10"], searches: ["team-a.svc.cluster.local", "svc.cluster.local", "cluster.local", ...parseResolvConf(readFileSync("/etc/resolv.conf", "utf8")).searches], options: ["ndots:5"] });
  const extra = parseResolvConf(await resolv("cf-extra"));
  t.deepEqual(extra.nameservers, ["10.96.0.10"]);
  t.deepEqual(extra.searches.slice(0, 3), ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
  t.is(extra.searches.at(-1), "corp.example");
  t.deepEqual(extra.options.sort(), ["edns0", "ndots:2"]);
  const host = parseResolvConf(readFileSync("/etc/resolv.conf", "utf8"));
  t.deepEqual(parseResolvConf(await resolv("dflt")).nameservers, host.nameservers, "Default: the node's resolvers");
  t.deepEqual(parseResolvConf(await resolv("none")), { nameservers: ["192.0.2.53"], searches: ["only.example"], options: ["timeout:1"] });
});

test.serial("service environment variables and the downward API", async (t) => {
  const c = await startCluster(t);
  const svc = await c.api.create<Service>(resourcePath("services", "default"), {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "my-svc" },
    spec: { selector: { app: "x" }, ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "dns-udp", port: 53, protocol: "UDP" }] },
  });
  const ip = svc.spec.clusterIP!;
  await eventually("the kubernetes Service", async () => (await c.api.get<Service>(resourcePath("services", "default", "kubernetes"))).spec.clusterIP);
  const k8s = await c.api.get<Service>(resourcePath("services", "default", "kubernetes"));
  // The kubelet learns Services through its informer: give it a moment to see the new one.
  await sleep(500);
  const env = [
    { name: "MY_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "MY_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "MY_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    { name: "MY_NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: "MY_HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
    { name: "MY_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
    { name: "COMPOSED", value: "svc=$(MY_SVC_SERVICE_HOST) pod=$(MY_POD)" },
  ];
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "envy", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"], env }] }));
  await c.api.create(resourcePath("pods", "default"), podOn(c.node, "nolinks", { enableServiceLinks: false, containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] }));
  const pod = await waitReady(c, "envy");
  await waitReady(c, "nolinks");
  const read = async (name: string) => {
    const out = (await c.node.execIn(name, "c", ["env"])).stdout;
    return new Map(out.split("\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  };
  const e = await read("envy");
  const want: Record<string, string> = {
    MY_SVC_SERVICE_HOST: ip,
    MY_SVC_SERVICE_PORT: "80",
    MY_SVC_SERVICE_PORT_HTTP: "80",
    MY_SVC_SERVICE_PORT_DNS_UDP: "53",
    MY_SVC_PORT: `tcp://${ip}:80`,
    MY_SVC_PORT_80_TCP: `tcp://${ip}:80`,
    MY_SVC_PORT_80_TCP_PROTO: "tcp",
    MY_SVC_PORT_80_TCP_PORT: "80",
    MY_SVC_PORT_80_TCP_ADDR: ip,
    MY_SVC_PORT_53_UDP: `udp://${ip}:53`,
    MY_SVC_PORT_53_UDP_PROTO: "udp",
    MY_SVC_PORT_53_UDP_PORT: "53",
    MY_SVC_PORT_53_UDP_ADDR: ip,
    KUBERNETES_SERVICE_HOST: k8s.spec.clusterIP!,
    KUBERNETES_SERVICE_PORT: String(k8s.spec.ports![0]!.port),
    MY_POD: "envy",
    MY_NS: "default",
    MY_IP: pod.status!.podIP!,
    MY_NODE: c.node.name,
    MY_HOST_IP: c.node.nodeIP,
    MY_UID: pod.metadata.uid!,
    COMPOSED: `svc=${ip} pod=envy`,
  };
  for (const [k, v] of Object.entries(want)) t.is(e.get(k), v, k);
  const n = await read("nolinks");
  t.false(n.has("MY_SVC_SERVICE_HOST"), "enableServiceLinks: false leaves out the namespace's Services");
  t.is(n.get("KUBERNETES_SERVICE_HOST"), k8s.spec.clusterIP, "but the master service is always there");
});

test.serial("host-gw routes follow the Node objects", async (t) => {
  const c = await startCluster(t);
  await eventually("the node to register", async () => (await c.api.get<Node>(resourcePath("nodes", c.node.name))).spec?.podCIDR);
  // Someone else's route in the node netns: never touched.
  await inNetns(c.node.node, "ip", ["route", "add", "10.99.0.0/24", "via", "198.19.7.1"]);
  const fake: Node = { apiVersion: "v1", kind: "Node", metadata: { name: `${c.node.name}-peer` }, spec: { podCIDR: "10.246.200.0/24" }, status: { addresses: [{ type: "InternalIP", address: "198.19.7.50" }] } };
  await c.api.create(resourcePath("nodes"), fake);
  const routes = async () => String((await inNetns(c.node.node, "ip", ["-4", "route", "show"])).stdout);
  await eventually("the route to the peer's podCIDR", async () => /10\.246\.200\.0\/24 via 198\.19\.7\.50 .*proto 151/.test(await routes()), 20_000).catch(async (e) => {
    t.log(await routes(), c.node.logs());
    throw e;
  });
  // The peer's address changes: the route follows.
  const cur = await c.api.get<Node>(resourcePath("nodes", fake.metadata.name!));
  await c.api.patch(resourcePath("nodes", fake.metadata.name!), { status: { addresses: [{ type: "InternalIP", address: "198.19.7.51" }] } }, { subresource: "status" });
  t.truthy(cur);
  await eventually("the route to follow the new address", async () => /10\.246\.200\.0\/24 via 198\.19\.7\.51 /.test(await routes()), 20_000);
  // No route to this node's own podCIDR through anybody.
  const own = (await c.api.get<Node>(resourcePath("nodes", c.node.name))).spec!.podCIDR!;
  t.false(new RegExp(`${own.replace(/\./g, "\\.")} via`).test(await routes()));
  await c.api.delete(resourcePath("nodes", fake.metadata.name!));
  await eventually("the route to go with the Node", async () => !/10\.246\.200\.0\/24/.test(await routes()), 20_000);
  t.regex(await routes(), /10\.99\.0\.0\/24 via 198\.19\.7\.1/, "the route the kubelet did not make is still there");
});
