// How kube-proxy syncs: nothing before both caches are synced, incremental transactions that
// touch only what changed (checked with `nft monitor` and object handles), conntrack cleanup for
// removed UDP endpoints, metrics, and a restart over an existing table.
import test from "ava";
import { execa } from "execa";
import { systemBinary } from "../../kube-proxy/exec.ts";
import { Cluster, NODE_IP, OTHER_NODE, metricValue, nsexec, service, slice, waitFor, who, type Pod } from "./harness.ts";

const c = new Cluster();
let a: Pod, b: Pod, remote: Pod, client: Pod;

test.before(async () => {
  await c.setup();
  a = await c.addPod("pod-a", 1);
  b = await c.addPod("pod-b", 2);
  remote = await c.addPod("pod-r", 3, { nodeName: OTHER_NODE });
  client = await c.addPod("client", 4);
  // EndpointSlices are held back: the proxy sees Services but must not program anything yet.
  c.api.hold("endpointslices");
  c.startProxy();
});

test.after.always(async () => {
  await c.destroy();
});

const tables = async () => String((await nsexec(c.node, "nft", ["list", "tables"])).stdout);

test.serial("nothing is programmed until both Services and EndpointSlices are synced", async (t) => {
  c.applyService(service({ name: "early", clusterIP: "10.96.3.5", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(slice("early", "early-1", [{ pod: a }], [{ name: "http", port: 8080 }]));
  await waitFor(() => c.api.lists.services > 0, 30000, () => `the proxy never listed Services:\n${c.proxyLog}`);
  // Services are synced, EndpointSlices are not: give the proxy time to (wrongly) write rules.
  await new Promise((r) => setTimeout(r, 1500));
  t.notRegex(await tables(), /kube-proxy/, "no table before EndpointSlices are synced");
  const healthz = await nsexec(c.node, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:10256/healthz"], { reject: false });
  t.is(String(healthz.stdout), "503", "not healthy before the first sync");
  c.api.release("endpointslices");
  await c.synced();
  t.regex(await tables(), /table ip kube-proxy/);
  t.regex(await tables(), /table ip6 kube-proxy/);
  t.deepEqual(who(await c.tcp(client.ns, "10.96.3.5", 80)), ["pod-a"]);
  const healthz2 = await nsexec(c.node, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:10256/healthz"], { reject: false });
  t.is(String(healthz2.stdout), "200");
});

interface ChainHandles {
  handle: number;
  rules: number[];
}

/** Chains of the ip table with their handle and their rules' handles. */
async function handles(): Promise<Map<string, ChainHandles>> {
  const text = await c.nft(["-a", "list", "table", "ip", "kube-proxy"]);
  const out = new Map<string, ChainHandles>();
  let cur: ChainHandles | undefined;
  for (const line of text.split("\n")) {
    const ch = /^\s*chain (\S+) \{ # handle (\d+)/.exec(line);
    if (ch) {
      cur = { handle: Number(ch[2]), rules: [] };
      out.set(ch[1]!, cur);
      continue;
    }
    if (/^\s*(set|map) /.test(line)) cur = undefined;
    const rule = /# handle (\d+)$/.exec(line);
    if (cur && rule && !/^\s*(type|policy)/.test(line)) cur.rules.push(Number(rule[1]));
  }
  return out;
}

/** Runs `nft monitor` in the node netns while `fn` runs; returns the events it printed. */
async function monitor(fn: () => Promise<void>): Promise<string[]> {
  const mon = execa("nsenter", [`--net=${c.node.path}`, "--", systemBinary("nft"), "monitor"], { reject: false });
  let out = "";
  mon.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, 300));
  await fn();
  await new Promise((r) => setTimeout(r, 500));
  mon.kill("SIGTERM");
  await mon;
  return out.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
}

test.serial("a change rewrites only what changed: other chains, rules and affinity state stay", async (t) => {
  c.applyService(
    service({ name: "inc-a", clusterIP: "10.96.3.10", ports: [{ name: "http", port: 80, targetPort: 8080 }], extra: { sessionAffinity: "ClientIP" } }),
  );
  c.applySlice(slice("inc-a", "inc-a-1", [{ pod: a }, { pod: b }], [{ name: "http", port: 8080 }]));
  c.applyService(
    service({ name: "inc-b", type: "NodePort", clusterIP: "10.96.3.11", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30110 }], extra: { externalTrafficPolicy: "Local" } }),
  );
  c.applySlice(slice("inc-b", "inc-b-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
  c.applyService(service({ name: "inc-c", clusterIP: "10.96.3.12", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(slice("inc-c", "inc-c-1", [{ pod: a }, { pod: b }], [{ name: "http", port: 8080 }]));
  await c.synced();
  // Give inc-a's affinity sets some state: the client sticks to one pod.
  const sticky = who(await c.tcp(client.ns, "10.96.3.10", 80, { count: 3 }));
  t.is(new Set(sticky).size, 1);
  const before = await handles();

  // 1. One endpoint of a plain ClusterIP Service changes: map elements only.
  const events1 = await monitor(async () => {
    c.applySlice(slice("inc-c", "inc-c-1", [{ pod: a }, { pod: remote }], [{ name: "http", port: 8080 }]));
    await c.synced();
  });
  t.true(events1.length > 0, "the change was programmed");
  t.deepEqual(
    events1.filter((l) => !/^(add|delete) element ip kube-proxy (endpoints-tcp|hairpin) /.test(l)),
    [],
    "only endpoint and hairpin elements changed",
  );
  t.true(
    events1.filter((l) => l.includes("endpoints-tcp")).every((l) => l.includes("10.96.3.12")),
    `only inc-c's elements: ${events1.join(" | ")}`,
  );
  t.deepEqual(await handles(), before, "no chain or rule was touched");
  const m = await c.metrics();
  t.true(metricValue(m, "kubeproxy_sync_proxy_rules_last_transaction_commands")! <= 4, "the transaction is as small as the change");

  // 2. An endpoint of the affinity Service goes away: only that Service's chains change.
  const stickyPod = c.pods.find((p) => p.name === sticky[0])!;
  const gone = stickyPod === a ? b : a;
  const events2 = await monitor(async () => {
    c.applySlice(slice("inc-a", "inc-a-1", [{ pod: stickyPod }], [{ name: "http", port: 8080 }]));
    await c.synced();
  });
  const after = await handles();
  // inc-a's objects carry its hash: service-HASH-default/inc-a/..., endpoint-HASH-IP/PORT.
  const svcChain = [...before.keys()].find((n) => n.startsWith("service-") && n.includes("/inc-a/"))!;
  const hash = svcChain.split("-")[1]!;
  const isIncA = (n: string) => n.includes(`-${hash}-`);
  for (const name of [...before.keys()].filter((n) => !isIncA(n))) t.deepEqual(after.get(name), before.get(name), `${name} untouched`);
  t.is(after.get(svcChain)!.handle, before.get(svcChain)!.handle, "the Service chain is kept (flushed, not re-created)");
  t.notDeepEqual(after.get(svcChain)!.rules, before.get(svcChain)!.rules, "its rules were rewritten");
  const keptEndpoint = `endpoint-${hash}-${stickyPod.ip}/8080`;
  const goneEndpoint = `endpoint-${hash}-${gone.ip}/8080`;
  t.truthy(before.get(keptEndpoint));
  t.deepEqual(after.get(keptEndpoint), before.get(keptEndpoint), "the surviving endpoint's chain is untouched");
  t.truthy(before.get(goneEndpoint));
  t.false(after.has(goneEndpoint), "the removed endpoint's chain is deleted");
  const objectEvents = events2.filter((l) => /^(add|delete) (chain|rule|set) /.test(l));
  t.true(objectEvents.length > 0);
  t.deepEqual(
    objectEvents.filter((l) => !l.includes(`-${hash}-`)),
    [],
    "every chain, rule and set event concerns inc-a",
  );
  // The client is still in the surviving endpoint's affinity set: the set was not re-created.
  const sets = await c.nft(["list", "sets", "ip"]);
  t.regex(sets, new RegExp(`affinity-\\w+-${stickyPod.ip.replace(/\./g, "\\.")}/8080-10800s \\{[^}]*elements = \\{ ${client.ip.replace(/\./g, "\\.")} `, "s"));
  t.deepEqual([...new Set(who(await c.tcp(client.ns, "10.96.3.10", 80, { count: 3 })))], [stickyPod.name]);
});

test.serial("removing a UDP endpoint clears its conntrack entries, so the client moves to another endpoint", async (t) => {
  c.applyService(service({ name: "udp", clusterIP: "10.96.3.20", ports: [{ name: "dns", port: 53, targetPort: 8080, protocol: "UDP" }] }));
  c.applySlice(slice("udp", "udp-1", [{ pod: a }, { pod: b }], [{ name: "dns", port: 8080, protocol: "UDP" }]));
  await c.synced();
  // One client socket (fixed source port): conntrack keeps it on one endpoint.
  const first = who(await c.udp(client.ns, "10.96.3.20", 53, { count: 4, sourcePort: 40053 }));
  t.is(new Set(first).size, 1, `one flow, one endpoint: ${first.join(",")}`);
  const used = c.pods.find((p) => p.name === first[0])!;
  const other = used === a ? b : a;
  const entries = async (replySrc: string) =>
    String((await nsexec(c.node, "conntrack", ["-L", "-p", "udp", "--orig-dst", "10.96.3.20", "--reply-src", replySrc], { reject: false })).stdout);
  t.regex(await entries(used.ip), /dport=53/);
  c.applySlice(slice("udp", "udp-1", [{ pod: other }], [{ name: "dns", port: 8080, protocol: "UDP" }]));
  await c.synced();
  await waitFor(async () => !/dport=53/.test(await entries(used.ip)), 10000, "conntrack entries of the removed endpoint are still there");
  t.deepEqual(who(await c.udp(client.ns, "10.96.3.20", 53, { count: 2, sourcePort: 40053 })), [other.name, other.name]);
  t.true(metricValue(await c.metrics(), "kubeproxy_conntrack_cleanup_commands_total")! > 0);
});

test.serial("a burst of changes is coalesced into a few syncs, ending in the last state", async (t) => {
  c.applyService(service({ name: "burst", clusterIP: "10.96.3.40", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  await c.synced();
  const syncs = async () => metricValue(await c.metrics(), "kubeproxy_sync_proxy_rules_duration_seconds_count")!;
  const before = await syncs();
  for (let i = 0; i < 30; i++) c.applySlice(slice("burst", "burst-1", [{ pod: i % 2 ? a : b }], [{ name: "http", port: 8080 }]));
  await c.synced();
  const ran = (await syncs()) - before;
  t.true(ran >= 1 && ran < 30, `30 changes took ${ran} syncs`);
  t.deepEqual(who(await c.tcp(client.ns, "10.96.3.40", 80, { count: 3 })), ["pod-a", "pod-a", "pod-a"], "the last change wins");
});

test.serial("metrics endpoint serves the sync metrics in Prometheus text format", async (t) => {
  const m = await c.metrics();
  for (const name of [
    "kubeproxy_sync_proxy_rules_duration_seconds",
    "kubeproxy_sync_full_proxy_rules_duration_seconds",
    "kubeproxy_sync_partial_proxy_rules_duration_seconds",
  ]) {
    t.regex(m, new RegExp(`^# TYPE ${name} histogram$`, "m"));
    t.regex(m, new RegExp(`^${name}_bucket\\{le="0.001"\\} \\d+$`, "m"));
    t.regex(m, new RegExp(`^${name}_bucket\\{le="\\+Inf"\\} \\d+$`, "m"));
    t.regex(m, new RegExp(`^${name}_count \\d+$`, "m"));
  }
  t.is(metricValue(m, "kubeproxy_sync_full_proxy_rules_duration_seconds_count"), 1, "one full sync, then partial ones");
  t.true(metricValue(m, "kubeproxy_sync_partial_proxy_rules_duration_seconds_count")! >= 3);
  const last = metricValue(m, "kubeproxy_sync_proxy_rules_last_timestamp_seconds")!;
  t.true(Math.abs(last - Date.now() / 1000) < 600, "last sync time is a recent unix time");
  const chains = /^kubeproxy_sync_proxy_rules_nftables_objects\{family="ip",kind="chains"\} (\d+)$/m.exec(m);
  t.is(Number(chains?.[1]), (await handles()).size, "the chain count is the kernel's");
  t.regex(m, /^kubeproxy_sync_proxy_rules_nftables_objects\{family="ip",kind="elements",set="service-ips"\} [1-9]\d*$/m);
  t.true(metricValue(m, "kubeproxy_sync_proxy_rules_endpoint_changes_total")! >= 5);
  t.true(metricValue(m, "kubeproxy_sync_proxy_rules_service_changes_total")! >= 5);
  t.regex(m, /^# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter$/m);
});

test.serial("a restarted proxy takes over the existing table with a full sync and keeps syncing", async (t) => {
  await c.stopProxy();
  // Rules stay while the proxy is down.
  t.regex(await tables(), /table ip kube-proxy/);
  t.deepEqual(who(await c.tcp(client.ns, "10.96.3.5", 80)), ["pod-a"]);
  c.startProxy();
  await waitFor(async () => (metricValue(await c.metrics(), "kubeproxy_sync_full_proxy_rules_duration_seconds_count") ?? 0) >= 1, 30000, () => `no full sync after restart:\n${c.proxyLog}`);
  // A Service with an endpoint count not seen before needs a new shared chain: a partial sync
  // against the table the full sync wrote.
  c.applyService(service({ name: "after", clusterIP: "10.96.3.30", type: "NodePort", ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30130 }] }));
  c.applySlice(slice("after", "after-1", [{ pod: a }, { pod: b }, { pod: remote }, { pod: client }], [{ name: "http", port: 8080 }]));
  await waitFor(async () => /10\.96\.3\.30/.test(await c.nft(["list", "map", "ip", "kube-proxy", "service-ips"])), 20000, () => `not programmed:\n${c.proxyLog}`);
  t.regex(await c.nft(["list", "chain", "ip", "kube-proxy", "lb-tcp-4"]), /numgen random mod 4/);
  const r = who(await c.tcp(client.ns, "10.96.3.30", 80, { count: 12 }));
  t.true(new Set(r).size >= 2, r.join(","));
  t.deepEqual(who(await c.tcp(c.external, NODE_IP, 30130, { count: 1 })).length, 1);
  t.notRegex(c.proxyLog, /sync failed/);
});
