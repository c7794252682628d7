// `podnet cloud-lb`: the emulated cloud's load balancer, run in the fabric netns by `podnet up`.
// The fabric routes the whole LoadBalancer pool to every node (ECMP), which is right for
// externalTrafficPolicy Cluster. For a Service with externalTrafficPolicy Local a cloud load
// balancer sends traffic only to the nodes whose kube-proxy health check (healthCheckNodePort)
// answers 200, as GCE and AWS do; this daemon does the same with a /32 route per such Service,
// whose next hops are the healthy nodes. With no healthy node it routes to all (fail open, as
// cloud load balancers do), and a Service that stops needing it goes back to the pool route.
// It is also the API's endpoint for pods (--api-endpoint, see api-endpoint.ts).
import { execFile } from "node:child_process";
import http from "node:http";
import { ApiClient, resourcePath } from "../apiserver/client.ts";
import type { Service } from "../apiserver/types.ts";
import { systemBinary } from "../cni-plugins/pkg/exec.ts";
import { serveApiEndpoint } from "./api-endpoint.ts";

const USAGE = `Usage: podnet cloud-lb --api SOCKET_PATH_OR_URL --node-ip IP [--node-ip IP ...] [options]

Routes each LoadBalancer address of an externalTrafficPolicy Local Service to the nodes whose
health check node port answers 200. Run it in the fabric's network namespace (podnet up does).

Options:
  --api PATH|URL      the API server
  --node-ip IP        a node the load balancer may send to (repeatable)
  --dev NAME          the interface the nodes are reached on (default fabric0)
  --interval MS       how often Services are read and nodes probed (default 1000)
  --api-endpoint IP:PORT  also serve the API there over TLS, forwarding to --api (the
                      kubernetes Service's endpoint); needs --tls-cert and --tls-key
  --tls-cert FILE, --tls-key FILE   the serving certificate and its key (PEM)
`;

interface Args {
  api: string;
  nodeIPs: string[];
  dev: string;
  intervalMs: number;
  apiEndpoint?: { host: string; port: number };
  tlsCert?: string;
  tlsKey?: string;
}

function parseArgs(argv: string[]): Args | string {
  const a: Partial<Args> & { nodeIPs: string[] } = { nodeIPs: [], dev: "fabric0", intervalMs: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (k === "--help" || k === "-h") return USAGE;
    if (v === undefined) return `${k} needs a value\n\n${USAGE}`;
    if (k === "--api") a.api = v;
    else if (k === "--node-ip") {
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v)) return `--node-ip ${v}: not an IPv4 address`;
      a.nodeIPs.push(v);
    } else if (k === "--dev") {
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v)) return `--dev ${v}: not an interface name`;
      a.dev = v;
    } else if (k === "--interval") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 100) return `--interval ${v}: a whole number of milliseconds, at least 100`;
      a.intervalMs = n;
    } else if (k === "--api-endpoint") {
      const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return `--api-endpoint ${v}: want IPv4:PORT`;
      a.apiEndpoint = { host: m[1]!, port: Number(m[2]) };
    } else if (k === "--tls-cert") a.tlsCert = v;
    else if (k === "--tls-key") a.tlsKey = v;
    else return `unknown option ${k}\n\n${USAGE}`;
    i++;
  }
  if (!a.api) return `--api is required\n\n${USAGE}`;
  if (a.nodeIPs.length === 0) return `at least one --node-ip is required\n\n${USAGE}`;
  if (a.apiEndpoint && (!a.tlsCert || !a.tlsKey)) return `--api-endpoint needs --tls-cert and --tls-key\n\n${USAGE}`;
  return a as Args;
}

/** The load balancer addresses that need health-checked routing, with their check port. */
export function healthChecked(services: Service[]): { ip: string; port: number; service: string }[] {
  const out: { ip: string; port: number; service: string }[] = [];
  for (const s of services) {
    const spec = s.spec;
    if (spec.type !== "LoadBalancer" || spec.externalTrafficPolicy !== "Local" || !spec.healthCheckNodePort) continue;
    for (const ing of s.status?.loadBalancer?.ingress ?? []) {
      if (ing.ip && !ing.ip.includes(":")) out.push({ ip: ing.ip, port: spec.healthCheckNodePort, service: `${s.metadata.namespace}/${s.metadata.name}` });
    }
  }
  return out;
}

/** kube-proxy's health check: 200 when the node has a local endpoint (1 s to answer). */
function probe(nodeIP: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: nodeIP, port, path: "/healthz", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

function ip(args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    execFile(systemBinary("ip"), args, (err, _out, stderr) => resolve({ ok: !err, stderr: String(stderr).trim() }));
  });
}

/** The route for one address: its healthy nodes, or every node when none is healthy. */
export function nextHops(nodeIPs: string[], healthy: boolean[]): string[] {
  const up = nodeIPs.filter((_, i) => healthy[i]);
  return up.length ? up : nodeIPs;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === "string") {
    const help = args === USAGE;
    (help ? process.stdout : process.stderr).write(args.endsWith("\n") ? args : `${args}\n`);
    return help ? 0 : 2;
  }
  const api = args.api.startsWith("http") ? new ApiClient({ baseUrl: args.api, userAgent: "podnet-cloud-lb" }) : new ApiClient({ socketPath: args.api, userAgent: "podnet-cloud-lb" });
  const routed = new Map<string, string>(); // address -> next hops it is routed to
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const log = (m: string) => process.stderr.write(`${new Date().toISOString()} cloud-lb: ${m}\n`);
  log(`routing health-checked LoadBalancer addresses over ${args.nodeIPs.join(", ")} on ${args.dev}`);
  let endpoint: Awaited<ReturnType<typeof serveApiEndpoint>> | undefined;
  if (args.apiEndpoint) {
    try {
      endpoint = await serveApiEndpoint({ ...args.apiEndpoint, certFile: args.tlsCert!, keyFile: args.tlsKey!, api: args.api, log });
    } catch (e) {
      log(`cannot serve the API on ${args.apiEndpoint.host}:${args.apiEndpoint.port}: ${(e as Error).message}`);
      return 1;
    }
    log(`serving the API on https://${args.apiEndpoint.host}:${args.apiEndpoint.port} (forwarded to ${args.api})`);
  }

  while (!stopping) {
    try {
      const list = await api.list<Service>(resourcePath("services"));
      const wanted = healthChecked(list.items);
      const seen = new Set<string>();
      for (const w of wanted) {
        if (seen.has(w.ip)) continue;
        seen.add(w.ip);
        const healthy = await Promise.all(args.nodeIPs.map((n) => probe(n, w.port)));
        const hops = nextHops(args.nodeIPs, healthy);
        const key = hops.join(",");
        if (routed.get(w.ip) === key) continue;
        const r = await ip(["route", "replace", `${w.ip}/32`, ...hops.flatMap((h) => ["nexthop", "via", h, "dev", args.dev])]);
        if (r.ok) {
          routed.set(w.ip, key);
          log(`${w.service}: ${w.ip} -> ${hops.join(", ")}${hops.length === args.nodeIPs.length && !healthy.some(Boolean) ? " (no healthy node: all)" : ""}`);
        } else log(`${w.service}: cannot route ${w.ip}: ${r.stderr}`);
      }
      for (const addr of [...routed.keys()].filter((a) => !seen.has(a))) {
        const r = await ip(["route", "del", `${addr}/32`]);
        if (r.ok || /No such process/.test(r.stderr)) {
          routed.delete(addr);
          log(`${addr}: back to the pool route`);
        } else log(`cannot remove the route of ${addr}: ${r.stderr}`);
      }
    } catch (e) {
      log(`${(e as Error).message}`);
    }
    const until = Date.now() + args.intervalMs;
    while (!stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
  }
  endpoint?.close();
  return 0;
}
