// `podnet up`: the underlay, the API server, and per node the runtime, kubelet and kube-proxy;
// the cloud's load balancer; then the cluster DNS. Idempotent: what exists and runs is kept, what is missing is (re)made.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiClient, isApiError, resourcePath } from "../apiserver/client.ts";
import type { Deployment, KObject, Node, Service } from "../apiserver/types.ts";
import { dnsDeployment, dnsService } from "./addons.ts";
import { apiServerNames, ensureServingCert } from "./api-endpoint.ts";
import { apiServingCert, apiserverSpec, cloudLbSpec, nodeSpecs } from "./components.ts";
import { loadConfig, type ClusterConfig } from "./config.ts";
import { createFabric, createNodeNetwork, routeLoadBalancerPool } from "./fabric.ts";
import { layout, type ClusterLayout } from "./layout.ts";
import { startDaemon } from "./processes.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ""}`);
}

function sameShape(a: ClusterConfig, b: ClusterConfig): string | undefined {
  for (const k of ["nodes", "clusterCIDR", "serviceCIDR", "underlay", "lbPool", "nodePortRange"] as const) {
    if (a[k] !== b[k]) return `${k} is ${JSON.stringify(a[k])} in the running cluster, not ${JSON.stringify(b[k])}`;
  }
  return undefined;
}

async function ensureObject<T extends KObject>(api: ApiClient, collection: string, obj: T): Promise<void> {
  try {
    await api.create(collection, obj);
  } catch (e) {
    if (!isApiError(e, 409)) throw e;
  }
}

export interface UpReport {
  layout: ClusterLayout;
  nodes: Node[];
  dns: Service;
  elapsedMs: number;
}

export async function up(cfg: ClusterConfig, log: (line: string) => void = () => undefined): Promise<UpReport> {
  const t0 = Date.now();
  const existing = loadConfig(cfg.stateDir);
  if (existing) {
    const diff = sameShape(existing, cfg);
    if (diff) throw new Error(`cluster "${cfg.name}" already exists and ${diff}; run \`podnet down --name ${cfg.name}\` first`);
  }
  const l = layout(cfg);
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
  mkdirSync(cfg.runDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(cfg.stateDir, "cluster.json"), JSON.stringify(cfg, null, 2) + "\n");

  await createFabric(l);
  log(`fabric: netns ${l.fabricNetns}, bridge fabric0 ${l.routerIP}/24; external client ${l.externalNetns} ${l.externalIP}`);
  startDaemon(apiserverSpec(l));
  const api = new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-up" });
  await waitFor("the API server", 30_000, async () => ((await api.get<unknown>("/version")) !== undefined ? true : undefined));
  log(`apiserver: ${l.apiSocket}`);

  await Promise.all(
    l.nodes.map(async (n) => {
      await createNodeNetwork(l, n);
      // The runtime first: the kubelet talks to its socket and keeps files in its state dir.
      const [runtime, ...rest] = nodeSpecs(l, n);
      startDaemon(runtime!);
      await waitFor(`the runtime of ${n.name}`, 30_000, async () => (existsSync(n.runtimeSocket) ? true : undefined));
      for (const spec of rest) startDaemon(spec);
    }),
  );
  await routeLoadBalancerPool(l);
  const kubernetesIP = (await api.get<Service>(resourcePath("services", "default", "kubernetes"))).spec.clusterIP!;
  await ensureServingCert(apiServingCert(l).dir, apiServerNames(cfg.domain, kubernetesIP, l.routerIP));
  startDaemon(cloudLbSpec(l));

  const nodes = await waitFor(`${cfg.nodes} Ready nodes`, 60_000, async () => {
    const list = await api.list<Node>(resourcePath("nodes"));
    const ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    return ready.length >= cfg.nodes ? list.items : undefined;
  });
  for (const n of nodes.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))) {
    const ip = n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    log(`node ${n.metadata.name}: netns ${l.netnsPrefix}${n.metadata.name}, eth0 ${ip}, podCIDR ${n.spec?.podCIDR}`);
  }

  await ensureObject<Service>(api, resourcePath("services", "kube-system"), dnsService(l));
  await ensureObject<Deployment>(api, resourcePath("deployments", "kube-system"), dnsDeployment(l));
  const dns = await waitFor("the cluster DNS", 60_000, async () => {
    const d = await api.get<Deployment>(resourcePath("deployments", "kube-system", "kube-dns"));
    if ((d.status?.readyReplicas ?? 0) < 1) return undefined;
    return api.get<Service>(resourcePath("services", "kube-system", "kube-dns"));
  });
  log(`dns: Service kube-system/kube-dns ${dns.spec.clusterIP} (${cfg.domain})`);
  return { layout: l, nodes, dns, elapsedMs: Date.now() - t0 };
}
