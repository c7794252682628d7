// Names and paths of everything a cluster creates. Everything global (netns names) carries the
// cluster name, so clusters and parallel tests never collide; links live inside the cluster's own
// namespaces, so their names can stay short and familiar (eth0, fabric0, cni0).
import { join } from "node:path";
import type { ClusterConfig } from "./config.ts";

export const nodeName = (i: number) => `node-${i}`;

export interface NodeLayout {
  index: number;
  name: string;
  netns: string;
  netnsPath: string;
  underlayIP: string;
  /** Name of the node's link in the fabric netns (the peer of the node's eth0). */
  fabricPort: string;
  dir: string;
  runtimeSocket: string;
}

export interface ClusterLayout {
  cfg: ClusterConfig;
  /** Every netns of this cluster starts with this; `podnet down` removes them by it. */
  netnsPrefix: string;
  fabricNetns: string;
  externalNetns: string;
  /** Prefix the runtime daemons use for pod sandboxes. */
  podNetnsPrefix: string;
  routerIP: string;
  externalIP: string;
  prefixLen: number;
  /** The API server's --state-dir is the cluster's state dir; its socket sits at the top of it. */
  apiSocket: string;
  nodes: NodeLayout[];
}

function underlayAddr(underlay: string, host: number): string {
  const base = underlay.split("/")[0]!.split(".").slice(0, 3).join(".");
  return `${base}.${host}`;
}

export function layout(cfg: ClusterConfig): ClusterLayout {
  const prefix = `pn-${cfg.name}-`;
  const nodes: NodeLayout[] = [];
  for (let i = 1; i <= cfg.nodes; i++) {
    const name = nodeName(i);
    const dir = join(cfg.stateDir, "nodes", name);
    nodes.push({
      index: i,
      name,
      netns: `${prefix}${name}`,
      netnsPath: `/run/netns/${prefix}${name}`,
      underlayIP: underlayAddr(cfg.underlay, 10 + i),
      fabricPort: `n${i}`,
      dir,
      runtimeSocket: join(dir, "runtime", "runtime.sock"),
    });
  }
  return {
    cfg,
    netnsPrefix: prefix,
    fabricNetns: `${prefix}fabric`,
    externalNetns: `${prefix}external`,
    podNetnsPrefix: `${prefix}p-`,
    routerIP: underlayAddr(cfg.underlay, 1),
    externalIP: underlayAddr(cfg.underlay, 2),
    prefixLen: 24,
    apiSocket: join(cfg.stateDir, "apiserver.sock"),
    nodes,
  };
}
