// `podnet dns`: the cluster DNS daemon. Watches Services, EndpointSlices and Pods through the API
// server's informers, answers the cluster zone from the record store, forwards (or refuses) the
// rest, and optionally serves /health and /ready. It is a plain process: run it on a node, in a
// netns, or as the kube-dns pod.
import { readFileSync } from "node:fs";
import type http from "node:http";
import { parseArgs } from "node:util";
import { ApiClient, Informer, resourcePath } from "../apiserver/client.ts";
import type { EndpointSlice, KObject, Pod, Service } from "../apiserver/types.ts";
import { Forwarder, formatUpstream, parseUpstream, type Upstream } from "./forward.ts";
import { startHealthServer } from "./health.ts";
import { canonicalIP, ipFamily } from "./names.ts";
import { DnsServer } from "./server.ts";
import { RecordStore } from "./store.ts";

const USAGE = `Usage: podnet dns [--api SOCKET_OR_URL] [--listen HOST:PORT] [--domain ZONE]
                  [--upstream IP[:PORT]|RESOLV_CONF ...] [--no-upstream] [--upstream-timeout SECONDS]
                  [--ttl SECONDS] [--health-port PORT]

The cluster DNS server. Answers <zone> names per the Kubernetes DNS specification from the
Services, EndpointSlices and Pods of the API server, over UDP and TCP.

  --api SOCKET_OR_URL     API server: a unix socket path or http://HOST:PORT
                          (default: $PODNET_APISERVER_SOCKET or /var/lib/podnet/$PODNET_CLUSTER/apiserver.sock)
  --listen HOST:PORT      address for UDP and TCP (default 0.0.0.0:53; [::]:53 for both families)
  --domain ZONE           the cluster domain (default cluster.local)
  --upstream ADDR         where names outside the zone go: IP, IP:PORT, [IPv6]:PORT, or a resolv.conf
                          path whose nameservers are used; repeat or comma-separate for several
                          (tried in order)
  --no-upstream           answer names outside the zone REFUSED (the default when no --upstream)
  --upstream-timeout S    seconds to wait for one upstream before the next (default 2)
  --ttl SECONDS           TTL of the answers (default 5)
  --health-port PORT      serve GET /health and /ready (200 once synced, 503 before) on this port
`;

export interface DnsOptions {
  api?: string;
  host: string;
  port: number;
  domain: string;
  upstreams: Upstream[];
  upstreamTimeoutMs: number;
  ttl: number;
  healthPort?: number;
}

class UsageError extends Error {}

function parsePort(text: string, what: string, allowZero = false): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new UsageError(`${what}: "${text}" is not a port (${allowZero ? 0 : 1}-65535)`);
  return n;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const host = m ? m[1] : text;
  const ip = canonicalIP(host);
  if (!ip) throw new UsageError(`--listen: "${text}" is not HOST:PORT with an IP address as HOST`);
  return { host: ip, port: m ? parsePort(m[2], "--listen", true) : 53 };
}

function upstreamsFrom(value: string): Upstream[] {
  if (!value.includes("/")) {
    try {
      return [parseUpstream(value)];
    } catch (e) {
      throw new UsageError(`--upstream: ${(e as Error).message}`);
    }
  }
  let text: string;
  try {
    text = readFileSync(value, "utf8");
  } catch (e) {
    throw new UsageError(`--upstream: cannot read ${value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const found = [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1].replace(/%.*$/, "")).filter((ip) => ipFamily(ip));
  if (found.length === 0) throw new UsageError(`--upstream: ${value} names no nameserver`);
  return found.map((ip) => parseUpstream(ip));
}

export function parseDnsArgs(argv: string[]): DnsOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        api: { type: "string" },
        listen: { type: "string", default: "0.0.0.0:53" },
        domain: { type: "string", default: "cluster.local" },
        upstream: { type: "string", multiple: true },
        "no-upstream": { type: "boolean" },
        "upstream-timeout": { type: "string", default: "2" },
        ttl: { type: "string", default: "5" },
        "health-port": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return "help";
  if (values["no-upstream"] && values.upstream?.length) throw new UsageError("--upstream and --no-upstream exclude each other");
  const ttl = /^\d+$/.test(values.ttl) ? Number(values.ttl) : NaN;
  if (!Number.isInteger(ttl) || ttl > 86400) throw new UsageError(`--ttl: "${values.ttl}" is not a number of seconds (0-86400)`);
  const timeout = Number(values["upstream-timeout"]);
  if (!(timeout > 0 && timeout <= 60)) throw new UsageError(`--upstream-timeout: "${values["upstream-timeout"]}" is not a number of seconds (0-60]`);
  const { host, port } = parseListen(values.listen);
  const domain = values.domain.toLowerCase().replace(/\.$/, "");
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain) || domain.length > 200) {
    throw new UsageError(`--domain: "${values.domain}" is not a DNS name`);
  }
  return {
    api: values.api,
    host,
    port,
    domain,
    upstreams: (values.upstream ?? []).flatMap((v) => v.split(",")).filter(Boolean).flatMap(upstreamsFrom),
    upstreamTimeoutMs: Math.round(timeout * 1000),
    ttl,
    healthPort: values["health-port"] === undefined ? undefined : parsePort(values["health-port"], "--health-port"),
  };
}

/** Feeds one informer's events into the store. */
function watchInto<T extends KObject>(inf: Informer<T>, upsert: (o: T) => void, remove: (o: T) => void): Informer<T> {
  return inf
    .on("add", (o) => upsert(o))
    .on("update", (o) => upsert(o))
    .on("delete", (o) => remove(o));
}

export async function main(argv: string[]): Promise<number> {
  let opts: DnsOptions | "help";
  try {
    opts = parseDnsArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`podnet dns: ${e.message}\n(podnet dns --help for the options)\n`);
    return 2;
  }
  if (opts === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = (line: string) => process.stderr.write(`podnet dns: ${line}\n`);

  const store = new RecordStore(opts.domain);
  const forwarder = opts.upstreams.length ? new Forwarder(opts.upstreams, { timeoutMs: opts.upstreamTimeoutMs }) : undefined;
  const server = new DnsServer({ store, host: opts.host, port: opts.port, ttl: opts.ttl, forwarder, log });
  const where = ipFamily(opts.host) === 6 ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
  try {
    await server.start();
  } catch (e) {
    throw new Error(`cannot listen on ${where}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let health: http.Server | undefined;
  if (opts.healthPort !== undefined) {
    try {
      health = await startHealthServer(opts.host, opts.healthPort, () => store.synced);
    } catch (e) {
      await server.close();
      throw new Error(`cannot serve /health on port ${opts.healthPort}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  log(
    `serving ${opts.domain} on ${where} (udp, tcp), ttl ${opts.ttl}s, ` +
      (forwarder ? `other names to ${opts.upstreams.map(formatUpstream).join(", ")}` : "other names refused") +
      (health ? `; /health and /ready on port ${opts.healthPort}` : ""),
  );

  const api = opts.api;
  const client = new ApiClient(api === undefined ? {} : api.startsWith("http") ? { baseUrl: api } : { socketPath: api });
  const informers = [
    watchInto(new Informer<Service>(client, resourcePath("services")), (s) => store.upsertService(s), (s) => store.deleteService(s)),
    watchInto(new Informer<EndpointSlice>(client, resourcePath("endpointslices")), (s) => store.upsertEndpointSlice(s), (s) => store.deleteEndpointSlice(s)),
    watchInto(new Informer<Pod>(client, resourcePath("pods")), (p) => store.upsertPod(p), (p) => store.deletePod(p)),
  ];

  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });

  // Until every informer has listed, in-zone queries are answered SERVFAIL (never a cached NXDOMAIN).
  const waiting = setInterval(() => log(`still waiting for the API server at ${client.endpoint}`), 10_000);
  void Promise.all(informers.map((i) => i.start())).then(
    () => {
      clearInterval(waiting);
      store.synced = true;
      const s = store.stats();
      log(`synced: ${s.services} services, ${s.endpointSlices} endpoint slices, ${s.pods} pods, ${s.names} names`);
    },
    () => clearInterval(waiting), // stopped before the first sync
  );

  await stopped;
  clearInterval(waiting);
  for (const i of informers) i.stop();
  await Promise.all([server.close(), health ? new Promise<void>((r) => health!.close(() => r())) : undefined]);
  log("stopped");
  return 0;
}
