// Executing network configurations (SPEC section 3) with real plugins in throwaway namespaces:
// requests built as the spec says, prevResult chained, capability args reaching the plugins
// that declare them and no other, and the result cache written and used by CHECK and DEL.
import test from "ava";
import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CniNetwork, PluginError } from "../../runtime/cni/index.ts";
import { SYSTEM_PATH } from "../../runtime/cni/exec.ts";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { createNetns, ipJSON, type Netns } from "../helpers/netns.ts";
import { requests, tempDir, writeRecorder } from "./helpers.ts";

const env = { PATH: SYSTEM_PATH };

async function setup(t: Parameters<typeof tempDir>[0]) {
  const d = await tempDir(t);
  const bin = join(d, "bin");
  await mkdir(bin);
  const log = join(d, "calls.log");
  await writeRecorder(bin, "rec", log);
  return { d, bin, log, cache: join(d, "cache"), ipam: join(d, "ipam") };
}

async function nftRuleset(node: Netns): Promise<string> {
  const r = await execa("nsenter", [`--net=${node.path}`, "--", "nft", "list", "ruleset"], { env, extendEnv: false });
  return r.stdout;
}

async function ruleset(node: Netns): Promise<string> {
  const r = await execa("nsenter", [`--net=${node.path}`, "--", "iptables-save"], { env, extendEnv: false });
  return r.stdout;
}

test("recorders: each request is built as section 3 says, and CHECK/DEL get the cached result and ADD's parameters", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache } = await setup(t);
  const conflist = {
    cniVersion: "1.1.0",
    name: "recnet",
    plugins: [
      { type: "rec", test: { id: "first" }, capabilities: { mac: true, portMappings: false }, keyA: ["some more", { nested: true }], "cni.dev/reserved": 1, runtimeConfig: { stale: true } },
      { type: "rec", test: { id: "second" }, capabilities: { portMappings: true } },
    ],
  };
  const net = new CniNetwork({ conflist, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  const att = { containerID: "ctr-1", netns: pod.path, ifname: "eth0", args: [["K8S_POD_NAME", "web-0"], ["IgnoreUnknown", "1"]] as [string, string][] };
  const caps = { mac: "00:11:22:33:44:66", portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], bandwidth: { ingressRate: 1 } };
  const result = await net.add(att, caps);

  const adds = await requests(log, "ADD");
  t.deepEqual(adds.map((a) => a.id), ["first", "second"]);
  t.deepEqual(adds[0]!.req, { cniVersion: "1.1.0", name: "recnet", type: "rec", test: { id: "first" }, keyA: ["some more", { nested: true }], runtimeConfig: { mac: caps.mac } }, "the first plugin: no prevResult, no capabilities, reserved keys replaced");
  t.deepEqual(adds[1]!.req.runtimeConfig, { portMappings: caps.portMappings });
  t.deepEqual(adds[1]!.req.prevResult, { cniVersion: "1.1.0", interfaces: [{ name: "eth0", sandbox: pod.path }], ips: adds[1]!.req.prevResult.ips }, "the second plugin gets the first one's result");
  t.deepEqual(result, adds[1]!.req.prevResult, "the final result is the last plugin's (which passed it through)");
  for (const a of adds) {
    t.like(a.env, { CNI_COMMAND: "ADD", CNI_CONTAINERID: "ctr-1", CNI_NETNS: pod.path, CNI_IFNAME: "eth0", CNI_ARGS: "K8S_POD_NAME=web-0;IgnoreUnknown=1", CNI_PATH: bin });
  }

  // The cache, in libcni's format.
  const file = join(cache, "results", "recnet-ctr-1-eth0");
  const entry = JSON.parse(await readFile(file, "utf8"));
  t.deepEqual(Object.keys(entry), ["kind", "containerId", "config", "ifName", "networkName", "netns", "cniArgs", "capabilityArgs", "result"]);
  t.like(entry, { kind: "cniCacheV1", containerId: "ctr-1", ifName: "eth0", networkName: "recnet", netns: pod.path, cniArgs: att.args, capabilityArgs: caps, result });
  t.deepEqual(JSON.parse(Buffer.from(entry.config, "base64").toString()), conflist);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is((await stat(join(cache, "results"))).mode & 0o777, 0o700);
  t.deepEqual(await net.cachedResult(att), result);

  // CHECK: in order, the cached result as prevResult, the ADD's capability args and CNI_ARGS.
  await net.check({ containerID: "ctr-1", netns: pod.path, ifname: "eth0" });
  const checks = await requests(log, "CHECK");
  t.deepEqual(checks.map((c) => c.id), ["first", "second"]);
  for (const c of checks) {
    t.deepEqual(c.req.prevResult, result);
    t.is(c.env.CNI_ARGS, "K8S_POD_NAME=web-0;IgnoreUnknown=1");
  }
  t.deepEqual(checks[0]!.req.runtimeConfig, { mac: caps.mac });

  // DEL: reverse order, cached result, then the entry is gone.
  await net.del({ containerID: "ctr-1", netns: pod.path, ifname: "eth0" });
  const dels = await requests(log, "DEL");
  t.deepEqual(dels.map((c) => c.id), ["second", "first"]);
  for (const c of dels) t.deepEqual(c.req.prevResult, result);
  t.deepEqual(dels[0]!.req.runtimeConfig, { portMappings: caps.portMappings });
  t.false(existsSync(file));

  // DEL again: no cache entry, so no prevResult; still succeeds.
  await net.del({ containerID: "ctr-1", netns: pod.path, ifname: "eth0" });
  const dels2 = (await requests(log, "DEL")).slice(2);
  t.deepEqual(dels2.map((c) => c.id), ["second", "first"]);
  for (const c of dels2) t.false("prevResult" in c.req);

  // GC and STATUS carry no attachment parameters.
  await net.status();
  const [status] = await requests(log, "STATUS");
  t.deepEqual(Object.keys(status!.env).sort(), ["CNI_COMMAND", "CNI_PATH"]);
  t.deepEqual(status!.req, { cniVersion: "1.1.0", name: "recnet", type: "rec", test: { id: "first" }, keyA: ["some more", { nested: true }] });
});

test("bridge + recorder + portmap (reference): prevResult chained, capability args reach portmap, DEL works from the cache alone", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache, ipam } = await setup(t);
  const conflist = {
    cniVersion: "1.0.0",
    name: "refchain",
    plugins: [
      { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.77.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "rec", test: { id: "middle" }, capabilities: { bandwidth: true } },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  const opts = { conflist, cniPath: [bin, REF_BIN], cacheDir: cache, pluginNetns: node.path, env };
  const att = { containerID: "refctr", netns: pod.path, ifname: "eth0" };
  const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], bandwidth: { ingressRate: 1000000, ingressBurst: 100000 }, mac: "02:00:00:00:00:01" };
  const result = await new CniNetwork(opts).add(att, caps);

  // The kernel has what the result says.
  t.is(result.cniVersion, "1.0.0");
  const ifaces = result.interfaces as { name: string; mac: string; sandbox?: string }[];
  t.deepEqual(ifaces.map((i) => i.name).filter((n) => n === "cni0" || n === "eth0"), ["cni0", "eth0"]);
  const ip = (result.ips as { address: string }[])[0]!.address;
  const [eth0] = await ipJSON(pod, ["addr", "show", "eth0"]);
  t.true(eth0.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === ip));
  t.is(eth0.address, ifaces.find((i) => i.name === "eth0")!.mac);

  // The middle plugin got the bridge's result as prevResult and only the capability it declares.
  const [mid] = await requests(log, "ADD");
  t.deepEqual(mid!.req.prevResult, result);
  t.deepEqual(mid!.req.runtimeConfig, { bandwidth: caps.bandwidth });
  // portmap got portMappings: its DNAT for this container is in the node netns.
  t.regex(await ruleset(node), /--comment "dnat name: \\"refchain\\" id: \\"refctr\\"" -m multiport --dports 8080/);
  t.true((await readdir(join(ipam, "refchain"))).includes(ip.split("/")[0]!));

  // A new CniNetwork (as after a kubelet restart) DELs from the cache alone: no capability args given.
  await new CniNetwork(opts).del(att);
  const [midDel] = await requests(log, "DEL");
  t.deepEqual(midDel!.req.prevResult, result);
  t.deepEqual(midDel!.req.runtimeConfig, { bandwidth: caps.bandwidth }, "the cached capability args are used");
  t.notRegex(await ruleset(node), /refctr/, "portmap removed its rules: it got the cached portMappings");
  t.false((await readdir(join(ipam, "refchain"))).includes(ip.split("/")[0]!), "host-local released the address");
  t.deepEqual(await ipJSON(pod, ["link", "show", "type", "veth"]), []);
  t.deepEqual(await readdir(join(cache, "results")), []);
});

test("bridge + recorder + portmap (ours, 1.1.0): prevResult chained, portMappings reach portmap, CHECK passes, DEL from the cache alone", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache, ipam } = await setup(t);
  const conflist = {
    cniVersion: "1.1.0",
    name: "ourchain",
    plugins: [
      { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.76.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "rec", test: { id: "middle" }, capabilities: { bandwidth: true } },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  const opts = { conflist, cniPath: [bin, OUR_BIN], cacheDir: cache, pluginNetns: node.path, env };
  const att = { containerID: "ourctr", netns: pod.path, ifname: "eth0" };
  const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], bandwidth: { ingressRate: 1000000, ingressBurst: 100000 } };
  const result = await new CniNetwork(opts).add(att, caps);
  t.is(result.cniVersion, "1.1.0");
  const ip = (result.ips as { address: string }[])[0]!.address;
  const [eth0] = await ipJSON(pod, ["addr", "show", "eth0"]);
  t.true(eth0.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === ip));
  const [mid] = await requests(log, "ADD");
  t.deepEqual(mid!.req.prevResult, result);
  t.deepEqual(mid!.req.runtimeConfig, { bandwidth: caps.bandwidth });
  const rules = await nftRuleset(node);
  t.regex(rules, /dport 8080/, "portmap got portMappings");
  t.regex(rules, /ourctr/);

  await new CniNetwork(opts).check(att);
  await new CniNetwork(opts).del(att);
  t.notRegex(await nftRuleset(node), /ourctr/, "portmap removed its rules: it got the cached portMappings");
  t.false((await readdir(join(ipam, "ourchain"))).includes(ip.split("/")[0]!));
  t.deepEqual(await ipJSON(pod, ["link", "show", "type", "veth"]), []);
  t.deepEqual(await readdir(join(cache, "results")), []);
});

test("CHECK uses the cached result, fails with the plugin's error when the interface is gone, and honours disableCheck", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache, ipam } = await setup(t);
  const plugins = [
    { type: "bridge", bridge: "cni0", isGateway: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.78.0.0/24" }]] } },
    { type: "rec", test: { id: "after" } },
  ];
  const net = new CniNetwork({ conflist: { cniVersion: "1.0.0", name: "checknet", plugins }, cniPath: [bin, REF_BIN], cacheDir: cache, pluginNetns: node.path, env });
  const att = { containerID: "chk", netns: pod.path, ifname: "eth0" };
  const result = await net.add(att);
  await net.check(att);
  const [check] = await requests(log, "CHECK");
  t.deepEqual(check!.req.prevResult, result);

  await execa("ip", ["-n", pod.name, "link", "del", "eth0"]);
  const err = await t.throwsAsync(net.check(att), { instanceOf: PluginError });
  t.is(err!.type, "bridge");
  t.is(err!.command, "CHECK");
  t.is(typeof err!.code, "number");
  t.regex(err!.message, /^plugin bridge failed \(CHECK\): /);

  const off = new CniNetwork({ conflist: { cniVersion: "1.0.0", name: "checknet", disableCheck: true, plugins }, cniPath: [bin, REF_BIN], cacheDir: cache, pluginNetns: node.path, env });
  const before = (await requests(log, "CHECK")).length;
  await off.check(att);
  t.is((await requests(log, "CHECK")).length, before, "disableCheck: no plugin is called");
  await net.del(att);
  t.deepEqual(await readdir(join(cache, "results")), []);
});

test("results come back in the network's version, whatever version the plugin printed", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { cache } = await setup(t);
  // The reference loopback prints 1.0.0-shaped results even when asked for 0.4.0 (no ips[].version).
  const net = new CniNetwork({ conflist: { cniVersion: "0.4.0", name: "lonet", plugins: [{ type: "loopback" }] }, cniPath: [REF_BIN], cacheDir: cache, pluginNetns: node.path, env });
  const att = { containerID: "lo1", netns: pod.path, ifname: "lo" };
  const r = await net.add(att);
  t.is(r.cniVersion, "0.4.0");
  t.deepEqual((r.ips as { version: string; address: string }[]).map((i) => [i.version, i.address]), [["4", "127.0.0.1/8"], ["6", "::1/128"]]);
  await net.check(att);
  await net.del(att);
});
