// Traffic from outside the cluster: NodePorts, LoadBalancer IPs with loadBalancerSourceRanges,
// externalIPs, and externalTrafficPolicy Local with its health check server.
import test from "ava";
import { Cluster, EXTERNAL_IP, EXTERNAL_IP2, GATEWAY, NODE_IP, OTHER_NODE, nsexec, seenFrom, service, slice, waitFor, who, type Pod } from "./harness.ts";

const c = new Cluster();
let a: Pod, remote: Pod, client: Pod;

test.before(async () => {
  await c.setup();
  a = await c.addPod("pod-a", 1);
  remote = await c.addPod("pod-r", 2, { nodeName: OTHER_NODE });
  client = await c.addPod("client", 3);
  c.startProxy();
});

test.after.always(async () => {
  await c.destroy();
});

test.serial("NodePort answers from outside on the node's address, masqueraded, and not on 127.0.0.1", async (t) => {
  c.applyService(service({ name: "np", type: "NodePort", clusterIP: "10.96.1.10", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30080 }] }));
  c.applySlice(slice("np", "np-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const r = await c.tcp(c.external, NODE_IP, 30080, { count: 16 });
  t.deepEqual([...new Set(who(r))].sort(), ["pod-a", "pod-r"], "both endpoints serve the NodePort");
  // externalTrafficPolicy Cluster: the client address is replaced by the node's.
  t.deepEqual([...new Set(seenFrom(r))], [GATEWAY]);
  const fromNode = await c.tcp(c.node, NODE_IP, 30080, { count: 2 });
  t.deepEqual(fromNode.filter((x) => !x.reply), [], "the node itself reaches its NodePort");
  const loop = await c.tcp(c.node, "127.0.0.1", 30080, { timeoutMs: 2000 });
  t.is(loop[0]!.error, "ECONNREFUSED", "NodePorts are not served on 127.0.0.1");
});

test.serial("LoadBalancer IP from outside, and loadBalancerSourceRanges keep other sources out", async (t) => {
  c.applyService(
    service({
      name: "lb",
      type: "LoadBalancer",
      clusterIP: "10.96.1.11",
      lbIPs: ["198.18.1.5"],
      ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30081 }],
      extra: { loadBalancerSourceRanges: [`${EXTERNAL_IP}/32`] },
    }),
  );
  c.applySlice(slice("lb", "lb-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const allowed = await c.tcp(c.external, "198.18.1.5", 80, { count: 6, localAddress: EXTERNAL_IP });
  t.deepEqual(allowed.filter((x) => !x.reply), [], "the allowed source is served");
  t.true(who(allowed).every((w) => w === "pod-a" || w === "pod-r"));
  const blocked = await c.tcp(c.external, "198.18.1.5", 80, { count: 2, localAddress: EXTERNAL_IP2, timeoutMs: 1500 });
  t.deepEqual(
    blocked.map((x) => x.error),
    ["ETIMEDOUT", "ETIMEDOUT"],
    "another source is dropped",
  );
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "firewall-ips"]), /198\.18\.1\.5 \. tcp \. 80 : goto firewall-/);
});

test.serial("externalIPs are served like external addresses", async (t) => {
  c.applyService(service({ name: "extip", clusterIP: "10.96.1.12", ports: [{ name: "https", port: 8443, targetPort: 9090 }], extra: { externalIPs: ["198.18.2.7"] } }));
  c.applySlice(slice("extip", "extip-1", [{ pod: a }], [{ name: "https", port: 9090 }]));
  await c.synced();
  const r = await c.tcp(c.external, "198.18.2.7", 8443, { count: 3 });
  t.deepEqual(who(r), ["pod-a", "pod-a", "pod-a"]);
  t.deepEqual([...new Set(seenFrom(r))], [GATEWAY], "external traffic is masqueraded (eTP Cluster)");
});

test.serial("externalTrafficPolicy Local: client IP preserved, only local endpoints, drop without them, health check 200/503", async (t) => {
  const svc = service({
    name: "local",
    type: "LoadBalancer",
    clusterIP: "10.96.1.13",
    lbIPs: ["198.18.1.6"],
    ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30082 }],
    extra: { externalTrafficPolicy: "Local", healthCheckNodePort: 30300 },
  });
  c.applyService(svc);
  c.applySlice(slice("local", "local-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const viaLB = await c.tcp(c.external, "198.18.1.6", 80, { count: 8 });
  t.deepEqual([...new Set(who(viaLB))], ["pod-a"], "only the local endpoint serves external traffic");
  t.deepEqual([...new Set(seenFrom(viaLB))], [EXTERNAL_IP], "the client's own address reaches the pod");
  const viaNodePort = await c.tcp(c.external, NODE_IP, 30082, { count: 4 });
  t.deepEqual([...new Set(who(viaNodePort))], ["pod-a"]);
  t.deepEqual([...new Set(seenFrom(viaNodePort))], [EXTERNAL_IP]);

  const health = async () => {
    const r = await nsexec(c.external, "curl", ["-s", "-w", "\n%{http_code}", "--max-time", "3", `http://${NODE_IP}:30300/`], { reject: false });
    const lines = String(r.stdout).trim().split("\n");
    const code = Number(lines.pop());
    return { code, body: lines.length && lines[0] ? JSON.parse(lines[0]) : undefined };
  };
  await waitFor(async () => (await health()).code === 200, 10000, "health check server did not answer 200");
  t.deepEqual((await health()).body, { service: { namespace: "default", name: "local" }, localEndpoints: 1, serviceProxyHealthy: true });

  // The local endpoint goes away: external traffic is dropped here, the check says 503.
  c.applySlice(slice("local", "local-1", [{ pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const dropped = await c.tcp(c.external, "198.18.1.6", 80, { count: 2, timeoutMs: 1500 });
  t.deepEqual(
    dropped.map((x) => x.error),
    ["ETIMEDOUT", "ETIMEDOUT"],
    "no local endpoint: dropped, not sent to another node",
  );
  const h = await health();
  t.is(h.code, 503);
  t.is(h.body.localEndpoints, 0);
  // Pods still reach the LoadBalancer IP: their traffic is treated like ClusterIP traffic.
  const fromPod = await c.tcp(client.ns, "198.18.1.6", 80, { count: 3 });
  t.deepEqual(who(fromPod), ["pod-r", "pod-r", "pod-r"]);

  // Deleting the Service stops its health check server.
  c.deleteService("default", "local");
  await c.synced();
  await waitFor(async () => (await health()).code === 0, 10000, "health check server still answers after the Service was deleted");
});
