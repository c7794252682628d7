// What an emulated cluster is made of: its name, where its state lives, and its address plan.
// Every default comes from docs/architecture (10.244.0.0/16 pods, 10.96.0.0/12 services,
// 198.18.0.0/24 underlay, 198.18.1.0/24 LoadBalancer pool) and every one can be overridden.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface ClusterConfig {
  name: string;
  nodes: number;
  stateDir: string;
  runDir: string;
  clusterCIDR: string;
  serviceCIDR: string;
  nodePortRange: string;
  /** Underlay /24: .1 is the fabric router, .2 the external client, node i gets .(10+i). */
  underlay: string;
  lbPool: string;
  dnsIP: string;
  domain: string;
  /** How long a node may miss heartbeats before it turns NotReady (the API server's flag). */
  nodeMonitorGracePeriod: string;
}

export const DEFAULTS = {
  nodes: 3,
  clusterCIDR: "10.244.0.0/16",
  serviceCIDR: "10.96.0.0/12",
  nodePortRange: "30000-32767",
  underlay: "198.18.0.0/24",
  lbPool: "198.18.1.0/24",
  dnsIP: "10.96.0.10",
  domain: "cluster.local",
  nodeMonitorGracePeriod: "40s",
};

export const MAX_NODES = 50;

/** Cluster names end up in netns names and state paths: a short DNS label. */
export function clusterNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return `cluster name "${name}" must be lowercase letters, digits and '-', starting and ending with a letter or digit`;
  if (name.length > 20) return `cluster name "${name}" is longer than 20 characters`;
  return undefined;
}

export function clusterName(flag?: string): string {
  return flag ?? process.env.PODNET_CLUSTER ?? "podnet";
}

/** PODNET_STATE_ROOT moves every cluster's state elsewhere (tests use temp dirs). */
export function defaultStateDir(name: string): string {
  return join(process.env.PODNET_STATE_ROOT ?? "/var/lib/podnet", name);
}

export function defaultRunDir(name: string): string {
  return join(process.env.PODNET_RUN_ROOT ?? "/run/podnet", name);
}

export function makeConfig(name: string, over: Partial<ClusterConfig> = {}): ClusterConfig {
  const problem = clusterNameProblem(name);
  if (problem) throw new Error(problem);
  const cfg: ClusterConfig = {
    name,
    nodes: DEFAULTS.nodes,
    stateDir: defaultStateDir(name),
    runDir: defaultRunDir(name),
    clusterCIDR: DEFAULTS.clusterCIDR,
    serviceCIDR: DEFAULTS.serviceCIDR,
    nodePortRange: DEFAULTS.nodePortRange,
    underlay: DEFAULTS.underlay,
    lbPool: DEFAULTS.lbPool,
    dnsIP: DEFAULTS.dnsIP,
    domain: DEFAULTS.domain,
    nodeMonitorGracePeriod: DEFAULTS.nodeMonitorGracePeriod,
    ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)),
  };
  if (!Number.isInteger(cfg.nodes) || cfg.nodes < 1 || cfg.nodes > MAX_NODES) throw new Error(`--nodes must be between 1 and ${MAX_NODES}`);
  if (!/^\d+\.\d+\.\d+\.0\/24$/.test(cfg.underlay)) throw new Error(`underlay ${cfg.underlay} must be an IPv4 /24`);
  durationMs("--node-monitor-grace-period", cfg.nodeMonitorGracePeriod);
  return cfg;
}

/** "40s", "500ms", "1m" or plain seconds ("40"), as the API server's flag takes them. */
export function durationMs(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m || Number(m[1]) <= 0) throw new Error(`${flag} wants a duration such as 40s, 500ms or 1m, got "${s}"`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

/**
 * The kubelets' heartbeat period: a quarter of the grace period (Kubernetes' 10 s against 40 s),
 * never more than 10 s, so a shortened grace period does not make healthy nodes look dead.
 */
export function heartbeatMs(cfg: ClusterConfig): number {
  return Math.max(100, Math.min(10_000, Math.floor(durationMs("--node-monitor-grace-period", cfg.nodeMonitorGracePeriod ?? DEFAULTS.nodeMonitorGracePeriod) / 4)));
}

/** The config a running cluster was made with (written by `podnet up`), if there is one. */
export function loadConfig(stateDir: string): ClusterConfig | undefined {
  const p = join(stateDir, "cluster.json");
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, "utf8")) as ClusterConfig;
}
