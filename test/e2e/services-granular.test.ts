// "Granular Checks: Services", after Kubernetes' sig-network conformance tests
// (test/e2e/network/networking.go): a Service's ClusterIP and NodePort reached over HTTP and UDP
// from a pod, from every node and from one of its own endpoints (hairpin), each time reaching
// every endpoint and only them; two Services with one selector; and the fast reject of a
// Service without ready endpoints. One 3-node cluster for the file; a namespace per test.
import anyTest, { type TestFn } from "ava";
import type { Pod, Service } from "../../apiserver/types.ts";
import { resourcePath } from "../../apiserver/client.ts";
import { execInPod } from "../../cluster/probe.ts";
import { eventually, useCluster, type TestCluster } from "../helpers/cluster.ts";
import { deploymentManifest, netexecContainer, podManifest, readyPods, slicesOf, testNamespace } from "./cluster-helpers.ts";
import { createDeployment, createPod, createService, expectAnswers, externalDial, nodeDial, nodeIP, podDial, proxyRules, readyEndpoints, waitForProxyRules, type Dial } from "./services-helpers.ts";

const test = anyTest as TestFn;
const cluster = useCluster(test);

const HTTP = 80;
const UDP = 90;

/** A Deployment of netexec servers, a netexec client pod, and a NodePort Service over both ports. */
async function backendsAndClient(c: TestCluster, ns: string, replicas: number) {
  await createDeployment(c, ns, deploymentManifest("netexec", replicas, { containers: [netexecContainer()] }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const svc = await createService(c, ns, {
    metadata: { name: "netexec" },
    spec: {
      type: "NodePort",
      selector: { app: "netexec" },
      ports: [
        { name: "http", port: HTTP, targetPort: "http" },
        { name: "udp", port: UDP, targetPort: "udp", protocol: "UDP" },
      ],
    },
  });
  const pods = await readyPods(c, ns, "app=netexec", replicas);
  await readyPods(c, ns, "role=client", 1);
  await readyEndpoints(c, ns, "netexec", replicas);
  const nodePort = (name: string) => svc.spec.ports!.find((p) => p.name === name)!.nodePort!;
  return { svc, pods, names: pods.map((p) => p.metadata.name!), httpNodePort: nodePort("http"), udpNodePort: nodePort("udp") };
}

test("Granular Checks: Services: ClusterIP and NodePort over HTTP and UDP from a pod, from every node and from an endpoint pod", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "granular");
  const { svc, pods, names, httpNodePort, udpNodePort } = await backendsAndClient(c, ns, 3);
  const vip = svc.spec.clusterIP!;
  const nodes = c.layout.nodes.map((n) => n.name);
  t.log(`endpoints ${pods.map((p) => `${p.metadata.name}@${p.spec.nodeName}`).join(", ")}; ClusterIP ${vip}; NodePorts tcp/${httpNodePort} udp/${udpNodePort}`);

  const checks: [string, Dial][] = [];
  // pod-Service: from a client pod (not an endpoint), to the ClusterIP and to every node's NodePort.
  checks.push([`pod -> ClusterIP ${vip}:${HTTP} http`, () => podDial(c, ns, "client", { protocol: "http", host: vip, port: HTTP, tries: 15 })]);
  checks.push([`pod -> ClusterIP ${vip}:${UDP} udp`, () => podDial(c, ns, "client", { protocol: "udp", host: vip, port: UDP, tries: 15 })]);
  for (const n of nodes) {
    checks.push([`pod -> NodePort ${nodeIP(c, n)}:${httpNodePort} http`, () => podDial(c, ns, "client", { protocol: "http", host: nodeIP(c, n), port: httpNodePort, tries: 15 })]);
    checks.push([`pod -> NodePort ${nodeIP(c, n)}:${udpNodePort} udp`, () => podDial(c, ns, "client", { protocol: "udp", host: nodeIP(c, n), port: udpNodePort, tries: 15 })]);
  }
  // node-Service: from each node's own network namespace, to the ClusterIP and its own NodePort.
  for (const n of nodes) {
    checks.push([`${n} -> ClusterIP http`, () => nodeDial(c, n, { protocol: "http", host: vip, port: HTTP, tries: 15 })]);
    checks.push([`${n} -> ClusterIP udp`, () => nodeDial(c, n, { protocol: "udp", host: vip, port: UDP, tries: 15 })]);
    checks.push([`${n} -> own NodePort http`, () => nodeDial(c, n, { protocol: "http", host: nodeIP(c, n), port: httpNodePort, tries: 15 })]);
    checks.push([`${n} -> own NodePort udp`, () => nodeDial(c, n, { protocol: "udp", host: nodeIP(c, n), port: udpNodePort, tries: 15 })]);
  }
  // endpoint-Service: an endpoint reaching its own Service must also reach itself (hairpin).
  const ep = pods[0]!;
  const epName = ep.metadata.name!;
  const epNodeIP = nodeIP(c, ep.spec.nodeName!);
  checks.push([`endpoint ${epName} -> ClusterIP http`, () => podDial(c, ns, epName, { protocol: "http", host: vip, port: HTTP, tries: 15 })]);
  checks.push([`endpoint ${epName} -> ClusterIP udp`, () => podDial(c, ns, epName, { protocol: "udp", host: vip, port: UDP, tries: 15 })]);
  checks.push([`endpoint ${epName} -> NodePort of its node http`, () => podDial(c, ns, epName, { protocol: "http", host: epNodeIP, port: httpNodePort, tries: 15 })]);
  checks.push([`endpoint ${epName} -> NodePort of its node udp`, () => podDial(c, ns, epName, { protocol: "udp", host: epNodeIP, port: udpNodePort, tries: 15 })]);

  for (const [what, dial] of checks) {
    const seen = await expectAnswers(what, dial, names);
    t.deepEqual([...seen].sort(), [...names].sort(), what);
  }

  // The external client, through every node's NodePort (eTP Cluster: every node serves every endpoint).
  for (const n of nodes) {
    const what = `external -> NodePort ${nodeIP(c, n)}:${httpNodePort} http`;
    await expectAnswers(what, () => externalDial(c, { protocol: "http", host: nodeIP(c, n), port: httpNodePort, tries: 15 }), names);
  }

  // `podnet proxy rules NODE` shows the Service's destinations with the endpoints behind them.
  const epIPs = pods.map((p) => p.status!.podIP!).sort();
  for (const n of nodes) {
    const lines = (await proxyRules(c, n)).split("\n");
    const line = lines.find((l) => l.startsWith(`${vip} tcp/${HTTP} -> `));
    t.truthy(line, `${n}: no rule line for ${vip} tcp/${HTTP}`);
    t.deepEqual(line!.replace(/^.* -> /, "").split(", ").map((x) => x.replace(/:\d+$/, "")).sort(), epIPs, `${n}: ${line}`);
    t.true(lines.some((l) => l.startsWith(`${vip} udp/${UDP} -> `)), `${n}: no rule line for ${vip} udp/${UDP}`);
    t.true(lines.some((l) => l.startsWith(`nodePort tcp/${httpNodePort} -> `)), `${n}: no rule line for nodePort tcp/${httpNodePort}`);
    t.true(lines.some((l) => l.startsWith(`nodePort udp/${udpNodePort} -> `)), `${n}: no rule line for nodePort udp/${udpNodePort}`);
  }
});

test("Granular Checks: Services: deleting one of two Services with the same selector leaves the other working", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "twosvc");
  const { names } = await backendsAndClient(c, ns, 2);
  const spec = (): Service["spec"] => ({
    selector: { app: "netexec" },
    ports: [
      { name: "http", port: HTTP, targetPort: "http" },
      { name: "udp", port: UDP, targetPort: "udp", protocol: "UDP" },
    ],
  });
  const a = await createService(c, ns, { metadata: { name: "svc-a" }, spec: spec() });
  const b = await createService(c, ns, { metadata: { name: "svc-b" }, spec: spec() });
  await readyEndpoints(c, ns, "svc-a", 2);
  await readyEndpoints(c, ns, "svc-b", 2);
  for (const s of [a, b]) {
    await expectAnswers(`${s.metadata.name} http`, () => podDial(c, ns, "client", { protocol: "http", host: s.spec.clusterIP!, port: HTTP, tries: 10 }), names);
    await expectAnswers(`${s.metadata.name} udp`, () => podDial(c, ns, "client", { protocol: "udp", host: s.spec.clusterIP!, port: UDP, tries: 10 }), names);
  }

  await c.api.delete(resourcePath("services", ns, "svc-a"));
  await waitForProxyRules(c, `${a.spec.clusterIP} tcp/${HTTP}`, false);
  // svc-a's address now leads nowhere; svc-b keeps every endpoint, from a pod and from every node.
  const gone = await podDial(c, ns, "client", { protocol: "http", host: a.spec.clusterIP!, port: HTTP, tries: 1 });
  t.deepEqual(gone.responses, [], "the deleted Service still answers");
  await expectAnswers("svc-b http after svc-a is deleted", () => podDial(c, ns, "client", { protocol: "http", host: b.spec.clusterIP!, port: HTTP, tries: 10 }), names);
  await expectAnswers("svc-b udp after svc-a is deleted", () => podDial(c, ns, "client", { protocol: "udp", host: b.spec.clusterIP!, port: UDP, tries: 10 }), names);
  for (const n of c.layout.nodes) {
    const seen = await expectAnswers(`${n.name} -> svc-b http`, () => nodeDial(c, n.name, { protocol: "http", host: b.spec.clusterIP!, port: HTTP, tries: 10 }), names);
    t.deepEqual([...seen].sort(), [...names].sort());
  }
});

test("a Service without ready endpoints rejects at once: connection refused, not a timeout", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "reject");
  // A backend that runs but never turns Ready: its endpoint exists, not ready (the probe's port is closed).
  const unready = netexecContainer();
  unready.readinessProbe = { httpGet: { path: "/healthz", port: 9999 }, periodSeconds: 1 };
  await createDeployment(c, ns, deploymentManifest("unready", 1, { containers: [unready] }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const svc = await createService(c, ns, {
    metadata: { name: "unready" },
    spec: {
      type: "NodePort",
      selector: { app: "unready" },
      ports: [
        { name: "http", port: HTTP, targetPort: "http" },
        { name: "udp", port: UDP, targetPort: "udp", protocol: "UDP" },
      ],
    },
  });
  const empty = await createService(c, ns, { metadata: { name: "empty" }, spec: { selector: { app: "nothing-has-this" }, ports: [{ name: "http", port: HTTP, targetPort: 8080 }] } });
  await readyPods(c, ns, "role=client", 1);
  const httpNodePort = svc.spec.ports!.find((p) => p.name === "http")!.nodePort!;
  const udpNodePort = svc.spec.ports!.find((p) => p.name === "udp")!.nodePort!;
  const vip = svc.spec.clusterIP!;
  await waitForProxyRules(c, `${vip} tcp/${HTTP} -> reject`);
  await waitForProxyRules(c, `${empty.spec.clusterIP} tcp/${HTTP} -> reject`);
  // The backend runs and is listed as an endpoint of the Service, just not a ready one.
  const notReady = await eventually("the unready backend's endpoint", async () => {
    const eps = (await slicesOf(c, ns, "unready")).flatMap((s) => s.endpoints ?? []);
    return eps.length === 1 ? eps[0] : undefined;
  });
  t.false(notReady.conditions.ready, "the endpoint is not ready");
  const [running] = (await c.api.list<Pod>(resourcePath("pods", ns), { labelSelector: "app=unready" })).items;
  t.is(running?.status?.phase, "Running", "the unready backend runs");

  // From a pod: curl fails with exit code 7 (connection refused), for both Services.
  for (const s of [svc, empty]) {
    const r = await execInPod(c, ns, "client", ["curl", "-sS", "--connect-timeout", "5", `http://${s.spec.clusterIP}:${HTTP}/hostname`]);
    t.is(r.exitCode, 7, `curl to ${s.metadata.name} ${s.spec.clusterIP}:${HTTP} from a pod: ${r.stderr.trim()}`);
  }
  // From every node: TCP to the ClusterIP and the node's NodePort is reset, UDP gets port unreachable.
  for (const n of c.layout.nodes) {
    const tcp = await nodeDial(c, n.name, { protocol: "tcp", host: vip, port: HTTP, tries: 2 });
    t.deepEqual(tcp.errors, ["ECONNREFUSED", "ECONNREFUSED"], `${n.name} -> ${vip}:${HTTP}`);
    const np = await nodeDial(c, n.name, { protocol: "tcp", host: n.underlayIP, port: httpNodePort, tries: 2 });
    t.deepEqual(np.errors, ["ECONNREFUSED", "ECONNREFUSED"], `${n.name} -> NodePort ${n.underlayIP}:${httpNodePort}`);
    const udp = await nodeDial(c, n.name, { protocol: "udp", host: vip, port: UDP, tries: 2 });
    t.deepEqual(udp.errors, ["ECONNREFUSED", "ECONNREFUSED"], `${n.name} -> ${vip}:${UDP}/udp`);
  }
  // From outside the cluster, through every node's NodePort. Each node has just forwarded the
  // client's traffic to a working Service whose pod may live on another node (in and out of the
  // same eth0): that must not cost the client the port-unreachable of the Service without endpoints.
  const working = await createService(c, ns, { metadata: { name: "working" }, spec: { type: "NodePort", selector: { role: "client" }, ports: [{ name: "http", port: HTTP, targetPort: "http" }] } });
  await readyEndpoints(c, ns, "working", 1);
  const workingNodePort = working.spec.ports![0]!.nodePort!;
  for (const n of c.layout.nodes) {
    const ok = await eventually(`the working NodePort on ${n.name}`, async () => (await externalDial(c, { protocol: "http", host: n.underlayIP, port: workingNodePort, tries: 1 })).responses[0], 30_000);
    t.is(ok, "client");
    const udp = await externalDial(c, { protocol: "udp", host: n.underlayIP, port: udpNodePort, tries: 2 });
    t.deepEqual(udp.errors, ["ECONNREFUSED", "ECONNREFUSED"], `external -> NodePort ${n.underlayIP}:${udpNodePort}/udp right after ${n.name} forwarded other traffic`);
  }
  for (const n of c.layout.nodes) {
    const tcp = await externalDial(c, { protocol: "tcp", host: n.underlayIP, port: httpNodePort, tries: 2 });
    t.deepEqual(tcp.errors, ["ECONNREFUSED", "ECONNREFUSED"], `external -> NodePort ${n.underlayIP}:${httpNodePort}`);
    const udp = await externalDial(c, { protocol: "udp", host: n.underlayIP, port: udpNodePort, tries: 2 });
    t.deepEqual(udp.errors, ["ECONNREFUSED", "ECONNREFUSED"], `external -> NodePort ${n.underlayIP}:${udpNodePort}/udp`);
  }
});
