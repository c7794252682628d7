// Benchmark of the proxier alone (issue 7, part "proxy"): synthetic Services with 5 endpoints
// each, programmed into a throwaway netns that the benchmark creates and removes. Measures, end
// to end (planning, rendering, script and `nft -f -`): the first full sync, a sync after one
// endpoint changes, a sync after one Service is added, the ruleset size, and peak memory of this
// process (and of nft during the full sync, when /usr/bin/time is available).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { EndpointSlice, Service } from "../apiserver/types.ts";
import { ChangeTracker } from "./change-tracker.ts";
import { makeRunner, systemBinary, type Runner } from "./exec.ts";
import { Proxier } from "./proxier.ts";
import { TABLE } from "./ruleset.ts";

export interface ProxyBenchOptions {
  sizes?: number[];
  endpointsPerService?: number;
  /** Timed repetitions of the one-endpoint and one-Service syncs. */
  repeats?: number;
  /** Share of Services that are NodePort (the rest ClusterIP). */
  nodePortShare?: number;
  log?: (msg: string) => void;
}

export interface Stats {
  min: number;
  median: number;
  max: number;
}

export interface ProxyBenchFigures {
  services: number;
  endpointsPerService: number;
  fullSyncMs: number;
  /** Of the full sync, the part spent in nft. */
  fullSyncNftMs: number;
  endpointChangeMs: Stats;
  serviceAddMs: Stats;
  /** Commands in the one-endpoint-change transaction. */
  endpointChangeCommands: number;
  fullScriptBytes: number;
  objects: Record<string, number>;
  /** Peak RSS of this process so far (monotonic across sizes run in one process). */
  peakRssMB: number;
  /** Peak RSS of the nft process applying the full sync, when measurable. */
  nftPeakRssMB?: number;
  targets?: { fullSyncUnder2s: boolean; endpointChangeUnder100ms: boolean; peakRssUnder300MB: boolean };
}

const stats = (xs: number[]): Stats => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};

const ip4 = (n: number) => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const SVC_BASE = 0x0a600000 + 0x100; // 10.96.1.0 upwards
const EP_BASE = 0x0af00000; // 10.240.0.0 upwards

export function syntheticService(i: number, nodePort: boolean): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: "bench", name: `svc-${i}`, resourceVersion: "1" },
    spec: {
      type: nodePort ? "NodePort" : "ClusterIP",
      clusterIP: ip4(SVC_BASE + i),
      clusterIPs: [ip4(SVC_BASE + i)],
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, ...(nodePort ? { nodePort: 30000 + (i % 2768) } : {}) }],
    },
  };
}

export function syntheticSlice(i: number, eps: number, generation = 0): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { namespace: "bench", name: `svc-${i}-abcde`, labels: { "kubernetes.io/service-name": `svc-${i}` }, resourceVersion: String(generation + 1) },
    addressType: "IPv4",
    ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    endpoints: Array.from({ length: eps }, (_, e) => ({
      addresses: [ip4(EP_BASE + i * eps + e + (e === 0 ? generation * 0x100000 : 0))],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${(i * eps + e) % 10}`,
    })),
  };
}

/** nft wrapped in /usr/bin/time so the benchmark can report nft's own peak memory. */
function measuringRunner(inner: Runner, sink: { nftKB?: number }): Runner {
  const time = "/usr/bin/time";
  if (!existsSync(time)) return inner;
  return {
    netns: inner.netns,
    async exec(cmd, args, input) {
      if (cmd !== "nft") return inner.exec(cmd, args, input);
      // time(1) looks its program up in PATH, which under npm starts with node_modules/.bin (where
      // "nft" is an unrelated npm tool): name the system's nft by its absolute path.
      const r = await inner.exec(time, ["-f", "__maxrss_kb=%M", systemBinary("nft"), ...args], input);
      const m = /__maxrss_kb=(\d+)\s*$/.exec(r.stderr);
      if (m) {
        sink.nftKB = Number(m[1]);
        r.stderr = r.stderr.slice(0, m.index);
      }
      return r;
    },
  };
}

/**
 * The figures mean something only if the kernel holds what the proxier believes it programmed:
 * its chain count per family is compared with nft's own listing of the table.
 */
async function requireKernelAgrees(runner: Runner, counts: Record<string, number>): Promise<void> {
  for (const family of ["ip", "ip6"]) {
    const want = counts[`${family}.chains`];
    if (want === undefined) continue;
    const r = await runner.exec("nft", ["-j", "list", "table", family, TABLE]);
    const doc = r.code === 0 ? (JSON.parse(r.stdout) as { nftables?: Record<string, unknown>[] }) : undefined;
    const got = doc?.nftables?.filter((o) => "chain" in o).length;
    if (got !== want) throw new Error(`the kernel's table ${family} ${TABLE} has ${got ?? "no"} chains where the proxier counts ${want}: the benchmark did not program the kernel (${r.stderr.trim()})`);
  }
}

async function benchSize(n: number, opts: Required<Omit<ProxyBenchOptions, "sizes" | "log">>, log: (m: string) => void): Promise<ProxyBenchFigures> {
  const ns = `kpbench${randomBytes(3).toString("hex")}`;
  const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
  if (add.status !== 0) throw new Error(`cannot create netns ${ns}: ${add.stderr.trim()}`);
  try {
    spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const sink: { nftKB?: number } = {};
    const runner = measuringRunner(makeRunner(`/run/netns/${ns}`), sink);
    const tracker = new ChangeTracker();
    const proxier = new Proxier(tracker, { nodeName: "node-0", runner, clusterCIDRs: ["10.240.0.0/12"], nodeIPs: ["198.18.0.10"], conntrackCleanup: false });
    const eps = opts.endpointsPerService;
    const nodePortEvery = opts.nodePortShare > 0 ? Math.round(1 / opts.nodePortShare) : 0;
    for (let i = 0; i < n; i++) {
      tracker.upsertService(syntheticService(i, nodePortEvery > 0 && i % nodePortEvery === 0));
      tracker.upsertSlice(syntheticSlice(i, eps));
    }
    tracker.setServicesSynced();
    tracker.setEndpointSlicesSynced();

    const t0 = performance.now();
    const full = await proxier.sync();
    const fullSyncMs = performance.now() - t0;
    if (!full) throw new Error("full sync did not run");
    const nftKB = sink.nftKB;
    log(`  ${n} services: full sync ${fullSyncMs.toFixed(0)} ms (nft ${(full.nftSeconds * 1000).toFixed(0)} ms, ${(full.scriptBytes / 1e6).toFixed(1)} MB script)`);

    const epTimes: number[] = [];
    let epCommands = 0;
    for (let r = 0; r < opts.repeats; r++) {
      const i = Math.floor((r + 0.5) * (n / opts.repeats));
      tracker.upsertSlice(syntheticSlice(i, eps, r + 1));
      const t = performance.now();
      const res = await proxier.sync();
      epTimes.push(performance.now() - t);
      epCommands = res?.commands ?? 0;
    }
    const addTimes: number[] = [];
    for (let r = 0; r < opts.repeats; r++) {
      const i = n + r;
      tracker.upsertService(syntheticService(i, false));
      tracker.upsertSlice(syntheticSlice(i, eps));
      const t = performance.now();
      await proxier.sync();
      addTimes.push(performance.now() - t);
    }
    const peakRssMB = process.resourceUsage().maxRSS / 1024;
    await requireKernelAgrees(makeRunner(`/run/netns/${ns}`), proxier.objectCounts());
    const fig: ProxyBenchFigures = {
      services: n,
      endpointsPerService: eps,
      fullSyncMs: Math.round(fullSyncMs * 10) / 10,
      fullSyncNftMs: Math.round(full.nftSeconds * 10000) / 10,
      endpointChangeMs: stats(epTimes.map((x) => Math.round(x * 10) / 10)),
      serviceAddMs: stats(addTimes.map((x) => Math.round(x * 10) / 10)),
      endpointChangeCommands: epCommands,
      fullScriptBytes: full.scriptBytes,
      objects: proxier.objectCounts(),
      peakRssMB: Math.round(peakRssMB),
      nftPeakRssMB: nftKB ? Math.round(nftKB / 1024) : undefined,
    };
    if (n >= 10000) {
      fig.targets = { fullSyncUnder2s: fullSyncMs < 2000, endpointChangeUnder100ms: fig.endpointChangeMs.median < 100, peakRssUnder300MB: peakRssMB < 300 };
    }
    return fig;
  } finally {
    spawnSync("ip", ["netns", "del", ns]);
  }
}

/** Runs the proxy benchmark at each size (ascending) and returns the figures. */
export async function benchKubeProxy(options: ProxyBenchOptions = {}): Promise<ProxyBenchFigures[]> {
  const sizes = [...(options.sizes ?? [100, 1000, 10000])].sort((a, b) => a - b);
  const opts = { endpointsPerService: options.endpointsPerService ?? 5, repeats: options.repeats ?? 20, nodePortShare: options.nodePortShare ?? 0.1 };
  const log = options.log ?? (() => {});
  const out: ProxyBenchFigures[] = [];
  for (const n of sizes) out.push(await benchSize(n, opts, log));
  return out;
}

export function formatProxyBench(figs: ProxyBenchFigures[]): string {
  const head = ["services", "full sync ms (nft)", "1 endpoint ms min/med/max", "1 service ms min/med/max", "elements", "chains", "script MB", "peak RSS MB (nft)"];
  const rows = figs.map((f) => [
    String(f.services),
    `${f.fullSyncMs} (${f.fullSyncNftMs})`,
    `${f.endpointChangeMs.min}/${f.endpointChangeMs.median}/${f.endpointChangeMs.max}`,
    `${f.serviceAddMs.min}/${f.serviceAddMs.median}/${f.serviceAddMs.max}`,
    String(f.objects["ip.elements"] ?? 0),
    String((f.objects["ip.chains"] ?? 0) + (f.objects["ip6.chains"] ?? 0)),
    (f.fullScriptBytes / 1e6).toFixed(2),
    `${f.peakRssMB} (${f.nftPeakRssMB ?? "?"})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  const lines = [line(head), ...rows.map(line)];
  for (const f of figs) {
    if (!f.targets) continue;
    const t = f.targets;
    lines.push(
      `targets at ${f.services} services: full sync < 2 s ${t.fullSyncUnder2s ? "met" : "MISSED"}; one-endpoint change < 100 ms ${t.endpointChangeUnder100ms ? "met" : "MISSED"}; peak RSS < 300 MB ${t.peakRssUnder300MB ? "met" : "MISSED"}`,
    );
  }
  return lines.join("\n") + "\n";
}
