// `podnet status`: nodes with their pod CIDRs and readiness, and the health of every daemon.
import { existsSync } from "node:fs";
import { resourcePath, type ApiClient } from "../apiserver/client.ts";
import type { Node } from "../apiserver/types.ts";
import { apiserverSpec, cloudLbSpec, nodeSpecs } from "./components.ts";
import type { ClusterLayout } from "./layout.ts";
import { runningPid } from "./processes.ts";
import { listNetns } from "./sh.ts";

export interface StatusReport {
  name: string;
  processes: { name: string; pid?: number; running: boolean }[];
  netns: string[];
  nodes: { name: string; ready: string; podCIDR?: string; internalIP?: string }[];
  apiError?: string;
}

export async function status(l: ClusterLayout, api: ApiClient): Promise<StatusReport> {
  const specs = [apiserverSpec(l), cloudLbSpec(l), ...l.nodes.flatMap((n) => nodeSpecs(l, n))];
  const processes = specs.map((s) => {
    const pid = existsSync(s.pidFile) ? runningPid(s.pidFile) : undefined;
    return { name: s.name, pid, running: pid !== undefined };
  });
  const netns = (await listNetns()).filter((n) => n.startsWith(l.netnsPrefix));
  const report: StatusReport = { name: l.cfg.name, processes, netns, nodes: [] };
  try {
    const list = await api.list<Node>(resourcePath("nodes"));
    report.nodes = list.items.map((n) => ({
      name: String(n.metadata.name),
      ready: n.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown",
      podCIDR: n.spec?.podCIDR,
      internalIP: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address,
    }));
  } catch (e) {
    report.apiError = (e as Error).message;
  }
  return report;
}

export function formatStatus(r: StatusReport): string {
  const lines = [`cluster ${r.name}`, "", "NODE        READY    POD-CIDR          INTERNAL-IP"];
  for (const n of r.nodes) lines.push(`${n.name.padEnd(12)}${n.ready.padEnd(9)}${(n.podCIDR ?? "-").padEnd(18)}${n.internalIP ?? "-"}`);
  if (r.apiError) lines.push(`(API server unreachable: ${r.apiError})`);
  lines.push("", "PROCESS               PID      STATE");
  for (const p of r.processes) lines.push(`${p.name.padEnd(22)}${String(p.pid ?? "-").padEnd(9)}${p.running ? "running" : "NOT RUNNING"}`);
  lines.push("", `network namespaces: ${r.netns.length} (${r.netns.filter((n) => n.includes("-p-")).length} pods)`);
  return lines.join("\n") + "\n";
}
