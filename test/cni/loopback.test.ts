import test from "ava";
import { join } from "node:path";
import { callPlugin, OUR_BIN, OUR_NODE_BIN, REF_BIN } from "../helpers/cni.ts";
import { createNetns, ipJSON } from "../helpers/netns.ts";

const conf = (v: string) => ({ cniVersion: v, name: "lo-net", type: "loopback" });

for (const [flavour, dir] of [["multicall", OUR_BIN], ["node bundle", OUR_NODE_BIN]] as const) {
  test(`loopback (${flavour}): ADD brings lo up, CHECK passes, DEL brings it down, DEL again succeeds`, async (t) => {
    const node = await createNetns(t);
    const pod = await createNetns(t);
    await ipJSON(pod, ["link"]); // exists
    const { execa } = await import("execa");
    await execa("ip", ["-n", pod.name, "link", "set", "lo", "down"]);
    const call = { containerID: "c1", netns: pod.path, ifname: "lo" };
    const add = await callPlugin(node, join(dir, "loopback"), conf("1.1.0"), { command: "ADD", ...call });
    t.is(add.code, 0, add.stdout);
    t.deepEqual(add.json.interfaces, [{ name: "lo", mac: "00:00:00:00:00:00", sandbox: pod.path }]);
    t.deepEqual(add.json.ips.map((i: any) => i.address), ["127.0.0.1/8", "::1/128"]);
    const [lo] = await ipJSON(pod, ["link", "show", "lo"]);
    t.true(lo.flags.includes("UP"));

    const check = await callPlugin(node, join(dir, "loopback"), { ...conf("1.1.0"), prevResult: add.json }, { command: "CHECK", ...call });
    t.is(check.code, 0, check.stdout);

    const del = await callPlugin(node, join(dir, "loopback"), conf("1.1.0"), { command: "DEL", ...call });
    t.is(del.code, 0, del.stdout);
    const [lo2] = await ipJSON(pod, ["link", "show", "lo"]);
    t.false(lo2.flags.includes("UP"));
    const del2 = await callPlugin(node, join(dir, "loopback"), conf("1.1.0"), { command: "DEL", ...call });
    t.is(del2.code, 0);
    const check2 = await callPlugin(node, join(dir, "loopback"), { ...conf("1.1.0"), prevResult: add.json }, { command: "CHECK", ...call });
    t.is(check2.code, 1, "CHECK fails once lo is down");
  });
}

test("loopback: results in every supported version, like the reference's addresses", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    const r = await callPlugin(node, join(OUR_BIN, "loopback"), conf(v), { command: "ADD", containerID: "c1", netns: pod.path, ifname: "lo" });
    t.is(r.code, 0, r.stdout);
    t.is(r.json.cniVersion, v);
    const v1 = v.startsWith("1.");
    for (const ip of r.json.ips) t.is(ip.version, v1 ? undefined : ip.address.includes(":") ? "6" : "4");
  }
  const ref = await callPlugin(node, join(REF_BIN, "loopback"), conf("1.0.0"), { command: "ADD", containerID: "c1", netns: pod.path, ifname: "lo", path: REF_BIN });
  const ours = await callPlugin(node, join(OUR_BIN, "loopback"), conf("1.0.0"), { command: "ADD", containerID: "c1", netns: pod.path, ifname: "lo" });
  t.deepEqual(ours.json.ips, ref.json.ips);
  t.deepEqual(ours.json.interfaces, ref.json.interfaces);
});

test("loopback: DEL succeeds when the netns is gone", async (t) => {
  const node = await createNetns(t);
  const r = await callPlugin(node, join(OUR_BIN, "loopback"), conf("1.1.0"), { command: "DEL", containerID: "c1", netns: "/run/netns/pn-does-not-exist", ifname: "lo" });
  t.is(r.code, 0, r.stdout);
  t.is(r.stdout, "");
});

test("loopback: rtnetlink (multicall) and ip (PODNET_NO_FFI=1) read lo alike, and as the reference does", async (t) => {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  const { execa } = await import("execa");
  await execa("ip", ["-n", pod.name, "link", "set", "lo", "up"]);
  await execa("ip", ["-n", pod.name, "addr", "add", "127.0.0.53/8", "dev", "lo"]);
  const call = { command: "ADD" as const, containerID: "c1", netns: pod.path, ifname: "lo" };
  const both = async () => {
    const viaNetlink = await callPlugin(node, join(OUR_BIN, "loopback"), conf("1.0.0"), call);
    const viaIp = await callPlugin(node, join(OUR_BIN, "loopback"), conf("1.0.0"), { ...call, env: { PODNET_NO_FFI: "1" } });
    const ref = await callPlugin(node, join(REF_BIN, "loopback"), conf("1.0.0"), { ...call, path: REF_BIN });
    t.deepEqual(viaNetlink.json, viaIp.json);
    return { ours: viaNetlink, ref };
  };
  // A second loopback address: the result names the first of each family.
  const extra = await both();
  t.is(extra.ours.code, 0, extra.ours.stdout);
  t.deepEqual(extra.ours.json.ips.map((i: any) => i.address), ["127.0.0.1/8", "::1/128"]);
  t.deepEqual(extra.ours.json.ips, extra.ref.json.ips);
  // A non-loopback address on lo is refused, with the reference's words and code.
  await execa("ip", ["-n", pod.name, "addr", "add", "fd00::35/128", "dev", "lo"]);
  const bad = await both();
  t.is(bad.ours.code, 1);
  t.is(bad.ours.json.code, 999);
  t.is(bad.ours.json.msg, 'loopback interface found with non-loopback address "fd00::35"');
  t.is(bad.ours.json.msg, bad.ref.json.msg);
});
