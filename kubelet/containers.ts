// The CRI configs the kubelet sends for a pod: its sandbox (hostname, DNS, labels, metadata,
// port mappings for the record) and each container (command/args/env/workingDir with the
// service variables and downward API, labels naming the pod and container).
import type { Container, Pod } from "../apiserver/types.ts";
import type { ContainerConfig, DNSConfig, PodSandboxConfig, PortMapping } from "../runtime/cri/types.ts";
import { containerEnv, expandCommand, type PodFacts } from "./env.ts";
import type { Service } from "../apiserver/types.ts";
import { CONTAINER_NAME_LABEL, MANAGED_BY, MANAGED_BY_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL } from "./labels.ts";

/** The pod's hostname as the kubelet sets it: spec.hostname, else the name cut to 63 characters. */
export function podHostname(pod: Pod): string {
  return cutHostname(pod.spec.hostname || pod.metadata.name || "");
}

/** At most 63 characters, without a trailing '-' or '.', as the kubelet cuts a pod's hostname. */
function cutHostname(h: string): string {
  return h.slice(0, 63).replace(/[-.]+$/, "");
}

export function podLabels(pod: Pod): Record<string, string> {
  return {
    [POD_NAME_LABEL]: pod.metadata.name ?? "",
    [POD_NAMESPACE_LABEL]: pod.metadata.namespace ?? "default",
    [POD_UID_LABEL]: pod.metadata.uid ?? "",
    [MANAGED_BY_LABEL]: MANAGED_BY,
  };
}

/**
 * The sandbox the runtime makes for a pod. A hostNetwork pod asks for the node's network namespace
 * (CRI's NODE mode): no CNI, no port mappings, and the node's name as its hostname, as a pod
 * sharing a node's network sees the node's.
 */
export function sandboxConfig(pod: Pod, attempt: number, dns: DNSConfig, nodeName: string): PodSandboxConfig {
  const hostNetwork = pod.spec.hostNetwork === true;
  const portMappings: PortMapping[] = [];
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const m: PortMapping = { protocol: p.protocol ?? "TCP", containerPort: p.containerPort, hostPort: p.hostPort };
      if (p.hostIP) m.hostIp = p.hostIP;
      portMappings.push(m);
    }
  }
  const config: PodSandboxConfig = {
    metadata: { name: pod.metadata.name ?? "", namespace: pod.metadata.namespace ?? "default", uid: pod.metadata.uid ?? "", attempt },
    hostname: hostNetwork ? cutHostname(nodeName) : podHostname(pod),
    dnsConfig: dns,
    portMappings: hostNetwork ? [] : portMappings,
    labels: { ...(pod.metadata.labels ?? {}), ...podLabels(pod) },
    annotations: { ...(pod.metadata.annotations ?? {}) },
  };
  if (hostNetwork) config.linux = { securityContext: { namespaceOptions: { network: "NODE" } } };
  return config;
}

export class ContainerConfigError extends Error {}

export function containerConfig(pod: Pod, c: Container, attempt: number, services: Service[], facts: PodFacts): ContainerConfig {
  let env;
  try {
    env = containerEnv(pod, c, services, facts);
  } catch (e) {
    throw new ContainerConfigError((e as Error).message);
  }
  const { command, args } = expandCommand(c, env);
  if (!command.length && !args.length) throw new ContainerConfigError(`container ${c.name} has no command: containers run on the host's filesystem, so an image entrypoint cannot be used; give command (and args)`);
  const labels = { ...podLabels(pod), [CONTAINER_NAME_LABEL]: c.name };
  delete (labels as Record<string, string>)[MANAGED_BY_LABEL];
  const cfg: ContainerConfig = {
    metadata: { name: c.name, attempt },
    image: { image: c.image ?? "" },
    command,
    args,
    envs: env.map((e) => ({ key: e.name, value: e.value })),
    labels,
    annotations: { "io.kubernetes.container.restartCount": String(attempt) },
  };
  if (c.workingDir) cfg.workingDir = c.workingDir;
  return cfg;
}
