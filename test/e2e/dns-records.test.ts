// Cluster DNS, after Kubernetes' sig-network DNS conformance tests (dns.go, dns_configmap.go) and
// the DNS specification for Services and Pods: A and SRV records for Services, headless Services
// answering their ready pods and per-hostname records, pod records, ExternalName as a CNAME that
// can turn into a ClusterIP; each pod's /etc/resolv.conf by dnsPolicy, the search path in use,
// and the service environment variables. Queries go from pods to kube-dns (10.96.0.10) with a
// small dns-packet client, over UDP and TCP.
import anyTest, { type TestFn } from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resourcePath } from "../../apiserver/client.ts";
import type { Namespace, Pod, Service } from "../../apiserver/types.ts";
import { execInPod } from "../../cluster/probe.ts";
import { eventually, useCluster, type TestCluster } from "../helpers/cluster.ts";
import { uniqueName } from "../helpers/netns.ts";
import { deploymentManifest, isReady, netexecContainer, podManifest, podRun, readyPods, testNamespace } from "./cluster-helpers.ts";
import { answerData, createDeployment, createPod, createService, podDnsQuery, readyEndpoints, type DnsAnswer } from "./services-helpers.ts";

const test = anyTest as TestFn;
const cluster = useCluster(test);

const dashed = (ip: string) => ip.replace(/\./g, "-");

/** Polls a DNS question from a pod until `ok` accepts the answer (the DNS server follows watches). */
async function dnsEventually(c: TestCluster, ns: string, pod: string, name: string, type: string, ok: (a: DnsAnswer) => boolean, opts: { tcp?: boolean } = {}): Promise<DnsAnswer> {
  let last: DnsAnswer | undefined;
  try {
    return await eventually(`${name} ${type}`, async () => {
      last = await podDnsQuery(c, ns, pod, name, type, opts);
      return ok(last) ? last : undefined;
    }, 30_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}; last answer ${JSON.stringify(last)}`);
  }
}

test("DNS for Services: A for a ClusterIP, SRV for named ports, headless Services by ready pod and hostname, pod records, NXDOMAIN", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "dnssvc");
  const zone = c.cfg.domain;
  const dir = mkdtempSync(join(tmpdir(), "podnet-dns-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  await createDeployment(c, ns, deploymentManifest("web", 2, { containers: [netexecContainer()] }));
  const web = await createService(c, ns, {
    metadata: { name: "web" },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }, { name: "udp", port: 81, targetPort: "udp", protocol: "UDP" }] },
  });
  // Headless: two pods with spec.hostname and spec.subdomain; "beta" turns Ready only when a file exists.
  const member = (name: string, hostname: string, readyFile?: string): Pod => {
    const ctr = netexecContainer();
    if (readyFile) ctr.readinessProbe = { exec: { command: ["test", "-e", readyFile] }, periodSeconds: 1 };
    return podManifest(name, { containers: [ctr], hostname, subdomain: "hl" }, { app: "hl" });
  };
  const betaReady = join(dir, "beta-ready");
  await createPod(c, ns, member("hl-alpha", "alpha"));
  await createPod(c, ns, member("hl-beta", "beta", betaReady));
  await createService(c, ns, { metadata: { name: "hl" }, spec: { clusterIP: "None", selector: { app: "hl" }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] } });
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  const [client] = await readyPods(c, ns, "role=client", 1);
  const alpha = await eventually("pod hl-alpha to be Ready", async () => {
    const p = await c.api.get<Pod>(resourcePath("pods", ns, "hl-alpha"));
    return isReady(p) && p.status?.podIP ? p : undefined;
  });
  await readyPods(c, ns, "app=web", 2);
  await readyEndpoints(c, ns, "web", 2);
  t.is(alpha!.metadata.name, "hl-alpha");
  const alphaIP = alpha!.status!.podIP!;
  const q = (name: string, type: string, ok: (a: DnsAnswer) => boolean, opts: { tcp?: boolean } = {}) => dnsEventually(c, ns, "client", name, type, ok, opts);

  // A ClusterIP Service: its A record is the ClusterIP, over UDP and TCP, authoritative.
  const svcName = `web.${ns}.svc.${zone}`;
  for (const tcp of [false, true]) {
    const a = await q(svcName, "A", (x) => x.rcode === "NOERROR" && answerData(x, "A").length > 0, { tcp });
    t.deepEqual(answerData(a, "A"), [web.spec.clusterIP!], `A ${svcName} over ${tcp ? "TCP" : "UDP"}`);
    t.true(a.aa, "the cluster zone is answered authoritatively");
  }
  // SRV for each named port: _port._proto.svc -> port and the Service's name.
  t.deepEqual(answerData(await q(`_http._tcp.${svcName}`, "SRV", (x) => x.rcode === "NOERROR"), "SRV"), [`80 ${svcName}`]);
  t.deepEqual(answerData(await q(`_udp._udp.${svcName}`, "SRV", (x) => x.rcode === "NOERROR"), "SRV"), [`81 ${svcName}`]);
  // Names that do not exist: NXDOMAIN (a missing Service, a port name the Service does not have).
  t.is((await podDnsQuery(c, ns, "client", `nosuch.${ns}.svc.${zone}`, "A")).rcode, "NXDOMAIN");
  t.is((await podDnsQuery(c, ns, "client", `_nosuch._tcp.${svcName}`, "SRV")).rcode, "NXDOMAIN");

  // Headless: A records for the ready pods only; hostname records; SRV pointing at the hostnames.
  const hl = `hl.${ns}.svc.${zone}`;
  t.deepEqual(answerData(await q(hl, "A", (x) => answerData(x, "A").length === 1), "A"), [alphaIP], `A ${hl}: the ready pod only`);
  t.deepEqual(answerData(await q(`alpha.${hl}`, "A", (x) => x.rcode === "NOERROR"), "A"), [alphaIP], `A alpha.${hl}`);
  t.is((await podDnsQuery(c, ns, "client", `beta.${hl}`, "A")).rcode, "NXDOMAIN", "a pod that is not Ready has no hostname record");
  t.deepEqual(answerData(await q(`_http._tcp.${hl}`, "SRV", (x) => answerData(x, "SRV").length === 1), "SRV"), [`8080 alpha.${hl}`]);

  // beta turns Ready: it joins the headless answers and gets its hostname record.
  writeFileSync(betaReady, "");
  const pods = await readyPods(c, ns, "app=hl", 2);
  const betaIP = pods.find((p) => p.metadata.name === "hl-beta")!.status!.podIP!;
  t.deepEqual(answerData(await q(hl, "A", (x) => answerData(x, "A").length === 2), "A"), [alphaIP, betaIP].sort(), `A ${hl}: both pods once Ready`);
  t.deepEqual(answerData(await q(`beta.${hl}`, "A", (x) => x.rcode === "NOERROR"), "A"), [betaIP]);
  t.deepEqual(answerData(await q(`_http._tcp.${hl}`, "SRV", (x) => answerData(x, "SRV").length === 2), "SRV"), [`8080 alpha.${hl}`, `8080 beta.${hl}`]);

  // Pod records: a-b-c-d.<ns>.pod.<zone>.
  const podIP = client!.status!.podIP!;
  t.deepEqual(answerData(await q(`${dashed(podIP)}.${ns}.pod.${zone}`, "A", (x) => x.rcode === "NOERROR"), "A"), [podIP]);

  // The same names through the pod's own resolver (glibc, /etc/resolv.conf): short names work by search path.
  t.regex(await podRun(c, ns, "client", ["getent", "hosts", "web"]), new RegExp(`^${web.spec.clusterIP!.replace(/\./g, "\\.")}\\s`));
  t.regex(await podRun(c, ns, "client", ["getent", "hosts", "alpha.hl"]), new RegExp(`^${alphaIP.replace(/\./g, "\\.")}\\s`));
});

test("a Service of type ExternalName resolves as a CNAME and can be changed to ClusterIP", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "dnsext");
  const zone = c.cfg.domain;
  await createDeployment(c, ns, deploymentManifest("backend", 2, { containers: [netexecContainer()] }));
  await createPod(c, ns, podManifest("client", { containers: [netexecContainer()] }, { role: "client" }));
  await createService(c, ns, { metadata: { name: "ext" }, spec: { type: "ExternalName", externalName: "foo.example.com" } });
  await readyPods(c, ns, "role=client", 1);
  const name = `ext.${ns}.svc.${zone}`;

  const cname = await dnsEventually(c, ns, "client", name, "CNAME", (a) => a.rcode === "NOERROR");
  t.deepEqual(answerData(cname, "CNAME"), ["foo.example.com"]);
  // ExternalName Services get no proxy rules and no ClusterIP.
  const stored = await c.api.get<Service>(resourcePath("services", ns, "ext"));
  t.falsy(stored.spec.clusterIP);

  // A new external name is followed.
  await c.api.patch(resourcePath("services", ns, "ext"), { spec: { externalName: "bar.example.com" } });
  await dnsEventually(c, ns, "client", name, "CNAME", (a) => answerData(a, "CNAME")[0] === "bar.example.com");

  // To ClusterIP: the name now has an A record with the allocated ClusterIP, and traffic flows.
  const changed = await c.api.patch<Service>(resourcePath("services", ns, "ext"), {
    spec: { type: "ClusterIP", externalName: null, selector: { app: "backend" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
  });
  const vip = changed.spec.clusterIP;
  t.truthy(vip, "a ClusterIP is allocated");
  const a = await dnsEventually(c, ns, "client", name, "A", (x) => answerData(x, "A").length > 0);
  t.deepEqual(answerData(a, "A"), [vip!]);
  t.deepEqual(answerData(a, "CNAME"), [], "no CNAME any more");
  await readyEndpoints(c, ns, "ext", 2);
  const backends = new Set((await readyPods(c, ns, "app=backend", 2)).map((p) => p.metadata.name!));
  const hostname = await eventually("curl http://ext/hostname from the client", async () => {
    const r = await execInPod(c, ns, "client", ["curl", "-sS", "--max-time", "3", "http://ext/hostname"]);
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  });
  t.true(backends.has(hostname), `answered by ${hostname}`);
});

test("each pod's /etc/resolv.conf follows its dnsPolicy, and the ClusterFirst search path finds Services", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "resolv");
  const other = await testNamespace(t, c, "resolv2");
  const zone = c.cfg.domain;
  await createDeployment(c, ns, deploymentManifest("web", 1, { containers: [netexecContainer()] }));
  await createService(c, ns, { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] } });
  const sleeper = () => [{ name: "main", image: "busybox", command: ["sleep", "infinity"] }];
  await createPod(c, ns, podManifest("first", { containers: sleeper() }, { role: "dns" }));
  await createPod(c, ns, podManifest("default", { containers: sleeper(), dnsPolicy: "Default" }, { role: "dns" }));
  await createPod(c, ns, podManifest("none", { containers: sleeper(), dnsPolicy: "None", dnsConfig: { nameservers: ["192.0.2.53"], searches: ["example.test"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] } }, { role: "dns" }));
  await createPod(c, ns, podManifest("merged", { containers: sleeper(), dnsConfig: { searches: ["extra.test"], options: [{ name: "ndots", value: "3" }] } }, { role: "dns" }));
  await createPod(c, other, podManifest("elsewhere", { containers: sleeper() }, { role: "dns" }));
  await readyPods(c, ns, "role=dns", 4);
  await readyPods(c, other, "role=dns", 1);
  await readyEndpoints(c, ns, "web", 1);

  const resolv = async (namespace: string, pod: string) => {
    const lines = (await podRun(c, namespace, pod, ["cat", "/etc/resolv.conf"])).split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    return lines;
  };
  const hostResolv = readFileSync("/etc/resolv.conf", "utf8").split("\n").map((l) => l.trim()).filter((l) => /^nameserver\s/.test(l));

  const first = await resolv(ns, "first");
  t.deepEqual(first.filter((l) => l.startsWith("nameserver")), [`nameserver ${c.cfg.dnsIP}`], "ClusterFirst: the cluster DNS only");
  t.true(first.find((l) => l.startsWith("search"))?.startsWith(`search ${ns}.svc.${zone} svc.${zone} ${zone}`), `ClusterFirst search: ${first.join(" | ")}`);
  t.true(first.includes("options ndots:5"), `ClusterFirst options: ${first.join(" | ")}`);

  const dflt = await resolv(ns, "default");
  t.deepEqual(dflt.filter((l) => l.startsWith("nameserver")), hostResolv, "Default: the node's nameservers");
  t.false(dflt.some((l) => l.includes(`svc.${zone}`)), "Default: no cluster search path");

  t.deepEqual((await resolv(ns, "none")).sort(), ["nameserver 192.0.2.53", "options ndots:2 edns0", "search example.test"], "None: exactly the pod's dnsConfig");

  const merged = await resolv(ns, "merged");
  t.deepEqual(merged.filter((l) => l.startsWith("nameserver")), [`nameserver ${c.cfg.dnsIP}`]);
  t.true(merged.find((l) => l.startsWith("search"))!.endsWith(" extra.test"), `dnsConfig searches are appended: ${merged.join(" | ")}`);
  t.true(merged.includes("options ndots:3"), `dnsConfig options win: ${merged.join(" | ")}`);

  // The search path at work: `web` from the same namespace, `web.<ns>` from another one.
  const curl = (namespace: string, pod: string, url: string) => execInPod(c, namespace, pod, ["curl", "-sS", "--max-time", "5", url]);
  const webPod = (await readyPods(c, ns, "app=web", 1))[0]!.metadata.name!;
  const same = await eventually("curl http://web/hostname", async () => {
    const r = await curl(ns, "first", "http://web/hostname");
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  });
  t.is(same, webPod);
  const cross = await curl(other, "elsewhere", `http://web.${ns}/hostname`);
  t.is(cross.exitCode, 0, cross.stderr);
  t.is(cross.stdout.trim(), webPod);
  const wrong = await curl(other, "elsewhere", "http://web/hostname");
  t.is(wrong.exitCode, 6, `"web" must not resolve in another namespace: ${wrong.stderr.trim()}`);
});

test("a pod created after a Service gets its environment variables; one created before or with enableServiceLinks false does not", async (t) => {
  const c = cluster();
  const ns = await testNamespace(t, c, "svcenv");
  const sleeper = () => [{ name: "main", image: "busybox", command: ["sleep", "infinity"] }];
  await createPod(c, ns, podManifest("before", { containers: sleeper() }, { role: "env" }));
  await readyPods(c, ns, "role=env", 1);
  const svc = await createService(c, ns, {
    metadata: { name: "fooservice-x" },
    spec: { selector: { app: "none" }, ports: [{ name: "http", port: 8765, targetPort: 8080 }, { name: "dns-udp", port: 53, targetPort: 53, protocol: "UDP" }] },
  });
  // Another namespace's Services are not the pod's business.
  const elsewhere = uniqueName("svcenvo");
  await c.api.create<Namespace>(resourcePath("namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name: elsewhere } });
  t.teardown(async () => {
    await c.api.delete(resourcePath("namespaces", undefined, elsewhere)).catch(() => undefined);
  });
  await createService(c, elsewhere, { metadata: { name: "otherns" }, spec: { selector: { app: "none" }, ports: [{ port: 80, targetPort: 80 }] } });
  // Give the kubelets' Service watches a moment to see them: wait until the API lists both.
  await eventually("the Services to be listed", async () => ((await c.api.list<Service>(resourcePath("services"))).items.filter((s) => s.metadata.name === "fooservice-x" || s.metadata.name === "otherns").length === 2 ? true : undefined));
  await createPod(c, ns, podManifest("after", { containers: sleeper() }, { role: "env" }));
  await createPod(c, ns, podManifest("nolinks", { containers: sleeper(), enableServiceLinks: false }, { role: "env" }));
  await readyPods(c, ns, "role=env", 3);

  const env = async (pod: string) => {
    const out = await podRun(c, ns, pod, ["env"]);
    return new Map(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as [string, string]));
  };
  const ip = svc.spec.clusterIP!;
  const after = await env("after");
  const want: Record<string, string> = {
    FOOSERVICE_X_SERVICE_HOST: ip,
    FOOSERVICE_X_SERVICE_PORT: "8765",
    FOOSERVICE_X_SERVICE_PORT_HTTP: "8765",
    FOOSERVICE_X_SERVICE_PORT_DNS_UDP: "53",
    FOOSERVICE_X_PORT: `tcp://${ip}:8765`,
    FOOSERVICE_X_PORT_8765_TCP: `tcp://${ip}:8765`,
    FOOSERVICE_X_PORT_8765_TCP_PROTO: "tcp",
    FOOSERVICE_X_PORT_8765_TCP_PORT: "8765",
    FOOSERVICE_X_PORT_8765_TCP_ADDR: ip,
    FOOSERVICE_X_PORT_53_UDP: `udp://${ip}:53`,
    FOOSERVICE_X_PORT_53_UDP_PROTO: "udp",
    FOOSERVICE_X_PORT_53_UDP_PORT: "53",
    FOOSERVICE_X_PORT_53_UDP_ADDR: ip,
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
    KUBERNETES_SERVICE_PORT: "443",
  };
  for (const [k, v] of Object.entries(want)) t.is(after.get(k), v, k);
  t.false([...after.keys()].some((k) => k.startsWith("OTHERNS_")), "no variables for another namespace's Service");

  const before = await env("before");
  t.false([...before.keys()].some((k) => k.startsWith("FOOSERVICE_X_")), "a pod started before the Service has no variables for it");
  t.is(before.get("KUBERNETES_SERVICE_HOST"), "10.96.0.1");
  const nolinks = await env("nolinks");
  t.false([...nolinks.keys()].some((k) => k.startsWith("FOOSERVICE_X_")), "enableServiceLinks: false");
  t.is(nolinks.get("KUBERNETES_SERVICE_HOST"), "10.96.0.1", "the master Service is always there");
});
