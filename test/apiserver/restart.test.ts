// Durability and allocation: a restart of the API server loses nothing and never hands out a
// ClusterIP, NodePort, podCIDR or load-balancer address twice.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Deployment, Node, Pod, Service } from "../../apiserver/types.ts";
import { apiError, createReadyNode, eventually, startTestServer } from "./helpers.ts";

const ports = [{ port: 80 }];

test("a restart loses nothing: objects, uids, versions and the revision counter survive", async (t) => {
  const ts = await startTestServer(t);
  const { client } = ts;
  await createReadyNode(client, "n1");
  await client.create(resourcePath("namespaces"), { metadata: { name: "shop" } });
  const svc = await client.create<Service>(resourcePath("services", "shop"), { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports } });
  const dep = await client.create<Deployment>(resourcePath("deployments", "shop"), {
    metadata: { name: "web" },
    spec: { replicas: 3, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "podnet/agnhost" }] } } },
  });
  await eventually("3 pods bound", async () => {
    const pods = (await client.list<Pod>(resourcePath("pods", "shop"))).items;
    return pods.length === 3 && pods.every((p) => p.spec.nodeName === "n1");
  });
  const snapshot = async () => {
    const out: Record<string, string> = {};
    for (const kind of ["namespaces", "nodes", "pods", "services", "endpointslices", "deployments", "replicasets"] as const) {
      for (const o of (await client.list<any>(resourcePath(kind))).items) out[`${kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`] = `${o.metadata.uid} ${o.metadata.resourceVersion}`;
    }
    return out;
  };
  // Let the controllers settle, then compare everything across the restart.
  await eventually("deployment status", async () => (await client.get<Deployment>(resourcePath("deployments", "shop", "web"))).status?.replicas === 3);
  await new Promise((r) => setTimeout(r, 300));
  const before = await snapshot();
  const revBefore = Number((await client.list(resourcePath("pods"))).metadata.resourceVersion);
  await ts.restart({ controllers: false });
  t.deepEqual(await snapshot(), before);
  const svcAfter = await client.get<Service>(resourcePath("services", "shop", "web"));
  t.is(svcAfter.spec.clusterIP, svc.spec.clusterIP);
  t.is((await client.get<Deployment>(resourcePath("deployments", "shop", "web"))).metadata.uid, dep.metadata.uid);
  const next = await client.create<Service>(resourcePath("services", "shop"), { metadata: { name: "later" }, spec: { ports } });
  t.true(Number(next.metadata.resourceVersion) > revBefore, "the revision counter continues");
});

test("no double allocation across restarts: ClusterIPs, NodePorts, podCIDRs and load-balancer IPs", async (t) => {
  const ts = await startTestServer(t, { serviceCIDR: "10.100.0.0/28", nodePortRange: "30000-30005", lbPool: "198.18.1.0/30", controllers: false });
  const { client } = ts;
  const svcPath = resourcePath("services", "default");
  // /28: .1-.14 usable; .1 is the kubernetes Service and .10 is kept for DNS: 12 to hand out.
  const ips = new Set<string>(["10.100.0.1"]);
  for (let i = 0; i < 6; i++) ips.add((await client.create<Service>(svcPath, { metadata: { name: `a${i}` }, spec: { ports } })).spec.clusterIP!);
  const np = await client.create<Service>(svcPath, { metadata: { name: "np" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 30003 }] } });
  ips.add(np.spec.clusterIP!);
  const lb = await client.create<Service>(svcPath, { metadata: { name: "lb" }, spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", ports } });
  ips.add(lb.spec.clusterIP!);
  t.truthy(lb.spec.healthCheckNodePort);
  t.is(lb.status?.loadBalancer?.ingress?.[0]?.ip, "198.18.1.1");
  const nodes: Node[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await client.create<Node>(resourcePath("nodes"), { metadata: { name: `n${i}` } }));
  t.deepEqual(nodes.map((n) => n.spec?.podCIDR), ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
  t.deepEqual(nodes[1].spec?.podCIDRs, ["10.244.1.0/24"]);
  await client.delete(resourcePath("nodes", undefined, "n1"));

  await ts.restart();

  // Taken addresses and ports are refused, naming the field.
  const ipTaken = await apiError(client.create(svcPath, { metadata: { name: "dup" }, spec: { clusterIP: np.spec.clusterIP, ports } }), 422);
  t.deepEqual(ipTaken.body.details?.causes?.map((c) => c.field), ["spec.clusterIP"]);
  t.regex(ipTaken.message, /provided IP is already allocated/);
  const portTaken = await apiError(client.create(svcPath, { metadata: { name: "dup" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 30003 }] } }), 422);
  t.is(portTaken.message, 'Service "dup" is invalid: spec.ports[0].nodePort: Invalid value: 30003: provided port is already allocated');
  const hcTaken = await apiError(client.create(svcPath, { metadata: { name: "dup" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: lb.spec.healthCheckNodePort }] } }), 422);
  t.deepEqual(hcTaken.body.details?.causes?.map((c) => c.field), ["spec.ports[0].nodePort"]);
  const lbTaken = await apiError(client.create(svcPath, { metadata: { name: "dup" }, spec: { type: "LoadBalancer", loadBalancerIP: "198.18.1.1", allocateLoadBalancerNodePorts: false, ports } }), 422);
  t.deepEqual(lbTaken.body.details?.causes?.map((c) => c.field), ["spec.loadBalancerIP"]);
  const outOfRange = await apiError(client.create(svcPath, { metadata: { name: "dup" }, spec: { clusterIP: "10.96.5.5", ports } }), 422);
  t.is(outOfRange.message, 'Service "dup" is invalid: spec.clusterIP: Invalid value: "10.96.5.5": failed to allocate IP 10.96.5.5: the provided IP (10.96.5.5) is not in the valid range. The range of valid IPs is 10.100.0.0/28');

  // The remaining ClusterIPs are handed out once each, never .10, then the range is full.
  for (let i = 0; ; i++) {
    try {
      const s = await client.create<Service>(svcPath, { metadata: { name: `b${i}` }, spec: { ports } });
      t.false(ips.has(s.spec.clusterIP!), `${s.spec.clusterIP} handed out twice`);
      t.not(s.spec.clusterIP, "10.100.0.10");
      ips.add(s.spec.clusterIP!);
    } catch (e) {
      t.regex((e as Error).message, /range is full/);
      break;
    }
    if (i > 20) t.fail("the range never filled");
  }
  t.is(ips.size, 13);
  const dns = await client.create<Service>(svcPath, { metadata: { name: "kube-dns" }, spec: { clusterIP: "10.100.0.10", ports: [{ name: "dns", port: 53, protocol: "UDP" }, { name: "dns-tcp", port: 53, protocol: "TCP" }] } });
  t.is(dns.spec.clusterIP, "10.100.0.10");

  // NodePorts: 30000-30005 holds 6; np and lb (node port + health check) hold 3.
  const more: number[] = [];
  for (let i = 0; i < 3; i++) {
    await client.delete(`${svcPath}/a${i}`);
    const s = await client.create<Service>(svcPath, { metadata: { name: `np${i}` }, spec: { type: "NodePort", ports } });
    more.push(s.spec.ports![0].nodePort!);
  }
  const held = [30003, lb.spec.ports![0].nodePort!, lb.spec.healthCheckNodePort!];
  t.is(new Set([...more, ...held]).size, 6, "six different NodePorts");
  await client.delete(`${svcPath}/a3`);
  const full = await apiError(client.create(svcPath, { metadata: { name: "np9" }, spec: { type: "NodePort", ports } }), 422);
  t.regex(full.message, /failed to allocate a nodePort: range is full/);

  // podCIDRs: the freed one is reused, the held ones never.
  const n3 = await client.create<Node>(resourcePath("nodes"), { metadata: { name: "n3" } });
  t.is(n3.spec?.podCIDR, "10.244.1.0/24");
  const n4 = await client.create<Node>(resourcePath("nodes"), { metadata: { name: "n4" } });
  t.is(n4.spec?.podCIDR, "10.244.3.0/24");
  const cidrTaken = await apiError(client.create(resourcePath("nodes"), { metadata: { name: "n5" }, spec: { podCIDR: "10.244.2.0/24" } }), 422);
  t.deepEqual(cidrTaken.body.details?.causes?.map((c) => c.field), ["spec.podCIDR"]);

  // Load balancers: the pool (/30: two addresses) is shared; a freed address goes to a waiting Service.
  const lb2 = await client.create<Service>(svcPath, { metadata: { name: "lb2" }, spec: { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports } });
  t.is(lb2.status?.loadBalancer?.ingress?.[0]?.ip, "198.18.1.2");
  await client.delete(`${svcPath}/a4`);
  const lb3 = await client.create<Service>(svcPath, { metadata: { name: "lb3" }, spec: { type: "LoadBalancer", allocateLoadBalancerNodePorts: false, ports } });
  t.deepEqual(lb3.status?.loadBalancer, {}, "pending while the pool is empty");
  await client.delete(`${svcPath}/lb`);
  await eventually("lb3 gets the freed address", async () => (await client.get<Service>(`${svcPath}/lb3`)).status?.loadBalancer?.ingress?.[0]?.ip === "198.18.1.1");
});

test("changing a Service's type releases and allocates what the type needs", async (t) => {
  const ts = await startTestServer(t, { controllers: false });
  const { client } = ts;
  const path = resourcePath("services", "default");
  const s = await client.create<Service>(path, { metadata: { name: "web" }, spec: { type: "LoadBalancer", ports: [{ port: 80 }] } });
  const nodePort = s.spec.ports![0].nodePort!;
  const lbIP = s.status!.loadBalancer!.ingress![0].ip!;
  const asClusterIP = await client.patch<Service>(`${path}/web`, { spec: { type: "ClusterIP" } });
  t.is(asClusterIP.spec.ports![0].nodePort, undefined, "nodePort dropped with the type");
  t.deepEqual(asClusterIP.status?.loadBalancer, {});
  t.is(asClusterIP.spec.clusterIP, s.spec.clusterIP, "the ClusterIP is kept");
  // What was released can be taken by another Service.
  const other = await client.create<Service>(path, { metadata: { name: "other" }, spec: { type: "LoadBalancer", loadBalancerIP: lbIP, ports: [{ port: 80, nodePort }] } });
  t.is(other.spec.ports![0].nodePort, nodePort);
  t.is(other.status?.loadBalancer?.ingress?.[0].ip, lbIP);
  // A PUT that leaves out the allocated values keeps them (like kubectl replace of the original YAML).
  const cur = await client.get<Service>(`${path}/other`);
  const put = await client.update<Service>(`${path}/other`, { ...cur, spec: { type: "LoadBalancer", loadBalancerIP: lbIP, ports: [{ port: 80 }] } });
  t.is(put.spec.clusterIP, other.spec.clusterIP);
  t.is(put.spec.ports![0].nodePort, nodePort);
  const ext = await client.patch<Service>(`${path}/web`, { spec: { type: "ExternalName", externalName: "example.com" } });
  t.is(ext.spec.clusterIP, undefined);
  const again = await client.create<Service>(path, { metadata: { name: "again" }, spec: { clusterIP: s.spec.clusterIP, ports: [{ port: 80 }] } });
  t.is(again.spec.clusterIP, s.spec.clusterIP, "the released ClusterIP can be requested again");
  const immutable = await apiError(client.patch(`${path}/again`, { spec: { clusterIP: "10.96.7.7" } }), 422);
  t.regex(immutable.message, /spec\.clusterIP: Invalid value: "10\.96\.7\.7": field is immutable/);
});
