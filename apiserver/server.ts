// startApiServer: storage, registry, watch hub, HTTP on a unix socket (and optionally a
// loopback TCP port), and the controllers that run inside the API server process.
import { existsSync, unlinkSync, chmodSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { DeploymentController } from "./controllers/deployment.ts";
import { EndpointsController } from "./controllers/endpoints.ts";
import { EndpointSliceController } from "./controllers/endpointslices.ts";
import { EndpointSliceMirroringController } from "./controllers/endpointslicemirroring.ts";
import { GarbageCollector } from "./controllers/garbagecollector.ts";
import { NodeLifecycleController } from "./controllers/nodelifecycle.ts";
import { ReplicaSetController } from "./controllers/replicaset.ts";
import { Scheduler } from "./controllers/scheduler.ts";
import { SlicesByService } from "./controllers/slice-index.ts";
import { makeHandler } from "./http.ts";
import { Registry } from "./registry.ts";
import { SqliteStorage, type Storage } from "./storage.ts";
import { log } from "./util.ts";
import { WatchHub } from "./watch.ts";

export interface ApiServerOptions {
  stateDir: string;
  /** "127.0.0.1:PORT" (PORT 0 picks a free one). */
  listen?: string;
  serviceCIDR?: string;
  clusterCIDR?: string;
  nodeCIDRMaskSize?: number;
  nodePortRange?: string;
  /** The emulated cloud's LoadBalancer pool; "" disables it. */
  lbPool?: string;
  nodeMonitorGracePeriodSeconds?: number;
  /** Changes kept for watches to resume from (default 10000). */
  watchWindow?: number;
  maxEndpointsPerSlice?: number;
  /** Where clients in the cluster reach the API: the `kubernetes` Service's endpoint (none when absent). */
  advertiseAddress?: string;
  /** The port at that address (default 6443). */
  advertisePort?: number;
  /** How often the scheduler retries every unscheduled pod besides the events that may let it fit (default 10 s). */
  schedulerRetryMs?: number;
  /** Run the controllers (default true). */
  controllers?: boolean;
  /** Log every request to stderr. */
  verbose?: boolean;
  /** No start-up line (tests). */
  quiet?: boolean;
}

export interface RunningApiServer {
  socketPath: string;
  /** http://HOST:PORT when listening on TCP. */
  url?: string;
  registry: Registry;
  close(): Promise<void>;
}

export const DEFAULTS = {
  serviceCIDR: "10.96.0.0/12",
  clusterCIDR: "10.244.0.0/16",
  nodeCIDRMaskSize: 24,
  nodePortRange: "30000-32767",
  lbPool: "198.18.1.0/24",
  nodeMonitorGracePeriodSeconds: 40,
};

/** Unix socket paths are limited to 107 bytes by the kernel. */
const MAX_SOCKET_PATH = 107;

function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

function listen(server: Server, target: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(target, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

export function parseListen(s: string): { host: string; port: number } {
  const m = s.match(/^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen wants HOST:PORT such as 127.0.0.1:6443, got "${s}"`);
  return { host: m[1] ?? m[2], port };
}

export async function startApiServer(opts: ApiServerOptions): Promise<RunningApiServer> {
  const socketPath = join(opts.stateDir, "apiserver.sock");
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`state directory path too long for a unix socket: ${socketPath}`);
  const tcp = opts.listen ? parseListen(opts.listen) : undefined;
  if (existsSync(socketPath)) {
    if (await socketInUse(socketPath)) throw new Error(`another API server is already serving ${socketPath}`);
    unlinkSync(socketPath);
  }
  const cfg = {
    serviceCIDR: opts.serviceCIDR ?? DEFAULTS.serviceCIDR,
    clusterCIDR: opts.clusterCIDR ?? DEFAULTS.clusterCIDR,
    nodeCIDRMaskSize: opts.nodeCIDRMaskSize ?? DEFAULTS.nodeCIDRMaskSize,
    nodePortRange: opts.nodePortRange ?? DEFAULTS.nodePortRange,
    lbPool: opts.lbPool === undefined ? DEFAULTS.lbPool : opts.lbPool || undefined,
  };
  const storage: Storage = new SqliteStorage(opts.stateDir);
  let registry: Registry;
  try {
    registry = new Registry(storage, cfg);
    registry.bootstrap();
    registry.reconcileKubernetesEndpoints(opts.advertiseAddress, opts.advertisePort ?? 6443);
  } catch (e) {
    storage.close();
    throw e;
  }
  const hub = new WatchHub(storage, registry, opts.watchWindow ?? 10000);
  const openResponses = new Set<ServerResponse>();
  const handler = makeHandler({ registry, hub, verbose: opts.verbose ?? false, openResponses });

  const controllers: { start(): void; stop(): void }[] = [];
  if (opts.controllers !== false) {
    const slicesByService = new SlicesByService(registry, storage);
    controllers.push(
      new GarbageCollector(registry, storage),
      new Scheduler(registry, storage, opts.schedulerRetryMs),
      new EndpointSliceController(registry, storage, opts.maxEndpointsPerSlice ?? 100),
      slicesByService,
      new EndpointsController(registry, storage, slicesByService),
      new EndpointSliceMirroringController(registry, storage, slicesByService),
      new NodeLifecycleController(registry, storage, (opts.nodeMonitorGracePeriodSeconds ?? DEFAULTS.nodeMonitorGracePeriodSeconds) * 1000),
      new ReplicaSetController(registry, storage),
      new DeploymentController(registry, storage),
    );
  }

  const servers: Server[] = [];
  const makeServer = () => {
    const s = createServer(handler);
    // Watches are long-lived: no idle timeouts on connections.
    s.requestTimeout = 0;
    s.keepAliveTimeout = 65_000;
    servers.push(s);
    return s;
  };
  let url: string | undefined;
  try {
    const unixServer = makeServer();
    await listen(unixServer, { path: socketPath });
    chmodSync(socketPath, 0o600);
    if (tcp) {
      const tcpServer = makeServer();
      await listen(tcpServer, tcp);
      const addr = tcpServer.address();
      const port = typeof addr === "object" && addr ? addr.port : tcp.port;
      url = `http://${tcp.host.includes(":") ? `[${tcp.host}]` : tcp.host}:${port}`;
    }
  } catch (e) {
    for (const s of servers) s.close();
    storage.close();
    throw e;
  }
  for (const c of controllers) c.start();
  if (!opts.quiet) log(`serving on ${socketPath}${url ? ` and ${url}` : ""} (revision ${storage.revision()}, service CIDR ${cfg.serviceCIDR}, cluster CIDR ${cfg.clusterCIDR})`);

  let closed: Promise<void> | undefined;
  return {
    socketPath,
    url,
    registry,
    close() {
      closed ??= (async () => {
        for (const c of controllers) c.stop();
        hub.closeAll();
        for (const r of openResponses) r.end();
        await Promise.all(
          servers.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                s.closeAllConnections();
              }),
          ),
        );
        storage.close();
        try {
          unlinkSync(socketPath);
        } catch {
          /* already gone */
        }
      })();
      return closed;
    },
  };
}
