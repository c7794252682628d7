// Shared pieces of the Service and DNS end-to-end tests (test/e2e/services-*.test.ts and
// test/e2e/dns-*.test.ts), shaped after Kubernetes' sig-network e2e framework: a client asks a
// destination many times and the set of pods that answered is compared with the set expected.
// Clients are a netexec pod (its /dial), a node (a small Node.js dialer run in the node's netns)
// and the external client netns (the same dialer), so every path goes through the real kernel.
import { execa } from "execa";
import { join } from "node:path";
import { resourcePath } from "../../apiserver/client.ts";
import type { Deployment, Pod, Service } from "../../apiserver/types.ts";
import { execInPod } from "../../cluster/probe.ts";
import { eventually, type TestCluster } from "../helpers/cluster.ts";
import { ROOT } from "../helpers/cni.ts";
import { isReady, listPods, slicesOf } from "./cluster-helpers.ts";

export type Protocol = "http" | "udp" | "tcp";

export interface DialResult {
  responses: string[];
  /** One entry per failed try: an errno code such as ECONNREFUSED or ETIMEDOUT, or a message. */
  errors: string[];
}

/**
 * A dialer for nodes and the external client, run as `node -e DIALER PROTO HOST PORT REQUEST TRIES`.
 * Every try uses a new connection (http: no keep-alive; udp: a new connected socket, so an ICMP
 * port unreachable surfaces as ECONNREFUSED; tcp: connect only, to tell a reset from a timeout).
 */
export const DIALER = String.raw`
const [proto, host, port, request, tries] = process.argv.slice(1);
const TIMEOUT = 2000;
const once = () => new Promise((resolve, reject) => {
  if (proto === "http") {
    const req = require("http").get({ host, port: +port, path: request, agent: false, timeout: TIMEOUT }, (res) => {
      let body = ""; res.setEncoding("utf8"); res.on("data", (c) => (body += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error("HTTP " + res.statusCode + " " + body.trim()))));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
  } else if (proto === "udp") {
    const s = require("dgram").createSocket("udp4");
    const done = (f, v) => { clearTimeout(timer); try { s.close(); } catch {} f(v); };
    const timer = setTimeout(() => done(reject, Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })), TIMEOUT);
    s.on("message", (m) => done(resolve, m.toString().trim()));
    s.on("error", (e) => done(reject, e));
    s.connect(+port, host, () => s.send(request));
  } else {
    const sock = require("net").connect({ host, port: +port });
    sock.setTimeout(TIMEOUT, () => sock.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    sock.on("connect", () => { sock.destroy(); resolve("connected"); });
    sock.on("error", reject);
  }
});
(async () => {
  const out = { responses: [], errors: [] };
  for (let i = 0; i < +tries; i++) {
    try { out.responses.push(await once()); } catch (e) { out.errors.push(e.code || e.message); }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

export interface DialOptions {
  protocol: Protocol;
  host: string;
  port: number;
  /** HTTP path ("/hostname") or UDP payload ("hostname"). */
  request?: string;
  tries?: number;
}

const defaultRequest = (o: DialOptions) => o.request ?? (o.protocol === "udp" ? "hostname" : "/hostname");

async function runDialer(netnsPath: string, o: DialOptions): Promise<DialResult> {
  const args = [o.protocol, o.host, String(o.port), defaultRequest(o), String(o.tries ?? 1)];
  const r = await execa("nsenter", [`--net=${netnsPath}`, "--", process.execPath, "-e", DIALER, ...args], { reject: false, timeout: 120_000 });
  if (r.exitCode !== 0) throw new Error(`dialer in ${netnsPath} exited ${r.exitCode}: ${String(r.stderr).trim()}`);
  return JSON.parse(String(r.stdout)) as DialResult;
}

/** Dials from inside a node's network namespace (what a hostNetwork pod or the node itself does). */
export function nodeDial(c: TestCluster, node: string, o: DialOptions): Promise<DialResult> {
  const n = c.layout.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node}`);
  return runDialer(n.netnsPath, o);
}

/** Dials from the external client netns (on the fabric, outside the cluster). */
export function externalDial(c: TestCluster, o: DialOptions): Promise<DialResult> {
  return runDialer(`/run/netns/${c.layout.externalNetns}`, o);
}

/** Dials through netexec's /dial in a netexec pod (HTTP on 8080), like the upstream e2e tests. */
export async function podDial(c: TestCluster, ns: string, pod: string, o: DialOptions): Promise<DialResult> {
  if (o.protocol === "tcp") throw new Error("netexec /dial speaks http and udp");
  const tries = o.tries ?? 1;
  const q = new URLSearchParams({ host: o.host, port: String(o.port), request: defaultRequest(o), protocol: o.protocol, tries: String(tries) });
  const r = await execInPod(c, ns, pod, ["curl", "-sS", "--max-time", String(5 + tries * 3), `http://127.0.0.1:8080/dial?${q}`], undefined, 10 + tries * 3);
  if (r.exitCode !== 0) throw new Error(`curl /dial in ${ns}/${pod} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as DialResult;
}

export type Dial = () => Promise<DialResult>;

const fmt = (s: Iterable<string>) => `[${[...s].sort().join(", ")}]`;

/**
 * Dials until the set of answers equals `expected` (the upstream e2e framework's way of checking
 * that a Service reaches all its endpoints, and only them). An answer outside `expected` fails at
 * once unless `settle` is set (then the Service may still be converging: keep trying).
 */
export async function expectAnswers(what: string, dial: Dial, expected: Iterable<string>, opts: { settle?: boolean; timeoutMs?: number } = {}): Promise<Set<string>> {
  const want = new Set(expected);
  const seen = new Set<string>();
  let stray: string[] = [];
  await eventually(
    `${what}: answers ${fmt(want)}`,
    async () => {
      const r = await dial();
      stray = r.responses.filter((x) => !want.has(x));
      if (stray.length) {
        seen.clear();
        return opts.settle ? undefined : true;
      }
      for (const x of r.responses) seen.add(x);
      if (seen.size === want.size) return true;
      throw new Error(`so far ${fmt(seen)}${r.errors.length ? `, errors ${fmt(new Set(r.errors))}` : ""}`);
    },
    opts.timeoutMs ?? 60_000,
  );
  if (stray.length) throw new Error(`${what}: unexpected answers ${fmt(new Set(stray))}, expected only ${fmt(want)}`);
  return seen;
}

/** Creates a Service in `ns` and returns it as the API server stored it (ClusterIP, NodePorts...). */
export async function createService(c: TestCluster, ns: string, svc: Omit<Service, "apiVersion" | "kind">): Promise<Service> {
  return c.api.create<Service>(resourcePath("services", ns), { apiVersion: "v1", kind: "Service", ...svc, metadata: { ...svc.metadata, namespace: ns } });
}

export async function createDeployment(c: TestCluster, ns: string, d: Deployment): Promise<Deployment> {
  return c.api.create<Deployment>(resourcePath("deployments", ns), { ...d, metadata: { ...d.metadata, namespace: ns } });
}

export async function createPod(c: TestCluster, ns: string, p: Pod): Promise<Pod> {
  return c.api.create<Pod>(resourcePath("pods", ns), { ...p, metadata: { ...p.metadata, namespace: ns } });
}

/** The Ready, not terminating pods that match, by name. */
export async function readyPodNames(c: TestCluster, ns: string, selector: string): Promise<Set<string>> {
  return new Set((await listPods(c, ns, selector)).filter((p) => isReady(p) && !p.metadata.deletionTimestamp).map((p) => p.metadata.name!));
}

/** Waits until the Service's EndpointSlices list exactly `n` ready endpoints. */
export async function readyEndpoints(c: TestCluster, ns: string, service: string, n: number, timeoutMs = 60_000): Promise<string[]> {
  return eventually(
    `${n} ready endpoints of ${ns}/${service}`,
    async () => {
      const slices = await slicesOf(c, ns, service);
      const ips = slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions.ready).flatMap((e) => e.addresses);
      return ips.length === n ? ips : undefined;
    },
    timeoutMs,
  );
}

/** `podnet proxy rules NODE --family ip`: what kube-proxy programmed there. */
export async function proxyRules(c: TestCluster, node: string): Promise<string> {
  const r = await c.podnet("proxy", "rules", node, "--family", "ip");
  if (r.exitCode !== 0) throw new Error(`podnet proxy rules ${node}: ${r.stderr}`);
  return r.stdout;
}

/** Waits until every node's kube-proxy has (or, with present=false, no longer has) a rule line starting with `dest`. */
export async function waitForProxyRules(c: TestCluster, dest: string, present = true, timeoutMs = 30_000): Promise<void> {
  await eventually(
    `rules for ${dest} ${present ? "on" : "gone from"} every node`,
    async () => {
      for (const n of c.layout.nodes) {
        const has = (await proxyRules(c, n.name)).split("\n").some((l) => l.startsWith(`${dest} `));
        if (has !== present) return undefined;
      }
      return true;
    },
    timeoutMs,
  );
}

/** A tiny DNS client run in a pod with Node.js and the project's dns-packet (pods see the host's files). */
export const DNS_QUERY = String.raw`
const dp = require(process.argv[1]);
const [, server, name, type, transport] = process.argv.slice(1);
const q = dp.encode({ type: "query", id: 4242, flags: dp.RECURSION_DESIRED, questions: [{ type, name }] });
const timer = setTimeout(() => { console.error("timeout"); process.exit(3); }, 4000);
const done = (buf) => {
  clearTimeout(timer);
  const r = dp.decode(buf);
  process.stdout.write(JSON.stringify({ rcode: r.rcode, aa: !!(r.flags & dp.AUTHORITATIVE_ANSWER), answers: r.answers.map((a) => ({ name: a.name, type: a.type, ttl: a.ttl, data: a.data })) }));
  process.exit(0);
};
if (transport === "tcp") {
  const sock = require("net").connect({ host: server, port: 53 }, () => { const len = Buffer.alloc(2); len.writeUInt16BE(q.length); sock.write(Buffer.concat([len, q])); });
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0))); });
  sock.on("error", (e) => { console.error(e.message); process.exit(2); });
} else {
  const s = require("dgram").createSocket("udp4");
  s.on("message", done);
  s.send(q, 53, server);
}
`;

export interface DnsAnswer {
  rcode: string;
  aa: boolean;
  answers: { name: string; type: string; ttl: number; data: unknown }[];
}

export const DNS_PACKET_PATH = join(ROOT, "node_modules", "dns-packet");

/** Asks the cluster DNS (or `server`) for NAME/TYPE from inside a pod. */
export async function podDnsQuery(c: TestCluster, ns: string, pod: string, name: string, type: string, opts: { server?: string; tcp?: boolean } = {}): Promise<DnsAnswer> {
  const r = await execInPod(c, ns, pod, ["node", "-e", DNS_QUERY, DNS_PACKET_PATH, opts.server ?? c.cfg.dnsIP, name, type, opts.tcp ? "tcp" : "udp"]);
  if (r.exitCode !== 0) throw new Error(`DNS query ${name} ${type} in ${ns}/${pod} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as DnsAnswer;
}

/** Answers of one type, as strings (A: the address, CNAME: the target, SRV: "port target"). */
export function answerData(a: DnsAnswer, type: string): string[] {
  return a.answers
    .filter((x) => x.type === type)
    .map((x) => (type === "SRV" ? `${(x.data as { port: number }).port} ${(x.data as { target: string }).target}` : String(x.data)))
    .sort();
}

export const nodeIP = (c: TestCluster, node: string) => c.layout.nodes.find((n) => n.name === node)!.underlayIP;
