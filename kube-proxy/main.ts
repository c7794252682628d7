// `podnet kube-proxy`: the service proxy daemon of one node. Run it inside the node's netns:
// every nft and conntrack command it runs changes that netns only.
import http from "node:http";
import { ApiClient, Informer, resourcePath } from "../apiserver/client.ts";
import type { EndpointSlice, Node, Service } from "../apiserver/types.ts";
import { ChangeTracker } from "./change-tracker.ts";
import { makeRunner } from "./exec.ts";
import { parseBindAddress, ServiceHealthServers } from "./healthcheck.ts";
import { familyOf, type Family } from "./model.ts";
import { Proxier } from "./proxier.ts";
import { TABLE } from "./ruleset.ts";
import { SyncRunner } from "./sync-runner.ts";
import { cleanupNetworkPolicy, NetworkPolicyController } from "../netpol/controller.ts";
import { TABLE as NETPOL_TABLE } from "../netpol/render.ts";

const USAGE = `Usage: podnet kube-proxy --node NAME --api SOCKET_PATH_OR_URL [options]

Watches Services and EndpointSlices and programs this netns's nftables table "${TABLE}"
(families ip and ip6). Run it inside the node's network namespace.

Options:
  --node NAME                    this node's name (endpoints with nodeName NAME are local)
  --api PATH|URL                 API server: a unix socket path, or http://HOST:PORT
  --node-ip IP                   an address NodePorts answer on (repeatable; default: the
                                 Node's InternalIPs, else every local address but loopback)
  --cluster-cidr CIDR            the cluster's pod CIDR (repeatable, one per family); traffic
                                 from outside it to a ClusterIP is masqueraded
  --metrics-bind-address A:P     Prometheus metrics (default 127.0.0.1:10249; "0" disables)
  --healthz-bind-address A:P     proxy health check (default 0.0.0.0:10256; "0" disables)
  --min-sync-period DURATION     least time between syncs, e.g. 100ms, 1s (default 100ms)
  --ip-families LIST             ipv4, ipv6 or ipv4,ipv6 (default ipv4,ipv6)
  --network-policy               also enforce NetworkPolicies for this node's pods, in the
                                 table inet ${NETPOL_TABLE} (netpol/README.md)
  --cleanup                      remove the ${TABLE} tables (and ${NETPOL_TABLE}) from this
                                 netns and exit
`;

interface Args {
  node?: string;
  api?: string;
  nodeIPs: string[];
  clusterCIDRs: string[];
  metrics: string;
  healthz: string;
  minSyncMs: number;
  families: Family[];
  cleanup: boolean;
  networkPolicy: boolean;
  help: boolean;
}

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${JSON.stringify(s)} (want e.g. 100ms or 1s)`);
  const n = Number(m[1]);
  return m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60000 : n;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { nodeIPs: [], clusterCIDRs: [], metrics: "127.0.0.1:10249", healthz: "0.0.0.0:10256", minSyncMs: 100, families: ["ip", "ip6"], cleanup: false, networkPolicy: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (arg.startsWith("--") && eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--node":
      case "--hostname-override":
        a.node = value();
        break;
      case "--api":
        a.api = value();
        break;
      case "--node-ip":
        for (const ip of value().split(",")) {
          if (!familyOf(ip)) throw new Error(`--node-ip ${JSON.stringify(ip)} is not an IP address`);
          a.nodeIPs.push(ip);
        }
        break;
      case "--cluster-cidr":
        a.clusterCIDRs.push(...value().split(","));
        break;
      case "--metrics-bind-address":
        a.metrics = value();
        break;
      case "--healthz-bind-address":
        a.healthz = value();
        break;
      case "--min-sync-period":
        a.minSyncMs = parseDuration(value());
        break;
      case "--ip-families": {
        const fams = value().split(",").map((f) => (f === "ipv4" ? "ip" : f === "ipv6" ? "ip6" : undefined));
        if (fams.some((f) => !f)) throw new Error("--ip-families takes ipv4, ipv6 or ipv4,ipv6");
        a.families = fams as Family[];
        break;
      }
      case "--cleanup":
        a.cleanup = true;
        break;
      case "--network-policy":
        a.networkPolicy = true;
        break;
      case "-h":
      case "--help":
        a.help = true;
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  return a;
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} kube-proxy: ${msg}\n`);
}

async function nodeAddresses(client: ApiClient, node: string): Promise<string[]> {
  try {
    const n = await client.get<Node>(resourcePath("nodes", node));
    return (n.status?.addresses ?? []).filter((a) => a.type === "InternalIP" && familyOf(a.address)).map((a) => a.address);
  } catch (e) {
    log(`cannot read Node ${node} (${e instanceof Error ? e.message : String(e)}); NodePorts answer on every local address`);
    return [];
  }
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`podnet kube-proxy: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runner = makeRunner();
  if (args.cleanup) {
    for (const f of args.families) await runner.exec("nft", ["delete", "table", f, TABLE]);
    await cleanupNetworkPolicy(runner);
    return 0;
  }
  if (!args.node || !args.api) {
    process.stderr.write(`podnet kube-proxy: --node and --api are required\n\n${USAGE}`);
    return 2;
  }
  const metricsAddr = parseBindAddress(args.metrics);
  const healthzAddr = parseBindAddress(args.healthz);
  const client = args.api.startsWith("http://") ? new ApiClient({ baseUrl: args.api, userAgent: "podnet-kube-proxy" }) : new ApiClient({ socketPath: args.api, userAgent: "podnet-kube-proxy" });

  const tracker = new ChangeTracker();
  const healthServers = new ServiceHealthServers(undefined, log);
  const nodeIPs = args.nodeIPs.length ? args.nodeIPs : await nodeAddresses(client, args.node);
  const netpol = args.networkPolicy ? new NetworkPolicyController(client, args.node, runner, log, args.minSyncMs) : undefined;
  const proxier = new Proxier(tracker, {
    nodeName: args.node,
    runner,
    families: args.families,
    clusterCIDRs: args.clusterCIDRs,
    nodeIPs,
    log,
    onHealthChange: (want) => healthServers.update(want),
  });
  let lastError = "";
  const syncRunner = new SyncRunner(async () => {
    try {
      const r = await proxier.sync();
      if (r && (r.full || r.commands > 0)) log(`${r.full ? "full" : "partial"} sync: ${r.servicesRendered} services, ${r.commands} nft commands, ${(r.seconds * 1000).toFixed(1)} ms`);
      lastError = "";
      return true;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
      log(`sync failed, retrying with a full sync: ${lastError}`);
      return false;
    }
  }, args.minSyncMs);
  tracker.onChange = () => {
    proxier.metrics.lastQueued.set(Date.now() / 1000);
    syncRunner.request();
  };

  const servers: http.Server[] = [];
  const listen = (addr: { host: string; port: number }, handler: http.RequestListener, what: string) =>
    new Promise<void>((resolve, reject) => {
      const s = http.createServer(handler);
      s.once("error", (e) => reject(new Error(`${what} on ${addr.host}:${addr.port}: ${e.message}`)));
      s.listen(addr.port, addr.host, () => {
        servers.push(s);
        resolve();
      });
    });
  try {
    if (metricsAddr) {
      await listen(
        metricsAddr,
        (req, res) => {
          if (req.url === "/metrics") {
            res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
            res.end(proxier.metrics.render());
          } else if (req.url === "/networkpolicy") {
            res.writeHead(netpol ? 200 : 404, { "Content-Type": "application/json" });
            res.end(JSON.stringify(netpol ? netpol.status() : { message: "network policy is not enforced (--network-policy)" }) + "\n");
          } else if (req.url === "/services") {
            res.writeHead(200, { "Content-Type": "text/plain" });
            res.end(proxier.summary().join("\n") + "\n");
          } else {
            res.writeHead(404).end("not found\n");
          }
        },
        "metrics server",
      );
    }
    if (healthzAddr) {
      await listen(
        healthzAddr,
        (req, res) => {
          const last = proxier.metrics.lastTimestamp.get();
          const healthy = tracker.synced && proxier.syncs > 0 && lastError === "";
          if (req.url === "/healthz" || req.url === "/livez") {
            res.writeHead(healthy ? 200 : 503, { "Content-Type": "application/json" });
            res.end(JSON.stringify({ lastUpdated: last ? new Date(last * 1000).toISOString() : "", currentTime: new Date().toISOString(), nodeEligible: true }) + "\n");
          } else res.writeHead(404).end("not found\n");
        },
        "healthz server",
      );
    }
  } catch (e) {
    for (const s of servers) s.close();
    process.stderr.write(`podnet kube-proxy: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }

  const services = new Informer<Service>(client, resourcePath("services"));
  const slices = new Informer<EndpointSlice>(client, resourcePath("endpointslices"));
  tracker.watch(services, slices);
  netpol?.start();
  log(`node ${args.node}, API ${client.endpoint}, families ${args.families.join(",")}, NodePort addresses ${nodeIPs.join(",") || "(all local)"}`);
  // No rule is written until both caches are synced (the proxier checks both flags).
  void services.start().then(() => tracker.setServicesSynced(), (e) => log(`services informer: ${e instanceof Error ? e.message : String(e)}`));
  void slices.start().then(() => tracker.setEndpointSlicesSynced(), (e) => log(`endpointslices informer: ${e instanceof Error ? e.message : String(e)}`));

  return new Promise<number>((resolve) => {
    const stop = async (sig: string) => {
      log(`${sig}: stopping (rules stay in place; --cleanup removes them)`);
      services.stop();
      slices.stop();
      netpol?.stop();
      syncRunner.stop();
      await healthServers.close();
      for (const s of servers) s.close();
      resolve(0);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
}

