// `podnet demo`: a 3-node cluster, the manifests of conf/examples/, and a check of each of the
// four networking problems with the evidence (addresses, which pod answered). Tears down at the
// end unless --keep.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";
import { ApiClient, isApiError, resourcePath, type ResourceKind } from "../apiserver/client.ts";
import type { Deployment, EndpointSlice, KObject, Pod, Service } from "../apiserver/types.ts";
import { clusterName, makeConfig } from "./config.ts";
import type { ClusterContext } from "./context.ts";
import { down } from "./down.ts";
import { layout } from "./layout.ts";
import { curlArgs, execExternal, execInPod, podsOf } from "./probe.ts";
import { podnetEntry } from "./processes.ts";
import { up, waitFor } from "./up.ts";

export interface Row {
  problem: string;
  check: string;
  pass: boolean;
  evidence: string;
}

const KIND_RESOURCE: Record<string, ResourceKind> = { Pod: "pods", Service: "services", Deployment: "deployments", ReplicaSet: "replicasets", Namespace: "namespaces" };

export function examplesDir(): string {
  return join(dirname(podnetEntry()), "..", "conf", "examples");
}

/** Creates every object of the YAML files in `dir` (lexical order); existing ones are kept. */
export async function createFromDir(api: ApiClient, dir: string): Promise<KObject[]> {
  const made: KObject[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.(ya?ml|json)$/.test(n)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), "utf8"))) {
      const obj = doc.toJS() as KObject | null;
      if (!obj) continue;
      const res = KIND_RESOURCE[String(obj.kind)];
      if (!res) throw new Error(`${f}: the demo does not know kind ${obj.kind}`);
      try {
        made.push(await api.create(resourcePath(res, obj.metadata.namespace ?? "default"), obj));
      } catch (e) {
        if (!isApiError(e, 409)) throw e;
      }
    }
  }
  return made;
}

const podIP = (p: Pod) => p.status?.podIP ?? "?";
const short = (s: string) => s.trim().split("\n")[0] ?? "";

async function check(rows: Row[], problem: string, name: string, fn: () => Promise<{ pass: boolean; evidence: string }>): Promise<void> {
  try {
    rows.push({ problem, check: name, ...(await fn()) });
  } catch (e) {
    rows.push({ problem, check: name, pass: false, evidence: `error: ${(e as Error).message}` });
  }
}

export async function runChecks(ctx: ClusterContext): Promise<Row[]> {
  const rows: Row[] = [];
  const api = ctx.api;
  const web = (await podsOf(ctx, "default", "app=web")).filter((p) => p.status?.podIP).sort((a, b) => String(a.spec.nodeName).localeCompare(String(b.spec.nodeName)));
  const svc = await api.get<Service>(resourcePath("services", "default", "web"));
  const np = await api.get<Service>(resourcePath("services", "default", "web-nodeport"));
  const lb = await api.get<Service>(resourcePath("services", "default", "web-lb"));
  const webNames = new Set(web.map((p) => p.metadata.name));

  await check(rows, "1 container to container", "localhost inside pod two-containers", async () => {
    const r = await execInPod(ctx, "default", "two-containers", curlArgs("http://localhost:8080/hostname"), "client");
    const h = await execInPod(ctx, "default", "two-containers", ["hostname"], "client");
    const pass = r.exitCode === 0 && r.stdout.trim() === "two-containers" && h.stdout.trim() === "two-containers";
    return { pass, evidence: `client container -> localhost:8080 answered "${short(r.stdout || r.stderr)}"; both containers see hostname "${short(h.stdout)}"` };
  });

  // One pod per node (a web pod, or the two-containers pod), then each node's pod asks the next
  // node's pod who is calling: the address it sees must be the caller's own eth0 address.
  const byNode = new Map<string, { pod: Pod; container?: string }>();
  const two = await api.get<Pod>(resourcePath("pods", "default", "two-containers")).catch(() => undefined);
  for (const p of [...web, ...(two ? [two] : [])]) if (p.spec.nodeName && p.status?.podIP && !byNode.has(p.spec.nodeName)) byNode.set(p.spec.nodeName, { pod: p, container: p === two ? "client" : undefined });
  const ring = [...byNode.values()];
  if (ring.length < 2) rows.push({ problem: "2 pod to pod, no NAT", check: "across nodes", pass: false, evidence: `pods are on ${ring.length} node(s) only` });
  for (let i = 0; ring.length >= 2 && i < ring.length; i++) {
    const a = ring[i]!, b = ring[(i + 1) % ring.length]!;
    await check(rows, "2 pod to pod, no NAT", `${a.pod.spec.nodeName} -> ${b.pod.spec.nodeName}`, async () => {
      const self = await execInPod(ctx, "default", a.pod.metadata.name!, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], a.container);
      const own = /inet (\S+)\//.exec(self.stdout)?.[1] ?? "?";
      const r = await execInPod(ctx, "default", a.pod.metadata.name!, curlArgs(`http://${podIP(b.pod)}:8080/clientip`), a.container);
      const seen = r.stdout.trim().replace(/:\d+$/, "");
      const pass = r.exitCode === 0 && seen === own && own === podIP(a.pod);
      return { pass, evidence: `${a.pod.metadata.name} (eth0 ${own}) -> ${b.pod.metadata.name} ${podIP(b.pod)}: source seen ${seen || short(r.stderr)}` };
    });
  }

  const client = "two-containers";
  await check(rows, "3 pod to Service", `ClusterIP ${svc.spec.clusterIP}:80`, async () => {
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) {
      const r = await execInPod(ctx, "default", client, curlArgs(`http://${svc.spec.clusterIP}/hostname`), "client");
      seen.push(r.exitCode === 0 ? r.stdout.trim() : `error: ${short(r.stderr)}`);
    }
    const distinct = [...new Set(seen)];
    return { pass: seen.every((s) => webNames.has(s)) && distinct.length > 1, evidence: `9 requests answered by ${distinct.map((d) => `${d} x${seen.filter((s) => s === d).length}`).join(", ")}` };
  });
  await check(rows, "3 pod to Service", "DNS name web.default.svc.cluster.local", async () => {
    const r = await execInPod(ctx, "default", client, curlArgs("http://web.default.svc.cluster.local/hostname"), "client");
    const s = await execInPod(ctx, "default", client, curlArgs("http://web/hostname"), "client");
    const pass = r.exitCode === 0 && webNames.has(r.stdout.trim()) && s.exitCode === 0 && webNames.has(s.stdout.trim());
    return { pass, evidence: `web.default.svc.cluster.local answered by ${short(r.stdout || r.stderr)}; short name "web" (search path) answered by ${short(s.stdout || s.stderr)}` };
  });
  await check(rows, "3 pod to Service", `UDP ${svc.spec.clusterIP}:81`, async () => {
    const r = await execInPod(ctx, "default", web[0]!.metadata.name!, curlArgs(`http://localhost:8080/dial?host=${svc.spec.clusterIP}&port=81&protocol=udp&request=hostname&tries=6`));
    const d = JSON.parse(r.stdout || "{}") as { responses?: string[]; errors?: string[] };
    const answers = d.responses ?? [];
    return { pass: answers.length === 6 && answers.every((x) => webNames.has(x)), evidence: `6 UDP requests from ${web[0]!.metadata.name} answered by ${[...new Set(answers)].join(", ") || (d.errors ?? []).join("; ")}` };
  });

  for (const n of ctx.layout.nodes) {
    await check(rows, "4 external to Service", `NodePort ${n.underlayIP}:${np.spec.ports?.[0]?.nodePort}`, async () => {
      const r = await execExternal(ctx, curlArgs(`http://${n.underlayIP}:${np.spec.ports?.[0]?.nodePort}/hostname`));
      return { pass: r.exitCode === 0 && webNames.has(r.stdout.trim()), evidence: `external client ${ctx.layout.externalIP} -> ${n.name}: answered by ${short(r.stdout || r.stderr)}` };
    });
  }
  const lbIP = lb.status?.loadBalancer?.ingress?.[0]?.ip;
  await check(rows, "4 external to Service", `LoadBalancer ${lbIP ?? "(none)"}:80`, async () => {
    if (!lbIP) return { pass: false, evidence: "the Service got no LoadBalancer address" };
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await execExternal(ctx, curlArgs(`http://${lbIP}/hostname`));
      seen.push(r.exitCode === 0 ? r.stdout.trim() : `error: ${short(r.stderr)}`);
    }
    return { pass: seen.every((s) => webNames.has(s)), evidence: `external client -> ${lbIP} (routed by the fabric to the nodes): answered by ${[...new Set(seen)].join(", ")}` };
  });
  return rows;
}

export function formatRows(rows: Row[]): string {
  const w1 = Math.max(7, ...rows.map((r) => r.problem.length)), w2 = Math.max(5, ...rows.map((r) => r.check.length));
  const lines = [`${"PROBLEM".padEnd(w1)}  ${"CHECK".padEnd(w2)}  RESULT  EVIDENCE`];
  for (const r of rows) lines.push(`${r.problem.padEnd(w1)}  ${r.check.padEnd(w2)}  ${(r.pass ? "PASS" : "FAIL").padEnd(6)}  ${r.evidence}`);
  return lines.join("\n") + "\n";
}

/** Waits until what the checks need is in place: web's 3 endpoints ready, the client pod Ready, the LB address. */
export async function waitForExamples(ctx: ClusterContext): Promise<void> {
  const api = ctx.api;
  await waitFor("deployment web to be ready", 90_000, async () => ((await api.get<Deployment>(resourcePath("deployments", "default", "web"))).status?.readyReplicas === 3 ? true : undefined));
  await waitFor("pod two-containers to be Ready", 90_000, async () => ((await api.get<Pod>(resourcePath("pods", "default", "two-containers"))).status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined));
  await waitFor("3 ready endpoints of Service web", 60_000, async () => {
    const slices = await api.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=web" });
    return slices.items.flatMap((s) => s.endpoints).filter((e) => e.conditions.ready).length === 3 ? true : undefined;
  });
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { name: { type: "string" }, keep: { type: "boolean" }, help: { type: "boolean" } } });
  if (values.help) {
    process.stdout.write(`Usage: podnet demo [--name NAME] [--keep]\n\nBrings up a 3-node cluster (default name "demo"), deploys conf/examples/, checks the four\nnetworking problems (container to container, pod to pod without NAT, pod to Service, external to\nService) and prints each check with its evidence. Removes the cluster at the end unless --keep.\n`);
    return 0;
  }
  const name = values.name ?? (process.env.PODNET_CLUSTER ? clusterName() : "demo");
  const cfg = makeConfig(name, { nodes: 3 });
  const say = (s: string) => process.stdout.write(s + "\n");
  let ok = false;
  try {
    say(`== bringing up cluster "${name}" (3 nodes)`);
    const r = await up(cfg, (l) => say(`   ${l}`));
    say(`   up in ${(r.elapsedMs / 1000).toFixed(1)} s`);
    const l = layout(cfg);
    const ctx: ClusterContext = { cfg, layout: l, api: new ApiClient({ socketPath: l.apiSocket, userAgent: "podnet-demo" }) };
    say(`== deploying ${examplesDir()}`);
    for (const o of await createFromDir(ctx.api, examplesDir())) say(`   ${String(o.kind).toLowerCase()}/${o.metadata.name} created`);
    await waitForExamples(ctx);
    for (const p of (await podsOf(ctx, "default", "app=web")).sort((a, b) => String(a.spec.nodeName).localeCompare(String(b.spec.nodeName)))) say(`   pod ${p.metadata.name} ${p.status?.podIP} on ${p.spec.nodeName}`);
    say("== checking the four networking problems");
    const rows = await runChecks(ctx);
    process.stdout.write("\n" + formatRows(rows) + "\n");
    ok = rows.every((row) => row.pass);
    say(ok ? `all ${rows.length} checks passed` : `${rows.filter((row) => !row.pass).length} of ${rows.length} checks FAILED`);
  } finally {
    if (values.keep) say(`== cluster "${name}" kept: try \`podnet get pods -o wide --name ${name}\`, \`podnet external --name ${name} -- curl http://198.18.0.11:30080/hostname\`; remove it with \`podnet down --name ${name}\``);
    else {
      say(`== removing cluster "${name}"`);
      await down(cfg);
    }
  }
  return ok ? 0 : 1;
}
