// Incremental syncs must converge on exactly what a full sync writes. The proxier runs in-process
// against a test netns (through an nsenter runner), takes a long deterministic random sequence
// of Service and EndpointSlice changes with a partial sync after each few, and at the end the
// kernel's table is compared with the table a fresh proxier writes for the same objects.
import test from "ava";
import type { EndpointSlice, Service } from "../../apiserver/types.ts";
import { ChangeTracker } from "../../kube-proxy/change-tracker.ts";
import { makeRunner } from "../../kube-proxy/exec.ts";
import { Proxier } from "../../kube-proxy/proxier.ts";
import { ENDPOINT_MAPS } from "../../kube-proxy/ruleset.ts";
import { createNetns } from "../helpers/netns.ts";
import { nsexec } from "./harness.ts";

function rng(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

function randomService(r: () => number, i: number): Service {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const type = pick(["ClusterIP", "NodePort", "LoadBalancer"] as const);
  const protos = ["TCP", "UDP", "SCTP"] as const;
  const ports = [{ name: "a", protocol: pick([...protos]), port: 80, targetPort: 8080, nodePort: 30000 + i * 2 }];
  if (r() < 0.4) ports.push({ name: "b", protocol: pick([...protos]), port: 81, targetPort: 8081, nodePort: 30001 + i * 2 });
  const external = type !== "ClusterIP";
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: "churn", name: `svc-${i}` },
    spec: {
      type,
      clusterIP: `10.96.9.${i + 1}`,
      ports: ports.map((p) => (external ? p : { ...p, nodePort: undefined })),
      externalIPs: r() < 0.3 ? [`198.18.2.${i + 1}`] : undefined,
      externalTrafficPolicy: external && r() < 0.5 ? "Local" : "Cluster",
      internalTrafficPolicy: r() < 0.25 ? "Local" : "Cluster",
      sessionAffinity: r() < 0.3 ? "ClientIP" : "None",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: pick([60, 300]) } },
      healthCheckNodePort: type === "LoadBalancer" ? 32000 + i : undefined,
      loadBalancerSourceRanges: type === "LoadBalancer" && r() < 0.5 ? ["198.18.0.0/24", "10.0.0.0/8"] : undefined,
    },
    status: type === "LoadBalancer" ? { loadBalancer: { ingress: [{ ip: `198.18.1.${i + 1}` }] } } : undefined,
  };
}

function randomSlice(r: () => number, i: number): EndpointSlice {
  const n = Math.floor(r() * 6);
  const ips = new Set<number>();
  while (ips.size < n) ips.add(1 + Math.floor(r() * 12));
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { namespace: "churn", name: `svc-${i}-x`, labels: { "kubernetes.io/service-name": `svc-${i}` } },
    addressType: "IPv4",
    ports: ["TCP", "UDP", "SCTP"].flatMap((protocol) => [
      { name: "a", protocol: protocol as "TCP", port: 8080 },
      { name: "b", protocol: protocol as "TCP", port: 8081 },
    ]),
    endpoints: [...ips].map((k) => {
      const ready = r() < 0.75;
      return {
        addresses: [`10.244.${k % 2}.${k}`],
        nodeName: r() < 0.5 ? "node-a" : "node-b",
        conditions: { ready, serving: ready || r() < 0.5, terminating: !ready && r() < 0.7 },
      };
    }),
  };
}

/** The table as data that does not depend on how it was built (handles, slots, element order). */
async function canonical(ns: { path: string }): Promise<Record<string, unknown>> {
  const out = String((await nsexec(ns as any, "nft", ["-j", "list", "table", "ip", "kube-proxy"])).stdout);
  const items = (JSON.parse(out).nftables as any[]).filter((o) => !o.metainfo);
  const result: Record<string, unknown> = {};
  for (const o of items) {
    if (o.chain) result[`chain ${o.chain.name}`] = [];
    if (o.rule) (result[`chain ${o.rule.chain}`] as unknown[]).push(JSON.stringify(o.rule.expr));
    const set = o.set ?? o.map;
    if (set) {
      const elems: string[] = (set.elem ?? []).map((e: unknown) => JSON.stringify(e));
      if (ENDPOINT_MAPS.includes(set.name)) {
        // Slot numbers may differ (incremental syncs keep survivors in place): compare, per
        // destination, the multiset of endpoints.
        const byKey = new Map<string, string[]>();
        for (const e of set.elem ?? []) {
          const key = JSON.stringify(e[0].concat.slice(0, -1));
          byKey.set(key, [...(byKey.get(key) ?? []), JSON.stringify(e[1])].sort());
        }
        result[`${o.map ? "map" : "set"} ${set.name}`] = Object.fromEntries([...byKey].sort());
      } else result[`${o.map ? "map" : "set"} ${set.name}`] = elems.sort();
    }
  }
  return result;
}

test("after a long run of random changes, incremental syncs equal a full sync", async (t) => {
  const nsA = await createNetns(t, "kpc");
  const nsB = await createNetns(t, "kpc");
  const tracker = new ChangeTracker();
  const logs: string[] = [];
  const opts = { nodeName: "node-a", families: ["ip" as const], clusterCIDRs: ["10.244.0.0/16"], nodeIPs: ["198.18.0.10"], conntrackCleanup: false, log: (m: string) => logs.push(m) };
  const proxier = new Proxier(tracker, { ...opts, runner: makeRunner(nsA.path) });
  tracker.setServicesSynced();
  tracker.setEndpointSlicesSynced();
  const r = rng(20261124);
  const N = 14;
  for (let i = 0; i < N; i++) {
    tracker.upsertService(randomService(r, i));
    tracker.upsertSlice(randomSlice(r, i));
  }
  t.true((await proxier.sync())!.full);
  let partial = 0;
  for (let step = 0; step < 120; step++) {
    const i = Math.floor(r() * N);
    const op = r();
    if (op < 0.35) tracker.upsertSlice(randomSlice(r, i));
    else if (op < 0.7) tracker.upsertService(randomService(r, i));
    else if (op < 0.85) tracker.deleteService({ metadata: { namespace: "churn", name: `svc-${i}` } } as Service);
    else tracker.deleteSlice({ metadata: { namespace: "churn", name: `svc-${i}-x` } } as EndpointSlice);
    if (r() < 0.5) {
      const res = await proxier.sync();
      t.false(res!.full, "every later sync is partial");
      partial++;
    }
  }
  await proxier.sync();
  t.true(partial > 30);

  // The same objects, programmed from scratch by a new proxier into another netns.
  const fresh = new Proxier(tracker, { ...opts, runner: makeRunner(nsB.path) });
  t.true((await fresh.sync())!.full);
  const incremental = await canonical(nsA);
  const full = await canonical(nsB);
  t.deepEqual(incremental, full);
  t.true(Object.keys(full).some((k) => k.startsWith("chain external-") || k.startsWith("chain service-")), "the run covered per-service chains");
  t.deepEqual(logs, []);
});
