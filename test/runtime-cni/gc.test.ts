// GC (SPEC sections 2 and 3): stale cached attachments are DELeted, plugins get
// cni.dev/valid-attachments, errors do not stop it, disableGC is honoured, and GC runs alone:
// after the ADD/DEL in flight and before the ones that arrive while it waits or runs.
import test from "ava";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CniNetwork, PluginError } from "../../runtime/cni/index.ts";
import { SYSTEM_PATH } from "../../runtime/cni/exec.ts";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { createNetns, ipJSON } from "../helpers/netns.ts";
import { readLog, requests, tempDir, writeRecorder } from "./helpers.ts";

const env = { PATH: SYSTEM_PATH };

async function setup(t: Parameters<typeof tempDir>[0]) {
  const d = await tempDir(t);
  const bin = join(d, "bin");
  await mkdir(bin);
  const log = join(d, "calls.log");
  await writeRecorder(bin, "rec", log);
  return { d, bin, log, cache: join(d, "cache"), ipam: join(d, "ipam") };
}

const addresses = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();

test("bridge (reference, 1.0.0): GC DELs the cached attachments that are not valid and leaves the valid one alone", async (t) => {
  const node = await createNetns(t);
  const pods = [await createNetns(t), await createNetns(t), await createNetns(t)];
  const { cache, ipam } = await setup(t);
  const net = new CniNetwork({
    conflist: { cniVersion: "1.0.0", name: "gcnet", plugins: [{ type: "bridge", bridge: "cni0", isGateway: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.80.0.0/24" }]] } }] },
    cniPath: [REF_BIN],
    cacheDir: cache,
    pluginNetns: node.path,
    env,
  });
  const atts = pods.map((p, i) => ({ containerID: `gc${i}`, netns: p.path, ifname: "eth0" }));
  const results = [];
  for (const a of atts) results.push(await net.add(a));
  t.is((await addresses(join(ipam, "gcnet"))).length, 3);

  const report = await net.gc([{ containerID: "gc0", ifname: "eth0" }]);
  t.deepEqual(report.errors, []);
  t.deepEqual(report.deleted, [{ containerID: "gc1", ifname: "eth0" }, { containerID: "gc2", ifname: "eth0" }]);
  t.false(report.pluginsAsked, "GC is sent to plugins from 1.1.0 only");
  const kept = (results[0]!.ips as { address: string }[])[0]!.address.split("/")[0]!;
  t.deepEqual(await addresses(join(ipam, "gcnet")), [kept], "only the valid attachment's address is still reserved");
  t.deepEqual(await readdir(join(cache, "results")), ["gcnet-gc0-eth0"]);
  t.is((await ipJSON(pods[0]!, ["link", "show", "eth0"])).length, 1);
  t.deepEqual(await ipJSON(pods[1]!, ["link", "show", "type", "veth"]), []);
  t.deepEqual(await ipJSON(pods[2]!, ["link", "show", "type", "veth"]), []);
  await net.check(atts[0]!);

  // Without a list, the cache is the list of valid attachments: nothing is removed.
  const again = await net.gc();
  t.deepEqual(again.deleted, []);
  t.deepEqual(again.validAttachments, [{ containerID: "gc0", ifname: "eth0" }]);
  await net.del(atts[0]!);
});

test("recorders (1.1.0): plugins get cni.dev/valid-attachments and no attachment env; GC continues past a failing plugin", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache } = await setup(t);
  const plugins = [{ type: "rec", test: { id: "r1", failOn: ["GC"] } }, { type: "rec", test: { id: "r2" } }];
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "gcrec", plugins }, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  await net.add({ containerID: "keep", netns: pod.path, ifname: "eth0" });
  await net.add({ containerID: "drop", netns: pod.path, ifname: "eth1" });
  const report = await net.gc([{ containerID: "keep", ifname: "eth0" }]);
  t.deepEqual(report.deleted, [{ containerID: "drop", ifname: "eth1" }]);
  t.true(report.pluginsAsked);
  t.is(report.errors.length, 1);
  t.true(report.errors[0] instanceof PluginError);
  t.like(report.errors[0], { type: "rec", command: "GC", code: 7 });
  const dels = await requests(log, "DEL");
  t.deepEqual(dels.map((d) => [d.id, d.env.CNI_CONTAINERID, d.env.CNI_IFNAME]), [["r2", "drop", "eth1"], ["r1", "drop", "eth1"]]);
  const gcs = await requests(log, "GC");
  t.deepEqual(gcs.map((g) => g.id), ["r1", "r2"], "the second plugin is asked although the first failed");
  for (const g of gcs) {
    t.deepEqual(g.req["cni.dev/valid-attachments"], [{ containerID: "keep", ifname: "eth0" }]);
    t.deepEqual(Object.keys(g.env).sort(), ["CNI_COMMAND", "CNI_PATH"]);
    t.false("runtimeConfig" in g.req);
  }

  const off = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "gcrec", disableGC: true, plugins }, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  const before = (await readLog(log)).length;
  const skipped = await off.gc([]);
  t.regex(skipped.skipped!, /disableGC/);
  t.is((await readLog(log)).length, before, "disableGC: nothing runs, nothing is deleted");
  t.deepEqual(await readdir(join(cache, "results")), ["gcrec-keep-eth0"]);
});

test("host-local (ours, 1.1.0): plugin GC releases a reservation whose attachment the runtime lost", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { cache, ipam } = await setup(t);
  const net = new CniNetwork({
    conflist: { cniVersion: "1.1.0", name: "ourgc", plugins: [{ type: "host-local", ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.81.0.0/24" }]] } }] },
    cniPath: [OUR_BIN],
    cacheDir: cache,
    pluginNetns: node.path,
    env,
  });
  const a = await net.add({ containerID: "alive", netns: pod.path, ifname: "eth0" });
  const b = await net.add({ containerID: "lost", netns: pod.path, ifname: "eth0" });
  const ipOf = (r: Record<string, unknown>) => (r.ips as { address: string }[])[0]!.address.split("/")[0]!;
  t.deepEqual(await addresses(join(ipam, "ourgc")), [ipOf(a), ipOf(b)].sort());
  // The runtime lost the attachment (no cache entry): only the plugin's own GC can find the leak.
  await rm(join(cache, "results", "ourgc-lost-eth0"));
  const report = await net.gc();
  t.deepEqual(report.errors, []);
  t.deepEqual(report.deleted, []);
  t.true(report.pluginsAsked);
  t.deepEqual(await addresses(join(ipam, "ourgc")), [ipOf(a)]);
  await net.del({ containerID: "alive", netns: pod.path, ifname: "eth0" });
  t.deepEqual(await addresses(join(ipam, "ourgc")), []);
});

/** Which invocations were running at the same time, from the recorder's start/end events. */
function overlaps<E extends { event: string }>(log: E[], a: (e: E) => boolean, b: (e: E) => boolean): boolean {
  let inA = 0, inB = 0;
  for (const e of log) {
    const d = e.event === "start" ? 1 : -1;
    if (a(e)) inA += d;
    if (b(e)) inB += d;
    if (inA > 0 && inB > 0) return true;
  }
  return false;
}

test("GC waits for the ADD in flight and holds the ADD that comes while it runs; one container's operations never overlap", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache } = await setup(t);
  const plugins = [{ type: "rec", test: { id: "slow", delayOn: ["ADD", "GC", "DEL"], delay: 0.4 } }];
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "order", plugins }, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  await net.version(); // VERSION answered before the race starts
  const started = async (pred: (e: { event: string; command: string; env: Record<string, string> }) => boolean) => {
    for (let i = 0; i < 100; i++) {
      if ((await readLog(log)).some((e) => e.event === "start" && pred(e))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("the plugin never started");
  };
  const first = net.add({ containerID: "first", netns: pod.path, ifname: "eth0" });
  await started((e) => e.command === "ADD");
  const gc = net.gc([{ containerID: "first", ifname: "eth0" }, { containerID: "second", ifname: "eth0" }]);
  const second = net.add({ containerID: "second", netns: pod.path, ifname: "eth0" });
  // The same container, two interfaces: serialised although nothing else orders them.
  const third = net.add({ containerID: "second", netns: pod.path, ifname: "eth1" });
  await Promise.all([first, gc, second, third]);
  const events = (await readLog(log)).filter((e) => e.command !== "VERSION");
  const order = events.map((e) => `${e.event} ${e.command} ${e.env.CNI_CONTAINERID ?? ""}`.trim());
  const firstEnd = order.indexOf("end ADD first");
  const gcStart = order.indexOf("start GC");
  const gcEnd = order.indexOf("end GC");
  t.true(firstEnd >= 0 && gcStart > firstEnd, `GC started after the ADD in flight ended: ${order.join(", ")}`);
  const laterAdds = events.map((e, i) => ({ e, i })).filter(({ e }) => e.event === "start" && e.command === "ADD" && e.env.CNI_CONTAINERID === "second");
  t.is(laterAdds.length, 2);
  for (const { i } of laterAdds) t.true(i > gcEnd, `ADDs that arrived during GC ran after it: ${order.join(", ")}`);
  t.false(
    overlaps(events, (e: any) => e.env.CNI_CONTAINERID === "second" && e.env.CNI_IFNAME === "eth0", (e: any) => e.env.CNI_CONTAINERID === "second" && e.env.CNI_IFNAME === "eth1"),
    "the two ADDs of one container did not run at the same time",
  );
});
