// Finds the cluster a command talks to: --name NAME, else $PODNET_CLUSTER, else "podnet".
import { ApiClient } from "../apiserver/client.ts";
import { clusterName, defaultStateDir, loadConfig, type ClusterConfig } from "./config.ts";
import { layout, type ClusterLayout } from "./layout.ts";

export class NoClusterError extends Error {}

export interface ClusterContext {
  cfg: ClusterConfig;
  layout: ClusterLayout;
  api: ApiClient;
}

export function resolveCluster(nameFlag?: string): ClusterContext {
  const name = clusterName(nameFlag);
  const cfg = loadConfig(defaultStateDir(name));
  if (!cfg) throw new NoClusterError(`no cluster "${name}": start one with \`podnet up --name ${name}\` (or pick another with --name / PODNET_CLUSTER)`);
  const l = layout(cfg);
  return { cfg, layout: l, api: new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-cli" }) };
}
