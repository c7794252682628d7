// portmap's configuration handling: chaining, pass-through in every version, bad input refused
// with code 7 before anything changes (conditions cannot inject commands), CNI_ARGS, DEL/GC edges.
// The pod's address comes from a hand-written prevResult: portmap never enters the pod.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { callPlugin, OUR_BIN, OUR_NODE_BIN, type PluginOutput } from "../helpers/cni.ts";
import { createNetns, inNetns, type Netns } from "../helpers/netns.ts";
import { NFT, TABLE } from "./portmap-fixture.ts";

const PORTMAP = join(OUR_BIN, "portmap");
const POD_IP = "10.77.0.5";

function prevResult(podNetns: string, version = "1.1.0"): Record<string, unknown> {
  const v1 = version.startsWith("1.");
  return {
    cniVersion: version,
    interfaces: [{ name: "cni0", mac: "0a:58:0a:4d:00:01" }, { name: "eth0", mac: "0a:58:0a:4d:00:05", sandbox: podNetns }],
    ips: [{ ...(v1 ? {} : { version: "4" }), interface: 1, address: `${POD_IP}/24`, gateway: "10.77.0.1" }],
    routes: [{ dst: "0.0.0.0/0" }],
    dns: {},
  };
}

const MAPPINGS = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];

function conf(pod: Netns, extra: Record<string, unknown> = {}, version = "1.1.0"): Record<string, unknown> {
  return { cniVersion: version, name: "cfgnet", type: "portmap", runtimeConfig: { portMappings: MAPPINGS }, prevResult: prevResult(pod.path, version), ...extra };
}

interface Ctx {
  node: Netns;
  pod: Netns;
  call(command: "ADD" | "DEL" | "CHECK" | "GC", config: unknown, extra?: { args?: string; containerID?: string; plugin?: string }): Promise<PluginOutput>;
  tableExists(): Promise<boolean>;
}

async function setup(t: ExecutionContext): Promise<Ctx> {
  const node = await createNetns(t, "pcn");
  const pod = await createNetns(t, "pcp");
  return {
    node,
    pod,
    call: (command, config, extra = {}) =>
      callPlugin(node, extra.plugin ?? PORTMAP, config, { command, containerID: extra.containerID ?? "c1", netns: pod.path, ifname: "eth0", args: extra.args }),
    tableExists: async () => (await inNetns(node, NFT, ["list", "table", "inet", TABLE], { reject: false })).exitCode === 0,
  };
}

test("without prevResult ADD and CHECK fail as the reference does: must be called as chained plugin", async (t) => {
  const c = await setup(t);
  for (const command of ["ADD", "CHECK"] as const) {
    const r = await c.call(command, { ...conf(c.pod), prevResult: undefined });
    t.is(r.code, 1);
    t.is(r.json.code, 7);
    t.is(r.json.msg, "must be called as chained plugin");
  }
  t.false(await c.tableExists());
});

test("with no port mappings ADD passes prevResult through in every version and changes nothing", async (t) => {
  const c = await setup(t);
  for (const version of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    for (const runtimeConfig of [undefined, {}, { portMappings: [] }]) {
      const r = await c.call("ADD", { ...conf(c.pod, {}, version), runtimeConfig });
      t.is(r.code, 0, r.stdout);
      t.is(r.json.cniVersion, version);
      t.deepEqual(r.json.ips, (prevResult(c.pod.path, version) as any).ips);
      t.deepEqual(r.json.interfaces, (prevResult(c.pod.path, version) as any).interfaces);
    }
  }
  t.false(await c.tableExists(), "no table for a pod without host ports");
  const del = await c.call("DEL", { ...conf(c.pod), runtimeConfig: undefined });
  t.is(del.code, 0, del.stdout);
  t.false(await c.tableExists(), "DEL on a node without host ports creates nothing");
});

test("with mappings ADD passes prevResult through, converted to the config's version", async (t) => {
  const c = await setup(t);
  for (const version of ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    const r = await c.call("ADD", conf(c.pod, {}, version), { containerID: `c-${version}` });
    t.is(r.code, 0, r.stdout);
    t.is(r.json.cniVersion, version);
    t.deepEqual(r.json.ips, (prevResult(c.pod.path, version) as any).ips);
    t.deepEqual(r.json.routes, [{ dst: "0.0.0.0/0" }]);
  }
  t.true(await c.tableExists());
});

const BAD: [string, Record<string, unknown>, RegExp][] = [
  ["protocol icmp", { runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80, protocol: "icmp" }] } }, /protocol must be tcp, udp or sctp/],
  ["hostPort 0", { runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80, protocol: "tcp" }] } }, /hostPort must be a port number/],
  ["hostPort 70000", { runtimeConfig: { portMappings: [{ hostPort: 70000, containerPort: 80, protocol: "tcp" }] } }, /hostPort must be a port number/],
  ["containerPort as string", { runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: "80", protocol: "tcp" }] } }, /containerPort must be a port number/],
  ["hostIP not an address", { runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80, protocol: "tcp", hostIP: "node-1" }] } }, /hostIP must be an IP address/],
  ["portMappings not a list", { runtimeConfig: { portMappings: { hostPort: 80 } } }, /portMappings must be a list/],
  ["markMasqBit 32", { markMasqBit: 32 }, /markMasqBit must be an integer from 0 to 31/],
  ["snat not boolean", { snat: "yes" }, /snat must be a boolean/],
  ["masqAll not boolean", { masqAll: 1 }, /masqAll must be a boolean/],
  ["conditionsV4 not a list", { conditionsV4: "ip saddr 1.2.3.4" }, /conditionsV4 must be a list/],
  ["iptables conditions", { conditionsV4: ["-s 10.0.0.1"] }, /looks like an iptables condition/],
  ["backend iptables", { backend: "iptables" }, /backend "iptables" is not supported/],
  ["externalSetMarkChain", { externalSetMarkChain: "KUBE-MARK-MASQ" }, /externalSetMarkChain is an iptables option/],
];

for (const [what, extra, msg] of BAD) {
  test(`bad config is refused with code 7 before anything changes: ${what}`, async (t) => {
    const c = await setup(t);
    const r = await c.call("ADD", conf(c.pod, extra));
    t.is(r.code, 1, r.stdout);
    t.is(r.json.code, 7);
    t.regex(`${r.json.msg} ${r.json.details ?? ""}`, msg);
    t.false(await c.tableExists());
  });
}

const INJECTIONS = [
  "ip saddr 1.2.3.4; flush ruleset",
  "ip saddr 1.2.3.4\nflush ruleset",
  "ip saddr 1.2.3.4\rdelete table inet canary",
  "ip saddr { 1.2.3.4 } }; flush ruleset; add rule inet x y {",
  "ip saddr 1.2.3.4 # the rest of the rule is gone",
  "ip saddr 1.2.3.4 accept",
  "ip saddr 1.2.3.4 jump elsewhere",
  'iifname "eth0\\"; flush ruleset"',
  "ip saddr $evil",
];

test("conditions cannot inject nftables commands: each attempt is code 7 and the ruleset is untouched", async (t) => {
  const c = await setup(t);
  await inNetns(c.node, NFT, ["add", "table", "inet", "canary"]);
  for (const cond of INJECTIONS) {
    for (const key of ["conditionsV4", "conditionsV6"]) {
      const r = await c.call("ADD", conf(c.pod, { [key]: ["meta l4proto tcp", cond] }));
      t.is(r.code, 1, `${key} ${JSON.stringify(cond)}: ${r.stdout}`);
      t.is(r.json.code, 7, cond);
      t.regex(r.json.msg, new RegExp(`${key}\\[1\\]`), cond);
    }
  }
  t.is((await inNetns(c.node, NFT, ["list", "table", "inet", "canary"], { reject: false })).exitCode, 0, "canary table still there");
  t.false(await c.tableExists());
});

test("a condition nft cannot parse is code 7 and the transaction leaves nothing behind", async (t) => {
  const c = await setup(t);
  const r = await c.call("ADD", conf(c.pod, { conditionsV4: ["ip frobnicate 3"] }));
  t.is(r.code, 1, r.stdout);
  t.is(r.json.code, 7);
  t.regex(r.json.msg, /nftables rejected conditionsV4/);
  t.false(await c.tableExists());
  const ok = await c.call("ADD", conf(c.pod, { conditionsV4: ['iifname != "lo"', "ip daddr != 10.0.0.0/8", "ct state new"] }));
  t.is(ok.code, 0, ok.stdout);
  const check = await c.call("CHECK", conf(c.pod, { conditionsV4: ['iifname != "lo"', "ip daddr != 10.0.0.0/8", "ct state new"] }));
  t.is(check.code, 0, check.stdout);
});

test("protocol is case-insensitive and sctp is supported", async (t) => {
  const c = await setup(t);
  const portMappings = [
    { hostPort: 8080, containerPort: 80, protocol: "TCP" },
    { hostPort: 8053, containerPort: 53, protocol: "Udp" },
    { hostPort: 8132, containerPort: 132, protocol: "SCTP" },
  ];
  const r = await c.call("ADD", conf(c.pod, { runtimeConfig: { portMappings } }));
  t.is(r.code, 0, r.stdout);
  const text = String((await inNetns(c.node, NFT, ["list", "table", "inet", TABLE])).stdout);
  t.regex(text, /tcp dport 8080 dnat ip to 10\.77\.0\.5:80/);
  t.regex(text, /udp dport 8053 dnat ip to 10\.77\.0\.5:53/);
  t.regex(text, /sctp dport 8132 dnat ip to 10\.77\.0\.5:132/);
  t.is((await c.call("CHECK", conf(c.pod, { runtimeConfig: { portMappings } }))).code, 0);
});

test("prevResult without an address on CNI_IFNAME in the sandbox is code 7", async (t) => {
  const c = await setup(t);
  const prev = prevResult(c.pod.path);
  const hostSideOnly = { ...prev, ips: [{ interface: 0, address: "10.77.0.1/24" }] };
  const r = await c.call("ADD", conf(c.pod, { prevResult: hostSideOnly }));
  t.is(r.json?.code, 7, r.stdout);
  t.regex(r.json.msg, /no IP address on interface eth0/);
  const noIPs = { ...prev, ips: [] };
  t.is((await c.call("ADD", conf(c.pod, { prevResult: noIPs }))).json?.code, 7);
  t.false(await c.tableExists());
  // An address with no interface index is the container's, as with the reference.
  const unindexed = { cniVersion: "1.1.0", ips: [{ address: `${POD_IP}/24` }] };
  const ok = await c.call("ADD", conf(c.pod, { prevResult: unindexed }));
  t.is(ok.code, 0, ok.stdout);
});

test("CNI_ARGS: unknown keys are refused unless IgnoreUnknown; Kubernetes keys are known", async (t) => {
  const c = await setup(t);
  const bad = await c.call("ADD", conf(c.pod), { args: "FOO=bar" });
  t.is(bad.json?.code, 4, bad.stdout);
  t.false(await c.tableExists());
  const k8s = await c.call("ADD", conf(c.pod), { args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u" });
  t.is(k8s.code, 0, k8s.stdout);
  const ignored = await c.call("ADD", conf(c.pod), { args: "IgnoreUnknown=1;FOO=bar" });
  t.is(ignored.code, 0, ignored.stdout);
});

test("DEL without runtimeConfig or prevResult still removes the container's rules; DEL twice succeeds", async (t) => {
  const c = await setup(t);
  t.is((await c.call("ADD", conf(c.pod), { containerID: "keep" })).code, 0);
  t.is((await c.call("ADD", conf(c.pod), { containerID: "gone" })).code, 0);
  const chainsBefore = String((await inNetns(c.node, NFT, ["list", "chains", "inet"])).stdout).match(/chain hp-/g)!.length;
  t.is(chainsBefore, 6);
  const bare = { cniVersion: "1.1.0", name: "cfgnet", type: "portmap" };
  for (let i = 0; i < 2; i++) {
    const del = await c.call("DEL", bare, { containerID: "gone" });
    t.is(del.code, 0, del.stdout);
    t.is(del.stdout, "");
  }
  t.is(String((await inNetns(c.node, NFT, ["list", "chains", "inet"])).stdout).match(/chain hp-/g)!.length, 3);
  t.is((await c.call("CHECK", conf(c.pod), { containerID: "keep" })).code, 0, "the other container's rules are intact");
  t.is((await c.call("CHECK", conf(c.pod), { containerID: "gone" })).code, 1);
});

test("GC without cni.dev/valid-attachments is code 7; a malformed entry too", async (t) => {
  const c = await setup(t);
  const base = { cniVersion: "1.1.0", name: "cfgnet", type: "portmap" };
  const r = await callPlugin(c.node, PORTMAP, base, { command: "GC" });
  t.is(r.json?.code, 7, r.stdout);
  t.regex(r.json.msg, /cni\.dev\/valid-attachments/);
  const r2 = await callPlugin(c.node, PORTMAP, { ...base, "cni.dev/valid-attachments": [{ containerID: 5 }] }, { command: "GC" });
  t.is(r2.json?.code, 7, r2.stdout);
});

test("the Node bundle behaves the same: ADD, CHECK, DEL", async (t) => {
  const c = await setup(t);
  const plugin = join(OUR_NODE_BIN, "portmap");
  const add = await c.call("ADD", conf(c.pod), { plugin });
  t.is(add.code, 0, add.stdout);
  t.is((await c.call("CHECK", conf(c.pod), { plugin })).code, 0);
  t.is((await c.call("DEL", conf(c.pod), { plugin })).code, 0);
  t.is((await c.call("CHECK", conf(c.pod), { plugin })).code, 1);
});

test("concurrent ADDs and DELs of many containers on one node all succeed and leave exactly their rules", async (t) => {
  const c = await setup(t);
  const ids = Array.from({ length: 12 }, (_, i) => `ctr-${i}`);
  const confFor = (i: number) => conf(c.pod, { runtimeConfig: { portMappings: [{ hostPort: 9000 + i, containerPort: 80, protocol: i % 2 ? "udp" : "tcp" }] } });
  const adds = await Promise.all(ids.map((id, i) => c.call("ADD", confFor(i), { containerID: id })));
  for (const r of adds) t.is(r.code, 0, r.stdout);
  const checks = await Promise.all(ids.map((id, i) => c.call("CHECK", confFor(i), { containerID: id })));
  for (const r of checks) t.is(r.code, 0, r.stdout);
  const listed = String((await inNetns(c.node, NFT, ["list", "table", "inet", TABLE])).stdout);
  t.is(listed.match(/chain hp-/g)!.length, 36, "three chains per container");
  for (let i = 0; i < ids.length; i++) t.regex(listed, new RegExp(`dport ${9000 + i} dnat ip to`));
  const half = ids.slice(0, 6);
  const dels = await Promise.all(half.map((id, i) => c.call("DEL", confFor(i), { containerID: id })));
  for (const r of dels) t.is(r.code, 0, r.stdout);
  const after = String((await inNetns(c.node, NFT, ["list", "table", "inet", TABLE])).stdout);
  t.is(after.match(/chain hp-/g)!.length, 18);
  for (let i = 0; i < ids.length; i++) t.is(new RegExp(`dport ${9000 + i} dnat`).test(after), i >= 6, `port ${9000 + i}`);
});

test("host helpers: route lookup in /proc/net/route and the conntrack pre-check read the kernel's formats", async (t) => {
  const { dir } = await import("tmp-promise");
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const { routeInterfaceV4, mayHaveUdpEntries } = await import("../../cni-plugins/portmap/host.ts");
  const tmp = await dir({ unsafeCleanup: true, prefix: "podnet-pmh-" });
  t.teardown(() => tmp.cleanup());
  // default via eth0, 10.244.1.0/24 on cni0, 10.244.1.128/25 on other (longer prefix wins)
  writeFileSync(
    join(tmp.path, "route"),
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
      "eth0\t00000000\t0112A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
      "cni0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
      "other\t8001F40A\t00000000\t0001\t0\t0\t0\t80FFFFFF\t0\t0\t0\n",
  );
  const table = join(tmp.path, "route");
  t.is(routeInterfaceV4("10.244.1.5", table), "cni0");
  t.is(routeInterfaceV4("10.244.1.200", table), "other");
  t.is(routeInterfaceV4("8.8.8.8", table), "eth0");
  t.is(routeInterfaceV4("8.8.8.8", join(tmp.path, "missing")), undefined);

  mkdirSync(join(tmp.path, "stat"));
  const stat = (n: number) => `entries  clashres found\n${n.toString(16).padStart(8, "0")}  00000000 00000000\n`;
  writeFileSync(join(tmp.path, "stat/nf_conntrack"), stat(2));
  writeFileSync(
    join(tmp.path, "nf_conntrack"),
    "ipv4     2 udp      17 29 src=198.18.0.100 dst=198.18.0.10 sport=40123 dport=8085 [UNREPLIED] src=198.18.0.10 dst=198.18.0.100 sport=8085 dport=40123 mark=0 zone=0 use=2\n" +
      "ipv4     2 tcp      6 117 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=5353 dport=9999 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=9999 dport=5353 mark=0 zone=0 use=2\n",
  );
  t.true(mayHaveUdpEntries(new Set([8085]), tmp.path));
  t.false(mayHaveUdpEntries(new Set([40123]), tmp.path), "a reply-direction port is not a match");
  t.false(mayHaveUdpEntries(new Set([9999]), tmp.path), "a TCP entry is not a match");
  writeFileSync(join(tmp.path, "stat/nf_conntrack"), stat(100000));
  t.true(mayHaveUdpEntries(new Set([9999]), tmp.path), "a big table is left to conntrack(8)");
  t.true(mayHaveUdpEntries(new Set([9999]), join(tmp.path, "missing")));
});
