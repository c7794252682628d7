// Standalone kubelet (static pods from a manifest dir) on a test node netns: containers of a pod
// share localhost and the hostname, pods reach each other by IP without NAT, a hostPort reaches a
// pod from the node and from another pod, and a removed pod leaves nothing behind.
import test from "ava";
import { execa } from "execa";
import { inNetns } from "../helpers/netns.ts";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { defaultCniBin, eventually, httpClient, httpServer, startNode } from "./harness.ts";

// The same kubelet behind our plugins and behind the reference plugins (only --cni-bin-dir differs).
const PLUGIN_SETS: [string, string][] = defaultCniBin() === OUR_BIN ? [["our plugins", OUR_BIN], ["reference plugins", REF_BIN]] : [["reference plugins", REF_BIN]];

test.serial("a pod of two containers shares localhost and the pod's hostname", async (t) => {
  const n = await startNode(t);
  n.writeManifest("duo", {
    containers: [
      { name: "server", image: "host", command: httpServer(8080) },
      { name: "client", image: "host", command: ["sleep", "3600"] },
    ],
  });
  const pod = await n.waitRunning("duo");
  const full = n.podName("duo");
  t.is(pod.metadata.name, full);
  t.truthy(pod.status?.podIP, "the pod has an IP");
  t.is(pod.status?.containerStatuses?.length, 2);
  const body = await eventually("the server to answer over localhost", async () => {
    const r = await n.exec("duo", "client", httpClient("127.0.0.1", 8080));
    return r.exitCode === 0 ? r.stdout : undefined;
  });
  const [hostname, peer] = body.split(" ");
  t.is(hostname, full, "the server sees the pod's hostname");
  t.is(peer, "127.0.0.1", "the client came over loopback");
  const h = await n.exec("duo", "client", ["hostname"]);
  t.is(h.stdout.trim(), full, "the other container sees the same hostname");
  // The kubelet's CNI ADD for lo and eth0, with the pod's IP on eth0.
  const ip = await n.exec("duo", "client", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
  t.true(ip.stdout.includes(`${pod.status!.podIP}/`), ip.stdout);
  await n.recordSandboxes();
  n.removeManifest("duo");
  await eventually("the pod to go", async () => !(await n.pod("duo")));
  await n.assertNoLeaks(t, "the removed pod leaves nothing behind");
});

for (const [label, cniBin] of PLUGIN_SETS) {
  test.serial(`two pods reach each other by pod IP and see each other's real address (${label})`, async (t) => {
    const n = await startNode(t, { cniBin });
    n.writeManifest("a", { containers: [{ name: "c", image: "host", command: httpServer(8080) }] });
    n.writeManifest("b", { containers: [{ name: "c", image: "host", command: httpServer(8080) }] });
    const [a, b] = await Promise.all([n.waitRunning("a"), n.waitRunning("b")]);
    const aIP = a.status!.podIP!;
    const bIP = b.status!.podIP!;
    t.not(aIP, bIP);
    // The IP each pod has on its own eth0 is the source the other one sees.
    const aOwn = (await n.exec("a", "c", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).stdout;
    t.true(aOwn.includes(`${aIP}/`));
    const fromA = await eventually("a to reach b", async () => {
      const r = await n.exec("a", "c", httpClient(bIP, 8080));
      return r.exitCode === 0 ? r.stdout : undefined;
    });
    t.is(fromA, `${n.podName("b")} ${aIP}`);
    const fromB = await eventually("b to reach a", async () => {
      const r = await n.exec("b", "c", httpClient(aIP, 8080));
      return r.exitCode === 0 ? r.stdout : undefined;
    });
    t.is(fromB, `${n.podName("a")} ${bIP}`);
    // hostIP and the podIPs list are reported as Kubernetes does.
    t.is(a.status?.hostIP, n.nodeIP);
    t.deepEqual(a.status?.podIPs, [{ ip: aIP }]);
    await n.recordSandboxes();
    n.removeManifest("a");
    n.removeManifest("b");
    await eventually("the pods to go", async () => (await n.pods()).length === 0);
    await n.assertNoLeaks(t);
  });

  test.serial(`a hostPort reaches the pod from the node and from another pod (${label})`, async (t) => {
    const n = await startNode(t, { cniBin });
    n.writeManifest("web", { containers: [{ name: "c", image: "host", command: httpServer(8080), ports: [{ containerPort: 8080, hostPort: 30888, protocol: "TCP" }] }] });
    n.writeManifest("client", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] });
    const [web] = await Promise.all([n.waitRunning("web"), n.waitRunning("client")]);
    const fromNode = await eventually("the hostPort from the node", async () => {
      const r = await inNetns(n.node, "curl", ["-s", "--max-time", "3", `http://${n.nodeIP}:30888/`], { reject: false });
      return r.exitCode === 0 && r.stdout ? String(r.stdout) : undefined;
    });
    t.true(fromNode.startsWith(`${n.podName("web")} `), fromNode);
    const fromPod = await eventually("the hostPort from another pod", async () => {
      const r = await n.exec("client", "c", ["curl", "-s", "--max-time", "3", `http://${n.nodeIP}:30888/`]);
      return r.exitCode === 0 && r.stdout ? r.stdout : undefined;
    });
    t.true(fromPod.startsWith(`${n.podName("web")} `), fromPod);
    // And from outside the node, through its eth0.
    const fromOutside = await eventually("the hostPort from outside the node", async () => {
      const r = await execa("nsenter", [`--net=${n.outside.path}`, "--", "curl", "-s", "--max-time", "3", `http://${n.nodeIP}:30888/`], { reject: false });
      return r.exitCode === 0 && r.stdout ? String(r.stdout) : undefined;
    });
    t.true(fromOutside.startsWith(`${n.podName("web")} `), fromOutside);
    t.truthy(web.status?.podIP);
    await n.recordSandboxes();
    n.removeManifest("web");
    n.removeManifest("client");
    await eventually("the pods to go", async () => (await n.pods()).length === 0);
    await n.assertNoLeaks(t, "no hostPort rule, veth, IP or process is left");
  });
}

test.serial("pod traffic leaving the cluster CIDR is masqueraded, pod-to-pod is not", async (t) => {
  const n = await startNode(t);
  n.writeManifest("out", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] });
  await n.waitRunning("out");
  // A server outside the node (in the "outside" netns) reports the source it sees.
  const server = execa("nsenter", [`--net=${n.outside.path}`, "--", ...httpServer(18080)], { reject: false });
  t.teardown(() => {
    server.kill("SIGKILL");
  });
  const gw = n.nodeIP.split(".").slice(0, 3).join(".") + ".1";
  const seen = await eventually("the outside server", async () => {
    const r = await n.exec("out", "c", httpClient(gw, 18080));
    return r.exitCode === 0 ? r.stdout : undefined;
  });
  t.is(seen.split(" ")[1], n.nodeIP, "the outside sees the node's address");
  const table = await inNetns(n.node, "/usr/sbin/nft", ["list", "table", "ip", "podnet-kubelet"]);
  t.regex(String(table.stdout), /masquerade/);
  await n.recordSandboxes();
  n.removeManifest("out");
  await eventually("the pod to go", async () => (await n.pods()).length === 0);
  await n.assertNoLeaks(t);
});
