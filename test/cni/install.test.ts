// npm run install-plugins -- DIR: the plugins work from wherever a runtime keeps them,
// without the source tree, as one executable and hard links.
import test from "ava";
import { execa } from "execa";
import { statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { callPlugin, ROOT } from "../helpers/cni.ts";
import { createNetns, ipJSON } from "../helpers/netns.ts";

test("install-plugins copies one executable and hard links that run from the new place", async (t) => {
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-install-" });
  t.teardown(() => tmp.cleanup());
  const dest = join(tmp.path, "opt", "cni", "bin");
  const r = await execa(process.execPath, [join(ROOT, "scripts/install-plugins.mjs"), dest]);
  t.regex(String(r.stdout), /installed bridge, host-local, portmap, loopback/);
  const inodes = ["podnet-cni", "bridge", "host-local", "portmap", "loopback"].map((p) => statSync(join(dest, p)).ino);
  t.is(new Set(inodes).size, 1, "hard links to one file");
  for (const p of ["bridge", "host-local", "portmap", "loopback"]) {
    const v = await execa(join(dest, p), [], { env: { CNI_COMMAND: "VERSION" }, extendEnv: false, input: "{}" });
    t.deepEqual(JSON.parse(String(v.stdout)).supportedVersions, ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
  }
  const about = await execa(join(dest, "portmap"), [], { env: {}, extendEnv: false, reject: false });
  t.regex(String(about.stderr), /^CNI portmap plugin podnet/);
  // A real ADD from the installed copy, with an installed delegate, in netns of the test's own.
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const conf = { cniVersion: "1.1.0", name: "inst", type: "bridge", bridge: "inst0", ipam: { type: "host-local", subnet: "10.123.0.0/24", dataDir: join(tmp.path, "ipam") } };
  const add = await callPlugin(node, join(dest, "bridge"), conf, { command: "ADD", containerID: "c1", netns: pod.path, ifname: "eth0", path: dest });
  t.is(add.code, 0, add.stdout);
  const [eth0] = await ipJSON(pod, ["addr", "show", "dev", "eth0"]);
  t.is(`${eth0.addr_info[0].local}/${eth0.addr_info[0].prefixlen}`, add.json.ips[0].address);
  const again = await execa(process.execPath, [join(ROOT, "scripts/install-plugins.mjs"), dest]);
  t.is(again.exitCode, 0, "installing over an existing copy works");
});

test("a plugin reads no .env or bunfig.toml from the directory its runtime runs it in", async (t) => {
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-cwd-" });
  t.teardown(() => tmp.cleanup());
  // Bun-compiled executables load both from the working directory unless built not to: a .env
  // there would change a plugin's CNI_* environment behind its caller's back.
  await writeFile(join(tmp.path, ".env"), "CNI_COMMAND=VERSION\n");
  await writeFile(join(tmp.path, "bunfig.toml"), "this is = not [ toml\n");
  const r = await execa(join(ROOT, "dist/cni/bin/loopback"), [], { cwd: tmp.path, env: {}, extendEnv: false, reject: false, input: "" });
  t.is(r.exitCode, 0, String(r.stderr));
  t.is(String(r.stdout), "", "no VERSION answer: the .env was not read");
  t.regex(String(r.stderr), /^CNI loopback plugin podnet/);
});
