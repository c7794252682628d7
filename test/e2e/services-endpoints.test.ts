// A Service follows its endpoints, after Kubernetes' sig-network e2e tests (service.go): it serves
// all its ready pods and follows scale up and down; sessionAffinity ClientIP keeps a client on one
// pod (and lets go after its timeout); a rolling replacement of the pods behind it loses no
// request from a client that retries once on a new connection.
import anyTest, { type TestFn } from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { resourcePath } from "../../apiserver/client.ts";
import type { Container, Deployment, Endpoints, Service } from "../../apiserver/types.ts";
import { execInPod } from "../../cluster/probe.ts";
import { eventually, useCluster } from "../helpers/cluster.ts";
import { deploymentManifest, listPods, netexecContainer, podManifest, readyPods, slicesOf, testNamespace } from "./cluster-helpers.ts";
import { createDeployment, createPod, createService, expectAnswers, externalDial, nodeDial, podDial, readyEndpoints, readyPodNames } from "./services-helpers.ts";

const test = anyTest as TestFn;
const cluster = useCluster(test);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a Service serves all its ready pods and follows scale up and down", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "scale");
  await createDeployment(c, ns, deploymentManifest("scaled", 1, { containers: [netexecContainer()] }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const svc = await createService(c, ns, { metadata: { name: "scaled" }, spec: { selector: { app: "scaled" }, ports: [{ name: "http", port: 80, targetPort: "http" }, { name: "udp", port: 81, targetPort: "udp", protocol: "UDP" }] } });
  await readyPods(c, ns, "role=client", 1);
  const vip = svc.spec.clusterIP!;

  for (const replicas of [1, 3, 1, 2]) {
    await c.api.patch(resourcePath("deployments", ns, "scaled"), { spec: { replicas } });
    await readyPods(c, ns, "app=scaled", replicas);
    await readyEndpoints(c, ns, "scaled", replicas);
    const want = await readyPodNames(c, ns, "app=scaled");
    t.is(want.size, replicas);
    // Let every node's proxy converge (answers from removed pods restart the count), then check
    // strictly: every ready pod answers, over both protocols, and no other pod does.
    await expectAnswers(`${replicas} replicas, http (settling)`, () => podDial(c, ns, "client", { protocol: "http", host: vip, port: 80, tries: 10 }), want, { settle: true });
    const http = await expectAnswers(`${replicas} replicas, http`, () => podDial(c, ns, "client", { protocol: "http", host: vip, port: 80, tries: 10 }), want);
    const udp = await expectAnswers(`${replicas} replicas, udp`, () => podDial(c, ns, "client", { protocol: "udp", host: vip, port: 81, tries: 10 }), want, { settle: true });
    const fromNode = await expectAnswers(`${replicas} replicas, from node-1`, () => nodeDial(c, "node-1", { protocol: "http", host: vip, port: 80, tries: 10 }), want, { settle: true });
    t.deepEqual([...http].sort(), [...want].sort(), `http with ${replicas} replicas`);
    t.deepEqual([...udp].sort(), [...want].sort(), `udp with ${replicas} replicas`);
    t.deepEqual([...fromNode].sort(), [...want].sort(), `from node-1 with ${replicas} replicas`);
    t.log(`${replicas} replicas: answered by ${[...want].sort().join(", ")}`);
  }
});

test("sessionAffinity ClientIP keeps a client on one pod; without it requests spread; the affinity ends after timeoutSeconds", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "affinity");
  await createDeployment(c, ns, deploymentManifest("aff", 3, { containers: [netexecContainer()] }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const ports: Service["spec"]["ports"] = [
    { name: "http", port: 80, targetPort: "http" },
    { name: "udp", port: 81, targetPort: "udp", protocol: "UDP" },
  ];
  const sticky = await createService(c, ns, { metadata: { name: "sticky" }, spec: { type: "NodePort", selector: { app: "aff" }, sessionAffinity: "ClientIP", ports } });
  const short = await createService(c, ns, { metadata: { name: "short" }, spec: { selector: { app: "aff" }, sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 2 } }, ports } });
  const spread = await createService(c, ns, { metadata: { name: "spread" }, spec: { selector: { app: "aff" }, ports } });
  const pods = await readyPods(c, ns, "app=aff", 3);
  const names = new Set(pods.map((p) => p.metadata.name!));
  await readyPods(c, ns, "role=client", 1);
  for (const s of ["sticky", "short", "spread"]) await readyEndpoints(c, ns, s, 3);

  // Without affinity: the same client reaches every pod.
  await expectAnswers("no affinity", () => podDial(c, ns, "client", { protocol: "http", host: spread.spec.clusterIP!, port: 80, tries: 30 }), names);

  const one = (what: string, answers: string[], n = 30) => {
    t.is(answers.length, n, `${what}: ${n} answers`);
    t.is(new Set(answers).size, 1, `${what}: one pod answers every request, got ${[...new Set(answers)].join(", ")}`);
    t.true(names.has(answers[0]!), `${what}: answered by a backend`);
  };
  const httpNP = sticky.spec.ports!.find((p) => p.name === "http")!.nodePort!;
  one("pod -> ClusterIP http", (await podDial(c, ns, "client", { protocol: "http", host: sticky.spec.clusterIP!, port: 80, tries: 30 })).responses);
  one("pod -> ClusterIP udp", (await podDial(c, ns, "client", { protocol: "udp", host: sticky.spec.clusterIP!, port: 81, tries: 30 })).responses);
  one("node-2 -> ClusterIP http", (await nodeDial(c, "node-2", { protocol: "http", host: sticky.spec.clusterIP!, port: 80, tries: 30 })).responses);
  one("external -> NodePort http", (await externalDial(c, { protocol: "http", host: c.layout.nodes[0]!.underlayIP, port: httpNP, tries: 30 })).responses);

  // timeoutSeconds 2: a client that pauses for longer than that is placed again, so over some
  // pauses it meets another pod (each placement is random over 3 pods).
  const first = (await podDial(c, ns, "client", { protocol: "http", host: short.spec.clusterIP!, port: 80, tries: 10 })).responses;
  one("pod -> ClusterIP with a 2 s timeout", first, 10);
  const other = await eventually(
    "another pod after the affinity timeout",
    async () => {
      await sleep(3000);
      const r = await podDial(c, ns, "client", { protocol: "http", host: short.spec.clusterIP!, port: 80, tries: 1 });
      return r.responses[0] && r.responses[0] !== first[0] ? r.responses[0] : undefined;
    },
    60_000,
  );
  t.true(names.has(other));
});

/** A server that keeps serving after SIGTERM until the kubelet kills it at the end of the grace period. */
const LINGERING_SERVER = String.raw`
const http = require("http"), os = require("os");
let terminating = false;
process.on("SIGTERM", () => { terminating = true; console.log("SIGTERM: serving until killed"); });
http.createServer((req, res) => {
  if (req.url === "/healthz") { res.writeHead(terminating ? 503 : 200); return res.end(terminating ? "terminating" : "ok"); }
  res.writeHead(200, { Connection: "close" });
  res.end(os.hostname());
}).listen(8080, () => console.log("serving on 8080"));
`;

/**
 * A client loop: sequential GETs, each on a new connection; a failure is retried once on a new
 * connection. Runs until STOP exists; keeps its request count and the pods heard from so far in PROGRESS;
 * prints a summary.
 */
const RETRYING_CLIENT = String.raw`
const http = require("http"), fs = require("fs");
const [host, port, progress, stop] = process.argv.slice(1);
const heard = new Set();
const get = () => new Promise((resolve, reject) => {
  const req = http.get({ host, port: +port, path: "/hostname", agent: false, timeout: 3000 }, (res) => {
    let body = ""; res.setEncoding("utf8"); res.on("data", (c) => (body += c));
    res.on("end", () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error("HTTP " + res.statusCode))));
  });
  req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
  req.on("error", reject);
});
(async () => {
  const runs = []; let requests = 0, retried = 0, failed = 0; const errors = [];
  while (!fs.existsSync(stop)) {
    requests++;
    let h;
    try { h = await get(); } catch (e) {
      retried++; errors.push(e.code || e.message);
      try { h = await get(); } catch (e2) { failed++; errors.push("after retry: " + (e2.code || e2.message)); }
    }
    if (h !== undefined) {
      if (runs.length && runs[runs.length - 1][0] === h) runs[runs.length - 1][1]++; else runs.push([h, 1]);
      if (!heard.has(h) || requests % 10 === 0) { heard.add(h); fs.writeFileSync(progress + ".tmp", JSON.stringify({ requests, heard: [...heard] })); fs.renameSync(progress + ".tmp", progress); }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(JSON.stringify({ requests, retried, failed, errors: errors.slice(0, 50), runs }));
})();
`;

interface ClientSummary {
  requests: number;
  retried: number;
  failed: number;
  errors: string[];
  runs: [string, number][];
}

test("a rolling replacement of the endpoints loses no request from a client that retries on a new connection", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "rolling");
  const server: Container = {
    name: "server",
    image: "node",
    command: ["node", "-e", LINGERING_SERVER],
    env: [{ name: "VERSION", value: "1" }],
    ports: [{ name: "http", containerPort: 8080 }],
    readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
  };
  const d = deploymentManifest("rolling", 3, { containers: [server], terminationGracePeriodSeconds: 5 }, { strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
  await createDeployment(c, ns, d);
  await createPod(c, ns, podManifest("client", { containers: [{ name: "client", image: "node", command: ["sleep", "infinity"] }] }, { role: "client" }));
  const svc = await createService(c, ns, { metadata: { name: "rolling" }, spec: { selector: { app: "rolling" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
  const oldPods = new Set((await readyPods(c, ns, "app=rolling", 3)).map((p) => p.metadata.name!));
  await readyPods(c, ns, "role=client", 1);
  await readyEndpoints(c, ns, "rolling", 3);

  const dir = mkdtempSync(join(tmpdir(), "podnet-rolling-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const progress = join(dir, "progress");
  const status = () => (existsSync(progress) ? (JSON.parse(readFileSync(progress, "utf8")) as { requests: number; heard: string[] }) : { requests: 0, heard: [] });
  const heard = () => status().heard;
  const stop = join(dir, "stop");
  t.teardown(() => {
    if (existsSync(dir)) writeFileSync(stop, "");
  });
  const run = execInPod(c, ns, "client", ["node", "-e", RETRYING_CLIENT, svc.spec.clusterIP!, "80", progress, stop], undefined, 600);
  await eventually("the client's first answer", async () => (heard().length ? true : undefined), 30_000);
  t.true(oldPods.has(heard()[0]!), "the first answer comes from an old pod");

  // Roll: a new template; new pods must turn Ready before old ones are deleted (maxUnavailable 0).
  await c.api.patch(resourcePath("deployments", ns, "rolling"), { spec: { template: { spec: { containers: [{ ...server, env: [{ name: "VERSION", value: "2" }] }] } } } }, { type: "strategic" });
  const newPods = await eventually(
    "the rollout to finish (3 new Ready pods, old pods gone)",
    async () => {
      const pods = await listPods(c, ns, "app=rolling");
      const dep = await c.api.get<Deployment>(resourcePath("deployments", ns, "rolling"));
      const fresh = pods.filter((p) => !oldPods.has(p.metadata.name!) && !p.metadata.deletionTimestamp && p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"));
      const leftovers = pods.filter((p) => oldPods.has(p.metadata.name!));
      return fresh.length === 3 && leftovers.length === 0 && dep.status?.updatedReplicas === 3 ? new Set(fresh.map((p) => p.metadata.name!)) : undefined;
    },
    150_000,
  );
  await readyEndpoints(c, ns, "rolling", 3);
  // Keep the client going until it has heard from every new pod, and for 30 more requests.
  const doneAt = status().requests;
  await eventually("the client to hear every new pod", async () => ([...newPods].every((h) => heard().includes(h)) && status().requests >= doneAt + 30 ? true : undefined), 60_000);
  writeFileSync(stop, "");
  const r = await run;
  t.is(r.exitCode, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as ClientSummary;
  const answered = new Set(summary.runs.map(([h]) => h));
  t.log(`${summary.requests} requests, ${summary.retried} retried, ${summary.failed} failed after retry; first errors: ${summary.errors.slice(0, 5).join(", ") || "none"}`);
  t.log(`old ${[...oldPods].join(", ")} -> new ${[...newPods].join(", ")}`);
  t.is(summary.failed, 0, `requests lost after one retry: ${summary.errors.join(", ")}`);
  t.true(summary.requests > 50, "the client kept sending through the rollout");
  for (const h of answered) t.true(oldPods.has(h) || newPods.has(h), `answer from an unknown pod ${h}`);
  t.true([...oldPods].some((h) => answered.has(h)), "old pods answered");
  t.true([...newPods].every((h) => answered.has(h)), "every new pod answered");
  // Once the old pods are gone, only new ones answer: the last 30 answers are all from new pods.
  const tail: string[] = [];
  for (let i = summary.runs.length - 1, left = 30; i >= 0 && left > 0; left -= summary.runs[i]![1], i--) tail.push(summary.runs[i]![0]);
  t.true(tail.every((h) => newPods.has(h)), `the last answers come from new pods: ${tail.join(", ")}`);
});

/** A UDP client that keeps one socket (one source port) and asks "hostname" every 100 ms; LATEST holds the last answer. */
const STICKY_UDP_CLIENT = String.raw`
const fs = require("fs");
const [host, port, srcPort, latest, stop] = process.argv.slice(1);
const s = require("dgram").createSocket("udp4");
const seen = [];
s.on("message", (m) => { const h = m.toString().trim(); if (seen[seen.length - 1] !== h) { seen.push(h); fs.writeFileSync(latest, h); } });
s.bind(+srcPort, () => {
  const timer = setInterval(() => {
    if (fs.existsSync(stop)) { clearInterval(timer); s.close(); process.stdout.write(JSON.stringify(seen)); return; }
    s.send("hostname", +port, host);
  }, 100);
});
`;

test("a UDP client keeps its flow when the server pod is replaced: stale conntrack entries are cleared (ClusterIP and NodePort)", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "udpcycle");
  await createDeployment(c, ns, deploymentManifest("udp", 1, { containers: [netexecContainer()] }));
  await createPod(c, ns, podManifest("client", { containers: [{ name: "client", image: "node", command: ["sleep", "infinity"] }] }, { role: "client" }));
  const svc = await createService(c, ns, { metadata: { name: "udp" }, spec: { type: "NodePort", selector: { app: "udp" }, ports: [{ name: "udp", port: 81, targetPort: "udp", protocol: "UDP" }] } });
  const [first] = await readyPods(c, ns, "app=udp", 1);
  await readyPods(c, ns, "role=client", 1);
  await readyEndpoints(c, ns, "udp", 1);
  const nodePort = svc.spec.ports![0]!.nodePort!;

  const dir = mkdtempSync(join(tmpdir(), "podnet-udpcycle-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stop = join(dir, "stop");
  t.teardown(() => {
    if (existsSync(dir)) writeFileSync(stop, "");
  });
  const podLatest = join(dir, "pod"), extLatest = join(dir, "external");
  const fromPod = execInPod(c, ns, "client", ["node", "-e", STICKY_UDP_CLIENT, svc.spec.clusterIP!, "81", "40001", podLatest, stop], undefined, 300);
  const fromExternal = execa("nsenter", [`--net=/run/netns/${c.layout.externalNetns}`, "--", process.execPath, "-e", STICKY_UDP_CLIENT, c.layout.nodes[0]!.underlayIP, String(nodePort), "40002", extLatest, stop], { reject: false, timeout: 300_000 });
  const latest = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  await eventually("both clients to hear the first server", async () => (latest(podLatest) === first!.metadata.name && latest(extLatest) === first!.metadata.name ? true : undefined), 30_000);

  await c.api.delete(resourcePath("pods", ns, first!.metadata.name!));
  const [second] = await eventually("a replacement server", async () => {
    const pods = await readyPods(c, ns, "app=udp", 1);
    return pods[0]!.metadata.name !== first!.metadata.name ? pods : undefined;
  }, 90_000);
  await eventually(
    `both clients to hear ${second!.metadata.name} on the same flow`,
    async () => (latest(podLatest) === second!.metadata.name && latest(extLatest) === second!.metadata.name ? true : undefined),
    60_000,
  );
  writeFileSync(stop, "");
  const [p, e] = await Promise.all([fromPod, fromExternal]);
  t.deepEqual(JSON.parse(p.stdout), [first!.metadata.name, second!.metadata.name], `pod client: ${p.stderr}`);
  t.deepEqual(JSON.parse(String(e.stdout)), [first!.metadata.name, second!.metadata.name], `external client: ${String(e.stderr)}`);
});

test("a Service backed by a hostNetwork pod: its endpoint is the node's IP, reached through the ClusterIP from another node", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "hostnet");
  const [clientNode, serverNode] = c.layout.nodes;
  // Ports of its own: on the node's network, netexec shares the ports of the node itself.
  const server: Container = {
    ...netexecContainer(),
    command: ["podnet", "agnhost", "netexec", "--http-port", "18080", "--udp-port", "18081"],
    ports: [
      { name: "http", containerPort: 18080 },
      { name: "udp", containerPort: 18081, protocol: "UDP" },
    ],
    readinessProbe: { httpGet: { path: "/healthz", port: 18080 }, periodSeconds: 1 },
  };
  await createPod(c, ns, podManifest("on-node", { hostNetwork: true, nodeName: serverNode!.name, containers: [server] }, { app: "on-node" }));
  await createPod(c, ns, podManifest("client", { nodeName: clientNode!.name, containers: [netexecContainer()] }, { role: "client" }));
  const svc = await createService(c, ns, { metadata: { name: "on-node" }, spec: { selector: { app: "on-node" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
  const [pod] = await readyPods(c, ns, "app=on-node", 1);
  t.is(pod!.status?.podIP, serverNode!.underlayIP, "a hostNetwork pod's IP is its node's");
  t.deepEqual(await readyEndpoints(c, ns, "on-node", 1), [serverNode!.underlayIP]);
  await readyPods(c, ns, "role=client", 1);
  // netexec answers /hostname with the node's name: the pod shares the node's network and name.
  await expectAnswers("the hostNetwork pod through its ClusterIP", () => podDial(c, ns, "client", { protocol: "http", host: svc.spec.clusterIP!, port: 80, tries: 3 }), [serverNode!.name]);
});

test("the kubernetes Service reaches the API server from a pod over HTTPS, by its DNS name, with the cluster's certificate", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "apiep");
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  await readyPods(c, ns, "role=client", 1);
  const k = await c.api.get<Service>(resourcePath("services", "default", "kubernetes"));
  // Its endpoint is the address the API server advertises: the fabric router, where cloud-lb serves it.
  t.deepEqual(await readyEndpoints(c, "default", "kubernetes", 1), [c.layout.routerIP]);
  const env = await execInPod(c, ns, "client", ["sh", "-c", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"]);
  t.is(env.stdout.trim(), `${k.spec.clusterIP}:443`);
  // curl checks the certificate against the name it asked for; the answer lists the pod itself.
  const url = `https://kubernetes.default.svc.${c.cfg.domain}/api/v1/namespaces/${ns}/pods`;
  const r = await execInPod(c, ns, "client", ["curl", "-sS", "--max-time", "10", "--cacert", join(c.cfg.stateDir, "pki", "apiserver.crt"), url]);
  t.is(r.exitCode, 0, r.stderr);
  const list = JSON.parse(r.stdout) as { kind: string; items: { metadata: { name: string } }[] };
  t.is(list.kind, "PodList");
  t.deepEqual(list.items.map((p) => p.metadata.name), ["client"]);
});

test("a Service without a selector serves the pod its hand-written Endpoints name, through the mirrored EndpointSlice", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "manual");
  // The backends carry labels no Service selects: only the Endpoints tie them to the Service.
  await createPod(c, ns, podManifest("backend-a", { containers: [netexecContainer()] }, { role: "backend" }));
  await createPod(c, ns, podManifest("backend-b", { containers: [netexecContainer()] }, { role: "backend" }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const svc = await createService(c, ns, { metadata: { name: "manual" }, spec: { ports: [{ name: "http", port: 80, targetPort: 8080 }] } });
  const backends = Object.fromEntries((await readyPods(c, ns, "role=backend", 2)).map((p) => [p.metadata.name!, p.status!.podIP!]));
  await readyPods(c, ns, "role=client", 1);
  const endpoints = (name: string): Endpoints => ({
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name: "manual", namespace: ns },
    subsets: [{ addresses: [{ ip: backends[name]!, targetRef: { kind: "Pod", namespace: ns, name } }], ports: [{ name: "http", port: 8080, protocol: "TCP" }] }],
  });
  await c.api.create(resourcePath("endpoints", ns), endpoints("backend-a"));
  // (eventually waits for anything but undefined)
  const mirrored = async (ip: string) => {
    const slices = await slicesOf(c, ns, "manual");
    const ok = slices.length === 1 && slices[0]!.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] === "endpointslicemirroring-controller.k8s.io" && slices[0]!.endpoints.map((e) => e.addresses[0]).join() === ip;
    return ok || undefined;
  };
  await eventually("the mirrored slice", () => mirrored(backends["backend-a"]!), 30_000);
  await expectAnswers("the hand-made endpoint through the ClusterIP", () => podDial(c, ns, "client", { protocol: "http", host: svc.spec.clusterIP!, port: 80, tries: 5 }), ["backend-a"], { settle: true });

  // Rewriting the Endpoints moves the Service to the other pod.
  const cur = await c.api.get<Endpoints>(resourcePath("endpoints", ns, "manual"));
  await c.api.update(resourcePath("endpoints", ns, "manual"), { ...endpoints("backend-b"), metadata: { ...cur.metadata } });
  await eventually("the mirror follows", () => mirrored(backends["backend-b"]!), 30_000);
  const answers = await expectAnswers("the rewritten endpoint", () => podDial(c, ns, "client", { protocol: "http", host: svc.spec.clusterIP!, port: 80, tries: 5 }), ["backend-b"], { settle: true });
  t.deepEqual([...answers], ["backend-b"]);
});
