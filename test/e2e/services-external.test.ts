// Traffic from outside the cluster, after Kubernetes' sig-network e2e tests (service.go,
// loadbalancer.go): externalTrafficPolicy Local keeps the client's source address and only the
// nodes with a local endpoint answer (the others drop; the healthCheckNodePort says which, 200 or
// 503); the LoadBalancer address the emulated cloud hands out is reachable through
// `podnet external`, and `podnet proxy rules` shows it. The external client is 198.18.0.2.
import anyTest, { type TestFn } from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Node, Service } from "../../apiserver/types.ts";
import { execExternal } from "../../cluster/probe.ts";
import { eventually, useCluster, type TestCluster } from "../helpers/cluster.ts";
import { deploymentManifest, hostOf, inCIDR, inNetns, netexecContainer, podManifest, readyPods, testNamespace } from "./cluster-helpers.ts";
import { createDeployment, createPod, createService, expectAnswers, externalDial, nodeDial, podDial, proxyRules, readyEndpoints } from "./services-helpers.ts";

const test = anyTest as TestFn;
const cluster = useCluster(test);

async function loadBalancerIP(c: TestCluster, ns: string, name: string): Promise<string> {
  return eventually(`a LoadBalancer address for ${ns}/${name}`, async () => (await c.api.get<Service>(resourcePath("services", ns, name))).status?.loadBalancer?.ingress?.[0]?.ip, 30_000);
}

/** GET from the external client with curl: the HTTP status and body (status 0 when curl fails). */
async function externalGet(c: TestCluster, url: string): Promise<{ status: number; body: string; curlExit: number }> {
  const r = await execExternal(c, ["curl", "-sS", "--max-time", "3", "-w", "\n%{http_code}", url]);
  const lines = r.stdout.split("\n");
  const status = Number(lines.pop() ?? 0);
  return { status: r.exitCode === 0 ? status : 0, body: lines.join("\n"), curlExit: r.exitCode };
}

test("externalTrafficPolicy Local: the client address is kept, only nodes with a local endpoint answer, the health check says which", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "etplocal");
  const [n1, n2, n3] = c.layout.nodes;
  // One backend, on node-2; a client pod on node-1 (no local endpoint there).
  await createDeployment(c, ns, deploymentManifest("local", 1, { containers: [netexecContainer()], nodeSelector: { "kubernetes.io/hostname": n2!.name } }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()], nodeName: n1!.name }, { role: "client" }));
  const created = await createService(c, ns, {
    metadata: { name: "local" },
    spec: {
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      selector: { app: "local" },
      ports: [
        { name: "http", port: 80, targetPort: "http" },
        { name: "udp", port: 81, targetPort: "udp", protocol: "UDP" },
      ],
    },
  });
  const [backend] = await readyPods(c, ns, "app=local", 1);
  await readyPods(c, ns, "role=client", 1);
  await readyEndpoints(c, ns, "local", 1);
  const lbIP = await loadBalancerIP(c, ns, "local");
  const httpNP = created.spec.ports!.find((p) => p.name === "http")!.nodePort!;
  const udpNP = created.spec.ports!.find((p) => p.name === "udp")!.nodePort!;
  const hcPort = created.spec.healthCheckNodePort!;
  t.truthy(hcPort, "a healthCheckNodePort is allocated");
  t.is(backend!.spec.nodeName, n2!.name);
  const ext = c.layout.externalIP;

  // node-2 serves, and the backend sees the external client's own address (HTTP and UDP).
  const http2 = await eventually("node-2's NodePort to answer", async () => (await externalDial(c, { protocol: "http", host: n2!.underlayIP, port: httpNP, request: "/clientip", tries: 3 })).responses[0], 30_000);
  t.is(hostOf(http2), ext, "source address seen through node-2's NodePort (http)");
  const udp2 = await externalDial(c, { protocol: "udp", host: n2!.underlayIP, port: udpNP, request: "clientip", tries: 3 });
  t.deepEqual(udp2.responses.map(hostOf), [ext, ext, ext], `source address seen through node-2's NodePort (udp): ${udp2.errors.join(", ")}`);

  // node-1 and node-3 have no local endpoint: they drop (the connection times out, it is not refused).
  for (const n of [n1!, n3!]) {
    const http = await externalDial(c, { protocol: "http", host: n.underlayIP, port: httpNP, request: "/clientip", tries: 2 });
    t.deepEqual(http.responses, [], `${n.name} must not answer`);
    t.deepEqual(http.errors, ["ETIMEDOUT", "ETIMEDOUT"], `${n.name} drops TCP`);
    const udp = await externalDial(c, { protocol: "udp", host: n.underlayIP, port: udpNP, request: "clientip", tries: 2 });
    t.deepEqual(udp.errors, ["ETIMEDOUT", "ETIMEDOUT"], `${n.name} drops UDP`);
  }

  // The health check node port: 200 with one local endpoint on node-2, 503 with none elsewhere.
  for (const n of c.layout.nodes) {
    const hc = await externalGet(c, `http://${n.underlayIP}:${hcPort}/`);
    const body = JSON.parse(hc.body) as { service: { namespace: string; name: string }; localEndpoints: number };
    const local = n.name === n2!.name ? 1 : 0;
    t.is(hc.status, local ? 200 : 503, `health check on ${n.name}`);
    t.deepEqual(body.service, { namespace: ns, name: "local" });
    t.is(body.localEndpoints, local, `localEndpoints on ${n.name}`);
  }

  // The LoadBalancer address: like a cloud load balancer, the fabric sends it only to the nodes
  // whose health check answers 200 (podnet cloud-lb), so once that route is in place every
  // attempt is answered, with the client's own address.
  const lbHops = async () => [...(await inNetns(c.layout.fabricNetns, ["ip", "route", "show", `${lbIP}/32`])).matchAll(/via (\S+)/g)].map((m) => m[1]);
  await eventually("the load balancer to route only to node-2", async () => ((await lbHops()).join() === n2!.underlayIP ? true : undefined), 30_000);
  t.deepEqual(await lbHops(), [n2!.underlayIP], "next hops of the LoadBalancer address");
  const lb = await externalDial(c, { protocol: "http", host: lbIP, port: 80, request: "/clientip", tries: 8 });
  t.deepEqual(lb.errors, [], "every attempt through the LoadBalancer address is answered");
  t.deepEqual([...new Set(lb.responses.map(hostOf))], [ext], "source address seen through the LoadBalancer address");

  // Pods and nodes are not external clients: from node-1 (no local endpoint) they still get the backend.
  const fromPod = await podDial(c, ns, "client", { protocol: "http", host: n1!.underlayIP, port: httpNP, request: "/hostname", tries: 3 });
  t.deepEqual(fromPod.responses, [backend!.metadata.name, backend!.metadata.name, backend!.metadata.name], `pod on node-1 -> node-1's NodePort: ${fromPod.errors.join(", ")}`);
  const fromNode = await nodeDial(c, n1!.name, { protocol: "http", host: lbIP, port: 80, request: "/hostname", tries: 3 });
  t.deepEqual(fromNode.responses, [backend!.metadata.name, backend!.metadata.name, backend!.metadata.name], `node-1 -> LoadBalancer address: ${fromNode.errors.join(", ")}`);

});

test("changing externalTrafficPolicy from Local to Cluster: every node answers, masquerading the client, and the health check closes", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "etpswitch");
  const [, n2] = c.layout.nodes;
  await createDeployment(c, ns, deploymentManifest("switch", 1, { containers: [netexecContainer()], nodeSelector: { "kubernetes.io/hostname": n2!.name } }));
  const created = await createService(c, ns, { metadata: { name: "switch" }, spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", selector: { app: "switch" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
  await readyPods(c, ns, "app=switch", 1);
  await readyEndpoints(c, ns, "switch", 1);
  const httpNP = created.spec.ports![0]!.nodePort!;
  const hcPort = created.spec.healthCheckNodePort!;
  t.truthy(hcPort, "a LoadBalancer Service with eTP Local gets a healthCheckNodePort");
  const ext = c.layout.externalIP;
  await eventually("the health check on node-2 to say 200", async () => ((await externalGet(c, `http://${n2!.underlayIP}:${hcPort}/`)).status === 200 ? true : undefined), 30_000);
  const lbIP = await loadBalancerIP(c, ns, "switch");
  const lbRoute = () => inNetns(c.layout.fabricNetns, ["ip", "route", "show", `${lbIP}/32`]);
  await eventually("the load balancer's own route to node-2", async () => ((await lbRoute()).includes(`via ${n2!.underlayIP}`) ? true : undefined), 30_000);

  // As a user would: only the policy changes; the API server drops the health check port itself.
  const updated = await c.api.patch<Service>(resourcePath("services", ns, "switch"), { spec: { externalTrafficPolicy: "Cluster" } });
  t.is(updated.spec.healthCheckNodePort, undefined, "healthCheckNodePort is released with eTP Cluster");
  for (const n of c.layout.nodes) {
    const seen = await eventually(
      `${n.name}'s NodePort to answer with eTP Cluster`,
      async () => (await externalDial(c, { protocol: "http", host: n.underlayIP, port: httpNP, request: "/clientip", tries: 1 })).responses[0],
      30_000,
    );
    t.not(hostOf(seen), ext, `${n.name} masquerades the external client with eTP Cluster`);
  }
  await eventually("the health check server to close", async () => ((await externalGet(c, `http://${n2!.underlayIP}:${hcPort}/`)).curlExit === 7 ? true : undefined), 30_000);
  // No health check any more: the address goes back to the pool's route over every node.
  await eventually("the load balancer's own route to go", async () => ((await lbRoute()).trim() === "" ? true : undefined), 30_000);
});

test("a LoadBalancer address is reachable from `podnet external` and listed by `podnet proxy rules`", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "lb");
  await createDeployment(c, ns, deploymentManifest("lb", 3, { containers: [netexecContainer()] }));
  await createService(c, ns, { metadata: { name: "lb" }, spec: { type: "LoadBalancer", selector: { app: "lb" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
  const pods = await readyPods(c, ns, "app=lb", 3);
  await readyEndpoints(c, ns, "lb", 3);
  const lbIP = await loadBalancerIP(c, ns, "lb");
  t.true(lbIP.startsWith(c.cfg.lbPool.split(".").slice(0, 3).join(".") + "."), `${lbIP} comes from the pool ${c.cfg.lbPool}`);
  const names = pods.map((p) => p.metadata.name!);

  // Through the CLI, like a user: every backend answers over repeated requests.
  const seen = await expectAnswers(
    `podnet external -- curl http://${lbIP}/hostname`,
    async () => {
      const r = await c.podnet("external", "--", "curl", "-sS", "--max-time", "3", `http://${lbIP}/hostname`);
      return r.exitCode === 0 ? { responses: [r.stdout.trim()], errors: [] } : { responses: [], errors: [r.stderr.trim()] };
    },
    names,
  );
  t.deepEqual([...seen].sort(), [...names].sort());

  // The fabric spreads the address's flows over the nodes (ECMP by ports): with eTP Cluster the
  // ingress node masquerades, so the backend sees that node's address (or its cni0 gateway when
  // the backend is local). Over many new connections more than one node must have carried them.
  const nodeList = await c.api.list<Node>(resourcePath("nodes"));
  const ingressNode = (ip: string) => {
    const byUnderlay = c.layout.nodes.find((n) => n.underlayIP === ip)?.name;
    return byUnderlay ?? nodeList.items.find((n) => n.spec?.podCIDR && inCIDR(ip, n.spec.podCIDR))?.metadata.name;
  };
  const viaLB = await externalDial(c, { protocol: "http", host: lbIP, port: 80, request: "/clientip", tries: 20 });
  t.deepEqual(viaLB.errors, [], "every request through the LoadBalancer address is answered");
  const ingress = new Set(viaLB.responses.map((r) => ingressNode(hostOf(r)) ?? `unknown ${r}`));
  t.false([...ingress].some((n) => n.startsWith("unknown")), `sources seen: ${viaLB.responses.join(", ")}`);
  t.true(ingress.size > 1, `20 connections to ${lbIP} all entered through ${[...ingress].join(", ")}`);

  // Inside the cluster the address works too: from a node, and from an endpoint pod (hairpin included).
  const fromNode = await expectAnswers(`node-3 -> ${lbIP}`, () => nodeDial(c, "node-3", { protocol: "http", host: lbIP, port: 80, tries: 15 }), names);
  t.deepEqual([...fromNode].sort(), [...names].sort());
  const fromEndpoint = await expectAnswers(`${names[0]} -> ${lbIP}`, () => podDial(c, ns, names[0]!, { protocol: "http", host: lbIP, port: 80, tries: 15 }), names);
  t.deepEqual([...fromEndpoint].sort(), [...names].sort());

  // Every node's proxy lists the LoadBalancer address with the three endpoints behind it.
  const ips = pods.map((p) => p.status!.podIP!).sort();
  for (const n of c.layout.nodes) {
    const line = (await proxyRules(c, n.name)).split("\n").find((l) => l.startsWith(`${lbIP} tcp/80 -> `));
    t.truthy(line, `${n.name}: no rule line for ${lbIP} tcp/80`);
    t.deepEqual(line!.replace(/^.* -> /, "").replace(/ \(.*\)$/, "").split(", ").map((x) => x.replace(/:\d+$/, "")).sort(), ips, `${n.name}: ${line}`);
  }

  // Deleting the Service takes the address away from every node.
  await c.api.delete(resourcePath("services", ns, "lb"));
  await eventually(
    "the LoadBalancer address to leave every node's rules",
    async () => {
      for (const n of c.layout.nodes) if ((await proxyRules(c, n.name)).includes(`${lbIP} tcp/80`)) return undefined;
      return true;
    },
    30_000,
  );
  const after = await c.podnet("external", "--", "curl", "-sS", "--max-time", "2", `http://${lbIP}/hostname`);
  t.not(after.exitCode, 0, "the deleted LoadBalancer address still answers");
});
