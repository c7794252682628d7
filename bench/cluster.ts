// Part "cluster": how long a 3-node cluster takes to be useful, and what one node costs in memory.
//
// Each round: `podnet up --nodes 3` (the command a user runs, spawned from here) until it exits
// (every node Ready, the DNS Deployment ready), then until the cluster DNS answers a query for
// kubernetes.default.svc.cluster.local sent from node-1's netns to 10.96.0.10; then an app is
// deployed through the API (agnhost netexec, a Deployment of 3 and a Service) and timed until it
// answers HTTP through its ClusterIP from node-1's netns. Once all 3 app pods are Ready the memory
// of every node is read, then `podnet down` removes the cluster (timed too).
//
// Memory of a node: the sum over every process whose network namespace is the node's (runtime,
// kubelet, kube-proxy, the per-container monitors) or one of the node's pods' (sandbox holders and
// the containers: the app's netexec, and the cluster DNS on the two nodes that run it), of PSS
// from /proc/PID/smaps_rollup (shared pages split between the processes sharing them, so the sum
// over processes is the memory they use together) and, for comparison, RSS (shared pages counted
// in full in every process). Transient processes (a CNI plugin, an exec) are not running then.
import { resourcePath } from "../apiserver/client.ts";
import type { Deployment, EndpointSlice, Service } from "../apiserver/types.ts";
import { isInterrupted } from "./cleanup.ts";
import { inNode, nodeMemory, until, upCluster, type BenchCluster, type NodeMemory } from "./clusters.ts";
import { DNS_PROBE, HTTP_PROBE } from "./probes.ts";
import { compare, type Comparison } from "./stats.ts";

export const DEFAULT_CLUSTER_ROUNDS = 20;
export const DEFAULT_CLUSTER_WARMUP = 1;
const NODES = 3;
const APP_REPLICAS = 3;

export function appObjects(): { deployment: Deployment; service: Service } {
  const labels = { app: "bench-app" };
  return {
    deployment: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "bench-app", namespace: "default", labels },
      spec: {
        replicas: APP_REPLICAS,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: "netexec",
                image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
                command: ["podnet", "agnhost", "netexec", "--http-port", "8080"],
                ports: [{ name: "http", containerPort: 8080 }],
                readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
              },
            ],
          },
        },
      },
    },
    service: { apiVersion: "v1", kind: "Service", metadata: { name: "bench-app", namespace: "default" }, spec: { selector: labels, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] } },
  };
}

interface RoundFigures {
  dnsMs: number;
  appMs: number;
  totalMs: number;
  downMs: number;
  memory: NodeMemory[];
}

async function measure(c: BenchCluster): Promise<Omit<RoundFigures, "downMs">> {
  const node1 = c.layout.nodes[0]!;
  const dns = await inNode(node1, [process.execPath, "-e", DNS_PROBE, c.cfg.dnsIP, `kubernetes.default.svc.${c.cfg.domain}`, "60000"], 70_000);
  if (dns.exitCode !== 0) throw new Error(`the cluster DNS did not answer from ${node1.name} within 60 s after \`podnet up\` returned (${await dnsDiagnosis(c)})`);
  const dnsMs = performance.now() - c.startedAt;
  const { deployment, service } = appObjects();
  const t0 = performance.now();
  const svc = await c.api.create<Service>(resourcePath("services", "default"), service);
  await c.api.create(resourcePath("deployments", "default"), deployment);
  const app = await inNode(node1, [process.execPath, "-e", HTTP_PROBE, `http://${svc.spec.clusterIP}/hostname`, "60000"], 70_000);
  if (app.exitCode !== 0) throw new Error(`the app did not answer through ${svc.spec.clusterIP}: ${app.stderr}`);
  const appMs = performance.now() - t0;
  // Every node runs its app pod before its memory is read.
  await until("every app pod to be Ready", 60_000, async () => ((await c.api.get<Deployment>(resourcePath("deployments", "default", "bench-app"))).status?.readyReplicas === APP_REPLICAS ? true : undefined), 200);
  const memory = await Promise.all(c.layout.nodes.map((n) => nodeMemory(c, n)));
  return { dnsMs, appMs, totalMs: dnsMs + appMs, memory };
}

/** Why DNS does not answer: the kube-dns endpoints, whether each answers directly, what node-1's kube-proxy has. */
export async function dnsDiagnosis(c: BenchCluster): Promise<string> {
  const node1 = c.layout.nodes[0]!;
  const out: string[] = [];
  try {
    const slices = await c.api.list<EndpointSlice>(resourcePath("endpointslices", "kube-system"), { labelSelector: "kubernetes.io/service-name=kube-dns" });
    const eps = slices.items.flatMap((sl) => sl.endpoints ?? []);
    out.push(`kube-dns endpoints: ${eps.map((e) => `${e.addresses[0]}${e.conditions.ready ? "" : " (not ready)"} on ${e.nodeName}`).join(", ") || "none"}`);
    for (const e of eps) {
      const r = await inNode(node1, [process.execPath, "-e", DNS_PROBE, e.addresses[0]!, `kubernetes.default.svc.${c.cfg.domain}`, "2000"], 10_000);
      out.push(`direct query to ${e.addresses[0]}: ${r.exitCode === 0 ? "answered" : "no answer"}`);
    }
    const m = await inNode(node1, ["nft", "list", "map", "ip", "kube-proxy", "service-ips"], 10_000);
    out.push(`${node1.name}'s kube-proxy service-ips ${m.exitCode !== 0 ? `unreadable: ${m.stderr.trim()}` : m.stdout.includes(`${c.cfg.dnsIP} . udp . 53`) ? `has ${c.cfg.dnsIP} udp 53` : `has NO ${c.cfg.dnsIP} udp 53`}`);
  } catch (e) {
    out.push(`diagnosis failed: ${(e as Error).message}`);
  }
  return out.join("; ");
}

/** One round: up, measure, down (also when measuring fails). */
async function round(): Promise<RoundFigures> {
  const c = await upCluster(NODES);
  let f: Omit<RoundFigures, "downMs">;
  try {
    f = await measure(c);
  } catch (e) {
    await c.remove();
    throw e;
  }
  const { ms } = await c.remove();
  return { ...f, downMs: ms };
}

export async function benchCluster(rounds = DEFAULT_CLUSTER_ROUNDS, warmup = DEFAULT_CLUSTER_WARMUP): Promise<Comparison[]> {
  const figs: RoundFigures[] = [];
  // A round that fails (the cluster was not usable in time) is reported and replaced by another,
  // up to a quarter of the rounds: one bad round must not lose the others' figures.
  const failures: string[] = [];
  const maxFailures = Math.max(2, Math.floor(rounds / 4));
  for (let i = 0; figs.length < warmup + rounds && !isInterrupted(); i++) {
    try {
      const f = await round();
      const w = figs.length < warmup;
      process.stderr.write(`bench: cluster: round ${i + 1}${w ? " (warm-up)" : ""}: DNS answers after ${(f.dnsMs / 1000).toFixed(2)} s, app after ${(f.appMs / 1000).toFixed(2)} s more; node PSS ${f.memory.map((m) => m.all.pss.toFixed(0)).join("/")} MB; down ${(f.downMs / 1000).toFixed(2)} s\n`);
      figs.push(f);
    } catch (e) {
      if (isInterrupted()) throw e;
      const msg = (e as Error).message.split("\n")[0]!;
      failures.push(msg);
      process.stderr.write(`bench: cluster: round ${i + 1} FAILED: ${msg}\n`);
      if (failures.length > maxFailures) throw new Error(`${failures.length} rounds failed; the last: ${msg}`);
    }
  }
  const rows = rowsOf(figs.slice(warmup), rounds, warmup);
  if (failures.length) {
    const total = rows.find((r) => r.name.startsWith("total"))!;
    total.note = `${failures.length} of ${figs.length + failures.length} rounds FAILED and were replaced: ${failures.join(" | ")}`;
  }
  return rows;
}

function rowsOf(figs: RoundFigures[], rounds: number, warmup: number): Comparison[] {
  const s = (pick: (f: RoundFigures) => number) => figs.map((f) => pick(f) / 1000);
  const dns = compare("cluster", `up ${NODES} nodes: Ready + DNS answers`, "s", s((f) => f.dnsMs));
  dns.note = `\`podnet up --nodes ${NODES}\` spawned until it exits (nodes Ready, DNS Deployment ready), then a DNS query from node-1's netns to the cluster DNS answered; ${rounds} rounds after ${warmup} warm-up`;
  const app = compare("cluster", "then: app answers via its Service", "s", s((f) => f.appMs));
  app.note = `Deployment (${APP_REPLICAS} x agnhost netexec, readiness probe every 1 s) + Service created through the API, until GET /hostname through the ClusterIP from node-1's netns answers`;
  const total = compare("cluster", "total: up -> app answering", "s", s((f) => f.totalMs));
  total.target = { text: "< 10 s", met: total.ours.median < 10 };
  const down = compare("cluster", "podnet down", "s", s((f) => f.downMs));
  const per = (pick: (m: NodeMemory) => number) => figs.flatMap((f) => f.memory.map(pick));
  const allPss = compare("cluster", "memory per node: all its processes (PSS)", "MB", per((m) => m.all.pss));
  allPss.target = { text: "< 150 MB", met: allPss.ours.median < 150 };
  const procs = per((m) => m.all.processes);
  allPss.note = `every process in the node's netns and its pods' netns (${Math.min(...procs)}-${Math.max(...procs)} processes: runtime, kubelet, kube-proxy, per-container monitors, sandbox holders, the app's netexec and, on two nodes, the DNS server); one sample per node per round`;
  const allRss = compare("cluster", "memory per node: all its processes (RSS)", "MB", per((m) => m.all.rss));
  allRss.note = "RSS counts the pages every Node.js process shares (the node binary) once per process";
  const dPss = compare("cluster", "memory per node: runtime+kubelet+kube-proxy (PSS)", "MB", per((m) => m.daemons.pss));
  const dRss = compare("cluster", "memory per node: runtime+kubelet+kube-proxy (RSS)", "MB", per((m) => m.daemons.rss));
  return [dns, app, total, down, allPss, allRss, dPss, dRss];
}
