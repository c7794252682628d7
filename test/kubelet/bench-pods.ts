// Measures how long N static pods take to be Running and Ready on one standalone kubelet node,
// with our CNI plugins and with the reference plugins (only --cni-bin-dir differs), then how long
// they take to go. Not a test (no assertions on time): run it by hand after
// `node scripts/build.mjs cli cni`:
//   node --import tsx test/kubelet/bench-pods.ts [PODS] [ROUNDS] [-- extra kubelet flags]
import type { ExecutionContext } from "ava";
import { readFileSync } from "node:fs";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { eventually, startNode } from "./harness.ts";

async function once(bin: string, pods: number, extra: string[]): Promise<{ up: number; down: number }> {
  const teardowns: (() => Promise<void> | void)[] = [];
  const t = { teardown: (fn: () => Promise<void> | void) => teardowns.push(fn) } as unknown as ExecutionContext;
  try {
    const n = await startNode(t, { cniBin: bin, podCIDR: "10.250.0.0/22", kubeletArgs: extra });
    const names = Array.from({ length: pods }, (_, i) => `b${i}`);
    const cpuTotal = () => {
      const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
      return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!, idle: f[3]! + f[4]! };
    };
    const c0 = cpuTotal();
    const t0 = performance.now();
    for (const name of names) n.writeManifest(name, { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] });
    await eventually(`${pods} pods running`, async () => {
      const ps = await n.pods();
      return ps.filter((p) => p.status?.phase === "Running" && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length === pods;
    }, 600_000, 50);
    const up = performance.now() - t0;
    if (process.env.BENCH_CPU) {
      const cpu = (pid?: number) => {
        const f = readFileSync(`/proc/${pid}/stat`, "utf8").slice(readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
        return ((Number(f[11]) + Number(f[12])) / 100).toFixed(2);
      };
      const c1 = cpuTotal();
      process.stderr.write(`machine busy ${((100 * (c1.busy - c0.busy)) / (c1.busy - c0.busy + c1.idle - c0.idle)).toFixed(0)}%; `);
      process.stderr.write(`cpu seconds: kubelet ${cpu(n.kubeletProc?.pid)}, runtime ${cpu(n.runtimeProc?.pid)}\n`);
    }
    const t1 = performance.now();
    for (const name of names) n.removeManifest(name);
    await eventually("every pod gone", async () => (await n.runtime.listPodSandbox({})).items.length === 0 && (await n.pods()).length === 0, 600_000, 50);
    const down = performance.now() - t1;
    if (process.env.BENCH_CPU) await n.stopKubelet(); // a clean exit writes --cpu-prof profiles
    return { up, down };
  } finally {
    for (const fn of teardowns.reverse()) await fn();
  }
}

async function main(): Promise<void> {
  const sep = process.argv.indexOf("--");
  const args = sep >= 0 ? process.argv.slice(2, sep) : process.argv.slice(2);
  const extra = sep >= 0 ? process.argv.slice(sep + 1) : [];
  const pods = Number(args[0] ?? 100);
  const rounds = Number(args[1] ?? 2);
  for (let r = 0; r < rounds; r++) {
    for (const [label, bin] of [["ours", OUR_BIN], ["reference", REF_BIN]] as const) {
      const { up, down } = await once(bin, pods, extra);
      process.stdout.write(`${label.padEnd(9)} ${pods} pods Running in ${(up / 1000).toFixed(2)} s (${(pods / (up / 1000)).toFixed(1)} pods/s); all gone in ${(down / 1000).toFixed(2)} s\n`);
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
