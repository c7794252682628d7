// Shared pieces of the portmap tests: a "node" netns with an uplink to an "external" netns, pods
// wired by a bridge + host-local chain run the way a runtime runs a conflist (each plugin in
// order, the previous result as prevResult), tiny TCP/UDP servers in pods, and probes.
import type { ExecutionContext } from "ava";
import { execa, type ResultPromise } from "execa";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { callPlugin, OUR_BIN, REF_BIN, type PluginCall, type PluginOutput } from "../helpers/cni.ts";
import { createNetns, inNetns, linkNetns, uniqueName, type Netns } from "../helpers/netns.ts";

export const TABLE = "podnet_portmap";
/** By absolute path: under npm, PATH starts with node_modules/.bin, which has an unrelated "nft". */
export const NFT = "/usr/sbin/nft";
/** Ours once built: the main tests chain our portmap after our bridge + host-local. */
export const HAVE_OUR_BRIDGE = existsSync(join(OUR_BIN, "bridge")) && existsSync(join(OUR_BIN, "host-local"));
export const MAIN_BRIDGE_DIR = HAVE_OUR_BRIDGE ? OUR_BIN : REF_BIN;

export const NODE_IP = "198.18.0.10";
export const NODE_IP2 = "198.18.0.11";
export const EXT_IP = "198.18.0.100";
export const NODE_IP6 = "fd18::10";
export const EXT_IP6 = "fd18::100";

export interface Node {
  node: Netns;
  ext: Netns;
  dataDir: string;
  net: string;
  bridge: string;
  /** Gateway (bridge) address of the pod subnet. */
  gateway: string;
  subnet: string;
  subnet6?: string;
  gateway6?: string;
}

async function sysctl(ns: Netns, kv: string[]): Promise<void> {
  await inNetns(ns, "sysctl", ["-q", "-w", ...kv]);
}

/**
 * A node netns with eth0 = 198.18.0.10/24 (+ .11) toward an "external" netns at .100, and the
 * same in IPv6 when `dualStack`. DAD is off so IPv6 addresses are usable at once.
 */
export async function setupNode(t: ExecutionContext, opts: { dualStack?: boolean } = {}): Promise<Node> {
  const node = await createNetns(t, "pmn");
  const ext = await createNetns(t, "pme");
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-pm-" });
  t.teardown(() => tmp.cleanup());
  if (opts.dualStack) {
    for (const ns of [node, ext]) await sysctl(ns, ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  }
  await linkNetns(node, "eth0", `${NODE_IP}/24`, ext, "eth0", `${EXT_IP}/24`);
  await inNetns(node, "ip", ["addr", "add", `${NODE_IP2}/24`, "dev", "eth0"]);
  if (opts.dualStack) {
    await inNetns(node, "ip", ["addr", "add", `${NODE_IP6}/64`, "dev", "eth0", "nodad"]);
    await inNetns(ext, "ip", ["addr", "add", `${EXT_IP6}/64`, "dev", "eth0", "nodad"]);
  }
  const n: Node = { node, ext, dataDir: tmp.path, net: uniqueName("pmnet"), bridge: uniqueName("pmbr"), gateway: "10.88.0.1", subnet: "10.88.0.0/24" };
  if (opts.dualStack) {
    n.subnet6 = "fd88::/64";
    n.gateway6 = "fd88::1";
  }
  return n;
}

export async function createPod(t: ExecutionContext, n: Node): Promise<Netns> {
  const pod = await createNetns(t, "pmp");
  if (n.subnet6) await sysctl(pod, ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  return pod;
}

export interface PluginStep {
  /** Directory of the plugin (and of its IPAM delegate: CNI_PATH). */
  dir: string;
  conf: Record<string, unknown>;
}

export function bridgeStep(n: Node, dir: string): PluginStep {
  const ranges = [[{ subnet: n.subnet, gateway: n.gateway }]];
  if (n.subnet6) ranges.push([{ subnet: n.subnet6, gateway: n.gateway6! }]);
  return {
    dir,
    // hairpinMode: a pod reaching its own host port is DNATed back out of the bridge port it came
    // in on (br_netfilter re-bridges it), which the bridge only allows on hairpin ports.
    conf: { type: "bridge", bridge: n.bridge, isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false, ipam: { type: "host-local", dataDir: n.dataDir, ranges } },
  };
}

export function portmapStep(dir: string, extra: Record<string, unknown> = {}): PluginStep {
  return { dir, conf: { type: "portmap", capabilities: { portMappings: true }, ...extra } };
}

export interface Mapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

export interface Attachment {
  containerID: string;
  ifname: string;
  pod: Netns;
  mappings?: Mapping[];
}

/**
 * The network configuration a runtime derives for one plugin of the list: name and version
 * from the list, runtimeConfig for the capabilities it declares, capabilities removed.
 */
export function derivedConf(n: Node, step: PluginStep, version: string, a: Pick<Attachment, "mappings">, prevResult?: unknown): Record<string, unknown> {
  const { capabilities, ...rest } = step.conf as { capabilities?: Record<string, boolean> };
  const out: Record<string, unknown> = { cniVersion: version, name: n.net, ...rest };
  if (capabilities?.portMappings && a.mappings) out.runtimeConfig = { portMappings: a.mappings };
  if (prevResult !== undefined) out.prevResult = prevResult;
  return out;
}

export function callStep(n: Node, step: PluginStep, config: unknown, command: PluginCall["command"], a: Attachment): Promise<PluginOutput> {
  return callPlugin(n.node, join(step.dir, String(step.conf.type)), config, {
    command,
    containerID: a.containerID,
    netns: a.pod.path,
    ifname: a.ifname,
    path: step.dir,
  });
}

function failure(step: PluginStep, command: string, r: PluginOutput): Error {
  return new Error(`${command} of ${step.dir}/${String(step.conf.type)} failed (exit ${r.code}): ${r.stdout} ${r.stderr}`);
}

/** ADD through the list; returns every plugin's result, in order. */
export async function addChainAll(n: Node, steps: PluginStep[], a: Attachment, version = "1.0.0"): Promise<any[]> {
  const results: any[] = [];
  for (const step of steps) {
    const r = await callStep(n, step, derivedConf(n, step, version, a, results.at(-1)), "ADD", a);
    if (r.code !== 0) throw failure(step, "ADD", r);
    results.push(r.json);
  }
  return results;
}

/** ADD through the list; returns the final result (what a runtime caches). */
export async function addChain(n: Node, steps: PluginStep[], a: Attachment, version = "1.0.0"): Promise<any> {
  return (await addChainAll(n, steps, a, version)).at(-1);
}

/** CHECK through the list with the cached result; returns the first failure's output, if any. */
export async function checkChain(n: Node, steps: PluginStep[], a: Attachment, result: unknown, version = "1.0.0"): Promise<PluginOutput | undefined> {
  for (const step of steps) {
    const r = await callStep(n, step, derivedConf(n, step, version, a, result), "CHECK", a);
    if (r.code !== 0) return r;
  }
  return undefined;
}

/** DEL through the list in reverse, as libcni does. */
export async function delChain(n: Node, steps: PluginStep[], a: Attachment, result: unknown, version = "1.0.0"): Promise<void> {
  for (const step of [...steps].reverse()) {
    const r = await callStep(n, step, derivedConf(n, step, version, a, result), "DEL", a);
    if (r.code !== 0) throw failure(step, "DEL", r);
  }
}

export const podIPv4 = (result: any): string => result.ips.map((i: any) => i.address.split("/")[0]).find((ip: string) => !ip.includes(":"));
export const podIPv6 = (result: any): string | undefined => result.ips.map((i: any) => i.address.split("/")[0]).find((ip: string) => ip.includes(":"));

// ---------------------------------------------------------------------------------------------
// nftables state of our table in the node

export interface NftChain {
  name: string;
  hook?: string;
  rules: { comment?: string; expr: any[]; handle: number }[];
}

export async function nftChains(n: Node): Promise<Map<string, NftChain> | undefined> {
  const r = await inNetns(n.node, NFT, ["-j", "list", "table", "inet", TABLE], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const chains = new Map<string, NftChain>();
  for (const o of JSON.parse(String(r.stdout)).nftables) {
    if (o.chain) chains.set(o.chain.name, { name: o.chain.name, hook: o.chain.hook, rules: [] });
    if (o.rule) chains.get(o.rule.chain)!.rules.push({ comment: o.rule.comment, expr: o.rule.expr, handle: o.rule.handle });
  }
  return chains;
}

/** The postrouting chain that masquerades marked traffic to `ip`, if any. */
export async function masqChainFor(n: Node, ip: string): Promise<NftChain | undefined> {
  const chains = (await nftChains(n)) ?? new Map<string, NftChain>();
  return [...chains.values()].find((c) => c.hook === "postrouting" && c.rules.some((r) => r.expr.some((e: any) => e.masquerade !== undefined) && r.expr.some((e: any) => e.match?.right === ip)));
}

/** Names of the chains that DNAT to `ip` (one pre- and one output chain per attachment). */
export async function chainsDnatTo(n: Node, ip: string): Promise<string[]> {
  const chains = (await nftChains(n)) ?? new Map<string, NftChain>();
  return [...chains.values()].filter((c) => c.rules.some((r) => r.expr.some((e: any) => e.dnat?.addr === ip))).map((c) => c.name).sort();
}

// ---------------------------------------------------------------------------------------------
// traffic

// Answers "<tag> <peer address>" to every TCP connection and UDP datagram, on both families.
const SERVER = `
const net = require("node:net"), dgram = require("node:dgram");
const [proto, port, tag] = process.argv.slice(1);
const peer = (a) => a.replace(/^::ffff:/, "");
if (proto === "tcp") {
  net.createServer((s) => s.end(tag + " " + peer(s.remoteAddress) + "\\n")).listen({ port: Number(port), host: "::" }, () => console.log("ready"));
} else {
  const s = dgram.createSocket({ type: "udp6" });
  s.on("message", (m, r) => s.send(tag + " " + peer(r.address) + "\\n", r.port, r.address));
  s.bind(Number(port), "::", () => console.log("ready"));
}`;

// Prints the server's answer; exits 1 when there is none within the timeout. A UDP client keeps
// sending from one source port (optionally fixed) until answered.
const CLIENT = `
const net = require("node:net"), dgram = require("node:dgram");
const [proto, host, port, timeoutMs, localPort] = process.argv.slice(1);
const done = (s) => { process.stdout.write(s); process.exit(0); };
setTimeout(() => process.exit(1), Number(timeoutMs));
if (proto === "tcp") {
  let buf = "";
  const c = net.connect({ host, port: Number(port) });
  c.on("data", (d) => (buf += d)).on("end", () => done(buf)).on("error", (e) => { console.error(e.message); process.exit(1); });
} else {
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  s.on("message", (m) => done(String(m)));
  const send = () => s.send("ping", Number(port), host);
  s.bind(Number(localPort || 0), () => { send(); setInterval(send, 200); });
}`;

/** Starts a server in `ns`, killed when the test ends. */
export async function startServer(t: ExecutionContext, ns: Netns, proto: "tcp" | "udp", port: number, tag: string): Promise<void> {
  const p: ResultPromise = execa("nsenter", [`--net=${ns.path}`, "--", process.execPath, "-e", SERVER, proto, String(port), tag], { reject: false, buffer: false });
  t.teardown(() => {
    p.kill("SIGKILL");
  });
  let stderr = "";
  p.stderr!.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once("data", () => resolve());
    p.once("exit", (code, signal) => reject(new Error(`${proto} server ${tag} exited (${code ?? signal}) before it was ready: ${stderr}`)));
  });
}

export async function startServers(t: ExecutionContext, ns: Netns, port: number, tag: string): Promise<void> {
  await Promise.all([startServer(t, ns, "tcp", port, tag), startServer(t, ns, "udp", port, tag)]);
}

/** "<tag> <source address seen by the server>", or undefined when nothing answered. */
export async function probe(from: Netns, proto: "tcp" | "udp", host: string, port: number, opts: { timeoutMs?: number; localPort?: number } = {}): Promise<string | undefined> {
  const timeoutMs = opts.timeoutMs ?? 2500;
  const argv = [`--net=${from.path}`, "--", process.execPath, "-e", CLIENT, proto, host, String(port), String(timeoutMs), String(opts.localPort ?? 0)];
  const r = await execa("nsenter", argv, { reject: false, timeout: timeoutMs + 5000 });
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
}

/** Runs one plugin of the list alone (e.g. portmap with a hand-made config). */
export async function callOne(n: Node, step: PluginStep, a: Attachment, command: PluginCall["command"], prevResult?: unknown, version = "1.0.0", overrides: Record<string, unknown> = {}): Promise<PluginOutput> {
  return callStep(n, step, { ...derivedConf(n, step, version, a, prevResult), ...overrides }, command, a);
}
