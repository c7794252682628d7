// A pod of two containers on a real runtime daemon: shared localhost, the pod's hostname, its
// /etc/hosts and /etc/resolv.conf, CRI logs through the API and crictl, ExecSync.
import test from "ava";
import { execa } from "execa";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { parseLogLine } from "../../runtime/cri/logformat.ts";
import { RuntimeApiError } from "../../runtime/cri/client.ts";
import { eventually, ipLinkUp, isAlive, startRuntimeNode } from "./harness.ts";

const PORT = 8080;

/** Live `sleep ARG` processes. */
function sleepersWith(arg: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8") === `sleep\0${arg}\0` && isAlive(Number(p));
      } catch {
        return false;
      }
    })
    .map(Number);
}
const SERVER = `require("http").createServer((q, s) => s.end("hello from " + require("os").hostname())).listen(${PORT}, () => console.log("listening on ${PORT}"));`;
// Retries until the server answers, prints what it got, then stays up.
const CLIENT = `
const tryOnce = () => fetch("http://localhost:${PORT}/").then((r) => r.text()).then((t) => { console.log("got: " + t); console.error("client done"); }, () => setTimeout(tryOnce, 100));
tryOnce();
setInterval(() => {}, 1000);`;

test("a sandbox of two containers: localhost between them, the pod's hostname, /etc/hosts, resolv.conf, logs, exec", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const name = "web-0";
  const pod = await rn.runPod({
    metadata: { name, namespace: "shop", uid: "0b8e" },
    dnsConfig: { servers: ["10.96.0.10"], searches: ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"], options: ["ndots:5"] },
    labels: { app: "web" },
  });
  t.regex(pod.netnsName, new RegExp(`^${rn.prefix}[0-9a-f]{12}$`), "netns name = daemon prefix + short hash");
  t.is(pod.netnsPath, `/run/netns/${pod.netnsName}`);
  // No CNI here: the test brings the sandbox's lo up itself (the runtime leaves it down).
  const lo = JSON.parse((await execa("ip", ["-n", pod.netnsName, "-j", "link", "show", "lo"])).stdout)[0];
  t.false(lo.flags.includes("UP"), "the runtime does not bring lo up; CNI loopback does");
  await ipLinkUp(pod.netnsName);
  await rt.setPodSandboxNetwork({ podSandboxId: pod.id, ips: ["10.244.7.9", "fd00:10:244::9"] });

  const status = await rt.podSandboxStatus({ podSandboxId: pod.id });
  t.is(status.status.state, "SANDBOX_READY");
  t.is(status.status.network.ip, "10.244.7.9");
  t.deepEqual(status.status.network.additionalIps, [{ ip: "fd00:10:244::9" }]);
  t.is(status.status.linux.namespaces.options.netnsPath, pod.netnsPath);
  t.deepEqual(status.status.metadata, { name, namespace: "shop", uid: "0b8e", attempt: 0 });

  const server = await rn.runContainer(pod.id, "server", ["node", "-e", SERVER]);
  await rn.waitForLog(server.id, `listening on ${PORT}`);
  const client = await rn.runContainer(pod.id, "client", ["node", "-e", CLIENT], { envs: [{ key: "GREETING", value: "hi there" }] });
  const clientLog = await rn.waitForLog(client.id, "got: ");
  t.true(clientLog.includes(`got: hello from ${name}`), clientLog);

  // Both containers are in the pod's namespaces: the hostname, the netns, the pod's files.
  for (const c of [server, client]) {
    const h = await rt.execSync({ containerId: c.id, cmd: ["hostname"], timeout: 10 });
    t.is(h.stdout.trim(), name);
    t.is(h.exitCode, 0);
    const hosts = await rt.execSync({ containerId: c.id, cmd: ["cat", "/etc/hosts"] });
    t.regex(hosts.stdout, /^10\.244\.7\.9\tweb-0$/m);
    t.regex(hosts.stdout, /^fd00:10:244::9\tweb-0$/m);
    t.regex(hosts.stdout, /^127\.0\.0\.1\tlocalhost$/m);
    const resolv = await rt.execSync({ containerId: c.id, cmd: ["cat", "/etc/resolv.conf"] });
    t.is(resolv.stdout, "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n");
  }
  t.false(readFileSync("/etc/hosts", "utf8").includes("10.244.7.9"), "the host's /etc/hosts is untouched");
  const ss = await rt.execSync({ containerId: client.id, cmd: ["node", "-e", `fetch("http://127.0.0.1:${PORT}").then(r => r.text()).then(console.log)`] });
  t.is(ss.stdout.trim(), `hello from ${name}`, "exec'd commands share the pod's localhost too");
  const env = await rt.execSync({ containerId: client.id, cmd: ["sh", "-c", 'echo "$GREETING|$HOSTNAME|$PATH"'] });
  const [greeting, hostname, path] = env.stdout.trim().split("|");
  t.is(greeting, "hi there");
  t.is(hostname, name);
  t.true(path!.split(":").some((d) => d.endsWith("/dist")), `PATH has podnet's dist/: ${path}`);
  t.true(path!.split(":").includes("/usr/bin"));
  const which = await rt.execSync({ containerId: client.id, cmd: ["sh", "-c", "command -v podnet"] });
  t.is(which.exitCode, 0, "`podnet` is on the containers' PATH");

  // SetPodSandboxNetwork again rewrites the file the pod sees (the bind mount follows it).
  await rt.setPodSandboxNetwork({ podSandboxId: pod.id, ips: ["10.244.7.10"], hostAliases: [{ ip: "10.1.2.3", hostnames: ["db.example", "db"] }] });
  const hosts2 = await rt.execSync({ containerId: server.id, cmd: ["cat", "/etc/hosts"] });
  t.regex(hosts2.stdout, /^10\.244\.7\.10\tweb-0$/m);
  t.notRegex(hosts2.stdout, /10\.244\.7\.9/);
  t.regex(hosts2.stdout, /^10\.1\.2\.3\tdb\.example\tdb$/m);

  // Logs: CRI format through the API, stdout and stderr tagged.
  const logs = await rn.logs(client.id);
  for (const l of logs) t.regex(l.line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] /);
  t.deepEqual(
    logs.map((l) => [l.rec!.stream, l.rec!.text]),
    [
      ["stdout", `got: hello from ${name}`],
      ["stderr", "client done"],
    ],
  );
  t.deepEqual((await rn.logs(client.id, 1)).map((l) => l.rec!.text), ["client done"], "tail 1");
  // The file itself is where ContainerStatus says, in the same format.
  const st = await rt.containerStatus({ containerId: client.id });
  t.is(readFileSync(st.status.logPath, "utf8").trim().split("\n").length, 2);
  t.is(st.status.state, "CONTAINER_RUNNING");
  t.not(st.status.startedAt, "0");
  t.true(BigInt(st.status.startedAt) >= BigInt(st.status.createdAt));

  // Through crictl: plain text, stderr lines on stderr.
  const cl = await rn.crictl("logs", client.id.slice(0, 8));
  t.is(cl.code, 0, cl.stderr);
  t.is(cl.stdout, `got: hello from ${name}\n`);
  t.is(cl.stderr, "client done\n");

  // ExecSync: output, exit codes, stdin, timeouts.
  const r = await rt.execSync({ containerId: server.id, cmd: ["sh", "-c", "echo out; echo err >&2; exit 7"] });
  t.deepEqual(r, { stdout: "out\n", stderr: "err\n", exitCode: 7 });
  const missing = await rt.execSync({ containerId: server.id, cmd: ["no-such-command-here"] });
  t.is(missing.exitCode, 127);
  const cat = await rt.execSync({ containerId: server.id, cmd: ["tr", "a-z", "A-Z"], stdin: "shout\n" });
  t.is(cat.stdout, "SHOUT\n");
  const marker = `60.${Date.now() % 100000}`;
  const slow = await rt.execSync({ containerId: server.id, cmd: ["sh", "-c", `sleep ${marker} & sleep ${marker}`], timeout: 1 }).catch((e: unknown) => e);
  t.true(slow instanceof RuntimeApiError);
  t.is((slow as RuntimeApiError).code, "DeadlineExceeded");
  t.is((slow as RuntimeApiError).httpStatus, 504);
  await eventually(() => !sleepersWith(marker).length, "the timed-out command and its children to be killed");
  const inWd = await rt.execSync({ containerId: server.id, cmd: ["pwd"] });
  t.is(inWd.stdout.trim(), "/");

  // Stop and remove: no netns, process, state or log is left.
  await rt.stopPodSandbox({ podSandboxId: pod.id });
  t.is((await rt.podSandboxStatus({ podSandboxId: pod.id })).status.state, "SANDBOX_NOTREADY");
  for (const c of [server, client]) {
    const s = await rt.containerStatus({ containerId: c.id });
    t.is(s.status.state, "CONTAINER_EXITED");
    t.is(s.status.exitCode, 137, "StopPodSandbox kills what still runs");
    t.false(isAlive(c.pid));
  }
  t.false(isAlive(pod.holder));
  t.true(existsSync(pod.netnsPath), "the netns stays until RemovePodSandbox (the kubelet's CNI DEL needs it)");
  await rt.stopPodSandbox({ podSandboxId: pod.id }); // idempotent
  await rt.removePodSandbox({ podSandboxId: pod.id });
  await rt.removePodSandbox({ podSandboxId: pod.id }); // idempotent
  await eventually(() => !(isAlive(server.pid) || isAlive(client.pid)), "containers gone");
  t.deepEqual((await rt.listContainers()).containers, []);
  await rn.removeAllAndCheck(t);
});

test("a container's output: long lines split into P records, an unterminated last line, stderr", async (t) => {
  const rn = await startRuntimeNode(t);
  const pod = await rn.runPod();
  // 40000 characters then a newline, then "tail" without one.
  const c = await rn.runContainer(pod.id, "writer", ["node", "-e", 'process.stdout.write("x".repeat(40000) + "\\n"); process.stderr.write("oops\\n"); process.stdout.write("tail")']);
  await eventually(async () => (await rn.client.containerStatus({ containerId: c.id })).status.state === "CONTAINER_EXITED", "writer exits");
  const recs = (await rn.logs(c.id)).map((l) => parseLogLine(l.line)!);
  const out = recs.filter((r) => r.stream === "stdout");
  t.deepEqual(
    out.map((r) => [r.partial, r.text.length]),
    [
      [true, 16384],
      [true, 16384],
      [false, 40000 - 2 * 16384],
      [false, 4],
    ],
  );
  t.is(out.slice(0, 3).map((r) => r.text).join(""), "x".repeat(40000));
  t.is(out[3]!.text, "tail");
  t.deepEqual(recs.filter((r) => r.stream === "stderr").map((r) => r.text), ["oops"]);
  const cl = await rn.crictl("logs", c.id);
  t.is(cl.stdout, "x".repeat(40000) + "\ntail\n");
  const st = await rn.client.containerStatus({ containerId: c.id });
  t.is(st.status.exitCode, 0);
  t.is(st.status.reason, "Completed");
  t.true(BigInt(st.status.finishedAt) >= BigInt(st.status.startedAt));
  await rn.removeAllAndCheck(t);
});

test("logs follow: new lines stream until the container exits; ReopenContainerLog moves to a new file", async (t) => {
  const rn = await startRuntimeNode(t);
  const pod = await rn.runPod();
  const trigger = `${rn.base}/go`;
  const c = await rn.runContainer(pod.id, "ticker", ["sh", "-c", 'echo first; while [ ! -e "$1" ]; do sleep 0.05; done; echo second; sleep 0.5; echo third', "sh", trigger]);
  await rn.waitForLog(c.id, "first");
  // Rotate as the kubelet does: rename, then ask the runtime to reopen.
  const logPath = (await rn.client.containerStatus({ containerId: c.id })).status.logPath;
  renameSync(logPath, `${logPath}.1`);
  await rn.client.reopenContainerLog({ containerId: c.id });
  t.true(existsSync(logPath), "the monitor made a new log file");
  const got: string[] = [];
  const follow = (async () => {
    for await (const line of rn.client.containerLogs({ containerId: c.id, follow: true })) got.push(parseLogLine(line)!.text);
  })();
  writeFileSync(trigger, "");
  await follow; // ends by itself once the container has exited
  t.deepEqual(got, ["second", "third"]);
  t.is(readFileSync(`${logPath}.1`, "utf8").trim().split(" ").pop(), "first");
  const crictlFollow = await rn.crictl("logs", "-f", c.id);
  t.is(crictlFollow.stdout, "second\nthird\n");
  rmSync(`${logPath}.1`);
  await rn.removeAllAndCheck(t);
});
