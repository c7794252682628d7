// A hostNetwork pod, as Kubernetes runs one: in the node's network namespace, with the node's IP as
// its pod IP and the node's name as its hostname, no CNI attachment (no veth, no IP reservation),
// reached at the node's address from outside the node and from a pod, its HTTP readiness probe
// answered there; a restarted kubelet adopts it; removing it leaves the node and its other pods
// as they were.
import test from "ava";
import { statSync } from "node:fs";
import { inNetns } from "../helpers/netns.ts";
import { eventually, httpClient, httpServer, startNode } from "./harness.ts";

const PORT = 18080;

test("a hostNetwork pod runs on the node's network: the node's IP and name, reached from outside and from a pod, no CNI", async (t) => {
  const n = await startNode(t);
  n.writeManifest("hn", {
    hostNetwork: true,
    containers: [{ name: "c", image: "host", command: httpServer(PORT), readinessProbe: { httpGet: { path: "/", port: PORT }, periodSeconds: 1 } }],
  });
  n.writeManifest("client", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] });
  const [hn, client] = await Promise.all([n.waitRunning("hn"), n.waitRunning("client")]);
  t.is(hn.status?.podIP, n.nodeIP, "a hostNetwork pod's IP is the node's");
  t.deepEqual(hn.status?.podIPs, [{ ip: n.nodeIP }]);
  t.is(hn.status?.hostIP, n.nodeIP);
  const clientIP = client.status!.podIP!;
  t.not(clientIP, n.nodeIP);

  // Its process is in the node's netns; only the other pod has a veth and an IP reservation.
  const pid = (await n.runtime.containerStatus({ containerId: await n.containerId("hn", "c"), verbose: true })).info!.pid;
  t.is(statSync(`/proc/${pid}/ns/net`).ino, statSync(n.node.path).ino);
  t.deepEqual(n.ipReservations(), [clientIP], "one IP reserved: the other pod's");
  t.is((await n.exec("hn", "c", ["hostname"])).stdout.trim(), n.name, "the node's name as hostname");

  const fromOutside = await eventually("the pod to answer at the node's address from outside", async () => {
    const [, ...args] = httpClient(n.nodeIP, PORT);
    const r = await inNetns(n.outside, process.execPath, args, { reject: false });
    return r.exitCode === 0 ? String(r.stdout) : undefined;
  });
  t.is(fromOutside, `${n.name} ${n.nodeIP.replace(/\.\d+$/, ".1")}`, "served by the pod, to the outside's own address");
  const fromPod = await eventually("the pod to answer at the node's address from another pod", async () => {
    const r = await n.exec("client", "c", httpClient(n.nodeIP, PORT));
    return r.exitCode === 0 ? r.stdout : undefined;
  });
  t.is(fromPod, `${n.name} ${clientIP}`, "from a pod, with the pod's own address as source");

  // A kubelet killed and started again adopts the pod: there is no CNI result to find for it.
  const cid = await n.containerId("hn", "c");
  await n.kill9Kubelet();
  await n.startKubelet();
  const adopted = await n.waitRunning("hn");
  t.is(adopted.status?.podIP, n.nodeIP);
  t.is(await n.containerId("hn", "c"), cid, "same container");
  t.is(adopted.status?.containerStatuses?.[0]?.restartCount, 0);

  await n.recordSandboxes();
  n.removeManifest("hn");
  await eventually("the hostNetwork pod to go", async () => !(await n.pod("hn")));
  t.is(await n.healthz(), 200, "the kubelet is still there");
  t.deepEqual(n.ipReservations(), [clientIP], "the other pod keeps its IP");
  const again = await n.exec("client", "c", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
  t.true(again.stdout.includes(`${clientIP}/`), "and its network");
  n.removeManifest("client");
  await eventually("the pods to go", async () => (await n.pods()).length === 0);
  await n.assertNoLeaks(t);
});
