// What a node enforces for a set of objects (netpol/model.ts), and that the rendered table is
// one nft accepts (checked with `nft -c` in a throwaway netns).
import test from "ava";
import type { Namespace, NetworkPolicy, Pod } from "../../apiserver/types.ts";
import { makeRunner, nftApply, systemBinary } from "../../kube-proxy/exec.ts";
import { computeIsolation, policyTypesOf, type IsolatedPod } from "../../netpol/model.ts";
import { podChain, renderTable } from "../../netpol/render.ts";
import { createNetns, inNetns } from "../helpers/netns.ts";

interface PodOpts {
  ns?: string;
  node?: string;
  labels?: Record<string, string>;
  ips?: string[];
  ports?: { name: string; containerPort: number; protocol?: "TCP" | "UDP" }[];
  hostNetwork?: boolean;
  phase?: "Running" | "Succeeded";
}

function mkPod(name: string, o: PodOpts = {}): Pod {
  const ips = o.ips ?? [];
  return {
    metadata: { name, namespace: o.ns ?? "default", labels: o.labels ?? {} },
    spec: { nodeName: o.node ?? "n1", hostNetwork: o.hostNetwork, containers: [{ name: "c", image: "x", ports: o.ports ?? [] }] },
    status: { phase: o.phase ?? "Running", podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  } as Pod;
}

const mkNs = (name: string, labels: Record<string, string> = {}): Namespace => ({ metadata: { name, labels } }) as Namespace;
const mkPolicy = (name: string, spec: NetworkPolicy["spec"], ns = "default"): NetworkPolicy => ({ metadata: { name, namespace: ns }, spec });

const byKey = (r: IsolatedPod[], key: string) => r.find((p) => p.key === key);

test("policyTypes default to Ingress, plus Egress when egress rules exist", (t) => {
  t.deepEqual(policyTypesOf(mkPolicy("p", { podSelector: {} })), { ingress: true, egress: false });
  t.deepEqual(policyTypesOf(mkPolicy("p", { podSelector: {}, egress: [{}] })), { ingress: true, egress: true });
  t.deepEqual(policyTypesOf(mkPolicy("p", { podSelector: {}, policyTypes: ["Egress"] })), { ingress: false, egress: true });
});

test("only this node's networked pods in the policy's namespace are isolated", (t) => {
  const pods = [
    mkPod("web", { ips: ["10.244.1.2"], labels: { app: "web" } }),
    mkPod("other-node", { node: "n2", ips: ["10.244.2.2"], labels: { app: "web" } }),
    mkPod("host", { ips: ["198.18.0.11"], labels: { app: "web" }, hostNetwork: true }),
    mkPod("done", { ips: ["10.244.1.9"], labels: { app: "web" }, phase: "Succeeded" }),
    mkPod("no-ip", { labels: { app: "web" } }),
    mkPod("web", { ns: "prod", ips: ["10.244.1.3"], labels: { app: "web" } }),
  ];
  const r = computeIsolation({ nodeName: "n1", pods, namespaces: [], policies: [mkPolicy("deny", { podSelector: { matchLabels: { app: "web" } } })] });
  t.deepEqual(r.map((p) => p.key), ["default/web"]);
  t.deepEqual(r[0]!.ingress, [], "ingress: [] allows nothing");
  t.is(r[0]!.egress, undefined, "egress is not isolated");
  t.deepEqual(r[0]!.policies, ["default/deny"]);
});

test("peers: podSelector in the policy's namespace, namespaceSelector, both, and ipBlock with except", (t) => {
  const pods = [
    mkPod("target", { ips: ["10.244.1.2"], labels: { app: "db" } }),
    mkPod("fe", { ips: ["10.244.2.5"], node: "n2", labels: { role: "fe" } }),
    mkPod("fe", { ns: "prod", ips: ["10.244.2.6"], node: "n2", labels: { role: "fe" } }),
    mkPod("mon", { ns: "prod", ips: ["10.244.3.7", "fd00::7"], node: "n3", labels: { role: "mon" } }),
  ];
  const namespaces = [mkNs("default"), mkNs("prod", { env: "prod" })];
  const policies = [
    mkPolicy("db", {
      podSelector: { matchLabels: { app: "db" } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { role: "fe" } } }] },
        { from: [{ namespaceSelector: { matchLabels: { env: "prod" } } }], ports: [{ protocol: "UDP", port: 53 }, { port: 8000, endPort: 8080 }] },
        { from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "prod" } }, podSelector: { matchLabels: { role: "mon" } } }] },
        { from: [{ ipBlock: { cidr: "192.168.7.9/16", except: ["192.168.8.0/24", "fd00::/64"] } }] },
        { from: [{ podSelector: { matchLabels: { role: "nobody" } } }] },
      ],
    }),
  ];
  const [db] = computeIsolation({ nodeName: "n1", pods, namespaces, policies });
  const peers = db!.ingress!.map((a) => ({ source: a.source, peer: a.peer, ports: a.ports }));
  t.deepEqual(peers, [
    { source: "default/db ingress[0]", peer: { kind: "addresses", family: "ip", addresses: ["10.244.2.5"] }, ports: "any" },
    { source: "default/db ingress[1]", peer: { kind: "addresses", family: "ip", addresses: ["10.244.2.6", "10.244.3.7"] }, ports: [{ protocol: "udp", first: 53, last: 53 }, { protocol: "tcp", first: 8000, last: 8080 }] },
    { source: "default/db ingress[1]", peer: { kind: "addresses", family: "ip6", addresses: ["fd00::7"] }, ports: [{ protocol: "udp", first: 53, last: 53 }, { protocol: "tcp", first: 8000, last: 8080 }] },
    { source: "default/db ingress[2]", peer: { kind: "addresses", family: "ip", addresses: ["10.244.3.7"] }, ports: "any" },
    { source: "default/db ingress[2]", peer: { kind: "addresses", family: "ip6", addresses: ["fd00::7"] }, ports: "any" },
    // Host bits cleared; an except entry of the other family is dropped.
    { source: "default/db ingress[3]", peer: { kind: "block", family: "ip", cidr: "192.168.0.0/16", except: ["192.168.8.0/24"] }, ports: "any" },
  ]);
});

test("named ports: ingress resolves them on the isolated pod, egress on each destination pod", (t) => {
  const pods = [
    mkPod("srv", { ips: ["10.244.1.2"], labels: { app: "srv" }, ports: [{ name: "http", containerPort: 8080 }, { name: "dns", containerPort: 5353, protocol: "UDP" }] }),
    mkPod("cli", { ips: ["10.244.1.3"], labels: { app: "cli" } }),
    mkPod("srv2", { ips: ["10.244.2.2"], node: "n2", labels: { app: "srv" }, ports: [{ name: "http", containerPort: 9000 }] }),
  ];
  const policies = [
    mkPolicy("in", { podSelector: { matchLabels: { app: "srv" } }, ingress: [{ ports: [{ port: "http" }, { port: "dns", protocol: "UDP" }, { port: "nope" }] }] }),
    mkPolicy("out", { podSelector: { matchLabels: { app: "cli" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: { matchLabels: { app: "srv" } } }, { ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ port: "http" }] }] }),
  ];
  const r = computeIsolation({ nodeName: "n1", pods, namespaces: [], policies });
  t.deepEqual(byKey(r, "default/srv")!.ingress![0]!.ports, [{ protocol: "tcp", first: 8080, last: 8080 }, { protocol: "udp", first: 5353, last: 5353 }]);
  const out = byKey(r, "default/cli")!.egress!;
  t.deepEqual(
    out.map((a) => [a.peer, a.ports]),
    [
      [{ kind: "addresses", family: "ip", addresses: ["10.244.1.2"] }, [{ protocol: "tcp", first: 8080, last: 8080 }]],
      [{ kind: "addresses", family: "ip", addresses: ["10.244.2.2"] }, [{ protocol: "tcp", first: 9000, last: 9000 }]],
    ],
    "one allowance per resolved port; the ipBlock gets none (a name means nothing outside the pods)",
  );
});

test("the rendered table passes nft's check, jumps per pod address and drops what no rule allows", async (t) => {
  const pods = [
    mkPod("a", { ips: ["10.244.1.2", "fd00:1::2"], labels: { app: "a" } }),
    mkPod("b", { ips: ["10.244.1.3"], labels: { app: "b" }, ports: [{ name: "http", containerPort: 80 }] }),
  ];
  const policies = [
    mkPolicy("a", {
      podSelector: { matchLabels: { app: "a" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }, { podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }, { port: 90, endPort: 99 }, { protocol: "SCTP" }] }],
      egress: [{ to: [{ podSelector: {} }], ports: [{ port: "http" }] }, {}],
    }),
  ];
  const script = renderTable(computeIsolation({ nodeName: "n1", pods, namespaces: [], policies }));
  t.regex(script, /10\.244\.1\.2 : jump ingress_default_a/);
  t.regex(script, /fd00:1::2 : jump egress_default_a/);
  t.regex(script, /ip saddr 10\.0\.0\.0\/8 ip saddr != \{ 10\.1\.0\.0\/16 \} tcp dport \{ 80, 90-99 \} accept/);
  t.regex(script, /ip saddr 10\.0\.0\.0\/8 ip saddr != \{ 10\.1\.0\.0\/16 \} meta l4proto sctp accept/);
  t.regex(script, /ip daddr \{ 10\.244\.1\.3 \} tcp dport \{ 80 \} return/);
  t.is(podChain("ingress", "default/a"), "ingress_default_a");
  // Pod names may be 253 characters: long keys keep a distinct, bounded chain name.
  const long = (c: string) => `default/${"x".repeat(240)}${c}`;
  t.not(podChain("egress", long("a")), podChain("egress", long("b")));
  t.true(podChain("egress", long("a")).length <= 200);
  const ns = await createNetns(t, "npm");
  await t.notThrowsAsync(nftApply(makeRunner(ns.path), script));
  const listed = String((await inNetns(ns, systemBinary("nft"), ["list", "table", "inet", "podnet-netpol"])).stdout);
  t.regex(listed, /chain egress_default_a \{/);
  t.regex(listed, /ct state established,related accept/);
  // A second application replaces the table instead of adding to it.
  await nftApply(makeRunner(ns.path), script);
  const again = String((await inNetns(ns, systemBinary("nft"), ["list", "table", "inet", "podnet-netpol"])).stdout);
  t.is(again.split("chain egress_default_a {").length, 2);
});
