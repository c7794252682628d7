// Part "dataplane": what the packets see once a cluster runs.
//
// Two 3-node clusters (`podnet up`) are made with the same pods: an iperf3 + agnhost netexec
// server pod on node-2, behind the Service bench-server; a client pod on node-1 (`sleep infinity`);
// a netexec backend on node-3 in namespace bench-scale. They differ only in how many Services
// exist: "small" has 10 in all, "large" 10,000, the extra ones created through the API server
// (selecting the bench-scale backend, so the EndpointSlice controller gives each an endpoint and
// every node's kube-proxy programs them all), as a user would. Namespaces keep the extra Services
// out of the client's environment (service links are per namespace).
//
// - Throughput (small cluster): iperf3 from the client pod to the server pod, directly (its pod
//   IP) and through the Service's ClusterIP, rounds alternating; 3 s each, the first second
//   omitted (slow start). Gbit/s as iperf3's receiver reports it.
// - Connect latency: in the client pod, a Node script times 200 sequential TCP connects to the
//   bench-server ClusterIP (port 80 -> netexec) and prints their median; one round = one median;
//   rounds alternate between the two clusters.
import { execa } from "execa";
import { resourcePath } from "../apiserver/client.ts";
import type { EndpointSlice, Namespace, Pod, Service } from "../apiserver/types.ts";
import type { ClusterContext } from "../cluster/context.ts";
import { ensure, inPod, podReady, sleep, until, upCluster, type BenchCluster } from "./clusters.ts";
import { CONNECT_PROBE } from "./probes.ts";
import { compare, interleave, pairedRatio, type Comparison } from "./stats.ts";

export const DEFAULT_DATAPLANE_ROUNDS = 20;
export const DEFAULT_DATAPLANE_WARMUP = 2;
const SMALL = 10;
const LARGE = 10_000;
const SCALE_NS = "bench-scale";
const CONNECTS = 200;
const IPERF_SECONDS = 3;

const netexec = (name: string) => ({
  name,
  image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
  command: ["podnet", "agnhost", "netexec", "--http-port", "8080"],
  ports: [{ name: "http", containerPort: 8080 }],
  readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 },
});

interface Workload {
  server: Pod;
  service: Service;
}

/** The pods and the Service both clusters get; returns the server pod and its Service once usable. */
async function deploy(c: ClusterContext): Promise<Workload> {
  const api = c.api;
  const [n1, n2, n3] = c.layout.nodes.map((n) => n.name);
  await ensure<Namespace>(api, resourcePath("namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name: SCALE_NS } });
  const pod = (namespace: string, name: string, node: string, labels: Record<string, string>, containers: Pod["spec"]["containers"]): Pod => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels }, spec: { nodeName: node, containers } });
  await ensure(api, resourcePath("pods", "default"), pod("default", "bench-server", n2!, { app: "bench-server" }, [{ name: "iperf", image: "networkstatic/iperf3", command: ["iperf3", "-s", "-p", "5201"], ports: [{ name: "iperf", containerPort: 5201 }] }, netexec("http")]));
  await ensure(api, resourcePath("pods", "default"), pod("default", "bench-client", n1!, { app: "bench-client" }, [{ name: "client", image: "host", command: ["sleep", "infinity"] }]));
  await ensure(api, resourcePath("pods", SCALE_NS), pod(SCALE_NS, "scale-backend", n3!, { app: "scale-backend" }, [netexec("http")]));
  await ensure<Service>(api, resourcePath("services", "default"), {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "bench-server", namespace: "default" },
    spec: { selector: { app: "bench-server" }, ports: [{ name: "iperf", port: 5201, targetPort: 5201, protocol: "TCP" }, { name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
  });
  const server = await podReady(c, "bench-server", 90_000);
  await podReady(c, "bench-client", 90_000);
  await podReady(c, "scale-backend", 90_000, SCALE_NS);
  const service = await api.get<Service>(resourcePath("services", "default", "bench-server"));
  // Usable = the client connects through the ClusterIP (kube-proxy on node-1 has the endpoint).
  await until("the client to reach bench-server's ClusterIP", 60_000, async () => ((await connectMedian(c, service.spec.clusterIP!, 1)) >= 0 ? true : undefined), 500);
  return { server, service };
}

/** Brings the cluster to `total` Services (all namespaces) and waits until node-1's kube-proxy has them all. */
async function scaleServices(c: ClusterContext, total: number): Promise<{ created: number; ms: number; lastIP?: string }> {
  const api = c.api;
  const t0 = performance.now();
  const existing = (await api.list<Service>(resourcePath("services"))).items.length;
  const want = Math.max(0, total - existing);
  let next = 0;
  let lastIP: string | undefined;
  const worker = async () => {
    while (next < want) {
      const i = next++;
      const s = await api.create<Service>(resourcePath("services", SCALE_NS), {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `s-${String(i).padStart(5, "0")}`, namespace: SCALE_NS },
        spec: { selector: { app: "scale-backend" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
      });
      if (i === want - 1) lastIP = s.spec.clusterIP;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  // Every extra Service has its endpoint in an EndpointSlice...
  await until(`${want} EndpointSlices with a ready endpoint`, 600_000, async () => {
    const slices = (await api.list<EndpointSlice>(resourcePath("endpointslices", SCALE_NS))).items;
    const ready = slices.filter((s) => s.endpoints?.some((e) => e.conditions.ready)).length;
    return ready >= want ? true : undefined;
  }, 1000);
  // ...and node-1's kube-proxy has no change left to sync.
  await until("node-1's kube-proxy to sync every Service", 600_000, async () => ((await pendingChanges(c)) === 0 ? true : undefined), 500);
  return { created: want, ms: performance.now() - t0, lastIP };
}

/** Service + EndpointSlice changes node-1's kube-proxy has not synced yet (its metrics endpoint). */
async function pendingChanges(c: ClusterContext): Promise<number> {
  const n1 = c.layout.nodes[0]!;
  const r = await execa("nsenter", [`--net=${n1.netnsPath}`, "--", "curl", "-sS", "--max-time", "5", "http://127.0.0.1:10249/metrics"], { reject: false });
  if (r.exitCode !== 0) throw new Error(`kube-proxy metrics on ${n1.name}: ${String(r.stderr)}`);
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(String(r.stdout))?.[1] ?? NaN);
  const n = gauge("kubeproxy_sync_proxy_rules_service_changes_pending") + gauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending");
  if (Number.isNaN(n)) throw new Error("kube-proxy's metrics have no *_changes_pending gauges");
  return n;
}

/** Median connect time (µs) of `n` connects from the client pod to IP:80; -1 if it cannot connect. */
async function connectMedian(c: ClusterContext, ip: string, n: number): Promise<number> {
  try {
    const out = await inPod(c, "bench-client", ["node", "-e", CONNECT_PROBE, ip, "80", String(n)], "client", 60);
    return (JSON.parse(out) as { median: number }).median * 1000;
  } catch (e) {
    if (n === 1) return -1;
    throw e;
  }
}

/** One iperf3 run from the client pod to IP:5201; Gbit/s received. Retries while the server is busy. */
async function iperf(c: ClusterContext, ip: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await inPod(c, "bench-client", ["iperf3", "-c", ip, "-p", "5201", "-t", String(IPERF_SECONDS), "-O", "1", "-J"], "client", 60);
      const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
      if (j.error) throw new Error(j.error);
      return (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9;
    } catch (e) {
      if (attempt >= 5) throw e;
      await sleep(1000); // "the server is busy" right after a previous test: it frees up shortly
    }
  }
}

export async function benchDataplane(rounds = DEFAULT_DATAPLANE_ROUNDS, warmup = DEFAULT_DATAPLANE_WARMUP): Promise<Comparison[]> {
  const clusters: BenchCluster[] = [];
  try {
    const small = await upCluster(3);
    clusters.push(small);
    const large = await upCluster(3);
    clusters.push(large);
    const log = (m: string) => process.stderr.write(`bench: dataplane: ${m}\n`);
    const [ws, wl] = await Promise.all([deploy(small), deploy(large)]);
    log(`clusters ${small.name} and ${large.name} up, pods ready`);
    await scaleServices(small, SMALL);
    const scaled = await scaleServices(large, LARGE);
    const count = async (c: ClusterContext) => (await c.api.list<Service>(resourcePath("services"))).items.length;
    const [nSmall, nLarge] = [await count(small), await count(large)];
    log(`${nSmall} and ${nLarge} Services; ${scaled.created} created and synced by node-1's kube-proxy in ${(scaled.ms / 1000).toFixed(1)} s`);
    if (scaled.lastIP && (await connectMedian(large, scaled.lastIP, 1)) < 0) throw new Error(`the last Service created (${scaled.lastIP}) does not answer from the client pod`);

    const direct = ws.server.status!.podIP!, clusterIP = ws.service.spec.clusterIP!;
    const logged = (what: string, unit: string, f: () => Promise<number>) => async () => {
      const v = await f();
      log(`${what}: ${v.toFixed(2)} ${unit}`);
      return v;
    };
    const [viaSvc, viaPod] = await interleave(rounds, warmup, logged("iperf3 via ClusterIP", "Gbit/s", () => iperf(small, clusterIP)), logged("iperf3 direct", "Gbit/s", () => iperf(small, direct)));
    const tput = compare("dataplane", "TCP throughput node-1 pod -> node-2 pod: via ClusterIP (podnet col) vs direct (reference col)", "Gbit/s", viaSvc, viaPod);
    tput.target = { text: "ClusterIP >= 0.9 x direct", met: (tput.ratio ?? 0) >= 0.9 };
    tput.note = `iperf3 -t ${IPERF_SECONDS} -O 1 (${IPERF_SECONDS} s measured after 1 s omitted), one stream, from the client pod on node-1 to ${direct}:5201 (pod IP) or ${clusterIP}:5201 (ClusterIP); ${rounds} rounds each after ${warmup} warm-up, alternating; median of the per-round ratios ${pairedRatio(viaSvc, viaPod).toFixed(2)}`;

    const [big, few] = await interleave(rounds, warmup, logged(`connect, ${LARGE} Services`, "µs", () => connectMedian(large, wl.service.spec.clusterIP!, CONNECTS)), logged(`connect, ${SMALL} Services`, "µs", () => connectMedian(small, ws.service.spec.clusterIP!, CONNECTS)));
    const lat = compare("dataplane", `TCP connect to a ClusterIP: ${LARGE.toLocaleString("en")} Services (podnet col) vs ${SMALL} (reference col)`, "µs", big, few);
    lat.target = { text: `${LARGE.toLocaleString("en")} Services <= 1.2 x ${SMALL}`, met: (lat.ratio ?? Infinity) <= 1.2 };
    lat.note = `each sample: median of ${CONNECTS} sequential connects (Node net.connect until established) from the client pod on node-1 to the ClusterIP of a Service backed by a pod on node-2; two clusters with ${nLarge} and ${nSmall} Services, rounds alternating; median of the per-round ratios ${pairedRatio(big, few).toFixed(2)}`;
    return [tput, lat];
  } finally {
    for (const c of clusters.reverse()) await c.remove();
  }
}
