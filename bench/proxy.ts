// Part "proxy": kube-proxy alone on synthetic Services (5 endpoints each) at 100, 1,000 and
// 10,000 Services. Runs in its own process so that its peak memory is the proxy's alone.
import { execa } from "execa";
import type { ProxyBenchFigures } from "../kube-proxy/bench.ts";
import { podnetEntry } from "../cluster/processes.ts";
import { summarise, type Comparison } from "./stats.ts";

export async function benchProxy(runs: number, sizes = [100, 1000, 10000]): Promise<Comparison[]> {
  const r = await execa(process.execPath, [podnetEntry(), "bench", "--worker", "proxy", "--runs", String(runs), ...sizes.map(String)], { stderr: "inherit" });
  const figs = JSON.parse(String(r.stdout)) as ProxyBenchFigures[];
  const rows: Comparison[] = [];
  const one = (v: number) => summarise([v]);
  for (const f of figs) {
    const n = `${f.services} svc`;
    const full: Comparison = { part: "proxy", name: `${n}: full sync`, unit: "ms", ours: one(f.fullSyncMs), note: `nft applied the full sync in ${f.fullSyncNftMs} ms of ${f.fullSyncMs}; script ${(f.fullScriptBytes / 1e6).toFixed(2)} MB` };
    const ep: Comparison = { part: "proxy", name: `${n}: one endpoint changed`, unit: "ms", ours: { n: runs, ...f.endpointChangeMs } };
    const svc: Comparison = { part: "proxy", name: `${n}: one Service added`, unit: "ms", ours: { n: runs, ...f.serviceAddMs } };
    const size: Comparison = { part: "proxy", name: `${n}: ruleset (map elements)`, unit: "count", ours: one(f.objects["ip.elements"] ?? 0) };
    const mem: Comparison = { part: "proxy", name: `${n}: peak RSS`, unit: "MB", ours: one(f.peakRssMB), note: f.nftPeakRssMB !== undefined ? `nft's own peak RSS ${f.nftPeakRssMB} MB` : undefined };
    if (f.services === 10000 && f.targets) {
      full.target = { text: "< 2000 ms", met: f.targets.fullSyncUnder2s };
      ep.target = { text: "< 100 ms", met: f.targets.endpointChangeUnder100ms };
      mem.target = { text: "< 300 MB", met: f.targets.peakRssUnder300MB };
    }
    rows.push(full, ep, svc, size, mem);
  }
  return rows;
}
