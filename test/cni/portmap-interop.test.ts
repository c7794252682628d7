// Interoperability with Debian's reference plugins (/usr/lib/cni, v1.1.1): the reference portmap
// chained after our bridge + host-local, and our portmap after the reference bridge + host-local,
// each through ADD, CHECK and DEL with real traffic.
import test, { type ExecutionContext } from "ava";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { inNetns } from "../helpers/netns.ts";
import {
  addChain,
  bridgeStep,
  callOne,
  chainsDnatTo,
  checkChain,
  createPod,
  delChain,
  EXT_IP,
  HAVE_OUR_BRIDGE,
  NODE_IP,
  nftChains,
  podIPv4,
  portmapStep,
  probe,
  setupNode,
  startServers,
  type Attachment,
  type Node,
} from "./portmap-fixture.ts";

const both = (hostPort: number, containerPort: number) => [
  { hostPort, containerPort, protocol: "tcp" },
  { hostPort, containerPort, protocol: "udp" },
];

async function iptablesNat(n: Node): Promise<string> {
  return String((await inNetns(n.node, "iptables-save", ["-t", "nat"])).stdout);
}

/**
 * Every direction a host port is used from, for TCP and UDP. `otherSeenAs`: the source the pod
 * sees for another pod (the reference masquerades the whole pod subnet, ours keeps the source).
 */
async function assertReachable(t: ExecutionContext, n: Node, a: Attachment, other: Attachment, otherSeenAs: string, port: number): Promise<void> {
  for (const proto of ["tcp", "udp"] as const) {
    t.is(await probe(n.ext, proto, NODE_IP, port), `A ${EXT_IP}`, `${proto} from outside`);
    t.is(await probe(n.node, proto, NODE_IP, port), `A ${NODE_IP}`, `${proto} from the node`);
    t.is(await probe(n.node, proto, "127.0.0.1", port), `A ${n.gateway}`, `${proto} from the node's localhost`);
    t.is(await probe(other.pod, proto, NODE_IP, port), `A ${otherSeenAs}`, `${proto} from another pod`);
    t.is(await probe(a.pod, proto, NODE_IP, port), `A ${n.gateway}`, `${proto} from the pod itself`);
  }
}

test("the reference portmap chained after our bridge + host-local: ADD, CHECK, DEL with traffic", async (t) => {
  t.true(HAVE_OUR_BRIDGE, "our bridge and host-local are built (node scripts/build.mjs cni)");
  const n = await setupNode(t);
  const steps = [bridgeStep(n, OUR_BIN), portmapStep(REF_BIN)];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n) };
  await startServers(t, a.pod, 80, "A");
  const resA = await addChain(n, steps, a);
  const resB = await addChain(n, steps, b);
  t.regex(await iptablesNat(n), new RegExp(`DNAT --to-destination ${podIPv4(resA).replace(/\./g, "\\.")}:80`));
  await assertReachable(t, n, a, b, n.gateway, 8080);

  // CHECK: our bridge passes; the reference portmap 1.1.1 fails on every pod, looking for its
  // IPv4 chain in ip6tables (containernetworking/plugins#819), which ours does not.
  const bridgeCheck = await checkChain(n, [steps[0]!], a, resA);
  t.is(bridgeCheck, undefined, "our bridge's CHECK passes under the reference portmap");
  const refCheck = await callOne(n, steps[1]!, a, "CHECK", resA);
  t.is(refCheck.code, 1);
  t.regex(refCheck.json.msg, /could not check ipv6 dnat/, "the reference's known CHECK defect, not a wrong setup");
  const ourCheck = await callOne(n, portmapStep(OUR_BIN), a, "CHECK", resA);
  t.is(ourCheck.code, 1, "our portmap sees that its own rules are not there (the reference made iptables rules)");

  await delChain(n, steps, a, resA);
  t.notRegex(await iptablesNat(n), /CNI-DN-/, "the reference DEL removed its chain");
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), undefined);
  await delChain(n, steps, b, resB);
});

test("our portmap chained after the reference bridge + host-local: ADD, CHECK, DEL with traffic", async (t) => {
  const n = await setupNode(t);
  const steps = [bridgeStep(n, REF_BIN), portmapStep(OUR_BIN)];
  const a: Attachment = { containerID: "ctr-a", ifname: "eth0", pod: await createPod(t, n), mappings: both(8080, 80) };
  const b: Attachment = { containerID: "ctr-b", ifname: "eth0", pod: await createPod(t, n) };
  await startServers(t, a.pod, 80, "A");
  const resA = await addChain(n, steps, a);
  const resB = await addChain(n, steps, b);
  t.is((await chainsDnatTo(n, podIPv4(resA))).length, 2);
  await assertReachable(t, n, a, b, podIPv4(resB), 8080);
  t.is(await checkChain(n, steps, a, resA), undefined, "CHECK through the whole chain passes (IPv4-only pod)");
  t.is(await checkChain(n, steps, b, resB), undefined, "and for the pod without host ports");

  await delChain(n, steps, a, resA);
  t.deepEqual(await chainsDnatTo(n, podIPv4(resA)), []);
  t.deepEqual([...(await nftChains(n))!.keys()], []);
  t.is(await probe(n.ext, "tcp", NODE_IP, 8080), undefined);
  const again = await callOne(n, steps[1]!, a, "DEL", resA);
  t.is(again.code, 0, "DEL again succeeds");
  await delChain(n, steps, b, resB);
});
