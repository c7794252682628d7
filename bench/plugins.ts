// Part "plugins": ADD, CHECK and DEL latency of our plugins against the reference plugins
// (Debian's containernetworking-plugins), same configs, same kind of netns, calls interleaved.
// The timing loop runs inside the node netns (a worker process started there), so that no
// nsenter sits between the caller and the plugin, exactly as a runtime calls a plugin.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { podnetEntry } from "../cluster/processes.ts";
import { compare, interleave, type Comparison } from "./stats.ts";

export const REF_DIR = "/usr/lib/cni";
export const ourDir = () => join(dirname(podnetEntry()), "cni", "bin");

interface Side {
  dir: string;
  podNetns: string;
  bridge: string;
  subnet: string;
  dataDir: string;
}

function call(side: Side, plugin: string, command: string, conf: object, containerID: string, mayFail = false): { ms: number; out: string } {
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: side.podNetns, CNI_IFNAME: "eth0", CNI_PATH: side.dir };
  const t0 = process.hrtime.bigint();
  const r = spawnSync(join(side.dir, plugin), [], { env, input: JSON.stringify(conf), encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    if (mayFail) return { ms: NaN, out: r.stdout };
    throw new Error(`${side.dir}/${plugin} ${command} failed: ${r.stdout}${r.stderr}`);
  }
  return { ms, out: r.stdout };
}

function startup(side: Side, plugin: string): number {
  const t0 = process.hrtime.bigint();
  spawnSync(join(side.dir, plugin), [], { env: { PATH: process.env.PATH ?? "" }, encoding: "utf8" });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const bridgeConf = (s: Side, name: string) => ({
  cniVersion: "1.0.0",
  name,
  type: "bridge",
  bridge: s.bridge,
  isGateway: true,
  ipMasq: true,
  ipam: { type: "host-local", ranges: [[{ subnet: s.subnet }]], dataDir: s.dataDir },
});

/** Runs inside the node netns; prints the samples as JSON. */
export async function pluginsWorker(rounds: number, warmup: number, ourPod: string, refPod: string): Promise<Record<string, [number[], number[]]>> {
  const data = mkdtempSync(join(tmpdir(), "podnet-bench-"));
  try {
    const ours: Side = { dir: ourDir(), podNetns: ourPod, bridge: "cni-ours", subnet: "10.98.0.0/16", dataDir: join(data, "ours") };
    const ref: Side = { dir: REF_DIR, podNetns: refPod, bridge: "cni-ref", subnet: "10.99.0.0/16", dataDir: join(data, "ref") };
    const out: Record<string, [number[], number[]]> = {};
    const id = () => `bench${randomBytes(6).toString("hex")}`;
    const lo = { cniVersion: "1.0.0", name: "bench-lo", type: "loopback" };

    // ADD, CHECK and DEL of one attachment per round; the two sides alternate who goes first.
    const three = (name: string, run: (s: Side) => { add: number; check: number; del: number }) => {
      const samples = new Map<Side, { add: number[]; check: number[]; del: number[] }>([[ours, { add: [], check: [], del: [] }], [ref, { add: [], check: [], del: [] }]]);
      for (let i = 0; i < warmup + rounds; i++) {
        for (const side of i % 2 === 0 ? [ours, ref] : [ref, ours]) {
          const r = run(side);
          if (i < warmup) continue;
          const acc = samples.get(side)!;
          // A failed call (NaN) has no latency to report.
          for (const m of ["add", "check", "del"] as const) if (!Number.isNaN(r[m])) acc[m].push(r[m]);
        }
      }
      for (const m of ["add", "check", "del"] as const) out[`${name} ${m.toUpperCase()}`] = [samples.get(ours)![m], samples.get(ref)![m]];
    };

    three("loopback", (s) => {
      const cid = id();
      const add = call(s, "loopback", "ADD", lo, cid);
      const check = call(s, "loopback", "CHECK", { ...lo, prevResult: JSON.parse(add.out) }, cid);
      const del = call(s, "loopback", "DEL", lo, cid);
      return { add: add.ms, check: check.ms, del: del.ms };
    });
    three("bridge+host-local", (s) => {
      const cid = id();
      const conf = bridgeConf(s, s === ours ? "bench-ours" : "bench-ref");
      const add = call(s, "bridge", "ADD", conf, cid);
      const check = call(s, "bridge", "CHECK", { ...conf, prevResult: JSON.parse(add.out) }, cid);
      const del = call(s, "bridge", "DEL", { ...conf, prevResult: JSON.parse(add.out) }, cid);
      return { add: add.ms, check: check.ms, del: del.ms };
    });
    let port = 20000;
    three("portmap after bridge", (s) => {
      const cid = id();
      const conf = bridgeConf(s, s === ours ? "bench-ours" : "bench-ref");
      const prev = JSON.parse(call(s, "bridge", "ADD", conf, cid).out);
      const pm = { cniVersion: "1.0.0", name: conf.name, type: "portmap", runtimeConfig: { portMappings: [{ hostPort: port++, containerPort: 80, protocol: "tcp" }] }, prevResult: prev };
      const add = call(s, "portmap", "ADD", pm, cid);
      // Debian's portmap 1.1.1 fails CHECK on IPv4-only pods (plugins#819): only ours is timed.
      const check = call(s, "portmap", "CHECK", pm, cid, s === ref);
      const del = call(s, "portmap", "DEL", pm, cid);
      call(s, "bridge", "DEL", { ...conf, prevResult: prev }, cid);
      return { add: add.ms, check: check.ms, del: del.ms };
    });
    const st = await interleave(rounds, warmup, async () => startup(ours, "bridge"), async () => startup(ref, "bridge"));
    out["start-up (no CNI_COMMAND)"] = st;
    return out;
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}

/** Creates the node and pod netns, runs the worker in the node netns, removes everything. */
export async function benchPlugins(rounds: number, warmup: number): Promise<Comparison[]> {
  const tag = randomBytes(3).toString("hex");
  const node = `pnb-node-${tag}`, podA = `pnb-pa-${tag}`, podB = `pnb-pb-${tag}`;
  const made: string[] = [];
  try {
    for (const ns of [node, podA, podB]) {
      await execa("ip", ["netns", "add", ns]);
      made.push(ns);
      await execa("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    const r = await execa("nsenter", [`--net=/run/netns/${node}`, "--", process.execPath, podnetEntry(), "bench", "--worker", "plugins", "--runs", String(rounds), "--warmup", String(warmup), `/run/netns/${podA}`, `/run/netns/${podB}`]);
    const samples = JSON.parse(String(r.stdout)) as Record<string, [number[], number[]]>;
    const rows: Comparison[] = [];
    for (const [name, [ours, ref]] of Object.entries(samples)) {
      const c = compare("plugins", name, "ms", ours, ref.length ? ref : undefined);
      if (!ref.length) c.note = `the reference fails this call (portmap 1.1.1 CHECK on an IPv4-only pod, plugins#819), so only ours is timed`;
      if (name === "bridge+host-local ADD" || name === "bridge+host-local DEL") c.target = { text: "ratio <= 1.5", met: (c.ratio ?? Infinity) <= 1.5 };
      rows.push(c);
    }
    const start = rows.find((c) => c.name.startsWith("start-up"));
    const add = rows.find((c) => c.name === "bridge+host-local ADD");
    if (start && add) start.note = `process start-up is ${((start.ours.median / add.ours.median) * 100).toFixed(0)}% of our bridge+host-local ADD (reference: ${((start.reference!.median / add.reference!.median) * 100).toFixed(0)}%)`;
    return rows;
  } finally {
    for (const ns of made) {
      const pids = await execa("ip", ["netns", "pids", ns], { reject: false });
      for (const p of String(pids.stdout).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(p), "SIGKILL");
        } catch {
          /* gone */
        }
      }
      await execa("ip", ["netns", "del", ns], { reject: false });
    }
  }
}
