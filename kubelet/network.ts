// The pod network, through the runtime-side CNI library: the node's configuration written from
// conf/cni/ (the pod CIDR, host-local's data dir and the MTU filled in), then for every sandbox the
// loopback network (ifname lo) and the pod network (ifname eth0), as the kubelet's CNI integration
// does. DEL goes in the reverse order and always follows an ADD, even a failed one.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "../apiserver/types.ts";
import { CniNetwork, type GcReport } from "../runtime/cni/index.ts";
import type { RuntimeClient } from "../runtime/cri/client.ts";
import type { KubeletConfig } from "./flags.ts";

export const POD_NETWORK_FILE = "10-podnet.conflist";
export const LOOPBACK_FILE = "99-loopback.conflist";

/** conf/cni of the checkout or of the installed package (beside dist/). */
export function confCniDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [join(here, "..", "conf", "cni"), join(here, "..", "..", "conf", "cni")]) {
    if (existsSync(join(c, `${POD_NETWORK_FILE}.tmpl`))) return c;
  }
  throw new Error(`cannot find conf/cni/${POD_NETWORK_FILE}.tmpl next to ${here}`);
}

function writeIfChanged(path: string, text: string): boolean {
  try {
    if (readFileSync(path, "utf8") === text) return false;
  } catch {
    /* absent */
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
  return true;
}

/** Writes the node's CNI configuration; returns true when a file changed. */
export function writeCniConfig(cfg: KubeletConfig, podCIDR: string): boolean {
  const dir = confCniDir();
  const tmpl = readFileSync(join(dir, `${POD_NETWORK_FILE}.tmpl`), "utf8");
  const text = tmpl
    .replaceAll("{{POD_CIDR}}", podCIDR)
    .replaceAll("{{IPAM_DATA_DIR}}", cfg.ipamDataDir)
    .replaceAll("{{MTU}}", String(cfg.mtu));
  const leftover = /\{\{[A-Z_]+\}\}/.exec(text);
  if (leftover) throw new Error(`${POD_NETWORK_FILE}.tmpl has a placeholder the kubelet does not know: ${leftover[0]}`);
  JSON.parse(text); // a broken template is our bug: fail here, not in every pod
  const a = writeIfChanged(join(cfg.cniConfDir, POD_NETWORK_FILE), text);
  const b = writeIfChanged(join(cfg.cniConfDir, LOOPBACK_FILE), readFileSync(join(dir, LOOPBACK_FILE), "utf8"));
  return a || b;
}

export interface PortMappingArg {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP: string;
}

/** portMappings capability args from the containers' hostPorts, as the kubelet sends them. */
export function portMappingsOf(pod: Pod): PortMappingArg[] {
  const out: PortMappingArg[] = [];
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort || p.hostPort <= 0) continue;
      out.push({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: (p.protocol ?? "TCP").toLowerCase(), hostIP: p.hostIP ?? "" });
    }
  }
  return out;
}

export function cniArgsOf(pod: Pod, sandboxId: string): [string, string][] {
  return [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", pod.metadata.namespace ?? "default"],
    ["K8S_POD_NAME", pod.metadata.name ?? ""],
    ["K8S_POD_INFRA_CONTAINER_ID", sandboxId],
    ["K8S_POD_UID", pod.metadata.uid ?? ""],
  ];
}

export class PodNetwork {
  readonly loopback: CniNetwork;
  readonly pods: CniNetwork;

  constructor(cfg: KubeletConfig, onStderr?: (plugin: string, text: string) => void) {
    const common = { cniPath: cfg.cniBinDirs, cacheDir: cfg.cniCacheDir, onStderr: onStderr && ((plugin: string, _c: string, text: string) => onStderr(plugin, text)) };
    this.loopback = new CniNetwork({ ...common, configFile: join(cfg.cniConfDir, LOOPBACK_FILE) });
    this.pods = new CniNetwork({ ...common, configFile: join(cfg.cniConfDir, POD_NETWORK_FILE) });
  }

  /** ADD of lo then eth0; returns the pod's IPs (IPv4 first). Throws on the first failure. */
  async setUp(pod: Pod, sandboxId: string, netnsPath: string): Promise<string[]> {
    const args = cniArgsOf(pod, sandboxId);
    await this.loopback.add({ containerID: sandboxId, netns: netnsPath, ifname: "lo", args });
    const result = await this.pods.add({ containerID: sandboxId, netns: netnsPath, ifname: "eth0", args }, { portMappings: portMappingsOf(pod) });
    const ips = ((result.ips as { address?: string }[] | undefined) ?? []).map((i) => String(i.address ?? "").split("/")[0]!).filter(Boolean);
    ips.sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
    if (!ips.length) throw new Error(`CNI network "podnet" returned no IP address for sandbox ${sandboxId.slice(0, 12)}`);
    return ips;
  }

  /** DEL of eth0 then lo (cached parameters when none are given); works with the netns gone. */
  async tearDown(sandboxId: string, netnsPath: string, pod?: Pod): Promise<void> {
    const args = pod ? cniArgsOf(pod, sandboxId) : undefined;
    const netns = netnsPath && existsSync(netnsPath) ? netnsPath : "";
    await this.pods.del({ containerID: sandboxId, netns, ifname: "eth0", args });
    await this.loopback.del({ containerID: sandboxId, netns, ifname: "lo", args });
  }

  /** Whether the sandbox's pod network ADD completed (a cached, complete result exists). */
  async isSetUp(sandboxId: string): Promise<boolean> {
    try {
      return (await this.pods.cachedResult({ containerID: sandboxId, ifname: "eth0" })) !== undefined;
    } catch {
      return false;
    }
  }

  /** CNI GC of both networks: every cached attachment of a sandbox not in `valid` is deleted. */
  async gc(validSandboxIds: string[]): Promise<{ pods: GcReport; loopback: GcReport }> {
    const pods = await this.pods.gc(validSandboxIds.map((id) => ({ containerID: id, ifname: "eth0" })));
    const loopback = await this.loopback.gc(validSandboxIds.map((id) => ({ containerID: id, ifname: "lo" })));
    return { pods, loopback };
  }
}

/**
 * A sandbox's network as the runtime reports it: its netns, or the node's network (a hostNetwork
 * pod's sandbox, which has no CNI attachment to delete). A sandbox already gone reads as a netns
 * that is gone: DEL works without it.
 */
export async function sandboxNetwork(runtime: RuntimeClient, sandboxId: string): Promise<{ netnsPath: string; hostNetwork: boolean }> {
  try {
    const o = (await runtime.podSandboxStatus({ podSandboxId: sandboxId })).status.linux?.namespaces?.options;
    return { netnsPath: o?.netnsPath ?? "", hostNetwork: o?.network === "NODE" };
  } catch {
    return { netnsPath: "", hostNetwork: false };
  }
}
