// `podnet cni` (dist/podnet.mjs) with cnitool's conventions, run inside a test's node netns.
import test from "ava";
import { execa } from "execa";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SYSTEM_PATH } from "../../runtime/cni/exec.ts";
import { REF_BIN } from "../helpers/cni.ts";
import { createNetns, ipJSON, type Netns } from "../helpers/netns.ts";
import { PODNET } from "../helpers/podnet.ts";
import { requests, tempDir, writeRecorder } from "./helpers.ts";

async function setup(t: Parameters<typeof tempDir>[0]) {
  const d = await tempDir(t);
  const bin = join(d, "bin");
  const conf = join(d, "net.d");
  await mkdir(bin);
  await mkdir(conf);
  const log = join(d, "calls.log");
  await writeRecorder(bin, "rec", log);
  return { d, bin, conf, log, cache: join(d, "cache"), ipam: join(d, "ipam") };
}

function podnet(node: Netns, args: string[], env: Record<string, string>) {
  return execa("nsenter", [`--net=${node.path}`, "--", process.execPath, PODNET, "cni", ...args], { env: { PATH: SYSTEM_PATH, ...env }, extendEnv: false, reject: false });
}

const cnitoolID = (path: string) => `cnitool-${createHash("sha512").update(path).digest("hex").slice(0, 20)}`;

test("add, check and del like cnitool: env conventions, container ID from the netns path, result printed, cache shared", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, conf, log, cache, ipam } = await setup(t);
  await writeFile(
    join(conf, "10-pods.conflist"),
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "pods",
      plugins: [
        { type: "bridge", bridge: "cni0", isGateway: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.82.0.0/24" }]] } },
        { type: "rec", capabilities: { portMappings: true } },
      ],
    }),
  );
  await writeFile(join(conf, "00-broken.conf"), "{ not json");
  const env = { NETCONFPATH: conf, CNI_PATH: `${bin}:${REF_BIN}`, CNI_CACHE_DIR: cache, CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web", CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] }), CNI_IFNAME: "net0" };

  const add = await podnet(node, ["add", "pods", pod.path], env);
  t.is(add.exitCode, 0, add.stderr);
  const result = JSON.parse(add.stdout);
  t.is(result.cniVersion, "1.0.0");
  t.true(add.stdout.startsWith('{\n    "cniVersion"'), "printed with cnitool's 4-space indent");
  const addr = result.ips[0].address;
  const [net0] = await ipJSON(pod, ["addr", "show", "net0"]);
  t.true(net0.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === addr));

  const id = cnitoolID(pod.path);
  const [rec] = await requests(log, "ADD");
  t.is(rec!.env.CNI_CONTAINERID, id);
  t.is(rec!.env.CNI_ARGS, "IgnoreUnknown=1;K8S_POD_NAME=web");
  t.deepEqual(rec!.req.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] });
  const entry = JSON.parse(await readFile(join(cache, "results", `pods-${id}-net0`), "utf8"));
  t.like(entry, { kind: "cniCacheV1", containerId: id, ifName: "net0", networkName: "pods", netns: pod.path, cniArgs: [["IgnoreUnknown", "1"], ["K8S_POD_NAME", "web"]], result });

  const check = await podnet(node, ["check", "pods", pod.path], { ...env, CAP_ARGS: "" });
  t.is(check.exitCode, 0, check.stderr);
  t.is(check.stdout, "");
  const del = await podnet(node, ["del", "pods", pod.path], { ...env, CAP_ARGS: "" });
  t.is(del.exitCode, 0, del.stderr);
  t.deepEqual(await ipJSON(pod, ["link", "show", "type", "veth"]), []);
  t.false(existsSync(join(cache, "results", `pods-${id}-net0`)));
  t.deepEqual((await requests(log, "DEL"))[0]!.req.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] }, "DEL used the cached capability args");
});

test("errors are clear, on stderr, with a non-zero exit and no stack trace", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { bin, conf, cache } = await setup(t);
  await writeFile(join(conf, "00-broken.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "pods", plugins: [{ type: "a/b" }] }));
  await writeFile(join(conf, "10-fails.conflist"), JSON.stringify({ cniVersion: "1.1.0", name: "fails", plugins: [{ type: "rec", test: { failOn: ["ADD"] } }] }));
  const env = { NETCONFPATH: conf, CNI_PATH: bin, CNI_CACHE_DIR: cache };
  const noStack = (s: string) => t.notRegex(s, /\n\s+at /);

  const missing = await podnet(node, ["add", "pods", pod.path], env);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /^podnet cni add: no network configuration named "pods" in .* \(1 invalid file\)\n  - networks found: fails\n  - .*00-broken\.conflist: plugins\[0\]: "type" "a\/b" must be a file name/);
  noStack(missing.stderr);

  const fails = await podnet(node, ["add", "fails", pod.path], env);
  t.is(fails.exitCode, 1);
  t.is(fails.stdout, "");
  t.regex(fails.stderr, /^podnet cni add: plugin rec failed \(ADD\): failing on purpose: test.failOn includes ADD \(CNI error code 7\)\n  plugin stderr: recorder: failing on purpose$/);

  const badCaps = await podnet(node, ["add", "fails", pod.path], { ...env, CAP_ARGS: "{nope" });
  t.is(badCaps.exitCode, 2);
  t.regex(badCaps.stderr, /^podnet cni: CAP_ARGS is not valid JSON/);
  const badArgs = await podnet(node, ["add", "fails", pod.path], { ...env, CNI_ARGS: "A=1;B" });
  t.is(badArgs.exitCode, 2);
  t.regex(badArgs.stderr, /invalid CNI_ARGS pair "B"/);
  const noPath = await podnet(node, ["add", "fails", pod.path], { NETCONFPATH: conf, CNI_CACHE_DIR: cache });
  t.is(noPath.exitCode, 2);
  t.regex(noPath.stderr, /CNI_PATH is not set/);
  const usage = await podnet(node, ["add", "fails"], env);
  t.is(usage.exitCode, 2);
  t.regex(usage.stderr, /usage: podnet cni add NETWORK NETNS_PATH/);
  for (const r of [fails, badCaps, badArgs, noPath, usage]) noStack(r.stderr);

  const list = await podnet(node, ["list"], env);
  t.is(list.exitCode, 1, "list reports the invalid file");
  t.regex(list.stdout, /fails\s+rec\s+\[1\.1\.0\]/);
  t.regex(list.stdout, /\(invalid\) .*00-broken\.conflist:\n    - plugins\[0\]: "type" "a\/b"/);

  const help = await podnet(node, ["--help"], {});
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /podnet cni conformance --config FILE/);
});

test("gc and status print their reports; gc --valid keeps the named attachment and DELs the rest", async (t) => {
  const node = await createNetns(t);
  const pods = [await createNetns(t), await createNetns(t)];
  const { bin, conf, log, cache } = await setup(t);
  await writeFile(join(conf, "10-n.conflist"), JSON.stringify({ cniVersion: "1.1.0", name: "n", plugins: [{ type: "rec" }] }));
  const env = { NETCONFPATH: conf, CNI_PATH: bin, CNI_CACHE_DIR: cache };
  for (const p of pods) t.is((await podnet(node, ["add", "n", p.path], env)).exitCode, 0);
  const keep = cnitoolID(pods[0]!.path);
  const gc = await podnet(node, ["gc", "n", "--valid", `${keep}/eth0`], env);
  t.is(gc.exitCode, 0, gc.stderr);
  const report = JSON.parse(gc.stdout);
  t.deepEqual(report.deleted, [{ containerID: cnitoolID(pods[1]!.path), ifname: "eth0" }]);
  t.deepEqual(report.validAttachments, [{ containerID: keep, ifname: "eth0" }]);
  t.deepEqual(await readdir(join(cache, "results")), [`n-${keep}-eth0`]);
  t.deepEqual((await requests(log, "GC"))[0]!.req["cni.dev/valid-attachments"], [{ containerID: keep, ifname: "eth0" }]);

  const status = await podnet(node, ["status", "n"], env);
  t.is(status.exitCode, 0, status.stderr);
  t.deepEqual(JSON.parse(status.stdout), { version: "1.1.0", ok: true, plugins: [{ type: "rec", ok: true }] });
});
