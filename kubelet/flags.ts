// The kubelet's command line: every flag `podnet up` starts it with (cluster/components.ts) and the
// standalone ones, checked up front so a bad value is one clear line, never a failure later.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCIDR, isIPv4 } from "./netutil.ts";

export interface KubeletConfig {
  node: string;
  /** API server: a unix socket path or http://HOST:PORT; absent = standalone (static pods only). */
  api?: string;
  /** --pod-cidr: overrides the Node's spec.podCIDR; required standalone. */
  podCIDR?: string;
  manifestDir?: string;
  stateDir: string;
  runtimeEndpoint: string;
  nodeIP?: string;
  clusterCIDR?: string;
  clusterDNS: string[];
  clusterDomain: string;
  resolvConf: string;
  cniBinDirs: string[];
  cniConfDir: string;
  cniCacheDir: string;
  ipamDataDir: string;
  mtu: number;
  hostGw: boolean;
  nodeStatusUpdateMs: number;
  syncFrequencyMs: number;
  /** How often the runtime is relisted to notice container exits (Kubernetes' PLEG: 1 s). */
  relistMs: number;
  maxParallelPods: number;
  maxPods: number;
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  logFile?: string;
  /** Socket of the read-only status endpoint. */
  statusSocket: string;
}

export const USAGE = `Usage: podnet kubelet --node NAME --state-dir DIR [options]

The node agent of one emulated node. Run it inside the node's network namespace, beside the
runtime daemon (\`podnet runtime --state-dir DIR\`): it runs the pods of its node as sandboxes and
containers of that runtime, networks them with CNI (the loopback network, then the pod network
written from conf/cni/10-podnet.conflist.tmpl), probes them and reports their status.

Pod sources:
  --pod-manifest-path DIR        static pods: one Pod (YAML or JSON) per file, watched for changes
  --api SOCKET|URL               the API server (unix socket path or http://HOST:PORT): registers
                                 the Node, heartbeats, runs the pods bound to it, reports status;
                                 static pods then appear as mirror pods. Without --api the kubelet
                                 is standalone and needs --pod-cidr.

Options:
  --node NAME                    this node's name (required)
  --state-dir DIR                the runtime's state dir; CNI config, cache and IPAM data live
                                 under DIR/cni unless overridden (required)
  --runtime-endpoint EP          unix:///path or a socket path (default DIR/runtime.sock)
  --pod-cidr CIDR                this node's pod CIDR (default: the Node's spec.podCIDR)
  --node-ip IP                   the node's InternalIP (default: the first global IPv4 address)
  --cluster-cidr CIDR            the cluster's pod CIDR: pod traffic leaving it is masqueraded
                                 (default: the pod CIDR)
  --cluster-dns IP[,IP]          nameserver of ClusterFirst pods
  --cluster-domain DOMAIN        default cluster.local
  --resolv-conf FILE             the node's resolver config for dnsPolicy Default (/etc/resolv.conf)
  --cni-bin-dir DIR[:DIR]        CNI plugins (default: dist/cni/bin next to the podnet bundle)
  --cni-conf-dir DIR             default DIR/cni/net.d
  --cni-cache-dir DIR            default DIR/cni/cache
  --ipam-data-dir DIR            host-local's store (default DIR/cni/networks)
  --mtu N                        pod interface MTU (default 1500)
  --host-gw                      route every other node's podCIDR via its InternalIP
  --node-status-update-frequency D   heartbeat period (default 10s)
  --sync-frequency D             full resync of every pod and the manifest dir (default 10s)
  --relist-period D              runtime relist that notices container exits (default 1s)
  --max-parallel-pods N          pods set up or torn down at once (default 16)
  --max-pods N                   the Node's pods capacity (default 110)
  --restart-backoff-base D       first crash-loop back-off (default 10s; doubles up to 30x it)
  --log-file FILE                log here instead of stderr
Durations: 500ms, 10s, 1m. SIGTERM/SIGINT stop the kubelet and leave the pods running.
`;

export class FlagError extends Error {}

export function parseDuration(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new FlagError(`${flag}: bad duration ${JSON.stringify(s)} (want e.g. 500ms, 10s or 1m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000);
}

function positiveInt(flag: string, s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new FlagError(`${flag}: want a positive integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

function cidrFlag(flag: string, s: string): string {
  const c = parseCIDR(s);
  if (!c) throw new FlagError(`${flag}: ${JSON.stringify(s)} is not an IPv4 CIDR such as 10.244.1.0/24`);
  return `${c.network}/${c.prefix}`;
}

/** dist/cni/bin beside the podnet bundle (dist/podnet.mjs), or the checkout's dist when run from source. */
export function defaultCniBinDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, "podnet.mjs"))) return join(here, "cni", "bin");
  return join(here, "..", "dist", "cni", "bin");
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function parseFlags(argv: string[]): KubeletConfig | "help" {
  const v: Record<string, string> = {};
  let hostGw = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") return "help";
    if (!arg.startsWith("--")) throw new FlagError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (name === "host-gw") {
      hostGw = eq > 0 ? arg.slice(eq + 1) !== "false" : true;
      continue;
    }
    if (!KNOWN.has(name)) throw new FlagError(`unknown option --${name}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new FlagError(`--${name} needs a value`);
    v[name] = value;
  }
  const node = v.node;
  if (!node) throw new FlagError("--node is required");
  if (!NODE_NAME.test(node)) throw new FlagError(`--node: ${JSON.stringify(node)} is not a valid node name (lowercase letters, digits, '-' and '.')`);
  if (!v["state-dir"]) throw new FlagError("--state-dir is required");
  const stateDir = resolve(v["state-dir"]);
  const podCIDR = v["pod-cidr"] !== undefined ? cidrFlag("--pod-cidr", v["pod-cidr"]) : undefined;
  if (!v.api && !podCIDR) throw new FlagError("--pod-cidr is required without --api (a standalone kubelet has no Node object to take it from)");
  if (!v.api && !v["pod-manifest-path"]) throw new FlagError("give --pod-manifest-path, --api or both: the kubelet needs a pod source");
  const nodeIP = v["node-ip"];
  if (nodeIP !== undefined && !isIPv4(nodeIP)) throw new FlagError(`--node-ip: ${JSON.stringify(nodeIP)} is not an IPv4 address`);
  const clusterDNS = (v["cluster-dns"] ?? "").split(",").filter(Boolean);
  for (const ip of clusterDNS) if (!isIPv4(ip)) throw new FlagError(`--cluster-dns: ${JSON.stringify(ip)} is not an IPv4 address`);
  const domain = (v["cluster-domain"] ?? "cluster.local").replace(/\.$/, "");
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain)) throw new FlagError(`--cluster-domain: ${JSON.stringify(domain)} is not a DNS domain`);
  const api = v.api;
  if (api !== undefined && !api.startsWith("http://") && !api.startsWith("/") && !api.startsWith("unix://")) {
    throw new FlagError(`--api: want a unix socket path or http://HOST:PORT, got ${JSON.stringify(api)}`);
  }
  const mtu = v.mtu !== undefined ? positiveInt("--mtu", v.mtu) : 1500;
  if (mtu < 576 || mtu > 65535) throw new FlagError(`--mtu: ${mtu} is out of range (576-65535)`);
  const base = v["restart-backoff-base"] !== undefined ? parseDuration("--restart-backoff-base", v["restart-backoff-base"]) : 10_000;
  const statusSocket = join(stateDir, "kubelet.sock");
  if (Buffer.byteLength(statusSocket) > 107) throw new FlagError(`--state-dir ${stateDir} is too long: ${statusSocket} must fit a unix socket path (107 bytes)`);
  const cni = join(stateDir, "cni");
  return {
    node,
    api: api?.startsWith("unix://") ? api.slice("unix://".length) : api,
    podCIDR,
    manifestDir: v["pod-manifest-path"] ? resolve(v["pod-manifest-path"]) : undefined,
    stateDir,
    runtimeEndpoint: v["runtime-endpoint"] ?? join(stateDir, "runtime.sock"),
    nodeIP,
    clusterCIDR: v["cluster-cidr"] !== undefined ? cidrFlag("--cluster-cidr", v["cluster-cidr"]) : undefined,
    clusterDNS,
    clusterDomain: domain,
    resolvConf: v["resolv-conf"] ?? "/etc/resolv.conf",
    cniBinDirs: (v["cni-bin-dir"] ?? defaultCniBinDir()).split(":").filter(Boolean).map((d) => resolve(d)),
    cniConfDir: resolve(v["cni-conf-dir"] ?? join(cni, "net.d")),
    cniCacheDir: resolve(v["cni-cache-dir"] ?? join(cni, "cache")),
    ipamDataDir: resolve(v["ipam-data-dir"] ?? join(cni, "networks")),
    mtu,
    hostGw,
    nodeStatusUpdateMs: v["node-status-update-frequency"] !== undefined ? parseDuration("--node-status-update-frequency", v["node-status-update-frequency"]) : 10_000,
    syncFrequencyMs: v["sync-frequency"] !== undefined ? parseDuration("--sync-frequency", v["sync-frequency"]) : 10_000,
    relistMs: v["relist-period"] !== undefined ? parseDuration("--relist-period", v["relist-period"]) : 1000,
    maxParallelPods: v["max-parallel-pods"] !== undefined ? positiveInt("--max-parallel-pods", v["max-parallel-pods"]) : 16,
    maxPods: v["max-pods"] !== undefined ? positiveInt("--max-pods", v["max-pods"]) : 110,
    restartBackoffBaseMs: base,
    restartBackoffMaxMs: base * 30,
    logFile: v["log-file"] ? resolve(v["log-file"]) : undefined,
    statusSocket,
  };
}

const KNOWN = new Set([
  "node",
  "api",
  "pod-cidr",
  "pod-manifest-path",
  "state-dir",
  "runtime-endpoint",
  "node-ip",
  "cluster-cidr",
  "cluster-dns",
  "cluster-domain",
  "resolv-conf",
  "cni-bin-dir",
  "cni-conf-dir",
  "cni-cache-dir",
  "ipam-data-dir",
  "mtu",
  "node-status-update-frequency",
  "sync-frequency",
  "relist-period",
  "max-parallel-pods",
  "max-pods",
  "restart-backoff-base",
  "log-file",
]);
