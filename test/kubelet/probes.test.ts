// Probes and restart policies on a standalone kubelet: readiness flips the Ready condition both
// ways, httpGet/tcpSocket/exec probes work, a failing liveness probe restarts the container and
// counts it, and Always/OnFailure/Never behave as Kubernetes documents (with a scaled-down
// crash-loop back-off so the test does not wait minutes).
import test from "ava";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Pod } from "../../apiserver/types.ts";
import { eventually, httpServer, startNode } from "./harness.ts";

const cond = (p: Pod, type: string) => p.status?.conditions?.find((c) => c.type === type);
const fast = { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1, successThreshold: 1 };

test.serial("readiness flips the Ready condition both ways (exec probe)", async (t) => {
  const n = await startNode(t);
  const flag = join(n.base, "ready");
  n.writeManifest("rd", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"], readinessProbe: { exec: { command: ["test", "-f", flag] }, ...fast } }] });
  const notReady = await n.waitPod("rd", "Running but not ready", (p) => p.status?.phase === "Running" && cond(p, "Ready")?.status === "False");
  t.is(cond(notReady, "ContainersReady")?.status, "False");
  t.is(cond(notReady, "Ready")?.reason, "ContainersNotReady");
  t.regex(cond(notReady, "Ready")?.message ?? "", /unready status: \[c\]/);
  t.is(notReady.status?.containerStatuses?.[0]?.ready, false);
  t.is(cond(notReady, "PodReadyToStartContainers")?.status, "True");
  t.is(cond(notReady, "Initialized")?.status, "True");
  writeFileSync(flag, "");
  const ready = await n.waitRunning("rd");
  t.is(cond(ready, "ContainersReady")?.status, "True");
  t.true(ready.status?.containerStatuses?.[0]?.ready);
  rmSync(flag);
  await n.waitPod("rd", "not ready again", (p) => cond(p, "Ready")?.status === "False");
  writeFileSync(flag, "");
  await n.waitRunning("rd");
  const p = (await n.pod("rd"))!;
  t.is(p.status?.containerStatuses?.[0]?.restartCount, 0, "readiness never restarts a container");
});

test.serial("httpGet and tcpSocket probes, with named ports", async (t) => {
  const n = await startNode(t);
  n.writeManifest("web", {
    containers: [
      { name: "http", image: "host", command: httpServer(8080), ports: [{ name: "web", containerPort: 8080 }], readinessProbe: { httpGet: { path: "/", port: "web" }, ...fast }, livenessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1, failureThreshold: 3 } },
      { name: "nolistener", image: "host", command: ["sleep", "3600"], readinessProbe: { tcpSocket: { port: 9999 }, ...fast } },
    ],
  });
  const p = await n.waitPod("web", "http ready, nolistener not", (x) => {
    const cs = x.status?.containerStatuses ?? [];
    return cs.find((c) => c.name === "http")?.ready === true && cs.find((c) => c.name === "nolistener")?.state.running !== undefined;
  });
  t.is(p.status?.containerStatuses?.find((c) => c.name === "nolistener")?.ready, false);
  t.is(cond(p, "Ready")?.status, "False");
  t.regex(cond(p, "Ready")?.message ?? "", /\[nolistener\]/);
  // The liveness probe (tcpSocket) keeps passing: no restart.
  await new Promise((r) => setTimeout(r, 3000));
  const later = (await n.pod("web"))!;
  t.is(later.status?.containerStatuses?.find((c) => c.name === "http")?.restartCount, 0);
});

test.serial("a failing liveness probe restarts the container and counts it", async (t) => {
  const n = await startNode(t, { kubeletArgs: ["--restart-backoff-base", "500ms"] });
  const alive = join(n.base, "alive");
  n.writeManifest("lv", { containers: [{ name: "c", image: "host", command: ["sleep", "3600"], livenessProbe: { exec: { command: ["test", "-f", alive] }, initialDelaySeconds: 1, ...fast } }] });
  const p = await n.waitPod("lv", "restarted by liveness", (x) => (x.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000);
  const cs = p.status!.containerStatuses![0]!;
  t.truthy(cs.lastState?.terminated, "the killed attempt is the lastState");
  t.not(cs.lastState?.terminated?.exitCode, 0, "it was killed");
  t.is(p.status?.phase, "Running");
  // Once the probe passes, the restarts stop.
  writeFileSync(alive, "");
  const settled = await n.waitPod("lv", "running again", (x) => !!x.status?.containerStatuses?.[0]?.state.running);
  const count = settled.status!.containerStatuses![0]!.restartCount;
  await new Promise((r) => setTimeout(r, 3000));
  const after = (await n.pod("lv"))!;
  t.is(after.status!.containerStatuses![0]!.restartCount, count, "no more restarts while the probe passes");
  t.true(existsSync(alive));
});

test.serial("restartPolicy Always, OnFailure and Never behave as Kubernetes documents", async (t) => {
  const n = await startNode(t, { kubeletArgs: ["--restart-backoff-base", "1s"] });
  const run = (name: string, policy: "Always" | "OnFailure" | "Never", code: number) =>
    n.writeManifest(name, { restartPolicy: policy, containers: [{ name: "c", image: "host", command: ["sh", "-c", `sleep 0.3; exit ${code}`] }] });
  run("always-ok", "Always", 0);
  run("onfail-ok", "OnFailure", 0);
  run("onfail-bad", "OnFailure", 2);
  run("never-ok", "Never", 0);
  run("never-bad", "Never", 3);

  // Always: restarted even after success, into CrashLoopBackOff; the pod stays Running.
  const always = await n.waitPod("always-ok", "restarted twice", (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2, 60_000);
  t.is(always.status?.phase, "Running");
  await n.waitPod("always-ok", "CrashLoopBackOff", (p) => p.status?.containerStatuses?.[0]?.state.waiting?.reason === "CrashLoopBackOff", 60_000);
  // OnFailure: success ends it (Succeeded), failure restarts.
  const onOk = await n.waitPod("onfail-ok", "Succeeded", (p) => p.status?.phase === "Succeeded");
  t.is(onOk.status?.containerStatuses?.[0]?.restartCount, 0);
  t.is(onOk.status?.containerStatuses?.[0]?.state.terminated?.reason, "Completed");
  t.is(cond(onOk, "Ready")?.reason, "PodCompleted");
  const onBad = await n.waitPod("onfail-bad", "restarted", (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000);
  t.is(onBad.status?.phase, "Running");
  t.is(onBad.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 2);
  // Never: Succeeded or Failed with the exit code, never restarted.
  const nvOk = await n.waitPod("never-ok", "Succeeded", (p) => p.status?.phase === "Succeeded");
  t.is(nvOk.status?.containerStatuses?.[0]?.state.terminated?.exitCode, 0);
  const nvBad = await n.waitPod("never-bad", "Failed", (p) => p.status?.phase === "Failed");
  const term = nvBad.status?.containerStatuses?.[0]?.state.terminated;
  t.is(term?.exitCode, 3);
  t.is(term?.reason, "Error");
  t.is(nvBad.status?.containerStatuses?.[0]?.restartCount, 0);
  t.truthy(nvBad.status?.podIP, "a finished pod keeps reporting its IP");
  // Finished pods give their network back (as the kubelet does): only the running ones hold IPs.
  await eventually("finished pods to release their IPs", async () => {
    const left = await n.leftovers();
    return left.ipReservations.length <= 2 ? left : undefined;
  });
  await new Promise((r) => setTimeout(r, 1500));
  t.is((await n.pod("never-bad"))!.status?.containerStatuses?.[0]?.restartCount, 0, "still not restarted");
  await n.recordSandboxes();
  for (const x of ["always-ok", "onfail-ok", "onfail-bad", "never-ok", "never-bad"]) n.removeManifest(x);
  await eventually("the pods to go", async () => (await n.pods()).length === 0);
  await n.assertNoLeaks(t);
});

test.serial("init containers run one by one to success before the app containers", async (t) => {
  const n = await startNode(t, { kubeletArgs: ["--restart-backoff-base", "500ms"] });
  const log = join(n.base, "order.log");
  const flaky = join(n.base, "flaky-done");
  n.writeManifest("init", {
    initContainers: [
      { name: "first", image: "host", command: ["sh", "-c", `echo first >> ${log}`] },
      // Fails once, then succeeds: restarted (restartPolicy Always counts as OnFailure for init containers).
      { name: "second", image: "host", command: ["sh", "-c", `if [ -f ${flaky} ]; then echo second >> ${log}; else touch ${flaky}; exit 1; fi`] },
    ],
    containers: [{ name: "app", image: "host", command: ["sh", "-c", `echo app >> ${log}; exec sleep 3600`] }],
  });
  const p = await n.waitRunning("init");
  const inits = (p.status as { initContainerStatuses?: { name: string; restartCount: number; state: { terminated?: { exitCode: number } } }[] }).initContainerStatuses!;
  t.deepEqual(inits.map((c) => [c.name, c.state.terminated?.exitCode]), [["first", 0], ["second", 0]]);
  t.is(inits[1]!.restartCount, 1);
  const order = await eventually("the app to write", async () => {
    const text = existsSync(log) ? (await import("node:fs")).readFileSync(log, "utf8") : "";
    return text.includes("app") ? text : undefined;
  });
  t.deepEqual(order.trim().split("\n"), ["first", "second", "app"]);
  t.is(cond(p, "Initialized")?.status, "True");
});
