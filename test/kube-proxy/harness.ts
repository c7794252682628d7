// A one-node world for kube-proxy tests, built by hand (no CNI plugins): a "node" netns with a
// bridge for pods and a veth to an "external" netns (a client outside the cluster), pod netns
// with tiny servers that answer with their pod name and the client address they saw, a fake API
// server, and `podnet kube-proxy` running inside the node netns. Everything is removed by
// destroy(), which test files call from test.after.always.
import { execa, type ResultPromise } from "execa";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { EndpointSlice, Service } from "../../apiserver/types.ts";
import { ROOT } from "../helpers/cni.ts";
import { removeNetns, type Netns } from "../helpers/netns.ts";
import { FakeApiServer } from "./fake-api.ts";
import { systemBinary } from "../../kube-proxy/exec.ts";

export const NODE = "node-a";
export const OTHER_NODE = "node-b";
export const NODE_IP = "198.18.0.10";
export const EXTERNAL_IP = "198.18.0.100";
/** A second address of the external netns (another client, for source ranges). */
export const EXTERNAL_IP2 = "198.18.0.101";
export const CLUSTER_CIDR = "10.244.0.0/16";
export const GATEWAY = "10.244.1.1";
export const GATEWAY6 = "fd00:244:1::1";

export interface Pod {
  name: string;
  ip: string;
  /** Set for pods made with ipv6: true (the node must have enableIPv6()). */
  ip6?: string;
  ns: Netns;
  /** nodeName the EndpointSlices give it (all pods are wired to this node's bridge). */
  nodeName: string;
}

/** Serves TCP and UDP on the given ports; answers "<pod name> <client address>:<client port> <local port>". */
const SERVER = `
const net = require("net"), dgram = require("dgram");
const [name, tcp, udp] = process.argv.slice(1);
let pending = 0;
const done = () => { if (--pending === 0) console.log("ready"); };
const v6 = process.argv[4] === "v6";
const answer = (s) => { s.on("error", () => {}); s.end(name + " " + s.remoteAddress + ":" + s.remotePort + " " + s.localPort + "\\n"); };
for (const p of tcp.split(",").filter(Boolean).map(Number)) {
  pending++;
  net.createServer(answer).listen(p, "0.0.0.0", done);
  if (v6) { pending++; net.createServer(answer).listen({ port: p, host: "::", ipv6Only: true }, done); }
}
for (const p of udp.split(",").filter(Boolean).map(Number)) {
  for (const type of v6 ? ["udp4", "udp6"] : ["udp4"]) {
    pending++;
    const u = dgram.createSocket({ type, ipv6Only: type === "udp6" });
    u.on("message", (m, r) => u.send(name + " " + r.address + ":" + r.port + " " + p + "\\n", r.port, r.address));
    u.bind(p, type === "udp6" ? "::" : "0.0.0.0", done);
  }
}`;

/** Connects (TCP) or sends (UDP) COUNT times; prints a JSON array of {reply} or {error}. */
const CLIENT = `
const net = require("net"), dgram = require("dgram");
const o = JSON.parse(process.argv[1]);
const one = () => new Promise((resolve) => {
  const started = Date.now();
  if (o.proto === "udp") {
    const s = dgram.createSocket(o.host.includes(":") ? "udp6" : "udp4");
    const t = setTimeout(() => { s.close(); resolve({ error: "ETIMEDOUT" }); }, o.timeoutMs);
    s.on("message", (m) => { clearTimeout(t); s.close(); resolve({ reply: m.toString().trim() }); });
    s.on("error", (e) => { clearTimeout(t); try { s.close(); } catch {} resolve({ error: e.code || e.message }); });
    s.bind({ port: o.sourcePort || 0, address: o.localAddress }, () => s.send("hello", o.port, o.host));
    return;
  }
  const s = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress });
  let data = "";
  const t = setTimeout(() => { s.destroy(); resolve({ error: "ETIMEDOUT", ms: Date.now() - started }); }, o.timeoutMs);
  s.on("data", (d) => (data += d));
  s.on("end", () => { clearTimeout(t); resolve({ reply: data.trim() }); });
  s.on("error", (e) => { clearTimeout(t); resolve({ error: e.code || e.message, ms: Date.now() - started }); });
});
(async () => { const out = []; for (let i = 0; i < o.count; i++) out.push(await one()); console.log(JSON.stringify(out)); })();`;

export interface Reply {
  reply?: string;
  error?: string;
  ms?: number;
}

export function uid(prefix: string): string {
  return `${prefix}${randomBytes(3).toString("hex")}`;
}

async function ip(args: string[]): Promise<void> {
  await execa("ip", args);
}

export function nsexec(ns: Netns, cmd: string, args: string[], opts: { input?: string; reject?: boolean; timeout?: number } = {}) {
  // System programs by absolute path: under npm, node_modules/.bin/nft is an unrelated tool.
  return execa("nsenter", [`--net=${ns.path}`, "--", cmd.includes("/") ? cmd : systemBinary(cmd), ...args], { reject: opts.reject ?? true, input: opts.input, timeout: opts.timeout });
}

export class Cluster {
  readonly api = new FakeApiServer();
  node!: Netns;
  external!: Netns;
  readonly pods: Pod[] = [];
  private readonly namespaces: string[] = [];
  private readonly procs: ResultPromise[] = [];
  proxy?: ResultPromise;
  proxyLog = "";
  private events = 0;

  private async netns(prefix: string): Promise<Netns> {
    const name = uid(prefix);
    await ip(["netns", "add", name]);
    this.namespaces.push(name);
    await ip(["-n", name, "link", "set", "lo", "up"]);
    return { name, path: `/run/netns/${name}` };
  }

  /** Node, bridge, external client; pods are added with addPod. */
  async setup(): Promise<void> {
    await this.api.start();
    this.node = await this.netns("kpn");
    this.external = await this.netns("kpx");
    const n = this.node.name;
    await ip(["-n", n, "link", "add", "kpbr0", "type", "bridge"]);
    await ip(["-n", n, "addr", "add", `${GATEWAY}/24`, "dev", "kpbr0"]);
    await ip(["-n", n, "link", "set", "kpbr0", "up"]);
    await ip(["-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", this.external.name]);
    await ip(["-n", n, "addr", "add", `${NODE_IP}/24`, "dev", "eth0"]);
    await ip(["-n", n, "link", "set", "eth0", "up"]);
    const x = this.external.name;
    await ip(["-n", x, "addr", "add", `${EXTERNAL_IP}/24`, "dev", "eth0"]);
    await ip(["-n", x, "addr", "add", `${EXTERNAL_IP2}/24`, "dev", "eth0"]);
    await ip(["-n", x, "link", "set", "eth0", "up"]);
    // The fabric: Service ranges, the LoadBalancer pool and externalIPs are routed to the node.
    for (const dst of ["10.96.0.0/12", "198.18.1.0/24", "198.18.2.0/24"]) await ip(["-n", x, "route", "add", dst, "via", NODE_IP]);
    await ip(["-n", n, "route", "add", "default", "via", EXTERNAL_IP]);
    await nsexec(this.node, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  }

  /** A pod netns on the node's bridge, running the answer server on the given ports. */
  /** Gives the node's bridge an IPv6 pod network (fd00:244:1::/64) and turns on IPv6 forwarding. */
  async enableIPv6(): Promise<void> {
    await ip(["-n", this.node.name, "addr", "add", `${GATEWAY6}/64`, "dev", "kpbr0", "nodad"]);
    await nsexec(this.node, "sysctl", ["-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
  }

  async addPod(name: string, index: number, opts: { nodeName?: string; tcp?: number[]; udp?: number[]; ipv6?: boolean } = {}): Promise<Pod> {
    const ns = await this.netns("kpp");
    const podIP = `10.244.1.${10 + index}`;
    const hostIf = `vp${index}`;
    await ip(["-n", this.node.name, "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns.name]);
    await ip(["-n", this.node.name, "link", "set", hostIf, "master", "kpbr0"]);
    // Hairpin mode, as the CNI bridge plugin's hairpinMode sets it: with br_netfilter, a pod's
    // packet DNATed back to the same pod is bridged out of the port it came in on.
    await ip(["-n", this.node.name, "link", "set", hostIf, "type", "bridge_slave", "hairpin", "on"]);
    await ip(["-n", this.node.name, "link", "set", hostIf, "up"]);
    await ip(["-n", ns.name, "addr", "add", `${podIP}/24`, "dev", "eth0"]);
    await ip(["-n", ns.name, "link", "set", "eth0", "up"]);
    await ip(["-n", ns.name, "route", "add", "default", "via", GATEWAY]);
    const podIP6 = opts.ipv6 ? `fd00:244:1::${10 + index}` : undefined;
    if (podIP6) {
      await ip(["-n", ns.name, "addr", "add", `${podIP6}/64`, "dev", "eth0", "nodad"]);
      await ip(["-n", ns.name, "-6", "route", "add", "default", "via", GATEWAY6]);
    }
    const tcp = (opts.tcp ?? [8080, 9090]).join(",");
    const udp = (opts.udp ?? [8080]).join(",");
    const proc = execa("nsenter", [`--net=${ns.path}`, "--", process.execPath, "-e", SERVER, name, tcp, udp, podIP6 ? "v6" : "v4"], { reject: false });
    this.procs.push(proc);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`pod ${name}: server did not start`)), 20000);
      proc.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready")) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const pod = { name, ip: podIP, ip6: podIP6, ns, nodeName: opts.nodeName ?? NODE };
    this.pods.push(pod);
    return pod;
  }

  /** Starts `podnet kube-proxy` inside the node netns (from the sources, through tsx). */
  startProxy(extra: string[] = []): void {
    const args = [
      "--import",
      "tsx",
      join(ROOT, "cli/podnet.ts"),
      "kube-proxy",
      "--node",
      NODE,
      "--api",
      this.api.socketPath,
      "--node-ip",
      NODE_IP,
      "--cluster-cidr",
      CLUSTER_CIDR,
      "--metrics-bind-address",
      "127.0.0.1:10249",
      "--healthz-bind-address",
      "127.0.0.1:10256",
      "--min-sync-period",
      "50ms",
      ...extra,
    ];
    this.proxy = execa("nsenter", [`--net=${this.node.path}`, "--", process.execPath, ...args], { cwd: ROOT, reject: false, all: true });
    this.proxy.all!.on("data", (d: Buffer) => (this.proxyLog += d.toString()));
  }

  async stopProxy(): Promise<void> {
    if (!this.proxy) return;
    this.proxy.kill("SIGTERM");
    await this.proxy;
    this.proxy = undefined;
  }

  applyService(svc: Service): void {
    this.events++;
    this.api.apply("services", svc);
  }

  deleteService(namespace: string, name: string): void {
    this.events++;
    this.api.remove("services", namespace, name);
  }

  applySlice(slice: EndpointSlice): void {
    this.events++;
    this.api.apply("endpointslices", slice);
  }

  deleteSlice(namespace: string, name: string): void {
    this.events++;
    this.api.remove("endpointslices", namespace, name);
  }

  async metrics(): Promise<string> {
    const r = await nsexec(this.node, "curl", ["-s", "--max-time", "2", "http://127.0.0.1:10249/metrics"], { reject: false });
    return String(r.stdout);
  }

  /** Waits until the proxy has synced every change made so far. */
  async synced(timeoutMs = 30000): Promise<void> {
    const want = this.events;
    await waitFor(
      async () => {
        const m = await this.metrics();
        const svc = metricValue(m, "kubeproxy_sync_proxy_rules_service_changes_total");
        const ep = metricValue(m, "kubeproxy_sync_proxy_rules_endpoint_changes_total");
        const last = metricValue(m, "kubeproxy_sync_proxy_rules_last_timestamp_seconds");
        return svc !== undefined && ep !== undefined && last !== undefined && last > 0 && svc + ep >= want;
      },
      timeoutMs,
      () => `kube-proxy did not sync ${want} changes; log:\n${this.proxyLog.slice(-3000)}`,
    );
  }

  async nft(args: string[]): Promise<string> {
    const r = await nsexec(this.node, "nft", args, { reject: false });
    return String(r.stdout) + String(r.stderr);
  }

  async tcp(from: Netns, host: string, port: number, opts: { count?: number; localAddress?: string; timeoutMs?: number } = {}): Promise<Reply[]> {
    return this.client(from, { proto: "tcp", host, port, count: opts.count ?? 1, localAddress: opts.localAddress, timeoutMs: opts.timeoutMs ?? 3000 });
  }

  async udp(from: Netns, host: string, port: number, opts: { count?: number; sourcePort?: number; timeoutMs?: number } = {}): Promise<Reply[]> {
    return this.client(from, { proto: "udp", host, port, count: opts.count ?? 1, sourcePort: opts.sourcePort, timeoutMs: opts.timeoutMs ?? 2000 });
  }

  private async client(from: Netns, o: Record<string, unknown>): Promise<Reply[]> {
    const r = await nsexec(from, process.execPath, ["-e", CLIENT, JSON.stringify(o)], { reject: false, timeout: 120000 });
    try {
      return JSON.parse(String(r.stdout)) as Reply[];
    } catch {
      throw new Error(`client failed: ${String(r.stderr).slice(0, 500)}`);
    }
  }

  async destroy(): Promise<void> {
    await this.stopProxy().catch(() => {});
    for (const p of this.procs) p.kill("SIGKILL");
    for (const n of this.namespaces) await removeNetns(n);
    await this.api.close().catch(() => {});
  }
}

export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

export async function waitFor(fn: () => Promise<boolean> | boolean, timeoutMs = 20000, message: string | (() => string) = "condition not met"): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(typeof message === "string" ? message : message());
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Pod names in replies ("pod-a 10.244.1.1:4567" -> "pod-a"). */
export function who(replies: Reply[]): string[] {
  return replies.map((r) => (r.reply ? r.reply.split(" ")[0]! : `error:${r.error}`));
}

/** Client addresses the server saw ("pod-a 10.244.1.1:4567" -> "10.244.1.1"). */
export function seenFrom(replies: Reply[]): string[] {
  return replies.map((r) => (r.reply ? r.reply.split(" ")[1]!.replace(/:\d+$/, "") : `error:${r.error}`));
}

/** The server ports that answered. */
export function servedPort(replies: Reply[]): number[] {
  return replies.map((r) => (r.reply ? Number(r.reply.split(" ")[2]) : -1));
}

// ---- object builders

export interface SvcSpec {
  name: string;
  namespace?: string;
  clusterIP: string;
  type?: Service["spec"]["type"];
  ports: { name?: string; port: number; targetPort?: number | string; protocol?: "TCP" | "UDP" | "SCTP"; nodePort?: number }[];
  extra?: Partial<Service["spec"]>;
  lbIPs?: string[];
}

export function service(s: SvcSpec): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: s.name, namespace: s.namespace ?? "default" },
    spec: { type: s.type ?? "ClusterIP", clusterIP: s.clusterIP, clusterIPs: s.clusterIP === "None" ? ["None"] : [s.clusterIP], ports: s.ports.map((p) => ({ protocol: "TCP", ...p })), ...(s.extra ?? {}) },
    ...(s.lbIPs ? { status: { loadBalancer: { ingress: s.lbIPs.map((ip) => ({ ip })) } } } : {}),
  };
}

export interface EpSpec {
  pod: Pod;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function slice(service: string, name: string, eps: EpSpec[], ports: { name?: string; port: number; protocol?: "TCP" | "UDP" | "SCTP" }[], namespace = "default"): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports: ports.map((p) => ({ protocol: "TCP", ...p })),
    endpoints: eps.map((e) => ({
      addresses: [e.pod.ip],
      nodeName: e.pod.nodeName,
      targetRef: { kind: "Pod", namespace, name: e.pod.name },
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
    })),
  };
}
