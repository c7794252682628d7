// NetworkPolicy on a 3-node cluster, after Kubernetes' sig-network netpol e2e tests: a server
// pod, clients on the same node and on other nodes and in another namespace; policies created
// through the API; every check a real connection (netexec's /dial) to the server's pod IP and to
// its Service's ClusterIP. Each step waits until the server's node has programmed the policy,
// then expects every try to pass or every try to fail.
import anyTest, { type TestFn } from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Namespace, NetworkPolicy } from "../../apiserver/types.ts";
import { execInPod } from "../../cluster/probe.ts";
import { systemBinary } from "../../kube-proxy/exec.ts";
import { eventually, useCluster, type TestCluster } from "../helpers/cluster.ts";
import { netexecContainer, podManifest, readyPods, testNamespace, inNetns } from "./cluster-helpers.ts";
import { createPod, createService, podDial } from "./services-helpers.ts";

const test = anyTest as TestFn;
const cluster = useCluster(test);

async function createPolicy(c: TestCluster, ns: string, name: string, spec: NetworkPolicy["spec"]): Promise<NetworkPolicy> {
  return c.api.create<NetworkPolicy>(resourcePath("networkpolicies", ns), { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
}

/** Waits until `node`'s policy table says `text` (a rule comment) is present, or absent. */
async function programmed(c: TestCluster, node: string, text: string, present = true): Promise<void> {
  const netns = c.layout.nodes.find((n) => n.name === node)!.netns;
  await eventually(`${node}: "${text}" ${present ? "in" : "gone from"} table inet podnet-netpol`, async () => {
    const listing = await inNetns(netns, [systemBinary("nft"), "list", "table", "inet", "podnet-netpol"]);
    return listing.includes(text) === present ? true : undefined;
  });
}

/** "pass" when every try answered, "fail" when none did (anything else is an error). */
async function verdict(c: TestCluster, ns: string, client: string, host: string, port: number, tries: number): Promise<"pass" | "fail"> {
  const r = await podDial(c, ns, client, { protocol: "http", host, port, tries });
  if (r.responses.length === tries) return "pass";
  if (r.responses.length === 0) return "fail";
  throw new Error(`${client} -> ${host}:${port}: mixed result ${JSON.stringify(r)}`);
}

test("NetworkPolicy: default deny, allow by pod and namespace label and port, egress with DNS, across nodes", async (t) => {
  const c = cluster();
  const [n1, n2, n3] = c.layout.nodes.map((n) => n.name);
  const ns = await testNamespace(t, c, "netpol");
  const other = await testNamespace(t, c, "netpolb");
  await c.api.patch<Namespace>(resourcePath("namespaces", undefined, other), { metadata: { labels: { team: "b" } } }, { type: "merge" });

  const server = podManifest("server", { nodeName: n1, containers: [netexecContainer()] }, { app: "server" });
  await createPod(c, ns, server);
  await createPod(c, ns, podManifest("near", { nodeName: n1, containers: [netexecContainer()] }, { role: "allowed" }));
  await createPod(c, ns, podManifest("far", { nodeName: n2, containers: [netexecContainer()] }, { role: "allowed" }));
  await createPod(c, ns, podManifest("stranger", { nodeName: n3, containers: [netexecContainer()] }, { role: "other" }));
  await createPod(c, other, podManifest("visitor", { nodeName: n2, containers: [netexecContainer()] }, { role: "visitor" }));
  const svc = await createService(c, ns, { metadata: { name: "server" }, spec: { selector: { app: "server" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] } });
  const [srv] = await readyPods(c, ns, "app=server", 1);
  await readyPods(c, ns, "role", 3);
  await readyPods(c, other, "role=visitor", 1);
  const podIP = srv!.status!.podIP!;
  const vip = svc.spec.clusterIP!;
  const clients: [string, string][] = [[ns, "near"], [ns, "far"], [ns, "stranger"], [other, "visitor"]];
  // A dropped try costs netexec's 2 s dial timeout: one is enough to see a drop.
  const tries = { pass: 3, fail: 1 };
  const expectAll = async (step: string, want: Record<string, "pass" | "fail">, port = 8080, viaService = true) => {
    for (const [cns, client] of clients) {
      const targets: [string, number][] = [[podIP, port]];
      if (viaService && port === 8080) targets.push([vip, 80]);
      for (const [host, p] of targets) {
        const got = await eventually(`${step}: ${client} -> ${host}:${p} is ${want[client]}`, async () => ((await verdict(c, cns, client, host, p, tries[want[client]!])) === want[client] ? want[client] : undefined), 20_000);
        t.is(got, want[client], `${step}: ${client} -> ${host}:${p}`);
      }
    }
  };

  await expectAll("no policy", { near: "pass", far: "pass", stranger: "pass", visitor: "pass" });

  await createPolicy(c, ns, "deny-server", { podSelector: { matchLabels: { app: "server" } }, policyTypes: ["Ingress"] });
  await programmed(c, n1, `ingress of ${ns}/server not allowed by ${ns}/deny-server`);
  await expectAll("default deny", { near: "fail", far: "fail", stranger: "fail", visitor: "fail" });
  // The kubelet's readiness probes come from the node itself: the server stays Ready.
  t.is((await readyPods(c, ns, "app=server", 1)).length, 1);

  await createPolicy(c, ns, "allow-clients", {
    podSelector: { matchLabels: { app: "server" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { role: "allowed" } } }, { namespaceSelector: { matchLabels: { team: "b" } } }], ports: [{ port: "http" }] }],
  });
  await programmed(c, n1, `${ns}/allow-clients ingress[0]`);
  await expectAll("allow by label", { near: "pass", far: "pass", stranger: "fail", visitor: "pass" });

  // Egress: the stranger may only resolve names (port 53 anywhere), so it reaches nothing else.
  await c.api.delete(resourcePath("networkpolicies", ns, "deny-server"));
  await c.api.delete(resourcePath("networkpolicies", ns, "allow-clients"));
  await programmed(c, n1, `${ns}/allow-clients ingress[0]`, false);
  await createPolicy(c, ns, "stranger-dns-only", {
    podSelector: { matchLabels: { role: "other" } },
    policyTypes: ["Egress"],
    egress: [{ ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }] }],
  });
  await programmed(c, n3, `${ns}/stranger-dns-only egress[0]`);
  await expectAll("egress", { near: "pass", far: "pass", stranger: "fail", visitor: "pass" });
  const dns = await execInPod(c, ns, "stranger", ["getent", "hosts", `server.${ns}.svc.${c.cfg.domain}`]);
  t.is(dns.exitCode, 0, `DNS from the egress-isolated pod: ${dns.stderr}`);
  t.true(dns.stdout.startsWith(vip), dns.stdout);

  // The CLI lists it with the pod selector, as kubectl does.
  const listed = await c.podnet("get", "networkpolicies", "-n", ns);
  t.is(listed.exitCode, 0, listed.stderr);
  t.regex(listed.stdout, /stranger-dns-only\s+role=other/);
});
