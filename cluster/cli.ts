// `podnet up`, `podnet down`, `podnet status`, `podnet external`.
import { execa } from "execa";
import { parseArgs } from "node:util";
import { clusterName, defaultStateDir, loadConfig, makeConfig } from "./config.ts";
import { resolveCluster } from "./context.ts";
import { down } from "./down.ts";
import { layout } from "./layout.ts";
import { status, formatStatus } from "./status.ts";
import { up } from "./up.ts";

const NAME_HELP = "  --name NAME   the cluster (default $PODNET_CLUSTER, else \"podnet\")\n";

export async function upMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      name: { type: "string" },
      nodes: { type: "string" },
      "cluster-cidr": { type: "string" },
      "service-cidr": { type: "string" },
      "lb-pool": { type: "string" },
      "node-monitor-grace-period": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: podnet up [--name NAME] [--nodes N] [--cluster-cidr CIDR] [--service-cidr CIDR] [--lb-pool CIDR]\n                 [--node-monitor-grace-period 40s]\n\nCreates (or repairs) an emulated cluster: a fabric netns, N node netns with a runtime, kubelet and\nkube-proxy each, the API server, and the cluster DNS.\n${NAME_HELP}`);
    return 0;
  }
  const name = clusterName(values.name);
  // Repairing a running cluster: what the flags leave out is what it was made with, not the defaults.
  const existing = loadConfig(defaultStateDir(name));
  const cfg = makeConfig(name, {
    nodes: values.nodes !== undefined ? Number(values.nodes) : existing?.nodes,
    clusterCIDR: values["cluster-cidr"] ?? existing?.clusterCIDR,
    serviceCIDR: values["service-cidr"] ?? existing?.serviceCIDR,
    lbPool: values["lb-pool"] ?? existing?.lbPool,
    nodeMonitorGracePeriod: values["node-monitor-grace-period"] ?? existing?.nodeMonitorGracePeriod,
  });
  const r = await up(cfg, (line) => process.stdout.write(line + "\n"));
  process.stdout.write(`cluster "${cfg.name}" is up with ${r.nodes.length} nodes in ${(r.elapsedMs / 1000).toFixed(1)} s\n`);
  return 0;
}

export async function downMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { name: { type: "string" }, help: { type: "boolean" } } });
  if (values.help) {
    process.stdout.write(`Usage: podnet down [--name NAME]\n\nStops every process of the cluster and removes its namespaces, links, nftables tables and state.\n${NAME_HELP}`);
    return 0;
  }
  const name = clusterName(values.name);
  // A cluster whose config is gone can still have namespaces: tear down by name anyway.
  const cfg = loadConfig(defaultStateDir(name)) ?? makeConfig(name);
  const r = await down(cfg);
  process.stdout.write(`cluster "${name}" removed: ${r.netnsRemoved.length} network namespaces, ${r.processesKilled} leftover processes\n`);
  return 0;
}

export async function statusMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { name: { type: "string" }, output: { type: "string", short: "o" }, help: { type: "boolean" } } });
  if (values.help) {
    process.stdout.write(`Usage: podnet status [--name NAME] [-o json]\n\nNodes, their pod CIDRs and readiness, and the health of every process.\n${NAME_HELP}`);
    return 0;
  }
  const ctx = resolveCluster(values.name);
  const r = await status(ctx.layout, ctx.api);
  process.stdout.write(values.output === "json" ? JSON.stringify(r, null, 2) + "\n" : formatStatus(r));
  return r.processes.every((p) => p.running) && !r.apiError ? 0 : 1;
}

export async function externalMain(argv: string[]): Promise<number> {
  const sep = argv.indexOf("--");
  const opts = sep >= 0 ? argv.slice(0, sep) : [];
  const cmd = sep >= 0 ? argv.slice(sep + 1) : argv;
  const { values } = parseArgs({ args: opts, options: { name: { type: "string" }, help: { type: "boolean" } } });
  if (values.help || cmd.length === 0) {
    process.stdout.write(`Usage: podnet external [--name NAME] -- CMD [ARGS...]\n\nRuns CMD in the cluster's external client netns: on the fabric, outside the cluster, the way a\nclient on the internet reaches NodePorts and LoadBalancer addresses.\n${NAME_HELP}`);
    return values.help ? 0 : 2;
  }
  const ctx = resolveCluster(values.name);
  const l = layout(ctx.cfg);
  const r = await execa("nsenter", [`--net=/run/netns/${l.externalNetns}`, "--", ...cmd], { stdio: "inherit", reject: false });
  return r.exitCode ?? 1;
}

export const main = upMain;

export async function proxyMain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { name: { type: "string" }, family: { type: "string" }, help: { type: "boolean" } } });
  const [verb, node] = positionals;
  if (values.help || verb !== "rules" || !node) {
    process.stdout.write(`Usage: podnet proxy rules NODE [--name NAME] [--family ip|ip6]\n\nWhat kube-proxy programmed on NODE: Service destinations -> endpoints, then its nftables tables.\n${NAME_HELP}`);
    return values.help ? 0 : 2;
  }
  const ctx = resolveCluster(values.name);
  const n = ctx.layout.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node "${node}" in cluster "${ctx.cfg.name}" (nodes: ${ctx.layout.nodes.map((x) => x.name).join(", ")})`);
  const { proxyRulesReport } = await import("../kube-proxy/rules-report.ts");
  const fams: ("ip" | "ip6")[] = values.family === "ip" || values.family === "ip6" ? [values.family] : ["ip", "ip6"];
  process.stdout.write(await proxyRulesReport(n.netnsPath, fams));
  return 0;
}
