// Loading network configurations: libcni's file order, validation of what the spec defines,
// bad files reported (with every problem) without hiding the good ones; version selection.
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, loadConfDir, loadConfigFile, parseNetworkConfig, selectNetwork, selectVersion, buildRequest } from "../../runtime/cni/index.ts";
import { tempDir } from "./helpers.ts";

const list = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: "1.0.0", name, plugins: [{ type: "loopback" }], ...extra });

test("conflists come first, then .conf and .json together, each in byte order; other files are ignored", async (t) => {
  const d = await tempDir(t);
  await writeFile(join(d, "20-b.conflist"), list("b"));
  await writeFile(join(d, "10-a.conflist"), list("a"));
  await writeFile(join(d, "05-c.conf"), JSON.stringify({ cniVersion: "0.4.0", name: "c", type: "bridge" }));
  await writeFile(join(d, "07-d.json"), JSON.stringify({ cniVersion: "0.4.0", name: "d", type: "ptp" }));
  await writeFile(join(d, "06-Z.conf"), JSON.stringify({ cniVersion: "0.4.0", name: "z", type: "ptp" }));
  await writeFile(join(d, "01-x.txt"), list("x"));
  await writeFile(join(d, "00-y.conflist.bak"), list("y"));
  const r = await loadConfDir(d);
  t.deepEqual(r.networks.map((n) => n.name), ["a", "b", "c", "z", "d"]);
  t.deepEqual(r.invalid, []);
  t.is(selectNetwork(r).name, "a", "the first network is the first conflist");
  const c = selectNetwork(r, "c");
  // A single plugin is wrapped into a list of one, and the cache gets the wrapped bytes.
  t.deepEqual(c.plugins, [{ cniVersion: "0.4.0", name: "c", type: "bridge" }]);
  t.is(c.cniVersion, "0.4.0");
  t.deepEqual(JSON.parse(c.bytes), { cniVersion: "0.4.0", name: "c", plugins: [{ cniVersion: "0.4.0", name: "c", type: "bridge" }] });
});

test("a broken file next to a good one: the good one loads, the broken one is reported with every problem", async (t) => {
  const d = await tempDir(t);
  await writeFile(join(d, "00-broken.conflist"), '{\n  "cniVersion": "1.0.0",\n  "name": "pods"\n  "plugins": []\n}');
  await writeFile(join(d, "05-bad.conflist"), JSON.stringify({ cniVersion: "one", name: "-bad name", disableCheck: "maybe", plugins: [{ type: "../bin/evil" }, { ipam: { type: "a/b" } }, { type: "x", capabilities: { portMappings: "yes" } }] }));
  await writeFile(join(d, "10-good.conflist"), list("pods"));
  const r = await loadConfDir(d);
  t.deepEqual(r.networks.map((n) => n.name), ["pods"]);
  t.is(r.invalid.length, 2);
  const [broken, bad] = r.invalid;
  t.is(broken!.file, join(d, "00-broken.conflist"));
  t.regex(broken!.problems[0]!, /not valid JSON at line 4, column 3/);
  t.is(bad!.file, join(d, "05-bad.conflist"));
  const problems = bad!.problems.join("\n");
  for (const want of [/"name" "-bad name" is invalid/, /"cniVersion" "one" is not a version/, /"disableCheck" must be true or false/, /plugins\[0\]: "type" "..\/bin\/evil" must be a file name/, /plugins\[1\]: "type" is missing/, /plugins\[1\]: ipam "type" "a\/b"/, /plugins\[2\]: capabilities.portMappings must be true or false/]) {
    t.regex(problems, want);
  }
  t.is(selectNetwork(r, "pods").source, join(d, "10-good.conflist"));
  const err = t.throws(() => selectNetwork(r, "other"), { instanceOf: ConfigError });
  t.regex(err!.message, /no network configuration named "other"/);
  t.regex(err!.message, /00-broken\.conflist: not valid JSON/, "the error points at the files that might have held it");
});

test("a name defined twice: the first file wins and the second is reported as shadowed", async (t) => {
  const d = await tempDir(t);
  await writeFile(join(d, "10-a.conflist"), list("same"));
  await writeFile(join(d, "20-b.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "same", type: "ptp" }));
  const r = await loadConfDir(d);
  t.is(r.networks.length, 1);
  t.is(r.networks[0]!.source, join(d, "10-a.conflist"));
  t.deepEqual(r.shadowed, [{ file: join(d, "20-b.conf"), name: "same", by: join(d, "10-a.conflist") }]);
});

test("plugin files in <dir>/<name>/ are appended unless loadOnlyInlinedPlugins; invalid ones are skipped with a warning", async (t) => {
  const d = await tempDir(t);
  await writeFile(join(d, "10-net.conflist"), list("net"));
  await writeFile(join(d, "20-only.conflist"), list("only", { loadOnlyInlinedPlugins: true }));
  await mkdir(join(d, "net"));
  await mkdir(join(d, "only"));
  await writeFile(join(d, "net", "2-b.conf"), JSON.stringify({ type: "portmap" }));
  await writeFile(join(d, "net", "1-a.conf"), JSON.stringify({ type: "tuning" }));
  await writeFile(join(d, "net", "3-bad.conf"), JSON.stringify({ notype: true }));
  await writeFile(join(d, "only", "1.conf"), JSON.stringify({ type: "tuning" }));
  const r = await loadConfDir(d);
  const net = selectNetwork(r, "net");
  t.deepEqual(net.plugins.map((p) => p.type), ["loopback", "tuning", "portmap"]);
  t.true(net.warnings.some((w) => w.includes("3-bad.conf") && w.includes('"type" is missing')));
  t.deepEqual(selectNetwork(r, "only").plugins.map((p) => p.type), ["loopback"]);
});

test("a missing directory has no networks; a missing file is a clear error", async (t) => {
  const d = await tempDir(t);
  const r = await loadConfDir(join(d, "nope"));
  t.deepEqual(r.networks, []);
  t.throws(() => selectNetwork(r), { message: /no usable network configuration/ });
  await t.throwsAsync(loadConfigFile(join(d, "nope.conflist")), { instanceOf: ConfigError, message: /cannot read network configuration/ });
});

test("booleans as libcni reads them, and reserved keys noted", (t) => {
  const n = parseNetworkConfig(JSON.stringify({ cniVersion: "1.1.0", name: "n", disableCheck: "TRUE", disableGC: true, plugins: [{ type: "x", runtimeConfig: { a: 1 }, "cni.dev/foo": 1 }] }));
  t.true(n.disableCheck);
  t.true(n.disableGC);
  t.is(n.warnings.length, 2);
  t.throws(() => parseNetworkConfig(JSON.stringify({ cniVersion: "1.1.0", name: "n", plugins: [] })), { message: /"plugins" is empty/ });
  t.throws(() => parseNetworkConfig(JSON.stringify({ name: "n", plugins: [{ type: "x" }] })), { message: /"cniVersion" is missing/ });
  t.throws(() => parseNetworkConfig("[1]"), { message: /top level must be an object/ });
});

test("version selection: the highest of cniVersion + cniVersions that this runtime and every plugin support", (t) => {
  const all = { cniVersion: "0.3.1", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] };
  const upTo100 = { cniVersion: "1.0.0", supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] };
  const cfg = { name: "n", cniVersion: "0.4.0", cniVersions: ["0.3.1", "1.0.0", "1.1.0", "2.0.0"] };
  t.is(selectVersion(cfg, [{ type: "a", info: all }]), "1.1.0", "2.0.0 is newer than the runtime and ignored, as libcni does");
  t.is(selectVersion(cfg, [{ type: "a", info: all }, { type: "b", info: upTo100 }]), "1.0.0", "a plugin's VERSION answer lowers the choice");
  t.is(selectVersion({ name: "n", cniVersion: "1.0.0" }, [{ type: "b", info: upTo100 }]), "1.0.0");
  t.throws(() => selectVersion({ name: "n", cniVersion: "1.1.0" }, [{ type: "b", info: upTo100 }]), { message: /no version is supported by the configuration \[1.1.0\] and by every plugin: b supports \[0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0\]/ });
  t.throws(() => selectVersion({ name: "n", cniVersion: "0.2.0" }, [{ type: "b", info: upTo100 }]), { message: /not supported by this runtime/ });
});

test("request building: name and version inserted, runtimeConfig from capabilities, reserved keys dropped, the rest untouched", (t) => {
  const plugin = { type: "p", name: "other", cniVersion: "0.0.1", capabilities: { portMappings: true, mac: false, bandwidth: true }, keyA: ["x", { y: 1 }], args: { cni: { ips: ["10.0.0.9"] } }, runtimeConfig: { stale: 1 }, "cni.dev/x": 1, prevResult: { bogus: 1 } };
  const caps = { portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" }], mac: "00:11:22:33:44:55", ips: ["10.0.0.1/24"] };
  const add = buildRequest(plugin, { name: "net", cniVersion: "1.1.0", command: "ADD", capabilityArgs: caps });
  t.deepEqual(add, { cniVersion: "1.1.0", name: "net", type: "p", keyA: ["x", { y: 1 }], args: { cni: { ips: ["10.0.0.9"] } }, runtimeConfig: { portMappings: caps.portMappings } });
  const del = buildRequest(plugin, { name: "net", cniVersion: "1.1.0", command: "DEL", capabilityArgs: {}, prevResult: { cniVersion: "1.1.0" } });
  t.false("runtimeConfig" in del, "no capability matched: no runtimeConfig");
  t.deepEqual(del.prevResult, { cniVersion: "1.1.0" });
  const gc = buildRequest(plugin, { name: "net", cniVersion: "1.1.0", command: "GC", validAttachments: [{ containerID: "c", ifname: "eth0" }], capabilityArgs: caps });
  t.deepEqual(gc["cni.dev/valid-attachments"], [{ containerID: "c", ifname: "eth0" }]);
  t.false("runtimeConfig" in gc, "GC has no attachment, so no runtimeConfig");
  t.false("prevResult" in gc);
});
