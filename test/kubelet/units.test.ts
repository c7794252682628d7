// The kubelet's pure parts: flags, DNS by policy, service environment variables, crash-loop
// back-off, pod phase, manifests, CNI arguments, host-gw route choice and the masquerade rules.
import test from "ava";
import type { Pod, Service } from "../../apiserver/types.ts";
import { Backoff } from "../../kubelet/backoff.ts";
import { podDNSConfig, parseResolvConf } from "../../kubelet/dns.ts";
import { containerEnv, serviceEnv, servicesForPod } from "../../kubelet/env.ts";
import { FlagError, parseFlags } from "../../kubelet/flags.ts";
import { masqueradeRuleset } from "../../kubelet/masquerade.ts";
import { cniArgsOf, portMappingsOf } from "../../kubelet/network.ts";
import { desiredRoutes } from "../../kubelet/routes.ts";
import { loadManifest } from "../../kubelet/static-pods.ts";
import { podPhase } from "../../kubelet/status.ts";

const pod = (spec: Partial<Pod["spec"]> = {}, ns = "default"): Pod => ({ metadata: { name: "p", namespace: ns, uid: "u-1" }, spec: { containers: [{ name: "c", command: ["sleep", "1"] }], ...spec } });

test("flags: required options, standalone needs --pod-cidr, bad values are named", (t) => {
  const err = (argv: string[]) => t.throws(() => parseFlags(argv), { instanceOf: FlagError })?.message ?? "";
  t.regex(err([]), /--node is required/);
  t.regex(err(["--node", "n1"]), /--state-dir is required/);
  t.regex(err(["--node", "n1", "--state-dir", "/tmp/x", "--pod-manifest-path", "/tmp/m"]), /--pod-cidr is required without --api/);
  t.regex(err(["--node", "n1", "--state-dir", "/tmp/x", "--api", "/s", "--pod-cidr", "10.1.2.3"]), /--pod-cidr/);
  t.regex(err(["--node", "N_1", "--state-dir", "/tmp/x", "--api", "/s"]), /valid node name/);
  t.regex(err(["--node", "n1", "--state-dir", "/tmp/x", "--api", "/s", "--sync-frequency", "soon"]), /bad duration/);
  t.regex(err(["--node", "n1", "--state-dir", "/tmp/x", "--api", "/s", "--bogus", "1"]), /unknown option --bogus/);
  const cfg = parseFlags(["--node", "n1", "--state-dir", "/tmp/x", "--api", "/s", "--pod-cidr", "10.244.1.7/24", "--cluster-dns", "10.96.0.10", "--host-gw", "--restart-backoff-base", "500ms"]);
  t.not(cfg, "help");
  if (cfg === "help") return;
  t.is(cfg.podCIDR, "10.244.1.0/24");
  t.is(cfg.cniConfDir, "/tmp/x/cni/net.d");
  t.is(cfg.cniCacheDir, "/tmp/x/cni/cache");
  t.is(cfg.ipamDataDir, "/tmp/x/cni/networks");
  t.is(cfg.runtimeEndpoint, "/tmp/x/runtime.sock");
  t.true(cfg.hostGw);
  t.is(cfg.restartBackoffBaseMs, 500);
  t.is(cfg.restartBackoffMaxMs, 15_000);
  t.is(cfg.clusterDomain, "cluster.local");
});

test("dns: ClusterFirst, Default, None and dnsConfig merging", (t) => {
  const host = parseResolvConf("# comment\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch corp.example lab.example\noptions rotate\n");
  t.deepEqual(host, { nameservers: ["192.0.2.1", "192.0.2.2"], searches: ["corp.example", "lab.example"], options: ["rotate"] });
  const s = { clusterDNS: ["10.96.0.10"], clusterDomain: "cluster.local", host };
  t.deepEqual(podDNSConfig(pod({}, "team-a"), s), { servers: ["10.96.0.10"], searches: ["team-a.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"], options: ["ndots:5"] });
  t.deepEqual(podDNSConfig(pod({ dnsPolicy: "Default" }), s), { servers: ["192.0.2.1", "192.0.2.2"], searches: ["corp.example", "lab.example"], options: ["rotate"] });
  t.deepEqual(podDNSConfig(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["1.1.1.1"], searches: ["x.example."], options: [{ name: "ndots", value: "1" }] } }), s), { servers: ["1.1.1.1"], searches: ["x.example"], options: ["ndots:1"] });
  const merged = podDNSConfig(pod({ dnsConfig: { nameservers: ["10.96.0.10", "1.1.1.1", "8.8.8.8", "9.9.9.9"], searches: ["svc.cluster.local", "extra.example"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] } }), s);
  t.deepEqual(merged.servers, ["10.96.0.10", "1.1.1.1", "8.8.8.8"], "no duplicates, at most 3 nameservers");
  t.deepEqual(merged.searches, ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example", "extra.example"]);
  t.deepEqual(merged.options, ["ndots:2", "edns0"], "the pod's options win by name");
  // Without a cluster DNS, ClusterFirst falls back to the node's resolvers (as the kubelet does).
  t.deepEqual(podDNSConfig(pod(), { ...s, clusterDNS: [] }).servers, ["192.0.2.1", "192.0.2.2"]);
});

test("service environment variables as Kubernetes makes them", (t) => {
  const svc = (name: string, ns: string, ip: string, ports: Service["spec"]["ports"]): Service => ({ metadata: { name, namespace: ns }, spec: { clusterIP: ip, ports } });
  const services = [
    svc("kubernetes", "default", "10.96.0.1", [{ name: "https", port: 443, protocol: "TCP" }]),
    svc("web-front", "team", "10.96.3.4", [{ port: 80 }, { name: "metrics", port: 9090, protocol: "TCP" }]),
    svc("headless", "team", "None", [{ port: 80 }]),
    svc("elsewhere", "other", "10.96.9.9", [{ port: 80 }]),
  ];
  t.deepEqual(serviceEnv(services[1]!), [
    { name: "WEB_FRONT_SERVICE_HOST", value: "10.96.3.4" },
    { name: "WEB_FRONT_SERVICE_PORT", value: "80" },
    { name: "WEB_FRONT_SERVICE_PORT_METRICS", value: "9090" },
    { name: "WEB_FRONT_PORT", value: "tcp://10.96.3.4:80" },
    { name: "WEB_FRONT_PORT_80_TCP", value: "tcp://10.96.3.4:80" },
    { name: "WEB_FRONT_PORT_80_TCP_PROTO", value: "tcp" },
    { name: "WEB_FRONT_PORT_80_TCP_PORT", value: "80" },
    { name: "WEB_FRONT_PORT_80_TCP_ADDR", value: "10.96.3.4" },
    { name: "WEB_FRONT_PORT_9090_TCP", value: "tcp://10.96.3.4:9090" },
    { name: "WEB_FRONT_PORT_9090_TCP_PROTO", value: "tcp" },
    { name: "WEB_FRONT_PORT_9090_TCP_PORT", value: "9090" },
    { name: "WEB_FRONT_PORT_9090_TCP_ADDR", value: "10.96.3.4" },
  ]);
  t.deepEqual(servicesForPod(pod({}, "team"), services).map((s) => s.metadata.name), ["kubernetes", "web-front"], "own namespace + master service; no headless, no other namespace");
  t.deepEqual(servicesForPod(pod({ enableServiceLinks: false }, "team"), services).map((s) => s.metadata.name), ["kubernetes"]);
  const env = containerEnv(pod({}, "team"), { name: "c", env: [{ name: "WEB_FRONT_SERVICE_PORT", value: "own" }, { name: "X", value: "$(KUBERNETES_SERVICE_HOST):$$(Y)" }, { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }] }, services, { podIPs: ["10.244.1.5"], hostIPs: ["198.18.0.11"], nodeName: "n1" });
  const m = new Map(env.map((e) => [e.name, e.value]));
  t.is(m.get("WEB_FRONT_SERVICE_PORT"), "own", "the container's own env wins");
  t.is(m.get("X"), "10.96.0.1:$(Y)", "$(VAR) expands, $$ escapes");
  t.is(m.get("IP"), "10.244.1.5");
  t.throws(() => containerEnv(pod(), { name: "c", env: [{ name: "A", valueFrom: { fieldRef: { fieldPath: "spec.nope" } } }] }, [], { podIPs: [], hostIPs: [], nodeName: "n" }), { message: /unsupported fieldRef/ });
});

test("crash-loop back-off: first restart at once, then doubling up to the maximum", (t) => {
  let now = 1_000_000;
  const b = new Backoff(10_000, 300_000, () => now);
  t.is(b.remaining("k", now), 0, "the first restart is immediate");
  b.next("k");
  t.is(b.remaining("k", now), 10_000);
  now += 10_000;
  t.is(b.remaining("k", now - 10_000), 0);
  const delays = [];
  for (let i = 0; i < 8; i++) {
    b.next("k");
    delays.push(b.delay("k"));
  }
  t.deepEqual(delays, [20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000]);
  now += 600_001;
  t.is(b.remaining("k", now), 0, "forgotten after twice the maximum without restarts");
  t.is(b.delay("k"), 0);
});

test("pod phase follows Kubernetes' rules", (t) => {
  const st = (s: object, last?: object) => ({ name: "c", state: s, lastState: last ?? {}, ready: false, restartCount: 0, image: "", imageID: "" });
  const run = st({ running: {} });
  const ok = st({ terminated: { exitCode: 0 } });
  const bad = st({ terminated: { exitCode: 1 } });
  const crash = st({ waiting: { reason: "CrashLoopBackOff" } }, { terminated: { exitCode: 1 } });
  const creating = st({ waiting: { reason: "ContainerCreating" } });
  const p = (restartPolicy: "Always" | "OnFailure" | "Never") => pod({ restartPolicy });
  t.is(podPhase(p("Always"), [creating], true, false), "Pending");
  t.is(podPhase(p("Always"), [run, ok], true, false), "Running");
  t.is(podPhase(p("Always"), [crash], true, false), "Running");
  t.is(podPhase(p("Never"), [ok, ok], true, false), "Succeeded");
  t.is(podPhase(p("Never"), [ok, bad], true, false), "Failed");
  t.is(podPhase(p("OnFailure"), [ok], true, false), "Succeeded");
  t.is(podPhase(p("OnFailure"), [bad], true, false), "Running");
  t.is(podPhase(p("Always"), [run], false, false), "Pending", "init containers not done");
  t.is(podPhase(p("Never"), [creating], false, true), "Failed", "an init container failed for good");
});

test("static pod manifests: named <pod>-<node>, UID from content, errors name the file and field", (t) => {
  const yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: host\n    command: [sleep, '10']\n";
  const a = loadManifest("/m/web.yaml", yaml, "node-1");
  t.is(a.metadata.name, "web-node-1");
  t.is(a.metadata.namespace, "default");
  t.is(a.spec.nodeName, "node-1");
  t.is(a.spec.restartPolicy, "Always", "defaults applied");
  t.regex(a.metadata.uid!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.is(loadManifest("/m/web.yaml", yaml, "node-1").metadata.uid, a.metadata.uid, "stable");
  t.not(loadManifest("/m/web.yaml", yaml.replace("'10'", "'20'"), "node-1").metadata.uid, a.metadata.uid, "an edit is a new pod");
  t.not(loadManifest("/m/web.yaml", yaml, "node-2").metadata.uid, a.metadata.uid);
  t.throws(() => loadManifest("/m/x.yaml", "kind: Service\n", "n"), { message: /\/m\/x.yaml: kind is "Service", want Pod/ });
  t.throws(() => loadManifest("/m/x.yaml", yaml.replace("name: c", "name: C_bad"), "n"), { message: /\/m\/x.yaml: spec\.containers\[0\]\.name/ });
  t.throws(() => loadManifest("/m/x.yaml", `${yaml}---\n${yaml}`, "n"), { message: /exactly one Pod/ });
  t.throws(() => loadManifest("/m/x.yaml", "{{{", "n"), { message: /\/m\/x.yaml/ });
});

test("CNI arguments and port mappings as the kubelet sends them", (t) => {
  const p = pod({ containers: [{ name: "c", ports: [{ containerPort: 80, hostPort: 8080, protocol: "TCP" }, { containerPort: 53, hostPort: 5353, protocol: "UDP", hostIP: "198.18.0.11" }, { containerPort: 9090 }] }] });
  t.deepEqual(portMappingsOf(p), [
    { hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" },
    { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "198.18.0.11" },
  ]);
  t.deepEqual(cniArgsOf(p, "abc123"), [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", "default"],
    ["K8S_POD_NAME", "p"],
    ["K8S_POD_INFRA_CONTAINER_ID", "abc123"],
    ["K8S_POD_UID", "u-1"],
  ]);
});

test("host-gw: a route per other node with a podCIDR and an InternalIP; masquerade rules", (t) => {
  const node = (name: string, cidr?: string, ip?: string) => ({ metadata: { name }, spec: cidr ? { podCIDR: cidr } : {}, status: ip ? { addresses: [{ type: "InternalIP" as const, address: ip }] } : {} });
  const want = desiredRoutes([node("me", "10.244.1.0/24", "198.18.0.11"), node("b", "10.244.2.0/24", "198.18.0.12"), node("c", undefined, "198.18.0.13"), node("d", "10.244.4.0/24")], "me");
  t.deepEqual([...want], [["10.244.2.0/24", "198.18.0.12"]]);
  const rules = masqueradeRuleset("10.244.1.0/24", "10.244.0.0/16");
  t.regex(rules, /table ip podnet-kubelet/);
  t.regex(rules, /ip saddr 10\.244\.1\.0\/24 ip daddr != 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade/);
});
