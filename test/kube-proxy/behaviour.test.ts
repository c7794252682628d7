// What kube-proxy does beyond plain load balancing: reject without endpoints, fall back to
// terminating endpoints, hairpin, masquerade of clients outside the cluster, session affinity,
// internalTrafficPolicy Local.
import test from "ava";
import { Cluster, GATEWAY, NODE_IP, OTHER_NODE, seenFrom, service, slice, who, type Pod } from "./harness.ts";

const c = new Cluster();
let a: Pod, b: Pod, remote: Pod, client: Pod;

test.before(async () => {
  await c.setup();
  a = await c.addPod("pod-a", 1);
  b = await c.addPod("pod-b", 2);
  remote = await c.addPod("pod-r", 3, { nodeName: OTHER_NODE });
  client = await c.addPod("client", 4);
  c.startProxy();
});

test.after.always(async () => {
  await c.destroy();
});

test.serial("a Service without endpoints refuses connections at once (ClusterIP and NodePort)", async (t) => {
  c.applyService(service({ name: "empty", type: "NodePort", clusterIP: "10.96.2.10", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30090 }] }));
  c.applySlice(slice("empty", "empty-1", [], [{ name: "http", port: 8080 }]));
  await c.synced();
  // A generous timeout: a dropped SYN would show as ETIMEDOUT, a reject as ECONNREFUSED.
  const fromPod = await c.tcp(client.ns, "10.96.2.10", 80, { timeoutMs: 10000 });
  t.is(fromPod[0]!.error, "ECONNREFUSED");
  const fromOutside = await c.tcp(c.external, NODE_IP, 30090, { timeoutMs: 10000 });
  t.is(fromOutside[0]!.error, "ECONNREFUSED");
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "no-endpoint-services"]), /10\.96\.2\.10 \. tcp \. 80 : goto reject-chain/);
  // Endpoints appear: the same Service now answers.
  c.applySlice(slice("empty", "empty-1", [{ pod: a }], [{ name: "http", port: 8080 }]));
  await c.synced();
  t.deepEqual(who(await c.tcp(client.ns, "10.96.2.10", 80)), ["pod-a"]);
});

test.serial("only terminating endpoints: traffic falls back to the serving ones", async (t) => {
  c.applyService(service({ name: "term", clusterIP: "10.96.2.11", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(
    slice(
      "term",
      "term-1",
      [
        { pod: a, ready: false, serving: true, terminating: true },
        { pod: b, ready: false, serving: false, terminating: true },
      ],
      [{ name: "http", port: 8080 }],
    ),
  );
  await c.synced();
  t.deepEqual([...new Set(who(await c.tcp(client.ns, "10.96.2.11", 80, { count: 8 })))], ["pod-a"], "serving+terminating used, not-serving skipped");
  // A ready endpoint appears: terminating ones are no longer used.
  c.applySlice(
    slice(
      "term",
      "term-1",
      [{ pod: a, ready: false, serving: true, terminating: true }, { pod: remote }],
      [{ name: "http", port: 8080 }],
    ),
  );
  await c.synced();
  t.deepEqual([...new Set(who(await c.tcp(client.ns, "10.96.2.11", 80, { count: 8 })))], ["pod-r"]);
});

test.serial("hairpin: a pod reaches itself through its own Service", async (t) => {
  c.applyService(service({ name: "self", clusterIP: "10.96.2.12", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(slice("self", "self-1", [{ pod: client }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const r = await c.tcp(client.ns, "10.96.2.12", 80, { count: 3 });
  t.deepEqual(who(r), ["client", "client", "client"]);
  t.deepEqual([...new Set(seenFrom(r))], [GATEWAY], "hairpin traffic is masqueraded to the node");
});

test.serial("clients outside the cluster CIDR are masqueraded to ClusterIPs; pods are not", async (t) => {
  c.applyService(service({ name: "masq", clusterIP: "10.96.2.13", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(slice("masq", "masq-1", [{ pod: a }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const outside = await c.tcp(c.external, "10.96.2.13", 80, { count: 2 });
  t.deepEqual(who(outside), ["pod-a", "pod-a"]);
  t.deepEqual([...new Set(seenFrom(outside))], [GATEWAY]);
  const inside = await c.tcp(client.ns, "10.96.2.13", 80, { count: 2 });
  t.deepEqual([...new Set(seenFrom(inside))], [client.ip], "pod to Service keeps the pod's address");
});

test.serial("sessionAffinity ClientIP keeps each client on one endpoint", async (t) => {
  c.applyService(
    service({
      name: "sticky",
      clusterIP: "10.96.2.14",
      ports: [{ name: "http", port: 80, targetPort: 8080 }],
      extra: { sessionAffinity: "ClientIP", sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } },
    }),
  );
  c.applySlice(slice("sticky", "sticky-1", [{ pod: a }, { pod: b }, { pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const r = who(await c.tcp(client.ns, "10.96.2.14", 80, { count: 15 }));
  t.is(new Set(r).size, 1, `one endpoint for one client: ${r.join(",")}`);
  const chosen = c.pods.find((p) => p.name === r[0])!;
  // The client's address sits in the chosen endpoint's affinity set, with a timeout.
  const sets = await c.nft(["list", "sets", "ip"]);
  const m = new RegExp(`set (affinity-\\w+-${chosen.ip.replace(/\./g, "\\.")}/8080-600s) \\{[^}]*elements = \\{ ${client.ip.replace(/\./g, "\\.")} (timeout|expires)`, "s").exec(sets);
  t.truthy(m, `the affinity set of ${chosen.name} holds ${client.ip}:\n${sets}`);
  // A different client (the external netns) is also kept on one endpoint.
  const ext = who(await c.tcp(c.external, "10.96.2.14", 80, { count: 8 }));
  t.is(new Set(ext).size, 1);
});

test.serial("internalTrafficPolicy Local sends pod traffic to local endpoints only, and drops without them", async (t) => {
  c.applyService(service({ name: "itp", clusterIP: "10.96.2.15", ports: [{ name: "http", port: 80, targetPort: 8080 }], extra: { internalTrafficPolicy: "Local" } }));
  c.applySlice(slice("itp", "itp-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  t.deepEqual([...new Set(who(await c.tcp(client.ns, "10.96.2.15", 80, { count: 8 })))], ["pod-a"]);
  c.applySlice(slice("itp", "itp-1", [{ pod: remote }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const r = await c.tcp(client.ns, "10.96.2.15", 80, { timeoutMs: 1500 });
  t.is(r[0]!.error, "ETIMEDOUT", "no local endpoint: dropped (not rejected, not sent to another node)");
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "no-endpoint-services"]), /10\.96\.2\.15 \. tcp \. 80 : drop/);
});
