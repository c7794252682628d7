// portmap chained after bridge + host-local (ours once built), with real traffic through the
// node's nftables from every direction a host port is used.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { callPlugin, OUR_BIN } from "../helpers/cni.ts";
import { inNetns } from "../helpers/netns.ts";
import {
  addChain,
  addChainAll,
  bridgeStep,
  callOne,
  chainsDnatTo,
  checkChain,
  createPod,
  delChain,
  masqChainFor,
  EXT_IP,
  EXT_IP6,
  MAIN_BRIDGE_DIR,
  NFT,
  NODE_IP,
  NODE_IP2,
  NODE_IP6,
  nftChains,
  podIPv4,
  podIPv6,
  portmapStep,
  probe,
  setupNode,
  startServer,
  startServers,
  TABLE,
  type Attachment,
  type Node,
} from "./portmap-fixture.ts";

const both = (hostPort: number, containerPort: number, extra: Record<string, unknown> = {}) => [
  { hostPort, containerPort, protocol: "tcp", ...extra },
  { hostPort, containerPort, protocol: "udp", ...extra },
];
const PM = portmapStep(OUR_BIN);

async function routeLocalnet(n: Node, iface: string): Promise<string> {
  return String((await inNetns(n.node, "cat", [`/proc/sys/net/ipv4/conf/${iface}/route_localnet`])).stdout).trim();
}

test("ADD forwards TCP and UDP host ports from the node, localhost, another pod, the pod itself and outside; CHECK; DEL; DEL again", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n) };
  await startServers(t, a.pod, 80, "A");
  const [bridgeA, resA] = await addChainAll(n, steps, a);
  const resB = await addChain(n, steps, b);
  const ipA = podIPv4(resA), ipB = podIPv4(resB);
  t.deepEqual(resA, bridgeA, "portmap passes prevResult through");

  // nft state: A has a prerouting and an output chain that DNAT and a postrouting chain that
  // masquerades what they marked (bit 13); B, without host ports, has nothing.
  const chains = (await nftChains(n))!;
  const owned = await chainsDnatTo(n, ipA);
  t.is(owned.length, 2);
  t.deepEqual(owned.map((c) => chains.get(c)!.hook).sort(), ["output", "prerouting"]);
  const post = await masqChainFor(n, ipA);
  t.truthy(post);
  t.true(post!.rules[0]!.expr.some((e: any) => e.match?.left?.["&"]?.[1] === 0x2000));
  t.is(chains.size, 3);
  t.deepEqual(await chainsDnatTo(n, ipB), []);
  t.is(await routeLocalnet(n, n.bridge), "1", "localhost needs route_localnet on the bridge, the interface toward the pod");

  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.node, proto, NODE_IP, 8080), `A ${NODE_IP}`, `${proto} from the node's own address`);
    t.is(await probe(n.node, proto, "127.0.0.1", 8080), `A ${n.gateway}`, `${proto} from localhost, masqueraded`);
    t.is(await probe(b.pod, proto, NODE_IP, 8080), `A ${ipB}`, `${proto} from another pod, source kept`);
    t.is(await probe(a.pod, proto, NODE_IP, 8080), `A ${n.gateway}`, `${proto} hairpin, masqueraded`);
    t.is(await probe(n.ext, proto, NODE_IP, 8080), `A ${EXT_IP}`, `${proto} from outside, source kept`);
  }
  t.is(await checkChain(n, steps, a, resA), undefined, "CHECK passes");

  await delChain(n, steps, a, resA);
  t.deepEqual(await chainsDnatTo(n, ipA), [], "DEL removed A's chains");
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), undefined, "host port closed after DEL");
  const again = await callOne(n, PM, a, "DEL", resA);
  t.is(again.code, 0, again.stdout);
  const check = await callOne(n, PM, a, "CHECK", resA);
  t.is(check.code, 1);
  t.regex(check.json.msg, /not in place/);
  await delChain(n, steps, b, resB);
  t.deepEqual([...(await nftChains(n))!.keys()], [], "no chain is left");
});

/** A node with two attachments on the main network: A forwards 8080 and B 9090 to servers on port 80. */
async function twoAttachments(t: ExecutionContext) {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n), mappings: both(9090, 80) };
  await Promise.all([startServers(t, a.pod, 80, "A"), startServers(t, b.pod, 80, "B")]);
  return { n, steps, a, b, resA: await addChain(n, steps, a), resB: await addChain(n, steps, b) };
}

test("DEL without runtimeConfig still finds and removes the attachment's chains; with none it is a no-op", async (t) => {
  const { n, steps, a, b, resA, resB } = await twoAttachments(t);
  const chainsB = await chainsDnatTo(n, podIPv4(resB));
  t.true((await chainsDnatTo(n, podIPv4(resA))).length > 0);
  // A runtime that lost its cache: no portMappings on DEL. The chains are found by identity.
  const delA = await callOne(n, PM, { ...a, mappings: undefined }, "DEL", resA);
  t.is(delA.code, 0, delA.stdout);
  t.deepEqual(await chainsDnatTo(n, podIPv4(resA)), []);
  // Again, and for an attachment that never had host ports: nothing to find, nothing touched.
  for (const c of [a, { ...a, containerID: "never-mapped" }]) {
    const again = await callOne(n, PM, { ...c, mappings: undefined }, "DEL", resA);
    t.is(again.code, 0, again.stdout);
  }
  t.deepEqual(await chainsDnatTo(n, podIPv4(resB)), chainsB, "B's chains untouched");
  t.is(await probe(n.ext, "tcp", NODE_IP, 9090), `B ${EXT_IP}`);
  await delChain(n, steps, b, resB);
});

test("hostIP restricts the destination address", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8081, 80, { hostIP: NODE_IP2 }) };
  await startServers(t, a.pod, 80, "A");
  const res = await addChain(n, steps, a);
  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.ext, proto, NODE_IP2, 8081), `A ${EXT_IP}`, `${proto} to the hostIP`);
    t.is(await probe(n.ext, proto, NODE_IP, 8081), undefined, `${proto} to another address of the node is not forwarded`);
    t.regex((await probe(n.node, proto, NODE_IP2, 8081)) ?? "", /^A /, `${proto} from the node to the hostIP`);
  }
  const pre = [...(await nftChains(n))!.values()].find((c) => c.hook === "prerouting")!;
  t.true(pre.rules.some((r) => r.expr.some((e: any) => e.match?.left?.payload?.field === "daddr" && e.match.right === NODE_IP2)));
  t.is(await checkChain(n, steps, a, res), undefined);
  await delChain(n, steps, a, res);
});

test("two containers with different host ports: DEL of one leaves the other working", async (t) => {
  const { n, steps, a, b, resA, resB } = await twoAttachments(t);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), `A ${EXT_IP}`);
  t.is(await probe(n.ext, "tcp", NODE_IP, 9090), `B ${EXT_IP}`);
  const chainsB = await chainsDnatTo(n, podIPv4(resB));
  await delChain(n, steps, a, resA);
  t.deepEqual(await chainsDnatTo(n, podIPv4(resA)), []);
  t.deepEqual(await chainsDnatTo(n, podIPv4(resB)), chainsB, "B's chains untouched");
  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.ext, proto, NODE_IP, 9090), `B ${EXT_IP}`, `${proto} to B still forwarded`);
    t.is(await probe(n.node, proto, "127.0.0.1", 9090), `B ${n.gateway}`);
    t.is(await probe(n.ext, proto, NODE_IP, 8080), undefined, `${proto} to A closed`);
  }
  t.is(await checkChain(n, steps, b, resB), undefined, "CHECK of B still passes");
  await delChain(n, steps, b, resB);
});

test("GC removes the rules of attachments not in cni.dev/valid-attachments, only for its network", async (t) => {
  const { n, steps, a, b, resA, resB } = await twoAttachments(t);
  // The same container on another network (portmap alone, as a second attachment) must survive.
  const other = { ...a, mappings: [{ hostPort: 7070, containerPort: 80, protocol: "tcp" }] };
  const addOther = await callOne(n, PM, other, "ADD", resA, "1.0.0", { name: "othernet" });
  t.is(addOther.code, 0, addOther.stdout);
  const before = [...(await nftChains(n))!.keys()];
  t.is(before.length, 9, "three chains per attachment");

  const gc = (name: string, valid: unknown[]) =>
    callPlugin(n.node, join(OUR_BIN, "portmap"), { cniVersion: "1.1.0", name, type: "portmap", "cni.dev/valid-attachments": valid }, { command: "GC" });
  const r = await gc(n.net, [{ containerID: "ctr-b", ifname: "eth0" }]);
  t.is(r.code, 0, r.stdout);
  t.is((await chainsDnatTo(n, podIPv4(resB))).length, 2, "B's chains kept");
  const after = [...(await nftChains(n))!.keys()];
  t.is(after.length, 6, "A's three chains on this network are gone");
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), undefined, "A's host port closed");
  t.is(await probe(n.ext, "tcp", NODE_IP, 9090), `B ${EXT_IP}`, "B's host port still forwarded");
  t.is(await probe(n.ext, "tcp", NODE_IP, 7070), `A ${EXT_IP}`, "the other network's mapping is untouched");
  t.is(await checkChain(n, steps, b, resB), undefined);

  const r2 = await gc("othernet", []);
  t.is(r2.code, 0, r2.stdout);
  t.is(await probe(n.ext, "tcp", NODE_IP, 7070), undefined);
  t.is([...(await nftChains(n))!.keys()].length, 3, "only B's chains are left");
  const r3 = await gc(n.net, [{ containerID: "ctr-b", ifname: "eth0" }]);
  t.is(r3.code, 0, "GC again changes nothing and succeeds");
  await delChain(n, steps, b, resB);
  await delChain(n, [steps[0]!], a, resA);
});

test("CHECK passes on an IPv4-only pod and fails after a rule is deleted by hand or the mapping changes", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const res = await addChain(n, steps, a);
  t.is(podIPv6(res), undefined, "IPv4-only pod");
  t.is(await checkChain(n, steps, a, res), undefined);

  const changed = await callOne(n, PM, { ...a, mappings: both(8081, 80) }, "CHECK", res);
  t.is(changed.code, 1, "CHECK with another mapping fails");
  t.regex(changed.json.details, /tcp\/8081/);

  const [pre] = (await chainsDnatTo(n, podIPv4(res))).filter((c) => c.endsWith("-pre"));
  const chain = (await nftChains(n))!.get(pre!)!;
  const dnatRule = chain.rules.find((r) => r.comment === `udp/8080 to ${podIPv4(res)} port 80`)!;
  t.truthy(dnatRule);
  await inNetns(n.node, NFT, ["delete", "rule", "inet", TABLE, pre!, "handle", String(dnatRule.handle)]);
  const check = await callOne(n, PM, a, "CHECK", res);
  t.is(check.code, 1);
  t.is(check.json.code, 104);
  t.regex(check.json.msg, /rule "udp\/8080 to .* port 80" is missing/);

  // ADD again (a runtime retry) rewrites the chains instead of duplicating them
  const again = await callOne(n, PM, a, "ADD", res);
  t.is(again.code, 0, again.stdout);
  t.is(await checkChain(n, steps, a, res), undefined);
  t.is((await nftChains(n))!.get(pre!)!.rules.length, chain.rules.length);

  await inNetns(n.node, "sysctl", ["-q", "-w", `net.ipv4.conf.${n.bridge}.route_localnet=0`]);
  const noLocalnet = await callOne(n, PM, a, "CHECK", res);
  t.is(noLocalnet.code, 1);
  t.regex(noLocalnet.json.details, /route_localnet is off/);
  await delChain(n, steps, a, res);
});

test("snat=false: no masquerade marks and no route_localnet; outside traffic still forwarded, hairpin is not", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), portmapStep(OUR_BIN, { snat: false })];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  await startServers(t, a.pod, 80, "A");
  const res = await addChain(n, steps, a);
  const chains = (await nftChains(n))!;
  t.false([...chains.values()].some((c) => c.rules.some((r) => r.expr.some((e: any) => e.mangle || e.masquerade !== undefined))), "no mark or masquerade rules");
  t.is(await routeLocalnet(n, n.bridge), "0");
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), `A ${EXT_IP}`);
  t.is(await probe(n.node, "tcp", NODE_IP, 8080), `A ${NODE_IP}`);
  t.is(await probe(a.pod, "tcp", NODE_IP, 8080), undefined, "hairpin needs the masquerade snat provides");
  t.is(await checkChain(n, steps, a, res), undefined);
  await delChain(n, steps, a, res);
});

test("masqAll masquerades every source; markMasqBit picks the mark", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), portmapStep(OUR_BIN, { masqAll: true, markMasqBit: 5 })];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  await startServers(t, a.pod, 80, "A");
  const res = await addChain(n, steps, a);
  const post = await masqChainFor(n, podIPv4(res));
  t.true(post!.rules[0]!.expr.some((e: any) => e.match?.left?.["&"]?.[1] === 0x20), "masquerades mark bit 5");
  const pre = (await nftChains(n))!.get((await chainsDnatTo(n, podIPv4(res))).find((c) => c.endsWith("-pre"))!)!;
  t.true(pre.rules.some((r) => r.expr.some((e: any) => e.mangle?.value?.["|"]?.[1] === 0x20)), "sets mark bit 5");
  t.false(pre.rules.some((r) => r.expr.some((e: any) => e.match?.left?.payload?.field === "saddr")), "for every source");
  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.ext, proto, NODE_IP, 8080), `A ${n.gateway}`, `${proto} from outside is masqueraded`);
    t.is(await probe(a.pod, proto, NODE_IP, 8080), `A ${n.gateway}`);
    t.is(await probe(n.node, proto, "127.0.0.1", 8080), `A ${n.gateway}`);
  }
  t.is(await checkChain(n, steps, a, res), undefined);
  await delChain(n, steps, a, res);
});

test("conditionsV4 limit which traffic is forwarded", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), portmapStep(OUR_BIN, { conditionsV4: [`ip saddr != ${EXT_IP}`] })];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  await startServers(t, a.pod, 80, "A");
  const res = await addChain(n, steps, a);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), undefined, "the excluded source is not forwarded");
  t.is(await probe(n.node, "tcp", NODE_IP, 8080), `A ${NODE_IP}`);
  t.is(await checkChain(n, steps, a, res), undefined);
  await delChain(n, steps, a, res);
});

test("dual-stack pod: IPv6 host ports from outside, the node and the pod itself; CHECK covers both families", async (t) => {
  const n = await setupNode(t, { dualStack: true });
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  await startServers(t, a.pod, 80, "A");
  const res = await addChain(n, steps, a);
  const ip6 = podIPv6(res)!;
  t.truthy(ip6);
  t.is((await chainsDnatTo(n, ip6)).length, 2, "IPv6 DNAT rules in both chains");
  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.ext, proto, NODE_IP6, 8080), `A ${EXT_IP6}`, `${proto} over IPv6 from outside`);
    t.is(await probe(n.node, proto, NODE_IP6, 8080), `A ${NODE_IP6}`, `${proto} over IPv6 from the node`);
    t.is(await probe(a.pod, proto, NODE_IP6, 8080), `A ${n.gateway6}`, `${proto} IPv6 hairpin, masqueraded`);
    t.is(await probe(n.ext, proto, NODE_IP, 8080), `A ${EXT_IP}`, `${proto} over IPv4 still`);
  }
  t.is(await checkChain(n, steps, a, res), undefined);
  // delete the IPv6 DNAT rule only: CHECK notices
  const pre = (await chainsDnatTo(n, ip6)).find((c) => c.endsWith("-pre"))!;
  const rule = (await nftChains(n))!.get(pre)!.rules.find((r) => r.expr.some((e: any) => e.dnat?.addr === ip6))!;
  await inNetns(n.node, NFT, ["delete", "rule", "inet", TABLE, pre, "handle", String(rule.handle)]);
  const check = await callOne(n, PM, a, "CHECK", res);
  t.is(check.code, 1);
  t.regex(check.json.msg, new RegExp(`to ${ip6.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} port 80`));
  await delChain(n, steps, a, res);
  t.deepEqual(await chainsDnatTo(n, ip6), []);
});

test("ADD clears stale UDP conntrack entries so a client already sending reaches the new pod", async (t) => {
  const n = await setupNode(t);
  const bridge = bridgeStep(n, MAIN_BRIDGE_DIR);
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: [{ hostPort: 8085, containerPort: 85, protocol: "UDP" }] };
  // Another pod with a host port already on the node: connection tracking is active, as on
  // any real node (a netns with no NAT or stateful rule tracks nothing).
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n), mappings: both(9090, 80) };
  const resB = await addChain(n, [bridge, PM], b);
  const [resBridge] = await addChainAll(n, [bridge], a);
  await startServer(t, a.pod, "udp", 85, "A");
  // The client sends before the host port exists: the node answers port-unreachable and keeps
  // an un-NATed conntrack entry, refreshed by every datagram of the same flow.
  const answer = probe(n.ext, "udp", NODE_IP, 8085, { timeoutMs: 6000, localPort: 40123 });
  await new Promise((r) => setTimeout(r, 800));
  const ct = await inNetns(n.node, "conntrack", ["-L", "-p", "udp", "--orig-port-dst", "8085"], { reject: false });
  t.regex(String(ct.stdout), /dport=8085 .*UNREPLIED/, "a stale entry exists before ADD");
  const add = await callOne(n, PM, a, "ADD", resBridge);
  t.is(add.code, 0, add.stdout);
  t.is(await answer, `A ${EXT_IP}`, "the same flow is forwarded once ADD cleared its entry");
  await delChain(n, [bridge, PM], a, add.json);
  await delChain(n, [bridge, PM], b, resB);
});

test("two containers claiming one host port: the newer gets it (last write wins, as the reference), the older takes it back after its DEL", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, MAIN_BRIDGE_DIR), PM];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  await Promise.all([startServers(t, a.pod, 80, "A"), startServers(t, b.pod, 80, "B")]);
  const resA = await addChain(n, steps, a);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), `A ${EXT_IP}`);
  const resB = await addChain(n, steps, b);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), `B ${EXT_IP}`);
  await delChain(n, steps, b, resB);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), `A ${EXT_IP}`);
  t.is(await probe(n.ext, "udp", NODE_IP, 8080), `A ${EXT_IP}`);
  await delChain(n, steps, a, resA);
});
