// bridge: the protocol and the kernel state it leaves. Every call runs the way a runtime runs
// it (a separate process inside a test-created "node" netns, with a temp IPAM store); traffic
// tests live in bridge-traffic.test.ts.
import test from "ava";
import { execa } from "execa";
import { join } from "node:path";
import { validateResult } from "../../cni-plugins/pkg/result.ts";
import { OUR_NODE_BIN } from "../helpers/cni.ts";
import { inNetns, ipJSON, removeNetns } from "../helpers/netns.ts";
import { addrsOf, call, conf, IPAM_PATH, ipOf, link, links, masqRules, NFT, OURS, ourRules, pod, taggedRules, reservations, routes, setup, VERSIONS, withPrev } from "./bridge-fixture.ts";

const sysctl = async (ns: { path: string }, key: string) => String((await inNetns(ns as any, "cat", [`/proc/sys/${key}`])).stdout).trim();
const vethsOf = async (ns: any) => (await links(ns)).filter((l) => l.linkinfo?.info_kind === "veth");

test("ADD, CHECK, DEL, DEL again: bridge, veth pair, addresses, routes and masquerade in the kernel", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const c = conf(e, { isDefaultGateway: true, ipMasq: true, mtu: 1400 }, ["10.99.0.0/24", "fd99::/64"]);
  const add = await call(e, p, c, "ADD");
  t.is(add.code, 0, add.stdout + add.stderr);
  t.deepEqual(validateResult(add.json, "1.1.0"), []);
  const [br, host, cont] = add.json.interfaces;
  t.is(add.json.interfaces.length, 3);
  t.is(br.name, e.bridge);
  t.is(br.sandbox, undefined);
  t.regex(host.name, /^veth[0-9a-f]{8}$/);
  t.deepEqual({ name: cont.name, sandbox: cont.sandbox }, { name: "eth0", sandbox: p.path });
  t.deepEqual(add.json.ips, [
    { interface: 2, address: "10.99.0.2/24", gateway: "10.99.0.1" },
    { interface: 2, address: "fd99::2/64", gateway: "fd99::1" },
  ]);
  t.deepEqual(add.json.routes, [{ dst: "0.0.0.0/0", gw: "10.99.0.1" }, { dst: "::/0", gw: "fd99::1" }]);

  // The node: bridge up with the gateways, the host end on it, forwarding on.
  const brLink = await link(e.node, e.bridge);
  t.is(brLink.linkinfo.info_kind, "bridge");
  t.true(brLink.flags.includes("UP"));
  t.is(brLink.mtu, 1400);
  t.is(brLink.address, br.mac);
  t.deepEqual(addrsOf(brLink).sort(), ["10.99.0.1/24", "fd99::1/64"]);
  const hostLink = await link(e.node, host.name);
  t.is(hostLink.master, e.bridge);
  t.true(hostLink.flags.includes("UP"));
  t.is(hostLink.mtu, 1400);
  t.is(hostLink.address, host.mac);
  t.is(await sysctl(e.node, "net/ipv4/ip_forward"), "1");
  t.is(await sysctl(e.node, "net/ipv6/conf/all/forwarding"), "1");
  // The pod: its end of the pair, addresses and default routes.
  const eth0 = await link(p, "eth0");
  t.is(eth0.linkinfo.info_kind, "veth");
  t.is(eth0.address, cont.mac);
  t.is(eth0.mtu, 1400);
  t.true(eth0.flags.includes("UP"));
  t.is(eth0.link_index, hostLink.ifindex, "the pod's end is the peer of the host end");
  t.deepEqual(addrsOf(eth0), ["10.99.0.2/24", "fd99::2/64"]);
  const podRoutes = await routes(p);
  t.truthy(podRoutes.find((r) => r.dst === "default" && r.gateway === "10.99.0.1" && r.dev === "eth0"));
  t.truthy(podRoutes.find((r) => r.dst === "default" && r.gateway === "fd99::1" && r.dev === "eth0"));
  // Masquerade rules for both addresses, named after the attachment.
  const masq = await masqRules(e.node);
  t.deepEqual(masq.map((r) => r.saddr).sort(), ["10.99.0.2", "fd99::2"]);
  for (const r of masq) t.true(r.comment.includes(`net=${e.net} id=c1 if=eth0`), r.comment);
  t.deepEqual(reservations(e), ["10.99.0.2", "fd99::2"]);

  const check = await call(e, p, withPrev(c, add.json), "CHECK");
  t.is(check.code, 0, check.stdout + check.stderr);

  const del = await call(e, p, withPrev(c, add.json), "DEL");
  t.is(del.code, 0, del.stdout + del.stderr);
  t.is(del.stdout, "");
  t.is(await link(e.node, host.name), undefined, "host end removed");
  t.is(await link(p, "eth0"), undefined, "pod end removed");
  t.truthy(await link(e.node, e.bridge), "the bridge stays");
  t.deepEqual(await masqRules(e.node), []);
  t.deepEqual(reservations(e), []);

  const again = await call(e, p, c, "DEL");
  t.is(again.code, 0, again.stdout);
  const checkGone = await call(e, p, withPrev(c, add.json), "CHECK");
  t.is(checkGone.code, 1);
  t.regex(checkGone.json.msg, /eth0/);
});

test("CHECK notices a missing address, route, masquerade rule or a moved port", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const c = conf(e, { isDefaultGateway: true, ipMasq: true });
  const add = await call(e, p, c, "ADD");
  t.is(add.code, 0, add.stdout);
  const check = () => call(e, p, withPrev(c, add.json), "CHECK");
  t.is((await check()).code, 0);

  await execa("ip", ["-n", p.name, "route", "del", "default"]);
  let r = await check();
  t.is(r.json.code, 104, r.stdout);
  t.regex(r.json.msg, /route 0\.0\.0\.0\/0 via 10\.99\.0\.1 not found/);
  await execa("ip", ["-n", p.name, "route", "add", "default", "via", "10.99.0.1"]);
  t.is((await check()).code, 0);

  await execa("ip", ["-n", p.name, "addr", "del", "10.99.0.2/24", "dev", "eth0"]);
  r = await check();
  t.regex(r.json.msg, /does not have 10\.99\.0\.2\/24/);
  await execa("ip", ["-n", p.name, "addr", "add", "10.99.0.2/24", "dev", "eth0"]);
  await execa("ip", ["-n", p.name, "route", "replace", "default", "via", "10.99.0.1"]);
  t.is((await check()).code, 0);

  await inNetns(e.node, NFT, ["flush", "chain", "inet", "podnet-bridge", "masq"]);
  r = await check();
  t.regex(r.json.msg, /masquerade rule for 10\.99\.0\.2 not found/);

  await execa("ip", ["-n", e.node.name, "link", "set", add.json.interfaces[1].name, "nomaster"]);
  r = await check();
  t.regex(r.json.msg, /veth of eth0 on bridge/);

  const noPrev = await call(e, p, c, "CHECK");
  t.is(noPrev.json.code, 7);
  t.regex(noPrev.json.msg, /prevResult/);
});

test("results in every supported version, converted like the reference's", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  for (const [i, v] of VERSIONS.entries()) {
    const c = conf(e, { isGateway: true }, ["10.99.0.0/24"], v);
    const add = await call(e, p, c, "ADD", { ifname: `net${i}` });
    t.is(add.code, 0, add.stdout);
    t.deepEqual(validateResult(add.json, v), [], v);
    t.is(add.json.cniVersion, v);
    t.is(add.json.ips[0].interface, 2);
    t.is(add.json.ips[0].version, v.startsWith("1.") ? undefined : "4");
    t.is(add.json.interfaces[2].name, `net${i}`);
    if (v !== "0.3.0" && v !== "0.3.1") {
      const check = await call(e, p, withPrev(c, add.json), "CHECK", { ifname: `net${i}` });
      t.is(check.code, 0, `${v}: ${check.stdout}`);
    }
    const del = await call(e, p, withPrev(c, add.json), "DEL", { ifname: `net${i}` });
    t.is(del.code, 0, del.stdout);
  }
  t.deepEqual(await vethsOf(e.node), []);
  t.deepEqual(reservations(e), []);
});

test("error codes from real bad input: JSON 6, environment 4, version 1, config values 7", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const c = conf(e);
  const bad = await call(e, p, "{not json", "ADD");
  t.is(bad.code, 1);
  t.is(bad.json.code, 6);

  const noNetns = await call(e, p, c, "ADD", { env: { CNI_NETNS: undefined } });
  t.is(noNetns.json.code, 4);
  t.regex(noNetns.json.msg, /CNI_NETNS/);
  const noID = await call(e, p, c, "ADD", { env: { CNI_CONTAINERID: undefined } });
  t.is(noID.json.code, 4);
  t.regex(noID.json.msg, /CNI_CONTAINERID/);
  const goneNetns = await call(e, p, c, "ADD", { netns: "/run/netns/pn-no-such-netns" });
  t.is(goneNetns.json.code, 4);
  t.regex(goneNetns.json.msg, /CNI_NETNS/);

  const version = await call(e, p, { ...c, cniVersion: "9.9.9" }, "ADD");
  t.is(version.json.code, 1);
  t.regex(version.json.details, /9\.9\.9/);

  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mtu: "1500" }, /"mtu"/],
    [{ mtu: 20 }, /"mtu"/],
    [{ isGateway: "yes" }, /"isGateway"/],
    [{ ipMasq: 1 }, /"ipMasq"/],
    [{ vlan: 5000 }, /"vlan"/],
    [{ bridge: "a-very-long-bridge-name" }, /"bridge".*too long/],
    [{ bridge: 7 }, /"bridge"/],
    [{ hairpinMode: true, promiscMode: true }, /hairpinMode.*promiscMode/],
    [{ runtimeConfig: { mac: "not-a-mac" } }, /runtimeConfig\.mac/],
    [{ runtimeConfig: { mac: "01:00:5e:00:00:01" } }, /unicast/],
    [{ args: { cni: { mac: 5 } } }, /args\.cni\.mac/],
    [{ disableContainerInterface: true }, /disableContainerInterface/],
    [{ vlanTrunk: [{ minID: 10 }] }, /vlanTrunk/],
    [{ ipMasqBackend: "pf" }, /ipMasqBackend/],
  ];
  for (const [extra, msg] of cases) {
    const r = await call(e, p, { ...c, ...extra }, "ADD");
    t.is(r.code, 1, JSON.stringify(extra));
    t.is(r.json.code, 7, JSON.stringify(extra));
    t.regex(r.json.msg, msg, JSON.stringify(extra));
  }
  const badMacArg = await call(e, p, c, "ADD", { args: "MAC=zz" });
  t.is(badMacArg.json.code, 4);
  t.regex(badMacArg.json.msg, /CNI_ARGS MAC/);
  const unknownArg = await call(e, p, c, "ADD", { args: "FOO=1" });
  t.is(unknownArg.json.code, 4);
  t.regex(unknownArg.json.msg, /FOO/);
  const unknownKey = await call(e, p, { ...c, someFutureKey: { x: 1 } }, "ADD");
  t.is(unknownKey.code, 0, "unknown keys are ignored: " + unknownKey.stdout);
  // None of the refused calls left anything behind.
  t.is((await vethsOf(e.node)).length, 1);
  t.deepEqual(reservations(e), ["10.99.0.2"]);
});

test("ADD on an ifname the container already has: code 103, nothing touched", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  await execa("ip", ["-n", p.name, "link", "add", "eth0", "type", "veth", "peer", "name", "other0"]);
  const before = await link(p, "eth0");
  const c = conf(e, { isGateway: true, ipMasq: true, macspoofchk: true });
  const add = await call(e, p, c, "ADD");
  t.is(add.code, 1);
  t.is(add.json.code, 103);
  t.regex(add.json.msg, /eth0 already exists/);
  t.deepEqual((await links(e.node)).map((l) => l.ifname), ["lo"], "no bridge, no veth in the node");
  t.deepEqual(reservations(e), []);
  t.deepEqual(await ourRules(e.node), []);
  t.deepEqual(await link(p, "eth0"), before);

  // The runtime's DEL after that failed ADD must not remove a link that is not ours.
  const del = await call(e, p, c, "DEL");
  t.is(del.code, 0, del.stdout);
  t.truthy(await link(p, "eth0"));

  // ADD twice for one attachment: the second is refused and the first stays whole.
  const e2 = await setup(t);
  const p2 = await pod(t);
  const c2 = conf(e2, { ipMasq: true });
  const first = await call(e2, p2, c2, "ADD");
  t.is(first.code, 0, first.stdout);
  const second = await call(e2, p2, c2, "ADD");
  t.is(second.json.code, 103);
  t.is((await call(e2, p2, withPrev(c2, first.json), "CHECK")).code, 0);
  t.deepEqual(reservations(e2), ["10.99.0.2"]);
  t.is((await vethsOf(e2.node)).length, 1);
});

test("a failed ADD undoes all it did: veth pair, masquerade rules, IP reservation", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  // The bridge exists with another gateway address: found only after IPAM allocated.
  await execa("ip", ["-n", e.node.name, "link", "add", e.bridge, "type", "bridge"]);
  await execa("ip", ["-n", e.node.name, "addr", "add", "10.50.0.1/24", "dev", e.bridge]);
  const c = conf(e, { isGateway: true, ipMasq: true, macspoofchk: true });
  const add = await call(e, p, c, "ADD");
  t.is(add.code, 1);
  t.is(add.json.code, 7);
  t.regex(add.json.msg, /already has an IP address different from 10\.99\.0\.1\/24/);
  t.deepEqual(await vethsOf(e.node), []);
  t.is(await link(p, "eth0"), undefined);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await taggedRules(e.node), []);

  // forceAddress replaces it.
  const forced = await call(e, p, { ...c, forceAddress: true }, "ADD");
  t.is(forced.code, 0, forced.stdout);
  t.deepEqual(addrsOf(await link(e.node, e.bridge)), ["10.99.0.1/24"]);

  // IPAM failing (range exhausted) also leaves no veth behind.
  const taken = ipOf(forced.json.ips[0].address);
  const one = { ...c, forceAddress: true, ipam: { ...c.ipam, ranges: [[{ subnet: "10.99.0.0/24", rangeStart: taken, rangeEnd: taken }]] } };
  const p2 = await pod(t);
  const full = await call(e, p2, one, "ADD", { containerID: "c2" });
  t.is(full.code, 1, full.stdout);
  t.is(await link(p2, "eth0"), undefined);
  t.is((await vethsOf(e.node)).length, 1, "only the first pod's veth");
  t.deepEqual(reservations(e), [taken]);
  t.is((await masqRules(e.node)).length, 1);
});

test("a name taken by a non-bridge link is a clear error and leaves nothing", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  await execa("ip", ["-n", e.node.name, "link", "add", e.bridge, "type", "veth", "peer", "name", `${e.bridge}x`.slice(0, 15)]);
  const c = conf(e, { ipMasq: true });
  const add = await call(e, p, c, "ADD");
  t.is(add.json.code, 7, add.stdout);
  t.regex(add.json.msg, /already exists but is not a bridge/);
  t.is(await link(p, "eth0"), undefined);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await ourRules(e.node), []);
});

test("DEL succeeds when the netns or the interface is gone, and still removes rules and the reservation", async (t) => {
  const e = await setup(t);
  const c = conf(e, { isGateway: true, ipMasq: true, macspoofchk: true });
  // Netns gone (a runtime that lost the pod), DEL without prevResult.
  const p = await pod(t);
  const add = await call(e, p, c, "ADD");
  t.is(add.code, 0, add.stdout);
  await removeNetns(p.name);
  const del = await call(e, p, c, "DEL");
  t.is(del.code, 0, del.stdout);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await taggedRules(e.node), []);
  t.deepEqual(await vethsOf(e.node), []);

  // Interface gone, netns still there.
  const p2 = await pod(t);
  const add2 = await call(e, p2, c, "ADD", { containerID: "c2" });
  t.is(add2.code, 0, add2.stdout);
  await execa("ip", ["-n", p2.name, "link", "del", "eth0"]);
  const del2 = await call(e, p2, c, "DEL", { containerID: "c2" });
  t.is(del2.code, 0, del2.stdout);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await taggedRules(e.node), []);

  // No CNI_NETNS at all (allowed for DEL).
  const p3 = await pod(t);
  const add3 = await call(e, p3, c, "ADD", { containerID: "c3" });
  t.is(add3.code, 0, add3.stdout);
  const del3 = await call(e, p3, c, "DEL", { containerID: "c3", env: { CNI_NETNS: undefined } });
  t.is(del3.code, 0, del3.stdout);
  t.deepEqual(reservations(e), []);
  t.deepEqual(await taggedRules(e.node), []);
});

test("the container MAC comes from runtimeConfig.mac over args.cni.mac over CNI_ARGS MAC", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const c = conf(e);
  const fromArgs = await call(e, p, c, "ADD", { args: "IgnoreUnknown=1;MAC=0a:58:00:00:00:01;K8S_POD_NAME=x", ifname: "net1" });
  t.is(fromArgs.code, 0, fromArgs.stdout);
  t.is((await link(p, "net1")).address, "0a:58:00:00:00:01");
  t.is(fromArgs.json.interfaces[2].mac, "0a:58:00:00:00:01");
  const fromCni = await call(e, p, { ...c, args: { cni: { mac: "0a:58:00:00:00:02" } } }, "ADD", { args: "MAC=0a:58:00:00:00:01", ifname: "net2" });
  t.is((await link(p, "net2")).address, "0a:58:00:00:00:02", fromCni.stdout);
  const fromRuntime = await call(e, p, { ...c, args: { cni: { mac: "0a:58:00:00:00:02" } }, runtimeConfig: { mac: "0A:58:00:00:00:03" } }, "ADD", { ifname: "net3" });
  t.is((await link(p, "net3")).address, "0a:58:00:00:00:03", fromRuntime.stdout);
  t.is(fromRuntime.json.interfaces[2].mac, "0a:58:00:00:00:03");
  // IP in CNI_ARGS goes to IPAM.
  const withIP = await call(e, p, c, "ADD", { args: "IP=10.99.0.77", ifname: "net4" });
  t.is(withIP.code, 0, withIP.stdout);
  t.deepEqual(addrsOf(await link(p, "net4")), ["10.99.0.77/24"]);
});

test("hairpinMode, portIsolation and promiscMode are set in the kernel", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const hp = await call(e, p, conf(e, { hairpinMode: true, portIsolation: true }), "ADD");
  t.is(hp.code, 0, hp.stdout);
  const port = await link(e.node, hp.json.interfaces[1].name);
  t.is(port.linkinfo.info_slave_kind, "bridge");
  t.true(port.linkinfo.info_slave_data.hairpin);
  t.true(port.linkinfo.info_slave_data.isolated);
  t.false((await link(e.node, e.bridge)).flags.includes("PROMISC"));

  const e2 = await setup(t);
  const pr = await call(e2, p, conf(e2, { promiscMode: true }), "ADD", { ifname: "net1" });
  t.is(pr.code, 0, pr.stdout);
  t.true((await link(e2.node, e2.bridge)).flags.includes("PROMISC"));
  t.false((await link(e2.node, pr.json.interfaces[1].name)).linkinfo.info_slave_data.hairpin);
  t.is((await call(e2, p, withPrev(conf(e2, { promiscMode: true }), pr.json), "CHECK", { ifname: "net1" })).code, 0);
});

test("layer 2 only: no IPAM brings the pod end up with no address; disableContainerInterface leaves it down", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const l2 = { cniVersion: "1.1.0", name: e.net, type: "bridge", bridge: e.bridge };
  const add = await call(e, p, l2, "ADD");
  t.is(add.code, 0, add.stdout);
  t.is(add.json.ips, undefined);
  t.is(add.json.interfaces.length, 3);
  const eth0 = await link(p, "eth0");
  t.true(eth0.flags.includes("UP"));
  t.deepEqual(addrsOf(eth0), []);
  t.is((await call(e, p, withPrev(l2, add.json), "CHECK")).code, 0);

  const off = await call(e, p, { ...l2, disableContainerInterface: true }, "ADD", { ifname: "net1" });
  t.is(off.code, 0, off.stdout);
  t.false((await link(p, "net1")).flags.includes("UP"));
  t.is((await call(e, p, { ...l2, disableContainerInterface: true }, "DEL", { ifname: "net1" })).code, 0);
  t.is(await link(p, "net1"), undefined);
});

test("GC removes the rules of attachments the runtime no longer knows; STATUS asks IPAM", async (t) => {
  const e = await setup(t);
  const c = conf(e, { ipMasq: true, macspoofchk: true });
  const pods = [await pod(t), await pod(t)];
  for (const [i, p] of pods.entries()) t.is((await call(e, p, c, "ADD", { containerID: `c${i}` })).code, 0);
  // Another network's rules in the same table are not this GC's business.
  const other = { ...conf(e, { ipMasq: true, macspoofchk: true }, ["10.98.0.0/24"]), name: `${e.net}b` };
  t.is((await call(e, pods[0]!, other, "ADD", { containerID: "c0", ifname: "net1" })).code, 0);
  t.is((await masqRules(e.node)).length, 3);

  const gc = await call(e, pods[0]!, { ...c, "cni.dev/valid-attachments": [{ containerID: "c0", ifname: "eth0" }] }, "GC", { containerID: undefined, ifname: undefined });
  t.is(gc.code, 0, gc.stdout + gc.stderr);
  const left = await masqRules(e.node);
  t.deepEqual(left.map((r) => r.saddr).sort(), ["10.98.0.2", "10.99.0.2"]);
  const spoof = (await ourRules(e.node)).filter((r) => r.family === "bridge");
  t.is(spoof.length, 2, "spoof-check rules of c0 on both networks stay");
  t.false(spoof.some((r) => r.comment?.includes("id=c1")));
  if (IPAM_PATH.endsWith("dist/cni/bin")) t.deepEqual(reservations(e), ["10.99.0.2"], "our host-local releases c1's address on GC");

  const status = await call(e, pods[0]!, c, "STATUS", { containerID: undefined, ifname: undefined });
  t.is(status.code, 0, status.stdout);
  if (IPAM_PATH.endsWith("dist/cni/bin")) {
    // Our host-local reports an exhausted range as code 50; bridge passes it on.
    const one = { ...c, ipam: { ...c.ipam, ranges: [[{ subnet: "10.99.0.0/24", rangeStart: "10.99.0.2", rangeEnd: "10.99.0.2" }]] } };
    const full = await call(e, pods[0]!, one, "STATUS", { containerID: undefined, ifname: undefined });
    t.is(full.json?.code, 50, full.stdout);
  }
  const badList = await call(e, pods[0]!, { ...c, "cni.dev/valid-attachments": "c0" }, "GC", { containerID: undefined, ifname: undefined });
  t.is(badList.json.code, 7);
  t.regex(badList.json.msg, /valid-attachments/);
});

test("concurrent ADDs on a new bridge: all succeed with distinct addresses, one bridge, one rule each", async (t) => {
  const e = await setup(t);
  const c = conf(e, { isGateway: true, ipMasq: true });
  const pods = await Promise.all(Array.from({ length: 6 }, () => pod(t)));
  const adds = await Promise.all(pods.map((p, i) => call(e, p, c, "ADD", { containerID: `c${i}` })));
  for (const a of adds) t.is(a.code, 0, a.stdout + a.stderr);
  const ips = adds.map((a) => a.json.ips[0].address);
  t.is(new Set(ips).size, 6);
  const bridges = (await links(e.node)).filter((l) => l.linkinfo?.info_kind === "bridge");
  t.is(bridges.length, 1);
  t.deepEqual(addrsOf(bridges[0]), ["10.99.0.1/24"]);
  t.is(new Set(adds.map((a) => a.json.interfaces[0].mac)).size, 1, "every result names the same bridge MAC");
  t.deepEqual((await masqRules(e.node)).map((r) => r.saddr).sort(), ips.map(ipOf).sort());
  const post = (await ourRules(e.node)).filter((r) => r.chain === "postrouting");
  t.is(post.length, 3, "the base chain holds its three rules once");
  const dels = await Promise.all(pods.map((p, i) => call(e, p, c, "DEL", { containerID: `c${i}` })));
  for (const d of dels) t.is(d.code, 0, d.stdout);
  t.deepEqual(await masqRules(e.node), []);
  t.deepEqual(await vethsOf(e.node), []);
});

test("vlan: configured on the port where the kernel filters VLANs, else a clear error that leaves nothing", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const c = conf(e, { vlan: 100, ipMasq: true });
  const add = await call(e, p, c, "ADD");
  if (add.code === 0) {
    const vlans = JSON.parse(String((await inNetns(e.node, "bridge", ["-j", "vlan", "show", "dev", add.json.interfaces[1].name])).stdout));
    t.true(JSON.stringify(vlans).includes('"vlan":100'), JSON.stringify(vlans));
  } else {
    t.is(add.json.code, 104, add.stdout);
    t.regex(add.json.msg, /cannot filter VLANs/);
    t.deepEqual(await vethsOf(e.node), []);
    t.is(await link(p, "eth0"), undefined);
    t.deepEqual(reservations(e), []);
    t.deepEqual(await ourRules(e.node), []);
  }
});

test("the Node bundle flavour does the same ADD, CHECK and DEL", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const plugin = join(OUR_NODE_BIN, "bridge");
  const c = conf(e, { isDefaultGateway: true, ipMasq: true });
  const add = await call(e, p, c, "ADD", { plugin });
  t.is(add.code, 0, add.stdout + add.stderr);
  t.deepEqual(addrsOf(await link(p, "eth0")), ["10.99.0.2/24"]);
  t.is((await call(e, p, withPrev(c, add.json), "CHECK", { plugin })).code, 0);
  t.is((await call(e, p, c, "DEL", { plugin })).code, 0);
  t.deepEqual(await vethsOf(e.node), []);
  t.deepEqual(await masqRules(e.node), []);
});

test("VERSION and the about text", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  const v = await call(e, p, { cniVersion: "1.0.0" }, "VERSION");
  t.is(v.code, 0);
  t.deepEqual(v.json.supportedVersions, VERSIONS);
  const about = await execa(OURS, [], { env: { CNI_COMMAND: "" }, reject: false });
  t.is(about.exitCode, 0);
  t.regex(String(about.stderr), /CNI bridge plugin/);
});

test("a container netns given as /proc/PID/ns/net (not a name iproute2 knows) works the same", async (t) => {
  const e = await setup(t);
  const p = await pod(t);
  // A process that lives in the pod's netns; its /proc entry is the netns reference a runtime
  // without /run/netns bind mounts would pass.
  const holder = inNetns(p, "sleep", ["600"], { reject: false });
  t.teardown(() => {
    holder.kill("SIGKILL");
  });
  const path = `/proc/${holder.pid}/ns/net`;
  const add = await call(e, p, conf(e), "ADD", { netns: path });
  t.is(add.code, 0, add.stdout);
  t.is(add.json.interfaces[2].sandbox, path);
  const [eth0] = await ipJSON(p, ["addr", "show", "dev", "eth0"]);
  t.is(eth0.addr_info.find((a: any) => a.family === "inet").local, add.json.ips[0].address.split("/")[0]);
  const again = await call(e, p, conf(e), "ADD", { netns: path, containerID: "c2" });
  t.is(again.code, 1);
  t.is(again.json.code, 103, "eth0 exists: refused, through the /proc path too");
  const del = await call(e, p, { ...conf(e), prevResult: add.json }, "DEL", { netns: path });
  t.is(del.code, 0, del.stdout);
  t.deepEqual((await ipJSON(p, ["link", "show"])).map((l: any) => l.ifname), ["lo"]);
});
