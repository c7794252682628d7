// A sandbox on the node's network (CRI namespaceOptions.network NODE, what the kubelet asks for a
// hostNetwork pod): no netns of its own, its processes in the node's netns, its own hostname;
// stopping it ends the pod's processes, escaped ones included, and nothing else of the node.
import test from "ava";
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { RuntimeApiError } from "../../runtime/cri/client.ts";
import type { PodSandboxConfig } from "../../runtime/cri/types.ts";
import { inNetns } from "../helpers/netns.ts";
import { eventually, isAlive, startRuntimeNode } from "./harness.ts";

const netnsIno = (pid: number) => statSync(`/proc/${pid}/ns/net`).ino;
/** A sleep duration no other process has: its command line finds it. */
const uniqueSeconds = () => `1000.${randomInt(1e9)}`;

/** Live processes whose command line is exactly `argv`. */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join("\0") + "\0";
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8") === want && isAlive(Number(p));
      } catch {
        return false;
      }
    })
    .map(Number);
}

const hostNetworkConfig = (name: string, network = "NODE"): PodSandboxConfig => ({
  metadata: { name, namespace: "default", uid: `uid-${name}`, attempt: 0 },
  hostname: "node-a",
  linux: { securityContext: { namespaceOptions: { network } } },
});

test("a sandbox on the node's network: no netns of its own, the node's netns, its own hostname; stop ends only the pod", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const nodeIno = statSync(rn.node.path).ino;
  // A process of the node that is not the pod's: it must survive the pod.
  const marker = uniqueSeconds();
  const bystander = spawn("nsenter", [`--net=${rn.node.path}`, "--", "sleep", marker], { stdio: "ignore" });
  t.teardown(() => bystander.kill("SIGKILL"));
  await eventually(() => pidsRunning(["sleep", marker]).length === 1, "the bystander");

  const { podSandboxId, netnsPath } = await rt.runPodSandbox({ config: hostNetworkConfig("hostnet-0") });
  t.is(netnsPath, "", "no netns path: the pod has no netns of its own");
  t.deepEqual(readdirSync("/run/netns").filter((n) => n.startsWith(rn.prefix)), [], "no netns made");
  const st = await rt.podSandboxStatus({ podSandboxId, verbose: true });
  t.is(st.status.state, "SANDBOX_READY");
  t.is(st.status.linux.namespaces.options.network, "NODE");
  t.is(st.status.linux.namespaces.options.netnsPath, "");
  const holder = st.info!.pid;
  rn.remember(holder);
  t.is(netnsIno(holder), nodeIno, "the holder is in the node's netns");
  t.not(statSync(`/proc/${holder}/ns/uts`).ino, statSync("/proc/self/ns/uts").ino, "but in a UTS namespace of its own");
  const inspected = await rn.crictl("inspectp", "-o", "json", podSandboxId);
  t.is(inspected.code, 0, inspected.stderr);
  t.is(JSON.parse(inspected.stdout).status.linux.namespaces.options.network, "NODE", "crictl inspectp shows the mode");
  t.regex((await rn.crictl("pods")).stdout, /hostnet-0/);

  // A server in the pod, reached in the node's netns; and a child that leaves the container's session.
  const escaped = uniqueSeconds();
  const server = `require("http").createServer((q, s) => s.end(require("os").hostname())).listen(0, "127.0.0.1", function () { console.log("port " + this.address().port); });`;
  const c = await rn.runContainer(podSandboxId, "server", ["sh", "-c", `setsid sleep ${escaped} & exec node -e '${server}'`]);
  t.is(netnsIno(c.pid), nodeIno, "the container is in the node's netns");
  const port = Number(/port (\d+)/.exec(await rn.waitForLog(c.id, "port "))![1]);
  const got = await inNetns(rn.node, process.execPath, ["-e", `fetch("http://127.0.0.1:${port}/").then((r) => r.text()).then(console.log)`]);
  t.is(String(got.stdout).trim(), "node-a", "served from the node's netns, with the pod's hostname");
  const [escapedPid] = await eventually(() => {
    const p = pidsRunning(["sleep", escaped]);
    return p.length ? p : undefined;
  }, "the escaped child");
  rn.remember(escapedPid!);

  await rt.stopPodSandbox({ podSandboxId });
  t.false(isAlive(holder), "holder gone");
  t.false(isAlive(c.pid), "container gone");
  t.false(isAlive(escapedPid!), "the child that left the container's session is gone: it was in the pod's UTS namespace");
  t.deepEqual(pidsRunning(["sleep", marker]), [bystander.pid], "the node's other process lives on");
  t.is(rn.daemon!.exitCode, null, "and so does the runtime");
  await rn.removeAllAndCheck(t);
});

test("namespaceOptions.network other than POD and NODE is refused, naming the field", async (t) => {
  const rn = await startRuntimeNode(t);
  const err = await t.throwsAsync(rn.client.runPodSandbox({ config: hostNetworkConfig("hostnet-1", "TARGET") }));
  t.true(err instanceof RuntimeApiError, String(err));
  t.regex(err!.message, /config\.linux\.securityContext\.namespaceOptions\.network: must be POD or NODE, got "TARGET"/);
  t.deepEqual((await rn.client.listPodSandbox()).items, [], "nothing made");
});
