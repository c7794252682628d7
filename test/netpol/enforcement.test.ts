// NetworkPolicy enforcement in the kernel: pods made by the bridge plugin in a node netns, a
// "remote" netns routed through the node, the table rendered from policies and applied with nft,
// and real TCP connections that the table lets through or drops.
import test, { type ExecutionContext } from "ava";
import { execa } from "execa";
import type { NetworkPolicy, Pod } from "../../apiserver/types.ts";
import { makeRunner, nftApply, systemBinary } from "../../kube-proxy/exec.ts";
import { computeIsolation } from "../../netpol/model.ts";
import { renderTable, TABLE } from "../../netpol/render.ts";
import { call, conf, ipOf, pod, setup, startWhoAmI, whoAmI, type Env } from "../cni/bridge-fixture.ts";
import { createNetns, inNetns, linkNetns, type Netns } from "../helpers/netns.ts";

const NODE = "node-x";

function podObject(name: string, ip: string, labels: Record<string, string>, ports: { name: string; containerPort: number }[] = []): Pod {
  return {
    metadata: { name, namespace: "default", labels },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "x", ports }] },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  } as Pod;
}

function policy(name: string, spec: NetworkPolicy["spec"]): NetworkPolicy {
  return { metadata: { name, namespace: "default" }, spec };
}

interface World {
  e: Env;
  pods: Record<"a" | "b" | "c", { ns: Netns; ip: string }>;
  remote: Netns;
}

async function world(t: ExecutionContext): Promise<World> {
  const e = await setup(t);
  const c = conf(e, { isGateway: true, isDefaultGateway: true }, ["10.99.0.0/24"]);
  const pods = {} as World["pods"];
  for (const name of ["a", "b", "c"] as const) {
    const ns = await pod(t);
    const add = await call(e, ns, c, "ADD", { containerID: `c${name}` });
    if (add.code !== 0) throw new Error(`bridge ADD for ${name}: ${add.stdout}`);
    pods[name] = { ns, ip: ipOf(add.json.ips[0].address) };
  }
  // A netns behind the node, as another node or an outside client would be.
  const remote = await createNetns(t, "npr");
  await linkNetns(e.node, "rem0", "10.98.0.1/24", remote, "eth0", "10.98.0.2/24");
  await execa("ip", ["-n", remote.name, "route", "add", "10.99.0.0/24", "via", "10.98.0.1"]);
  await inNetns(e.node, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  for (const p of Object.values(pods)) {
    await startWhoAmI(t, p.ns, "0.0.0.0", 8080);
    await startWhoAmI(t, p.ns, "0.0.0.0", 9090);
  }
  await startWhoAmI(t, remote, "0.0.0.0", 8080);
  return { e, pods, remote };
}

/** Renders what `policies` mean for the world's pods and applies it in the node netns. */
async function enforce(w: World, policies: NetworkPolicy[]): Promise<string> {
  const objects = [
    podObject("a", w.pods.a.ip, { app: "a" }),
    podObject("b", w.pods.b.ip, { app: "b" }, [{ name: "http", containerPort: 9090 }]),
    podObject("c", w.pods.c.ip, { app: "c" }),
  ];
  const script = renderTable(computeIsolation({ nodeName: NODE, pods: objects, namespaces: [], policies }));
  await nftApply(makeRunner(w.e.node.path), script);
  return script;
}

/** Whether a new TCP connection from `from` to ip:port gets an answer (1 s, then it counts as dropped). */
async function reaches(from: Netns, ip: string, port: number): Promise<boolean> {
  return (await whoAmI(from, ip, port, ["--max-time", "1"])) !== undefined;
}

test("policies isolate pods for ingress and egress, by pod label, port, named port and ipBlock", async (t) => {
  const w = await world(t);
  const { a, b, c } = w.pods;

  await enforce(w, []);
  t.true(await reaches(a.ns, b.ip, 8080), "no policy: a -> b");
  t.true(await reaches(w.remote, b.ip, 8080), "no policy: remote -> b");

  // Default deny for b's ingress: nothing reaches b, b still reaches others (egress not isolated).
  await enforce(w, [policy("deny-b", { podSelector: { matchLabels: { app: "b" } }, policyTypes: ["Ingress"] })]);
  t.false(await reaches(a.ns, b.ip, 8080), "deny: a -> b dropped");
  t.false(await reaches(w.remote, b.ip, 8080), "deny: remote -> b dropped");
  t.true(await reaches(b.ns, a.ip, 8080), "deny: b -> a (replies of b's own connections pass)");
  t.true(await reaches(a.ns, c.ip, 8080), "deny: a -> c, c is not selected");
  const drops = await execa(systemBinary("nft"), ["list", "chain", "inet", TABLE, "ingress_default_b"], { reject: false });
  t.is(drops.exitCode, 1, "the table lives in the node netns, not the root netns");
  const inNode = String((await inNetns(w.e.node, systemBinary("nft"), ["list", "chain", "inet", TABLE, "ingress_default_b"])).stdout);
  t.regex(inNode, /counter packets [1-9]\d* bytes \d+ drop/, "the drop rule counted the dropped packets");

  // Allow from pods labelled app=a to port 8080 only.
  const allowA = policy("allow-a", { podSelector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ protocol: "TCP", port: 8080 }] }] });
  await enforce(w, [allowA]);
  t.true(await reaches(a.ns, b.ip, 8080), "allow-a: a -> b:8080");
  t.false(await reaches(a.ns, b.ip, 9090), "allow-a: a -> b:9090 dropped");
  t.false(await reaches(c.ns, b.ip, 8080), "allow-a: c -> b:8080 dropped");

  // A named port resolves on b's own container ports: "http" is 9090 there.
  await enforce(w, [policy("named", { podSelector: { matchLabels: { app: "b" } }, ingress: [{ ports: [{ port: "http" }] }] })]);
  t.true(await reaches(c.ns, b.ip, 9090), "named: c -> b:9090 (http)");
  t.false(await reaches(c.ns, b.ip, 8080), "named: c -> b:8080 dropped");

  // Egress of a: only to 10.98.0.0/24 less 10.98.0.2, and to pods labelled app=c.
  const egress = policy("egress-a", {
    podSelector: { matchLabels: { app: "a" } },
    policyTypes: ["Egress"],
    egress: [{ to: [{ ipBlock: { cidr: "10.98.0.0/16" } }] }, { to: [{ podSelector: { matchLabels: { app: "c" } } }] }],
  });
  await enforce(w, [egress]);
  t.true(await reaches(a.ns, "10.98.0.2", 8080), "egress: a -> remote inside the ipBlock");
  t.true(await reaches(a.ns, c.ip, 8080), "egress: a -> c");
  t.false(await reaches(a.ns, b.ip, 8080), "egress: a -> b dropped");
  t.true(await reaches(b.ns, a.ip, 8080), "egress: b -> a, a's ingress is not isolated");
  egress.spec.egress![0]!.to![0]!.ipBlock!.except = ["10.98.0.2/32"];
  await enforce(w, [egress]);
  t.false(await reaches(a.ns, "10.98.0.2", 8080), "egress: a -> remote, now in the except list, dropped");

  // Both ends isolated on the same node: a's egress and b's ingress must both allow.
  const bFromA = policy("b-from-a", { podSelector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }] });
  const aToB = policy("a-to-b", { podSelector: { matchLabels: { app: "a" } }, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 9090 }] }] });
  await enforce(w, [bFromA, aToB]);
  t.true(await reaches(a.ns, b.ip, 9090), "both: a -> b:9090");
  t.false(await reaches(a.ns, b.ip, 8080), "both: a -> b:8080, a's egress drops it");
  t.false(await reaches(c.ns, b.ip, 9090), "both: c -> b:9090, b's ingress drops it");

  await enforce(w, []);
  t.true(await reaches(c.ns, b.ip, 8080), "policies gone: c -> b again");
});
