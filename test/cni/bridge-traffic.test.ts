// bridge: real traffic through what the plugin builds. Pods reach each other and the gateway
// (ICMP and TCP), masquerade rewrites what leaves the pod subnet, per-attachment rules survive
// the other attachment's DEL, spoof-checking drops a forged MAC, and the plugin works with the
// reference plugins in both delegation directions.
import test from "ava";
import { execa } from "execa";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { createNetns, linkNetns, type Netns } from "../helpers/netns.ts";
import { call, conf, ipOf, link, masqRules, pod, REF, reservations, setup, startWhoAmI, whoAmI, ping, withPrev, type Env } from "./bridge-fixture.ts";

/** A netns outside the pod subnets, wired to the node: 192.0.2.0/24 and fd00:2::/64. */
async function outside(t: Parameters<typeof createNetns>[0], e: Env): Promise<Netns> {
  const ext = await createNetns(t, "brx");
  await linkNetns(e.node, "ext0", "192.0.2.1/24", ext, "eth0", "192.0.2.2/24");
  await execa("ip", ["-n", e.node.name, "addr", "add", "fd00:2::1/64", "dev", "ext0", "nodad"]);
  await execa("ip", ["-n", ext.name, "addr", "add", "fd00:2::2/64", "dev", "eth0", "nodad"]);
  return ext;
}

test("two pods on one bridge reach each other and the gateway over ICMP and TCP (IPv4 and IPv6)", async (t) => {
  const e = await setup(t);
  const [a, b] = [await pod(t), await pod(t)];
  const c = conf(e, { isDefaultGateway: true }, ["10.99.0.0/24", "fd99::/64"]);
  const addA = await call(e, a, c, "ADD", { containerID: "ca" });
  const addB = await call(e, b, c, "ADD", { containerID: "cb" });
  t.is(addA.code, 0, addA.stdout);
  t.is(addB.code, 0, addB.stdout);
  const [a4, a6] = addA.json.ips.map((i: any) => ipOf(i.address));
  const [b4, b6] = addB.json.ips.map((i: any) => ipOf(i.address));

  t.true(await ping(a, b4), "a -> b IPv4");
  t.true(await ping(b, a4), "b -> a IPv4");
  t.true(await ping(a, b6), "a -> b IPv6");
  t.true(await ping(a, "10.99.0.1"), "a -> gateway IPv4");
  t.true(await ping(b, "fd99::1"), "b -> gateway IPv6");

  // TCP, no address translation between pods: b's server sees a's own address.
  await startWhoAmI(t, b, "::");
  t.is(await whoAmI(a, b4), a4);
  t.is(await whoAmI(a, b6), a6);
  // TCP to the gateway: a server in the node on the bridge's address.
  await startWhoAmI(t, e.node, "10.99.0.1", 8081);
  t.is(await whoAmI(b, "10.99.0.1", 8081), b4);

  t.is((await call(e, a, withPrev(c, addA.json), "CHECK", { containerID: "ca" })).code, 0);
  t.is((await call(e, a, c, "DEL", { containerID: "ca" })).code, 0);
  t.false(await ping(b, a4), "a is gone");
  t.true(await ping(b, "10.99.0.1"), "b still reaches the gateway");
});

test("ipMasq: traffic leaving the pod subnet arrives from the node's address; without it, from the pod's", async (t) => {
  const e = await setup(t);
  const ext = await outside(t, e);
  await startWhoAmI(t, ext, "::");

  const masq = await pod(t);
  const peer = await pod(t);
  const c = conf(e, { isDefaultGateway: true, ipMasq: true }, ["10.99.0.0/24", "fd99::/64"]);
  const add = await call(e, masq, c, "ADD", { containerID: "cm" });
  t.is(add.code, 0, add.stdout);
  t.is(await whoAmI(masq, "192.0.2.2"), "192.0.2.1", "IPv4 masqueraded to the node's address");
  t.is(await whoAmI(masq, "fd00:2::2"), "fd00:2::1", "IPv6 masqueraded to the node's address");
  // Inside the pod subnet nothing is rewritten.
  const addPeer = await call(e, peer, c, "ADD", { containerID: "cp" });
  t.is(addPeer.code, 0, addPeer.stdout);
  await startWhoAmI(t, peer, "::");
  const peerIP = ipOf(addPeer.json.ips[0].address);
  t.is(await whoAmI(masq, peerIP), ipOf(add.json.ips[0].address));

  // A second network on its own bridge, without ipMasq: the outside sees the pod itself.
  const e2: Env = { ...e, bridge: `${e.bridge.slice(0, 10)}n`, net: `${e.net}n` };
  const plain = await pod(t);
  const add2 = await call(e2, plain, conf(e2, { isDefaultGateway: true }, ["10.97.0.0/24"]), "ADD", { containerID: "cn" });
  t.is(add2.code, 0, add2.stdout);
  await execa("ip", ["-n", ext.name, "route", "add", "10.97.0.0/24", "via", "192.0.2.1"]);
  t.is(await whoAmI(plain, "192.0.2.2"), ipOf(add2.json.ips[0].address));

  // After DEL the rule is gone: replies to an unmasqueraded address have no way back.
  t.is((await call(e, masq, c, "DEL", { containerID: "cm" })).code, 0);
  t.false((await masqRules(e.node)).some((r) => r.saddr === ipOf(add.json.ips[0].address)));
});

test("two interfaces of one container on one network: each has its own masquerade rule, DEL of one keeps the other working", async (t) => {
  const e = await setup(t);
  const ext = await outside(t, e);
  await startWhoAmI(t, ext, "192.0.2.2");
  const p = await pod(t);
  const c = conf(e, { isDefaultGateway: true, ipMasq: true });
  const eth0 = await call(e, p, c, "ADD", { ifname: "eth0" });
  const net1 = await call(e, p, c, "ADD", { ifname: "net1" });
  t.is(eth0.code, 0, eth0.stdout);
  t.is(net1.code, 0, net1.stdout);
  const ip0 = ipOf(eth0.json.ips[0].address);
  const ip1 = ipOf(net1.json.ips[0].address);
  const rules = await masqRules(e.node);
  t.deepEqual(rules.map((r) => r.saddr).sort(), [ip0, ip1].sort());
  t.true(rules.find((r) => r.saddr === ip1)!.comment.includes("if=net1"));
  t.is(await whoAmI(p, "192.0.2.2"), "192.0.2.1");
  for (const [ifname, r] of [["eth0", eth0], ["net1", net1]] as const) {
    t.is((await call(e, p, withPrev(c, r.json), "CHECK", { ifname })).code, 0, `${ifname} has its own default route and rule`);
  }

  // DEL eth0 (the first, whose default route is the one in use): net1's rule stays and still masquerades.
  t.is((await call(e, p, withPrev(c, eth0.json), "DEL", { ifname: "eth0" })).code, 0);
  t.deepEqual((await masqRules(e.node)).map((r) => r.saddr), [ip1]);
  t.is((await call(e, p, withPrev(c, net1.json), "CHECK", { ifname: "net1" })).code, 0);
  t.is(await whoAmI(p, "192.0.2.2"), "192.0.2.1", "net1's traffic is still masqueraded");
  t.is((await call(e, p, c, "DEL", { ifname: "net1" })).code, 0);
  t.deepEqual(await masqRules(e.node), []);
});

test("macspoofchk: frames with a forged source MAC are dropped at the bridge", async (t) => {
  const e = await setup(t);
  const guarded = await pod(t);
  const free = await pod(t);
  const add = await call(e, guarded, conf(e, { isGateway: true, macspoofchk: true }), "ADD", { containerID: "cg" });
  t.is(add.code, 0, add.stdout);
  const add2 = await call(e, free, conf(e, { isGateway: true }), "ADD", { containerID: "cf" });
  t.is(add2.code, 0, add2.stdout);
  t.true(await ping(guarded, "10.99.0.1"));
  const realMac = add.json.interfaces[2].mac;
  await execa("ip", ["-n", guarded.name, "link", "set", "eth0", "address", "0a:58:de:ad:be:ef"]);
  await execa("ip", ["-n", e.node.name, "neigh", "flush", "dev", e.bridge]);
  t.false(await ping(guarded, "10.99.0.1"), "forged MAC dropped");
  await execa("ip", ["-n", free.name, "link", "set", "eth0", "address", "0a:58:de:ad:be:ee"]);
  t.true(await ping(free, "10.99.0.1"), "without macspoofchk the same change passes");
  await execa("ip", ["-n", guarded.name, "link", "set", "eth0", "address", realMac]);
  t.true(await ping(guarded, "10.99.0.1"), "the real MAC passes again");
});

test("interop: the reference bridge delegating to our host-local, ADD/CHECK/DEL with traffic", async (t) => {
  const e = await setup(t);
  const [a, b] = [await pod(t), await pod(t)];
  const c = conf(e, { isDefaultGateway: true }, ["10.99.0.0/24"], "1.0.0");
  const path = OUR_BIN;
  const addA = await call(e, a, c, "ADD", { plugin: REF, path, containerID: "ca" });
  const addB = await call(e, b, c, "ADD", { plugin: REF, path, containerID: "cb" });
  t.is(addA.code, 0, addA.stdout + addA.stderr);
  t.is(addB.code, 0, addB.stdout + addB.stderr);
  const b4 = ipOf(addB.json.ips[0].address);
  t.true(await ping(a, b4));
  t.true(await ping(b, "10.99.0.1"));
  await startWhoAmI(t, b, b4);
  t.is(await whoAmI(a, b4), ipOf(addA.json.ips[0].address));
  t.deepEqual(reservations(e), [ipOf(addA.json.ips[0].address), b4].sort());
  const check = await call(e, a, withPrev(c, addA.json), "CHECK", { plugin: REF, path, containerID: "ca" });
  t.is(check.code, 0, check.stdout + check.stderr);
  for (const [p, id] of [[a, "ca"], [b, "cb"]] as const) t.is((await call(e, p, c, "DEL", { plugin: REF, path, containerID: id })).code, 0);
  t.deepEqual(reservations(e), []);
  t.is(await link(a, "eth0"), undefined);
});

test("interop: our bridge delegating to the reference host-local, ADD/CHECK/DEL with traffic", async (t) => {
  const e = await setup(t);
  const [a, b] = [await pod(t), await pod(t)];
  const c = conf(e, { isDefaultGateway: true, ipMasq: true }, ["10.99.0.0/24"], "1.0.0");
  const path = REF_BIN;
  const addA = await call(e, a, c, "ADD", { path, containerID: "ca" });
  const addB = await call(e, b, c, "ADD", { path, containerID: "cb" });
  t.is(addA.code, 0, addA.stdout + addA.stderr);
  t.is(addB.code, 0, addB.stdout + addB.stderr);
  const a4 = ipOf(addA.json.ips[0].address);
  t.true(await ping(b, a4));
  t.true(await ping(a, "10.99.0.1"));
  await startWhoAmI(t, a, a4);
  t.is(await whoAmI(b, a4), ipOf(addB.json.ips[0].address));
  t.deepEqual(reservations(e), [a4, ipOf(addB.json.ips[0].address)].sort());
  const check = await call(e, b, withPrev(c, addB.json), "CHECK", { path, containerID: "cb" });
  t.is(check.code, 0, check.stdout + check.stderr);
  for (const [p, id] of [[a, "ca"], [b, "cb"]] as const) t.is((await call(e, p, c, "DEL", { path, containerID: id })).code, 0);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await masqRules(e.node), []);
});
