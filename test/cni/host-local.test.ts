// host-local: allocation, the on-disk store, requested IPs, validation, GC/STATUS, contention,
// and a store shared with Debian's reference host-local. Every call runs the way a runtime
// runs it: a separate process, inside a test-created "node" netns, with a temp dataDir.
import test, { type ExecutionContext } from "ava";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { dir as tmpDir } from "tmp-promise";
import { validateResult } from "../../cni-plugins/pkg/result.ts";
import { callPlugin, OUR_BIN, OUR_NODE_BIN, REF_BIN, type PluginCall, type PluginOutput } from "../helpers/cni.ts";
import { createNetns, type Netns } from "../helpers/netns.ts";

const OURS = join(OUR_BIN, "host-local");
const OURS_NODE = join(OUR_NODE_BIN, "host-local");
const REF = join(REF_BIN, "host-local");
const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const NET = "hlnet";

interface Env {
  node: Netns;
  pod: Netns;
  dataDir: string;
  /** The network's directory in the store. */
  store: string;
}

async function setup(t: ExecutionContext): Promise<Env> {
  const node = await createNetns(t, "hln");
  const pod = await createNetns(t, "hlp");
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-hl-" });
  t.teardown(() => tmp.cleanup());
  return { node, pod, dataDir: tmp.path, store: join(tmp.path, NET) };
}

function conf(e: Env, ipam: Record<string, unknown>, extra: Record<string, unknown> = {}, version = "1.1.0") {
  return { cniVersion: version, name: NET, type: "host-local", ...extra, ipam: { type: "host-local", dataDir: e.dataDir, ...ipam } };
}

const v4 = (subnet: string, more: Record<string, unknown> = {}) => ({ ranges: [[{ subnet, ...more }]] });

function call(e: Env, plugin: string, config: unknown, command: PluginCall["command"], containerID = "c1", more: Partial<PluginCall> = {}): Promise<PluginOutput> {
  return callPlugin(e.node, plugin, config, { command, containerID, netns: e.pod.path, ifname: "eth0", path: plugin === REF ? REF_BIN : OUR_BIN, ...more });
}

/** The store's files (the lock aside), name -> bytes. */
function storeFiles(dir: string): Record<string, Buffer> {
  if (!existsSync(dir)) return {};
  const out: Record<string, Buffer> = {};
  for (const n of readdirSync(dir).sort()) if (n !== "lock") out[n] = readFileSync(join(dir, n));
  return out;
}

/** Reservation file names only. */
const reservations = (dir: string) => Object.keys(storeFiles(dir)).filter((n) => !n.startsWith("last_reserved_ip."));
const addresses = (out: PluginOutput): string[] => (out.json?.ips ?? []).map((i: any) => i.address);

for (const [flavour, bin] of [["multicall", OURS], ["node bundle", OURS_NODE]] as const) {
  test(`host-local (${flavour}): ADD, CHECK, DEL, DEL again, with the reference's store format`, async (t) => {
    const e = await setup(t);
    const c = conf(e, v4("10.10.0.0/24"));
    const add = await call(e, bin, c, "ADD");
    t.is(add.code, 0, add.stdout);
    t.deepEqual(validateResult(add.json, "1.1.0", { ipam: true }), []);
    t.deepEqual(add.json, { cniVersion: "1.1.0", ips: [{ address: "10.10.0.2/24", gateway: "10.10.0.1" }] });
    t.is(add.stderr, "");

    const file = join(e.store, "10.10.0.2");
    t.deepEqual(readFileSync(file), Buffer.from("c1\r\neth0"));
    t.is(statSync(file).mode & 0o777, 0o600);
    t.deepEqual(readFileSync(join(e.store, "last_reserved_ip.0")), Buffer.from("10.10.0.2"));
    t.true(existsSync(join(e.store, "lock")));

    t.is((await call(e, bin, c, "CHECK")).code, 0);
    const checkPrev = await call(e, bin, { ...c, prevResult: add.json }, "CHECK");
    t.is(checkPrev.code, 0, checkPrev.stdout);
    const wrongPrev = await call(e, bin, { ...c, prevResult: { cniVersion: "1.1.0", ips: [{ address: "10.10.0.9/24" }] } }, "CHECK");
    t.is(wrongPrev.code, 1);
    t.regex(wrongPrev.json.msg, /10\.10\.0\.9 from prevResult is not reserved/);
    const otherIf = await call(e, bin, c, "CHECK", "c1", { ifname: "net1" });
    t.is(otherIf.code, 1, "CHECK is per (containerID, ifname)");

    // A second ADD for the same attachment is refused, as the spec and the reference require.
    const dup = await call(e, bin, c, "ADD");
    t.is(dup.code, 1);
    t.regex(dup.json.msg, /duplicate allocation is not allowed/);
    t.deepEqual(reservations(e.store), ["10.10.0.2"]);

    const delOther = await call(e, bin, c, "DEL", "c1", { ifname: "net1" });
    t.is(delOther.code, 0);
    t.true(existsSync(file), "DEL of another ifname keeps this one's reservation");
    const del = await call(e, bin, c, "DEL");
    t.is(del.code, 0, del.stdout);
    t.is(del.stdout, "");
    t.false(existsSync(file));
    const check = await call(e, bin, c, "CHECK");
    t.is(check.code, 1);
    t.regex(check.json.msg, /no address is reserved for container c1 interface eth0/);
    t.is((await call(e, bin, c, "DEL")).code, 0, "DEL again succeeds");

    // Round robin: the next ADD does not reuse the address just released.
    const again = await call(e, bin, c, "ADD", "c2");
    t.deepEqual(addresses(again), ["10.10.0.3/24"]);
  });
}

test("host-local: DEL and GC succeed when the dataDir does not exist, and do not create it", async (t) => {
  const e = await setup(t);
  const missing = join(e.dataDir, "not-there");
  const c = conf(e, { ...v4("10.11.0.0/24"), dataDir: missing });
  const del = await call(e, OURS, c, "DEL");
  t.is(del.code, 0, del.stdout);
  const gc = await call(e, OURS, { ...c, "cni.dev/valid-attachments": [] }, "GC", undefined, { containerID: undefined, ifname: undefined, netns: undefined });
  t.is(gc.code, 0, gc.stdout);
  const status = await call(e, OURS, c, "STATUS", undefined, { containerID: undefined, ifname: undefined, netns: undefined });
  t.is(status.code, 0, status.stdout);
  t.false(existsSync(missing));
});

test("host-local: VERSION lists every supported version", async (t) => {
  const e = await setup(t);
  const r = await call(e, OURS, { cniVersion: "1.1.0" }, "VERSION");
  t.is(r.code, 0);
  t.deepEqual(r.json, { cniVersion: "1.1.0", supportedVersions: VERSIONS });
  const about = await call(e, OURS, "", "ADD", "c1", { env: { CNI_COMMAND: undefined } });
  t.is(about.code, 0);
  t.regex(about.stderr, /CNI host-local plugin/);
});

test("host-local: results in every supported version, dual-stack", async (t) => {
  const e = await setup(t);
  const ipam = { ranges: [[{ subnet: "10.12.0.0/24" }], [{ subnet: "fd00:12::/64" }]] };
  for (const [i, v] of VERSIONS.entries()) {
    const r = await call(e, OURS, conf(e, ipam, {}, v), "ADD", `v${i}`);
    t.is(r.code, 0, r.stdout);
    t.is(r.json.cniVersion, v);
    t.deepEqual(validateResult(r.json, v, { ipam: true }), [], v);
    t.is(r.json.interfaces, undefined);
    const v1 = v.startsWith("1.");
    t.deepEqual(r.json.ips, [
      { ...(v1 ? {} : { version: "4" }), address: `10.12.0.${i + 2}/24`, gateway: "10.12.0.1" },
      { ...(v1 ? {} : { version: "6" }), address: `fd00:12::${i + 2}/64`, gateway: "fd00:12::1" },
    ]);
  }
  t.deepEqual(readFileSync(join(e.store, "last_reserved_ip.1")), Buffer.from("fd00:12::6"));
  t.deepEqual(readFileSync(join(e.store, "fd00:12::6")), Buffer.from("v4\r\neth0"));
});

test("host-local: routes and resolvConf in the result", async (t) => {
  const e = await setup(t);
  const resolv = join(e.dataDir, "resolv.conf");
  writeFileSync(resolv, "# a comment\n; another\nnameserver 10.96.0.10\nnameserver fd00::10\ndomain cluster.local\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5 edns0\nbogus\n");
  const routes = [{ dst: "0.0.0.0/0" }, { dst: "192.168.5.7/16", gw: "10.13.0.254" }, { dst: "::/0", gw: "fd00:13::1" }];
  const c = conf(e, { ranges: [[{ subnet: "10.13.0.0/24" }], [{ subnet: "fd00:13::/120" }]], routes, resolvConf: resolv });
  const r = await call(e, OURS, c, "ADD");
  t.is(r.code, 0, r.stdout);
  t.deepEqual(r.json.routes, [{ dst: "0.0.0.0/0" }, { dst: "192.168.5.7/16", gw: "10.13.0.254" }, { dst: "::/0", gw: "fd00:13::1" }]);
  t.deepEqual(r.json.dns, {
    nameservers: ["10.96.0.10", "fd00::10"],
    domain: "cluster.local",
    search: ["default.svc.cluster.local", "svc.cluster.local"],
    options: ["ndots:5", "edns0"],
  });
  // The reference reads the same file into the same DNS object.
  const ref = await call(e, REF, { ...c, cniVersion: "1.0.0", ipam: { ...c.ipam, dataDir: join(e.dataDir, "ref") } }, "ADD");
  t.is(ref.code, 0, ref.stdout);
  t.deepEqual(r.json.dns, ref.json.dns);
  t.deepEqual(r.json.routes, ref.json.routes);
});

test("host-local: legacy single-range keys, small ranges, gateway skipped, IPv6 last address used", async (t) => {
  const e = await setup(t);
  const legacy = conf(e, { subnet: "10.14.0.0/24", rangeStart: "10.14.0.10", rangeEnd: "10.14.0.11", gateway: "10.14.0.10" });
  const a = await call(e, OURS, legacy, "ADD", "a");
  t.deepEqual(a.json?.ips, [{ address: "10.14.0.11/24", gateway: "10.14.0.10" }], a.stdout);
  const b = await call(e, OURS, legacy, "ADD", "b");
  t.is(b.code, 1);
  t.is(b.json.code, 101);
  t.is(b.json.msg, "failed to allocate for range 0: no IP addresses available in range set: 10.14.0.10-10.14.0.11");

  // A /30 has one address once network, gateway and broadcast are out; an IPv6 /126 has two.
  const tiny = conf(e, { ranges: [[{ subnet: "10.15.0.0/30" }], [{ subnet: "fd00:15::/126" }]] }, { name: "tiny" });
  t.deepEqual(addresses(await call(e, OURS, tiny, "ADD", "x")), ["10.15.0.2/30", "fd00:15::2/126"]);
  const second = await call(e, OURS, conf(e, { ranges: [[{ subnet: "fd00:15::/126" }]] }, { name: "tiny" }), "ADD", "y");
  t.deepEqual(addresses(second), ["fd00:15::3/126"]);

  // An explicit range may include network and broadcast addresses: they are still skipped.
  const wide = conf(e, { subnet: "10.16.0.0/29", rangeStart: "10.16.0.0", rangeEnd: "10.16.0.7", gateway: "10.16.0.6" }, { name: "wide" });
  const got: string[] = [];
  for (const id of ["w1", "w2", "w3", "w4", "w5", "w6"]) got.push(...addresses(await call(e, OURS, wide, "ADD", id)));
  t.deepEqual(got, ["10.16.0.1/29", "10.16.0.2/29", "10.16.0.3/29", "10.16.0.4/29", "10.16.0.5/29"]);
});

test("host-local: runtimeConfig.ipRanges are prepended to the configured range sets", async (t) => {
  const e = await setup(t);
  const c = conf(e, v4("10.17.0.0/24"), { runtimeConfig: { ipRanges: [[{ subnet: "fd00:17::/64", rangeStart: "fd00:17::100" }]] } });
  const r = await call(e, OURS, c, "ADD");
  t.is(r.code, 0, r.stdout);
  t.deepEqual(addresses(r), ["fd00:17::100/64", "10.17.0.2/24"]);
  t.deepEqual(readFileSync(join(e.store, "last_reserved_ip.0")), Buffer.from("fd00:17::100"));
  t.deepEqual(readFileSync(join(e.store, "last_reserved_ip.1")), Buffer.from("10.17.0.2"));
  const overlap = await call(e, OURS, conf(e, v4("10.17.0.0/24"), { runtimeConfig: { ipRanges: [[{ subnet: "10.17.0.0/25" }]] } }), "ADD", "c2");
  t.is(overlap.json?.code, 7);
  t.is(overlap.json.msg, "ipam.ranges[0] overlaps with runtimeConfig.ipRanges[0]");
});

test("host-local: requested IPs through CNI_ARGS, args.cni.ips and runtimeConfig.ips are honoured", async (t) => {
  const e = await setup(t);
  const ipam = { ranges: [[{ subnet: "10.18.0.0/24" }], [{ subnet: "fd00:18::/64" }]] };
  const viaArgs = await call(e, OURS, conf(e, ipam), "ADD", "a", { args: "IgnoreUnknown=1;IP=10.18.0.50,fd00:18::50/64;MAC=02:00:00:00:00:01" });
  t.deepEqual(addresses(viaArgs), ["10.18.0.50/24", "fd00:18::50/64"], viaArgs.stdout);
  const viaArgsKnown = await call(e, OURS, conf(e, ipam), "ADD", "a2", { args: "IP=10.18.0.52;MAC=02:00:00:00:00:01;K8S_POD_NAME=x" });
  t.deepEqual(addresses(viaArgsKnown), ["10.18.0.52/24", "fd00:18::51/64"], "IP and MAC are known keys; the other family round-robins");
  const viaConfArgs = await call(e, OURS, conf(e, ipam, { args: { cni: { ips: ["10.18.0.60"] } } }), "ADD", "b");
  t.deepEqual(addresses(viaConfArgs), ["10.18.0.60/24", "fd00:18::52/64"], viaConfArgs.stdout);
  const viaRuntime = await call(e, OURS, conf(e, ipam, { capabilities: { ips: true }, runtimeConfig: { ips: ["fd00:18::70/64", "10.18.0.70/24"] } }), "ADD", "c");
  t.deepEqual(addresses(viaRuntime), ["10.18.0.70/24", "fd00:18::70/64"], viaRuntime.stdout);
  t.deepEqual(readFileSync(join(e.store, "10.18.0.70")), Buffer.from("c\r\neth0"));
  // Requested IPs do not disturb the round-robin position of sets they did not touch.
  t.deepEqual(readFileSync(join(e.store, "last_reserved_ip.1")), Buffer.from("fd00:18::70"));
});

test("host-local: requested IPs that cannot be honoured are refused and leave the store as it was", async (t) => {
  const e = await setup(t);
  const ipam = { ranges: [[{ subnet: "10.19.0.0/24", rangeStart: "10.19.0.10", rangeEnd: "10.19.0.20" }], [{ subnet: "fd00:19::/64" }]] };
  t.is((await call(e, OURS, conf(e, ipam), "ADD", "holder", { args: "IP=10.19.0.15,fd00:19::15" })).code, 0);
  const before = storeFiles(e.store);

  const taken = await call(e, OURS, conf(e, ipam, { runtimeConfig: { ips: ["10.19.0.16", "fd00:19::15"] } }), "ADD", "c1");
  t.is(taken.json?.code, 102, taken.stdout);
  t.is(taken.json.msg, "failed to allocate for range 1: requested IP address fd00:19::15 is not available in range set fd00:19::1-fd00:19::ffff:ffff:ffff:ffff");
  t.deepEqual(storeFiles(e.store), before, "the IPv4 address taken before the IPv6 refusal is released again");

  const gw = await call(e, OURS, conf(e, { ranges: [[{ subnet: "10.19.1.0/24" }]] }, { name: "gwnet" }), "ADD", "c1", { args: "IP=10.19.1.1" });
  t.is(gw.json?.code, 102);
  t.regex(gw.json.msg, /requested ip 10\.19\.1\.1 is subnet's gateway/);

  const outside = await call(e, OURS, conf(e, ipam, { args: { cni: { ips: ["10.19.0.99"] } } }), "ADD", "c1");
  t.is(outside.json?.code, 7);
  t.regex(outside.json.msg, /10\.19\.0\.99 \(args\.cni\.ips\[0\]\) is not in any range/);
  const twoInOneSet = await call(e, OURS, conf(e, ipam), "ADD", "c1", { args: "IP=10.19.0.11,10.19.0.12" });
  t.is(twoInOneSet.json?.code, 7);
  const badArg = await call(e, OURS, conf(e, ipam), "ADD", "c1", { args: "IP=10.19.0.300" });
  t.is(badArg.json?.code, 4);
  t.regex(badArg.json.msg, /CNI_ARGS IP/);
  const badRuntime = await call(e, OURS, conf(e, ipam, { runtimeConfig: { ips: ["nope"] } }), "ADD", "c1");
  t.is(badRuntime.json?.code, 7);
  t.regex(badRuntime.json.msg, /runtimeConfig\.ips\[0\]/);
  const unknownArg = await call(e, OURS, conf(e, ipam), "ADD", "c1", { args: "FOO=1" });
  t.is(unknownArg.json?.code, 4);
  t.deepEqual(storeFiles(e.store), before);
});

test("host-local: bad configurations are code 7 naming the field, and touch no store", async (t) => {
  const e = await setup(t);
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["no ipam", { ipam: undefined }, /missing 'ipam'/],
    ["no ranges", { ipam: { dataDir: e.dataDir } }, /no IP ranges specified/],
    ["ranges not a list", { ipam: { dataDir: e.dataDir, ranges: {} } }, /ipam\.ranges must be a list/],
    ["empty set", { ipam: { dataDir: e.dataDir, ranges: [[]] } }, /ipam\.ranges\[0\]: empty range set/],
    ["bad subnet", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/33" }]] } }, /ipam\.ranges\[0\]\[0\]\.subnet/],
    ["missing subnet", { ipam: { dataDir: e.dataDir, ranges: [[{ rangeStart: "10.0.0.5" }]] } }, /ipam\.ranges\[0\]\[0\]\.subnet is missing/],
    ["host bits", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.5/24" }]] } }, /host bits set.*10\.0\.0\.0/],
    ["too small", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/31" }]] } }, /too small/],
    ["rangeStart outside", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }]] } }, /ipam\.ranges\[0\]\[0\]\.rangeStart: 10\.0\.1\.5 is not in subnet 10\.0\.0\.0\/24/],
    ["rangeEnd outside", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "10.0.1.5" }]] } }, /\.rangeEnd: 10\.0\.1\.5 is not in subnet/],
    ["start after end", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.5" }]] } }, /rangeStart 10\.0\.0\.9 is after/],
    ["bad gateway", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24", gateway: "10.0.0.256" }]] } }, /\.gateway: "10\.0\.0\.256" is not an IP address/],
    ["gateway other family", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24", gateway: "fd00::1" }]] } }, /\.gateway: fd00::1 is not of the family/],
    ["overlap in a set", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/25" }]] } }, /ipam\.ranges\[0\]\[1\] \(10\.0\.0\.1-10\.0\.0\.126\) overlaps with ipam\.ranges\[0\]\[0\]/],
    ["overlap across sets", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.128/25" }]] } }, /ipam\.ranges\[1\] overlaps with ipam\.ranges\[0\]/],
    ["mixed families", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] } }, /mixed address families/],
    ["legacy without subnet", { ipam: { dataDir: e.dataDir, rangeStart: "10.0.0.5", ranges: [[{ subnet: "10.0.0.0/24" }]] } }, /ipam\.rangeStart needs ipam\.subnet/],
    ["legacy outside", { ipam: { dataDir: e.dataDir, subnet: "10.0.0.0/24", rangeEnd: "10.9.0.1" } }, /ipam\.rangeEnd: 10\.9\.0\.1 is not in subnet/],
    ["bad route", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "default" }] } }, /ipam\.routes\[0\]\.dst/],
    ["route gw family", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "::/0", gw: "10.0.0.1" }] } }, /ipam\.routes\[0\]\.gw/],
    ["missing resolvConf", { ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }]], resolvConf: join(e.dataDir, "nope") } }, /ipam\.resolvConf: cannot read/],
    ["bad ipRanges", { runtimeConfig: { ipRanges: [[{ subnet: "x" }]] }, ipam: { dataDir: e.dataDir, ranges: [[{ subnet: "10.0.0.0/24" }]] } }, /runtimeConfig\.ipRanges\[0\]\[0\]\.subnet/],
  ];
  for (const [what, patch, msg] of cases) {
    const c: Record<string, unknown> = { cniVersion: "1.1.0", name: NET, type: "host-local", ...patch };
    if (c.ipam) (c.ipam as Record<string, unknown>).type = "host-local";
    const r = await call(e, OURS, c, "ADD");
    t.is(r.code, 1, what);
    t.is(r.json?.code, 7, `${what}: ${r.stdout}`);
    t.regex(r.json?.msg ?? "", msg, what);
  }
  t.false(existsSync(e.store), "no config error creates the store");
});

/** Runs `n` concurrent ADD processes (container i uses plugins[i % plugins.length]). */
async function concurrentAdds(e: Env, c: unknown, n: number, plugins: { bin: string; env?: Record<string, string> }[]) {
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const p = plugins[i % plugins.length]!;
      return call(e, p.bin, c, "ADD", `ctr${i}`, p.env ? { env: p.env } : {}).then((out) => ({ id: `ctr${i}`, out, ref: p.bin === REF }));
    }),
  );
}

function checkContention(t: ExecutionContext, e: Env, results: { id: string; out: PluginOutput; ref: boolean }[], capacity: number, rangeText: string) {
  const ok = results.filter((r) => r.out.code === 0);
  const failed = results.filter((r) => r.out.code !== 0);
  t.is(ok.length, capacity, "exactly the range's capacity is handed out");
  const ips = ok.map((r) => addresses(r.out)[0]!.split("/")[0]!);
  t.is(new Set(ips).size, ips.length, "every address is distinct");
  for (const f of failed) {
    // The reference reports exhaustion as an internal error (999); ours as 101.
    t.is(f.out.json?.code, f.ref ? 999 : 101, f.out.stdout);
    t.true((f.out.json?.msg as string).endsWith(`no IP addresses available in range set: ${rangeText}`), f.out.stdout);
  }
  const files = reservations(e.store);
  t.is(files.length, capacity, "one file per address, no more than the range holds");
  t.deepEqual(files.sort(), [...ips].sort());
  for (const r of ok) t.deepEqual(readFileSync(join(e.store, addresses(r.out)[0]!.split("/")[0]!)), Buffer.from(`${r.id}\r\neth0`));
}

test.serial("host-local: 100 concurrent ADDs on a /26 give distinct IPs up to its capacity, then a clean code-101 error", async (t) => {
  const e = await setup(t);
  const c = conf(e, v4("10.40.0.0/26"));
  const results = await concurrentAdds(e, c, 100, [{ bin: OURS }]);
  checkContention(t, e, results, 61, "10.40.0.1-10.40.0.62");
  const status = await call(e, OURS, c, "STATUS", undefined, { containerID: undefined, ifname: undefined, netns: undefined });
  t.is(status.json?.code, 50);
});

test.serial("host-local: 100 concurrent ADDs shared by ours (FFI lock, flock(1) lock, Node bundle) and the reference on one store", async (t) => {
  const e = await setup(t);
  const c = conf(e, v4("10.41.0.0/26"), {}, "1.0.0");
  const results = await concurrentAdds(e, c, 100, [{ bin: OURS }, { bin: REF }, { bin: OURS, env: { PODNET_FLOCK: "child" } }, { bin: OURS_NODE }]);
  checkContention(t, e, results, 61, "10.41.0.1-10.41.0.62");
  // Everyone took part in the allocation.
  for (const k of [0, 1, 2, 3]) t.true(results.some((r, i) => i % 4 === k && r.out.code === 0), `group ${k} got addresses`);
});

test.serial("host-local: ADD waits for the store's flock(2) lock, the lock the reference takes", async (t) => {
  const e = await setup(t);
  const c = conf(e, v4("10.42.0.0/24"));
  t.is((await call(e, OURS, c, "ADD", "first")).code, 0);
  for (const [what, bin, env] of [["FFI", OURS, {}], ["flock(1)", OURS, { PODNET_FLOCK: "child" }], ["node bundle", OURS_NODE, {}]] as const) {
    // flock(1) holds the lock until its stdin closes.
    const holder = execa("flock", ["-x", join(e.store, "lock"), "cat"], { stdin: "pipe", reject: false });
    t.teardown(() => holder.kill("SIGKILL"));
    await waitFor(() => lockHeld(join(e.store, "lock")));
    t.true(await lockHeld(join(e.store, "lock")), "the test holds the lock");
    let done = false;
    const add = call(e, bin, c, "ADD", `waiting-${what.replace(/\W/g, "")}`, { env }).then((r) => ((done = true), r));
    await new Promise((r) => setTimeout(r, 400));
    t.false(done, `${what}: ADD finished while another process held the lock`);
    holder.stdin!.end();
    await holder;
    const r = await add;
    t.is(r.code, 0, `${what}: ${r.stdout}`);
  }
  t.is(reservations(e.store).length, 4);
});

async function lockHeld(path: string): Promise<boolean> {
  const r = await execa("flock", ["-n", path, "true"], { reject: false });
  return r.exitCode !== 0;
}

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
}

test("host-local: GC releases the stale reservations and keeps the valid ones", async (t) => {
  const e = await setup(t);
  const c = conf(e, v4("10.20.0.0/24"));
  const held: Record<string, string> = {};
  for (const [id, ifname] of [["keep", "eth0"], ["keep", "net1"], ["two", "eth0"], ["two", "net1"], ["gone", "eth0"]] as const) {
    const r = await call(e, OURS, c, "ADD", id, { ifname });
    held[`${id}/${ifname}`] = addresses(r)[0]!.split("/")[0]!;
  }
  // Legacy files hold only a container ID.
  writeFileSync(join(e.store, "10.20.0.200"), "keep");
  writeFileSync(join(e.store, "10.20.0.201"), "legacy-gone");
  const gcCall = { containerID: undefined, ifname: undefined, netns: undefined };

  const noList = await call(e, OURS, c, "GC", undefined, gcCall);
  t.is(noList.json?.code, 7, "GC without the list releases nothing");
  t.is(reservations(e.store).length, 7);

  const valid = [{ containerID: "keep", ifname: "eth0" }, { containerID: "keep", ifname: "net1" }, { containerID: "two", ifname: "net1" }];
  const gc = await call(e, OURS, { ...c, "cni.dev/valid-attachments": valid }, "GC", undefined, gcCall);
  t.is(gc.code, 0, gc.stdout);
  t.deepEqual(reservations(e.store), [held["keep/eth0"], held["keep/net1"], "10.20.0.200", held["two/net1"]].sort());
  t.true(existsSync(join(e.store, "last_reserved_ip.0")));
  t.is((await call(e, OURS, c, "CHECK", "keep", { ifname: "net1" })).code, 0);
  t.is((await call(e, OURS, c, "CHECK", "two", { ifname: "eth0" })).code, 1);
  // A GC with an empty list releases everything.
  t.is((await call(e, OURS, { ...c, "cni.dev/valid-attachments": [] }, "GC", undefined, gcCall)).code, 0);
  t.deepEqual(reservations(e.store), []);
});

test("host-local: STATUS is 50 while a range set is exhausted and 0 otherwise", async (t) => {
  const e = await setup(t);
  const c = conf(e, { ranges: [[{ subnet: "10.21.0.0/29" }], [{ subnet: "fd00:21::/64" }]] });
  const status = () => call(e, OURS, c, "STATUS", undefined, { containerID: undefined, ifname: undefined, netns: undefined });
  t.is((await status()).code, 0, "empty store");
  for (let i = 0; i < 5; i++) t.is((await call(e, OURS, c, "ADD", `s${i}`)).code, 0);
  const full = await status();
  t.is(full.code, 1);
  t.is(full.json.code, 50);
  t.is(full.json.msg, "no IP addresses available in range set: 10.21.0.1-10.21.0.6");
  t.is((await call(e, OURS, c, "DEL", "s3")).code, 0);
  t.is((await status()).code, 0, "a release makes it available again");
  const old = await call(e, OURS, { ...c, cniVersion: "1.0.0" }, "STATUS", undefined, { containerID: undefined, ifname: undefined, netns: undefined });
  t.is(old.json?.code, 1, "STATUS needs a 1.1.0 config");
});

test("host-local interop: ours takes over a store the reference wrote, and the files are byte for byte the same", async (t) => {
  const e = await setup(t);
  const ipam = { ranges: [[{ subnet: "10.22.0.0/24" }], [{ subnet: "fd00:0:0:22::/64" }]] };
  const c = conf(e, ipam, {}, "1.0.0");
  // The same calls, one store each: the stores must be identical.
  const refDir = join(e.dataDir, "by-ref"), ourDir = join(e.dataDir, "by-ours");
  for (const id of ["a", "b", "c"]) {
    const r = await call(e, REF, { ...c, ipam: { ...c.ipam, dataDir: refDir } }, "ADD", id);
    const o = await call(e, OURS, { ...c, ipam: { ...c.ipam, dataDir: ourDir } }, "ADD", id);
    t.is(r.code, 0, r.stdout);
    t.deepEqual(o.json.ips, r.json.ips);
  }
  await call(e, REF, { ...c, ipam: { ...c.ipam, dataDir: refDir } }, "DEL", "b");
  await call(e, OURS, { ...c, ipam: { ...c.ipam, dataDir: ourDir } }, "DEL", "b");
  t.deepEqual(storeFiles(join(ourDir, NET)), storeFiles(join(refDir, NET)));
  t.deepEqual(Object.keys(storeFiles(join(refDir, NET))), ["10.22.0.2", "10.22.0.4", "fd00:0:0:22::2", "fd00:0:0:22::4", "last_reserved_ip.0", "last_reserved_ip.1"]);

  // Take over the reference's store: round robin continues after its last_reserved_ip (not .3,
  // which b released), CHECK finds its reservations, DEL releases them.
  const take = { ...c, ipam: { ...c.ipam, dataDir: refDir } };
  const d = await call(e, OURS, take, "ADD", "d");
  t.deepEqual(addresses(d), ["10.22.0.5/24", "fd00:0:0:22::5/64"]);
  t.is((await call(e, OURS, { ...take, prevResult: { cniVersion: "1.0.0", ips: [{ address: "10.22.0.2/24" }, { address: "fd00:0:0:22::2/64" }] } }, "CHECK", "a")).code, 0);
  t.is((await call(e, OURS, take, "DEL", "a")).code, 0);
  t.deepEqual(reservations(join(refDir, NET)), ["10.22.0.4", "10.22.0.5", "fd00:0:0:22::4", "fd00:0:0:22::5"]);
  // And the reference carries on after ours.
  const f = await call(e, REF, take, "ADD", "f");
  t.deepEqual(addresses(f), ["10.22.0.6/24", "fd00:0:0:22::6/64"]);
});

test("host-local interop: IPv6 reservation files are named exactly as the reference (Go) names them", async (t) => {
  const e = await setup(t);
  const c = (dataDir: string) => conf(e, { ranges: [[{ subnet: "2001:db8::/32" }]], dataDir }, {}, "1.0.0");
  const tricky = ["2001:db8:0:0:1:0:0:1", "2001:DB8:0:1:0:0:0:1", "2001:db8:1:0:1:0:1:0", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:0db8::abcd:0:0", "2001:db8:0:0:0:0:0:2"];
  const refDir = join(e.dataDir, "ref"), ourDir = join(e.dataDir, "ours");
  for (const [i, ip] of tricky.entries()) {
    const r = await call(e, REF, c(refDir), "ADD", `t${i}`, { args: `IP=${ip}` });
    const o = await call(e, OURS, c(ourDir), "ADD", `t${i}`, { args: `IP=${ip}` });
    t.is(r.code, 0, r.stdout);
    t.deepEqual(o.json?.ips, r.json.ips, ip);
  }
  t.deepEqual(storeFiles(join(ourDir, NET)), storeFiles(join(refDir, NET)));
  t.deepEqual(reservations(join(ourDir, NET)), ["2001:db8:0:1::1", "2001:db8:1:0:1:0:1:0", "2001:db8::1:0:0:1", "2001:db8::2", "2001:db8::abcd:0:0", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"].sort());
});

test("host-local interop: the reference takes over a store ours wrote, legacy files included", async (t) => {
  const e = await setup(t);
  const c = conf(e, { ranges: [[{ subnet: "10.23.0.0/28" }], [{ subnet: "fd00:23::/120" }]] }, {}, "1.0.0");
  for (const id of ["a", "b"]) t.is((await call(e, OURS, c, "ADD", id)).code, 0);
  const refAdd = await call(e, REF, c, "ADD", "c");
  t.deepEqual(addresses(refAdd), ["10.23.0.4/28", "fd00:23::4/120"], refAdd.stdout);
  t.is((await call(e, REF, c, "CHECK", "a")).code, 0);
  t.is((await call(e, REF, c, "DEL", "a")).code, 0);
  t.deepEqual(reservations(e.store), ["10.23.0.3", "10.23.0.4", "fd00:23::3", "fd00:23::4"]);
  // Our DEL releases the reference's reservation and an ID-only legacy file.
  writeFileSync(join(e.store, "10.23.0.9"), "old\n");
  t.is((await call(e, OURS, c, "DEL", "c")).code, 0);
  t.is((await call(e, OURS, c, "DEL", "old")).code, 0);
  t.deepEqual(reservations(e.store), ["10.23.0.3", "fd00:23::3"]);
  // The reference sees ours exhausted the way we do.
  const small = conf(e, { ranges: [[{ subnet: "10.24.0.0/30" }]] }, { name: "small" }, "1.0.0");
  t.is((await call(e, OURS, small, "ADD", "x")).code, 0);
  const refFull = await call(e, REF, small, "ADD", "y");
  const ourFull = await call(e, OURS, small, "ADD", "y");
  t.is(refFull.json?.msg, ourFull.json?.msg);
});
