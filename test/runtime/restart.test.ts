// The daemon is not needed by running pods: kill -9 it, let things happen, start it again, and it
// adopts what runs and records what ended, with nothing orphaned.
import test from "ava";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { RuntimeApiError } from "../../runtime/cri/client.ts";
import { execa } from "execa";
import { ROOT } from "../helpers/cni.ts";
import { eventually, isAlive, podnetSrc, sleep, startRuntimeNode } from "./harness.ts";

const TICKER = ["sh", "-c", 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.05; done'];

function ticks(text: string): number[] {
  return [...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
}

test("kill -9 of the daemon: running containers are adopted, one that exited meanwhile is recorded with its exit code", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const pod = await rn.runPod({ metadata: { name: "survivor" } });
  await rt.setPodSandboxNetwork({ podSandboxId: pod.id, ips: ["10.244.1.2"] });
  const ticker = await rn.runContainer(pod.id, "ticker", TICKER);
  const trigger = `${rn.base}/trigger`;
  const waiter = await rn.runContainer(pod.id, "waiter", ["sh", "-c", 'echo waiting; while [ ! -e "$1" ]; do sleep 0.05; done; echo bye; exit 7', "sh", trigger]);
  const { containerId: later } = await rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "later" }, command: ["sleep", "1000"] } });
  // A second pod whose holder dies while the daemon is down.
  const doomed = await rn.runPod({ metadata: { name: "doomed" } });
  const doomedCtr = await rn.runContainer(doomed.id, "c", ["sleep", "1000"]);
  await rn.waitForLog(waiter.id, "waiting");
  const tickerLog = (await rt.containerStatus({ containerId: ticker.id })).status.logPath;

  await rn.kill9();
  t.true(isAlive(ticker.pid) && isAlive(waiter.pid) && isAlive(pod.holder), "pods live on without the daemon");
  writeFileSync(trigger, "");
  process.kill(doomed.holder, "SIGKILL");
  await eventually(() => !isAlive(waiter.pid), "the waiter to exit while the daemon is down");
  const before = ticks(readFileSync(tickerLog, "utf8")).length;
  await eventually(() => ticks(readFileSync(tickerLog, "utf8")).length > before + 5, "the ticker to keep logging with no daemon");

  await rn.start();
  const tk = await rt.containerStatus({ containerId: ticker.id, verbose: true });
  t.is(tk.status.state, "CONTAINER_RUNNING");
  t.is(tk.info!.pid, ticker.pid, "the same process, adopted");
  const w = (await rt.containerStatus({ containerId: waiter.id })).status;
  t.is(w.state, "CONTAINER_EXITED");
  t.is(w.exitCode, 7, "the exit code recorded by its monitor while the daemon was down");
  t.is(w.reason, "Error");
  t.true((await rn.waitForLog(waiter.id, "bye")).includes("bye"));
  t.is((await rt.containerStatus({ containerId: later })).status.state, "CONTAINER_CREATED");
  t.is((await rt.podSandboxStatus({ podSandboxId: pod.id })).status.state, "SANDBOX_READY");
  t.is((await rt.podSandboxStatus({ podSandboxId: pod.id })).status.network.ip, "10.244.1.2");
  t.is((await rt.podSandboxStatus({ podSandboxId: doomed.id })).status.state, "SANDBOX_NOTREADY", "a sandbox whose holder died reads not ready");

  // No line lost across the restart: the ticks are consecutive.
  const seq = ticks((await rn.logs(ticker.id)).map((l) => l.rec!.text).join("\n"));
  t.true(seq.length > before);
  t.deepEqual(seq, seq.map((_, i) => i));

  // The adopted containers work as before: exec, log reopen, start, stop.
  t.is((await rt.execSync({ containerId: ticker.id, cmd: ["hostname"] })).stdout.trim(), "survivor");
  await rt.reopenContainerLog({ containerId: ticker.id });
  await rt.startContainer({ containerId: later });
  t.is((await rt.containerStatus({ containerId: later })).status.state, "CONTAINER_RUNNING");
  await rt.stopContainer({ containerId: ticker.id, timeout: 5 });
  t.is((await rt.containerStatus({ containerId: ticker.id })).status.exitCode, 143, "sh ends on SIGTERM");
  t.false(isAlive(ticker.pid));

  // The doomed pod's container still ran in its netns; stopping the sandbox ends it.
  t.true(isAlive(doomedCtr.pid));
  await rt.stopPodSandbox({ podSandboxId: doomed.id });
  t.false(isAlive(doomedCtr.pid));
  await rn.removeAllAndCheck(t);
});

test("a container monitor killed while the daemon is down: the exit code is unknown and nothing runs unwatched", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const pod = await rn.runPod();
  const c = await rn.runContainer(pod.id, "orphan", ["sh", "-c", "trap '' PIPE; while :; do sleep 0.05; done"]);
  await rn.kill9();
  const shim = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .find((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(`podnet-shim ${rn.stateDir}/containers/${c.id}`);
      } catch {
        return false;
      }
    });
  t.truthy(shim, "the monitor is a process of its own, named after its container");
  process.kill(Number(shim), "SIGKILL");
  await eventually(() => !isAlive(Number(shim)), "the monitor to die");
  t.true(isAlive(c.pid));
  await rn.start();
  const st = (await rt.containerStatus({ containerId: c.id })).status;
  t.is(st.state, "CONTAINER_EXITED");
  t.is(st.exitCode, 255);
  t.is(st.reason, "Unknown");
  await eventually(() => !isAlive(c.pid), "the unwatched container to be killed");
  await rn.removeAllAndCheck(t);
});

test("kill -9 in the middle of RunPodSandbox and StartContainer calls: a restart converges, nothing leaks", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const pod = await rn.runPod();
  const ids = await Promise.all(
    Array.from({ length: 6 }, async (_, i) => (await rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: `c${i}` }, command: ["sleep", "1000"] } })).containerId),
  );
  // Many calls in flight; the daemon dies as soon as the first sandbox is made.
  const runs = Array.from({ length: 12 }, (_, i) => rn.client.runPodSandbox({ config: { metadata: { name: `p${i}`, namespace: "default", uid: `u${i}` } } }).catch((e: unknown) => e));
  const starts = ids.map((id) => rt.startContainer({ containerId: id }).catch((e: unknown) => e));
  await Promise.race(runs);
  await rn.kill9();
  const results = await Promise.all([...runs, ...starts]);
  t.true(results.some((r) => r instanceof RuntimeApiError || r instanceof Error), "some calls were cut off");

  await rn.start();
  t.log(`cut off: ${results.filter((r) => r instanceof Error).length} of ${results.length} calls; ${rn.daemonLog().split("\n").filter((l) => l.includes("recovery")).length} recovery actions`);
  // Every sandbox the runtime knows is whole and ready; every netns it made belongs to one of them.
  const items = (await rt.listPodSandbox()).items;
  for (const p of items) t.is(p.state, "SANDBOX_READY", `sandbox ${p.metadata.name}`);
  const known = new Set(await Promise.all(items.map(async (p) => (await rt.podSandboxStatus({ podSandboxId: p.id })).status.linux.namespaces.options.netnsPath)));
  const onHost = readdirSync("/run/netns")
    .filter((n) => n.startsWith(rn.prefix))
    .map((n) => `/run/netns/${n}`);
  t.deepEqual(onHost.sort(), [...known].sort(), "no netns without a sandbox");
  // Every container is either running (started before the kill) or cleanly created.
  for (const id of ids) {
    const st = await rt.containerStatus({ containerId: id, verbose: true });
    t.true(["CONTAINER_RUNNING", "CONTAINER_CREATED"].includes(st.status.state), st.status.state);
    if (st.status.state === "CONTAINER_RUNNING") rn.remember(st.info!.pid);
    else await rt.startContainer({ containerId: id });
  }
  for (const p of items) {
    const st = await rt.podSandboxStatus({ podSandboxId: p.id, verbose: true });
    rn.remember(st.info!.pid);
  }
  await rn.removeAllAndCheck(t);
});

test("SIGTERM stops the daemon and leaves pods running; a second daemon on the same state dir is refused", async (t) => {
  const rn = await startRuntimeNode(t);
  const pod = await rn.runPod();
  const c = await rn.runContainer(pod.id, "c", ["sleep", "1000"]);
  const [cmd, args] = podnetSrc("runtime", "--state-dir", rn.stateDir, "--netns-prefix", rn.prefix);
  const second = await execa("nsenter", [`--net=${rn.node.path}`, "--", cmd, ...args], { reject: false, cwd: ROOT });
  t.is(second.exitCode, 1);
  t.regex(String(second.stderr), /another runtime is already serving/);

  const d = rn.daemon!;
  const exited = new Promise<number | null>((r) => d.once("exit", (code) => r(code)));
  d.kill("SIGTERM");
  t.is(await exited, 0);
  await sleep(200);
  t.true(isAlive(c.pid) && isAlive(pod.holder), "pods keep running without the daemon");
  t.true(rn.daemonLog().includes("sandboxes and containers keep running"));
  await rn.start();
  t.is((await rn.client.containerStatus({ containerId: c.id })).status.state, "CONTAINER_RUNNING");
  await rn.removeAllAndCheck(t);
});
