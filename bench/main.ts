// `podnet bench` (npm run bench): side-by-side measurements against the reference.
// Prints a table; --out FILE writes the same figures as JSON. Parts run alone when named.
import { writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { summarise, type Comparison } from "./stats.ts";
import { isInterrupted } from "./cleanup.ts";
import { formatTable } from "./table.ts";

/** runs and warmup are undefined unless given on the command line: each part has its defaults. */
type Part = { name: string; run: (o: { runs?: number; warmup?: number }) => Promise<Comparison[]> };

const PARTS: Part[] = [
  { name: "plugins", run: async (o) => (await import("./plugins.ts")).benchPlugins(o.runs ?? 20, o.warmup ?? 3) },
  { name: "pods", run: async (o) => (await import("./pods.ts")).benchPods(o.runs, o.warmup) },
  { name: "proxy", run: async (o) => (await import("./proxy.ts")).benchProxy(o.runs ?? 20) },
  { name: "dataplane", run: async (o) => (await import("./dataplane.ts")).benchDataplane(o.runs, o.warmup) },
  { name: "cluster", run: async (o) => (await import("./cluster.ts")).benchCluster(o.runs, o.warmup) },
];

const USAGE = `Usage: podnet bench [PART...] [--runs N] [--warmup N] [--out FILE]

Parts: ${PARTS.map((p) => p.name).join(", ")} (all when none is named).
Every comparison interleaves podnet and the reference, --runs times each after --warmup rounds,
and reports min / median / max and the ratio of medians. Defaults: 20 runs after 3 warm-up rounds,
except pods (20 after 1: a round of 100 pods takes seconds), dataplane (20 after 2) and
cluster (20 after 1).
`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { runs: { type: "string" }, warmup: { type: "string" }, out: { type: "string" }, worker: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runs = values.runs !== undefined ? Number(values.runs) : undefined, warmup = values.warmup !== undefined ? Number(values.warmup) : undefined;
  if ((runs !== undefined && (!Number.isInteger(runs) || runs < 1)) || (warmup !== undefined && (!Number.isInteger(warmup) || warmup < 0))) throw new Error("--runs must be a positive integer and --warmup a non-negative one");
  if (values.worker === "proxy") {
    const { benchKubeProxy } = await import("../kube-proxy/bench.ts");
    const sizes = positionals.map(Number).filter((n) => n > 0);
    const figs = await benchKubeProxy({ sizes: sizes.length ? sizes : undefined, repeats: runs ?? 20, log: (m) => process.stderr.write(m + "\n") });
    process.stdout.write(JSON.stringify(figs));
    return 0;
  }
  if (values.worker === "plugins") {
    const [ourPod, refPod] = positionals;
    const samples = await (await import("./plugins.ts")).pluginsWorker(runs ?? 20, warmup ?? 3, ourPod!, refPod!);
    process.stdout.write(JSON.stringify(samples));
    return 0;
  }
  const unknown = positionals.filter((p) => !PARTS.some((x) => x.name === p));
  if (unknown.length) throw new Error(`unknown part ${unknown.join(", ")}; parts are ${PARTS.map((p) => p.name).join(", ")}`);
  const chosen = positionals.length ? PARTS.filter((p) => positionals.includes(p.name)) : PARTS;
  const rows: Comparison[] = [];
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  let failed = 0;
  for (const part of chosen) {
    process.stderr.write(`bench: ${part.name}...\n`);
    const t0 = Date.now();
    // A part that fails is reported as such; the other parts' figures are kept.
    try {
      rows.push(...(await part.run({ runs, warmup })));
    } catch (e) {
      if (isInterrupted()) return 130; // the signal handler is cleaning up and exits
      failed++;
      const msg = e instanceof Error ? e.message : String(e);
      process.stderr.write(`bench: ${part.name} FAILED: ${msg}\n`);
      rows.push({ part: part.name, name: "FAILED", unit: "", ours: summarise([]), note: msg.split("\n")[0] });
    }
    process.stderr.write(`bench: ${part.name} took ${((Date.now() - t0) / 60_000).toFixed(1)} min\n`);
  }
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString(), loadavgBefore: loadBefore, loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))) };
  process.stdout.write(`machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; load average (1/5/15 min) ${machine.loadavgBefore.join(" ")} before, ${machine.loadavgAfter.join(" ")} after\n\n`);
  process.stdout.write(formatTable(rows));
  if (values.out) writeFileSync(values.out, JSON.stringify({ machine, runs: runs ?? "part default", warmup: warmup ?? "part default", results: rows }, null, 2) + "\n");
  return failed ? 1 : 0;
}
