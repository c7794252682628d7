// `podnet down`: stops every daemon, kills every process left in the cluster's namespaces,
// removes the namespaces (and with them every link, route and nftables table inside), and
// removes the state and runtime directories. Works on half-made or crashed clusters too.
import { existsSync, rmdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { apiserverSpec, cloudLbSpec, nodeSpecs } from "./components.ts";
import type { ClusterConfig } from "./config.ts";
import { layout } from "./layout.ts";
import { killPids, stopDaemon, waitExited } from "./processes.ts";
import { listNetns, netnsPids, sh } from "./sh.ts";

export interface DownReport {
  netnsRemoved: string[];
  processesKilled: number;
}

export async function down(cfg: ClusterConfig): Promise<DownReport> {
  const l = layout(cfg);
  // Kubelets first (they would restart what the others stop), then the rest.
  await Promise.all(l.nodes.map((n) => stopDaemon(nodeSpecs(l, n)[1]!.pidFile, 3000)));
  await Promise.all([
    ...l.nodes.flatMap((n) => [stopDaemon(nodeSpecs(l, n)[2]!.pidFile, 3000), stopDaemon(nodeSpecs(l, n)[0]!.pidFile, 3000)]),
    stopDaemon(cloudLbSpec(l).pidFile, 3000),
  ]);
  await stopDaemon(apiserverSpec(l).pidFile, 3000);

  const mine = (await listNetns()).filter((n) => n.startsWith(l.netnsPrefix));
  const killed: number[] = [];
  for (const ns of mine) {
    const pids = await netnsPids(ns);
    killed.push(...pids);
    killPids(pids);
  }
  // Only report the cluster gone once its processes really are.
  await waitExited(killed);
  for (const ns of mine) await sh("ip", ["netns", "del", ns]).catch(() => undefined);
  for (const dir of [cfg.runDir, cfg.stateDir]) {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    // The roots (/var/lib/podnet, /run/podnet) go too once no cluster is left in them.
    try {
      rmdirSync(dirname(dir));
    } catch {
      /* another cluster still lives there, or it is gone already */
    }
  }
  return { netnsRemoved: mine, processesKilled: killed.length };
}
