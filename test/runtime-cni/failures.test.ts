// When plugins misbehave: a timeout kills the plugin and what it started, a missing binary
// stops the ADD before anything runs, a plugin's CNI error and stderr reach the caller, and
// a partial ADD is cached so that DEL can undo it.
import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { CniNetwork, CniRuntimeError, PluginError } from "../../runtime/cni/index.ts";
import { SYSTEM_PATH } from "../../runtime/cni/exec.ts";
import { REF_BIN } from "../helpers/cni.ts";
import { createNetns, ipJSON } from "../helpers/netns.ts";
import { requests, tempDir, writeRecorder } from "./helpers.ts";

const env = { PATH: SYSTEM_PATH };

async function setup(t: Parameters<typeof tempDir>[0]) {
  const d = await tempDir(t);
  const bin = join(d, "bin");
  await mkdir(bin);
  const log = join(d, "calls.log");
  await writeRecorder(bin, "rec", log);
  return { d, bin, log, cache: join(d, "cache"), ipam: join(d, "ipam") };
}

/** Gone, or a zombie waiting for init to reap it: either way no longer running. */
function stopped(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return / Z /.test(st.slice(st.lastIndexOf(")")));
  } catch {
    return true;
  }
}

test("a plugin that outlives its timeout is killed with the processes it started, and the error says so", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, cache, d } = await setup(t);
  const pidFile = join(d, "child.pid");
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "slow", plugins: [{ type: "rec", test: { sleepOn: ["ADD"], pidFile } }] }, cniPath: [bin], cacheDir: cache, execTimeoutMs: 1500, pluginNetns: node.path, env });
  const att = { containerID: "slow1", netns: pod.path, ifname: "eth0" };
  const err = await t.throwsAsync(net.add(att), { instanceOf: PluginError });
  t.true(err!.timedOut);
  t.is(err!.command, "ADD");
  t.regex(err!.message, /^plugin rec failed \(ADD\): timed out after 1500 ms and was killed/);
  const child = Number(await readFile(pidFile, "utf8"));
  t.teardown(() => {
    try {
      process.kill(child, "SIGKILL");
    } catch {
      /* gone, as it should be */
    }
  });
  for (let i = 0; i < 50 && !stopped(child); i++) await new Promise((r) => setTimeout(r, 100));
  t.true(stopped(child), "the plugin's child process was killed with it");
  // The attachment is known to be half-added; DEL (which does not sleep) cleans up.
  const entry = JSON.parse(await readFile(join(cache, "results", "slow-slow1-eth0"), "utf8"));
  t.true(entry.incomplete);
  await net.del(att);
  t.false(existsSync(join(cache, "results", "slow-slow1-eth0")));
});

test("a missing plugin binary fails the ADD before any plugin runs", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache } = await setup(t);
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "gap", plugins: [{ type: "rec" }, { type: "no-such-plugin" }] }, cniPath: [bin, "/nonexistent-dir"], cacheDir: cache, pluginNetns: node.path, env });
  const err = await t.throwsAsync(net.add({ containerID: "c", netns: pod.path, ifname: "eth0" }), { instanceOf: CniRuntimeError });
  t.is(err!.message, `failed to find plugin "no-such-plugin" in path [${bin} /nonexistent-dir]`);
  t.deepEqual(await requests(log, "ADD"), []);
  t.false(existsSync(join(cache, "results")));
  // DEL needs every plugin too (section 3: a missing executable is an error).
  await t.throwsAsync(net.del({ containerID: "c", netns: pod.path, ifname: "eth0" }), { message: /failed to find plugin "no-such-plugin"/ });
});

test("a plugin's CNI error (code, msg, details) and its stderr reach the caller", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, cache } = await setup(t);
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "fails", plugins: [{ type: "rec", test: { failOn: ["ADD"] } }] }, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  const err = await t.throwsAsync(net.add({ containerID: "c", netns: pod.path, ifname: "eth0" }), { instanceOf: PluginError });
  t.is(err!.code, 7);
  t.is(err!.msg, "failing on purpose");
  t.is(err!.details, "test.failOn includes ADD");
  t.is(err!.stderr, "recorder: failing on purpose\n");
  t.deepEqual(err!.cniError, { cniVersion: "1.1.0", code: 7, msg: "failing on purpose", details: "test.failOn includes ADD" });
  t.is(err!.message, "plugin rec failed (ADD): failing on purpose: test.failOn includes ADD (CNI error code 7)");
});

test("output that is not a result fails the ADD with what the plugin printed", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, cache } = await setup(t);
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "garbage", plugins: [{ type: "rec", test: { garbageOn: ["ADD"] } }] }, cniPath: [bin], cacheDir: cache, pluginNetns: node.path, env });
  const err = await t.throwsAsync(net.add({ containerID: "c", netns: pod.path, ifname: "eth0" }), { instanceOf: PluginError });
  t.regex(err!.message, /^plugin rec failed \(ADD\): printed output that is not JSON .*"all good!"/);
});

test("a partial ADD is cached, refuses CHECK and a second ADD, and DEL undoes it with the partial result", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, log, cache, ipam } = await setup(t);
  const net = new CniNetwork({
    conflist: { cniVersion: "1.0.0", name: "partial", plugins: [{ type: "bridge", bridge: "cni0", ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.79.0.0/24" }]] } }, { type: "rec", test: { failOn: ["ADD"] } }] },
    cniPath: [bin, REF_BIN],
    cacheDir: cache,
    pluginNetns: node.path,
    env,
  });
  const att = { containerID: "part", netns: pod.path, ifname: "eth0" };
  await t.throwsAsync(net.add(att), { instanceOf: PluginError, message: /^plugin rec failed \(ADD\)/ });
  const entry = JSON.parse(await readFile(join(cache, "results", "partial-part-eth0"), "utf8"));
  t.true(entry.incomplete);
  t.is(entry.result.interfaces.find((i: any) => i.sandbox === pod.path).name, "eth0", "the bridge's result is kept");
  t.is((await ipJSON(pod, ["link", "show", "eth0"])).length, 1);
  t.is((await readdir(join(ipam, "partial"))).filter((f) => f.startsWith("10.79.")).length, 1);

  await t.throwsAsync(net.add(att), { message: /already attached to network "partial" \(by an ADD that did not complete\); DEL it first/ });
  await t.throwsAsync(net.check(att), { message: /did not complete; DEL it/ });
  t.is(await net.cachedResult(att), undefined);

  await net.del(att);
  const [recDel] = await requests(log, "DEL");
  t.deepEqual(recDel!.req.prevResult, entry.result, "DEL got the partial result");
  t.deepEqual(await ipJSON(pod, ["link", "show", "type", "veth"]), []);
  t.deepEqual((await readdir(join(ipam, "partial"))).filter((f) => f.startsWith("10.79.")), [], "the address is released");
  t.false(existsSync(join(cache, "results", "partial-part-eth0")));
});

test("bad attachment parameters are refused before any plugin runs", async (t) => {
  const { bin, log, cache } = await setup(t);
  const net = new CniNetwork({ conflist: { cniVersion: "1.1.0", name: "n", plugins: [{ type: "rec" }] }, cniPath: [bin], cacheDir: cache, env });
  await t.throwsAsync(net.add({ containerID: "../etc", netns: "/run/netns/x", ifname: "eth0" }), { message: /ADD: invalid container ID "..\/etc"/ });
  await t.throwsAsync(net.add({ containerID: "c", netns: "/run/netns/x", ifname: "eth0123456789abc" }), { message: /ADD: interface name is too long/ });
  await t.throwsAsync(net.add({ containerID: "c", netns: "relative/ns", ifname: "eth0" }), { message: /netns must be an absolute path/ });
  await t.throwsAsync(net.add({ containerID: "c", netns: "/run/netns/x", ifname: "eth0", args: [["A;B", "1"]] }), { message: /CNI_ARGS pair \["A;B","1"\] is invalid/ });
  t.throws(() => new CniNetwork({ conflist: {}, configFile: "/x", cniPath: [bin], cacheDir: cache }), { message: /exactly one of/ });
  t.deepEqual(await requests(log), []);
});
