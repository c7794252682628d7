// The daemons of a cluster and the command line each is started with.
import { join } from "node:path";
import { API_ENDPOINT_PORT } from "./api-endpoint.ts";
import { heartbeatMs } from "./config.ts";
import type { ClusterLayout, NodeLayout } from "./layout.ts";
import { podnetArgv, type DaemonSpec } from "./processes.ts";

export function apiserverSpec(l: ClusterLayout): DaemonSpec {
  const c = l.cfg;
  return {
    name: "apiserver",
    argv: podnetArgv(
      "apiserver",
      "--state-dir", c.stateDir,
      "--service-cidr", c.serviceCIDR,
      "--cluster-cidr", c.clusterCIDR,
      "--service-node-port-range", c.nodePortRange,
      "--lb-pool", c.lbPool,
      "--node-monitor-grace-period", c.nodeMonitorGracePeriod ?? "40s",
      // Pods reach the API at the fabric router's address, through cloud-lb (api-endpoint.ts).
      "--advertise-address", l.routerIP,
      "--advertise-port", String(API_ENDPOINT_PORT),
    ),
    pidFile: join(c.runDir, "apiserver.pid"),
    logFile: join(c.stateDir, "logs", "apiserver.log"),
  };
}

/** The API's serving certificate and key (made by podnet up, see api-endpoint.ts). */
export function apiServingCert(l: ClusterLayout): { dir: string; cert: string; key: string } {
  const dir = join(l.cfg.stateDir, "pki");
  return { dir, cert: join(dir, "apiserver.crt"), key: join(dir, "apiserver.key") };
}

/** The emulated cloud's load balancer and API endpoint, in the fabric netns (see cloud-lb.ts). */
export function cloudLbSpec(l: ClusterLayout): DaemonSpec {
  const pki = apiServingCert(l);
  return {
    name: "cloud-lb",
    netns: l.fabricNetns,
    argv: podnetArgv(
      "cloud-lb",
      "--api", l.apiSocket,
      ...l.nodes.flatMap((n) => ["--node-ip", n.underlayIP]),
      "--api-endpoint", `${l.routerIP}:${API_ENDPOINT_PORT}`,
      "--tls-cert", pki.cert,
      "--tls-key", pki.key,
    ),
    pidFile: join(l.cfg.runDir, "cloud-lb.pid"),
    logFile: join(l.cfg.stateDir, "logs", "cloud-lb.log"),
  };
}

export function runtimeSpec(l: ClusterLayout, n: NodeLayout): DaemonSpec {
  return {
    name: `${n.name}/runtime`,
    netns: n.netns,
    argv: podnetArgv("runtime", "--state-dir", join(n.dir, "runtime"), "--netns-prefix", `${l.podNetnsPrefix}${n.index}-`),
    pidFile: join(l.cfg.runDir, n.name, "runtime.pid"),
    logFile: join(n.dir, "logs", "runtime.log"),
  };
}

export function kubeletSpec(l: ClusterLayout, n: NodeLayout): DaemonSpec {
  const c = l.cfg;
  return {
    name: `${n.name}/kubelet`,
    netns: n.netns,
    argv: podnetArgv(
      "kubelet",
      "--node", n.name,
      "--api", l.apiSocket,
      "--state-dir", join(n.dir, "runtime"),
      "--runtime-endpoint", n.runtimeSocket,
      "--node-ip", n.underlayIP,
      "--cluster-cidr", c.clusterCIDR,
      "--cluster-dns", c.dnsIP,
      "--cluster-domain", c.domain,
      "--pod-manifest-path", join(n.dir, "manifests"),
      "--node-status-update-frequency", `${heartbeatMs(c)}ms`,
      "--host-gw",
    ),
    pidFile: join(c.runDir, n.name, "kubelet.pid"),
    logFile: join(n.dir, "logs", "kubelet.log"),
  };
}

export function kubeProxySpec(l: ClusterLayout, n: NodeLayout): DaemonSpec {
  const c = l.cfg;
  return {
    name: `${n.name}/kube-proxy`,
    netns: n.netns,
    argv: podnetArgv(
      "kube-proxy",
      "--node", n.name,
      "--api", l.apiSocket,
      "--node-ip", n.underlayIP,
      "--cluster-cidr", c.clusterCIDR,
      "--metrics-bind-address", "127.0.0.1:10249",
      // The node's NetworkPolicy enforcer lives in the same process (netpol/README.md).
      "--network-policy",
    ),
    pidFile: join(c.runDir, n.name, "kube-proxy.pid"),
    logFile: join(n.dir, "logs", "kube-proxy.log"),
  };
}

export function nodeSpecs(l: ClusterLayout, n: NodeLayout): DaemonSpec[] {
  return [runtimeSpec(l, n), kubeletSpec(l, n), kubeProxySpec(l, n)];
}
