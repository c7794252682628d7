// Container and sandbox lifecycles: StopContainer's grace period then SIGKILL, exits on their own,
// start failures, idempotent stop/remove, and the API's answers to bad input.
import test from "ava";
import { request } from "node:http";
import { RuntimeApiError } from "../../runtime/cri/client.ts";
import { eventually, isAlive, startRuntimeNode, type RuntimeNode } from "./harness.ts";

async function apiError(p: Promise<unknown>): Promise<RuntimeApiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof RuntimeApiError)) throw new Error(`expected a RuntimeApiError, got ${String(e)}`);
  return e;
}

async function waitExited(rn: RuntimeNode, id: string) {
  return eventually(async () => {
    const s = await rn.client.containerStatus({ containerId: id });
    return s.status.state === "CONTAINER_EXITED" && s.status;
  }, `container ${id.slice(0, 12)} to exit`);
}

test("StopContainer: SIGTERM and the grace period, then SIGKILL for a process that ignores SIGTERM", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const pod = await rn.runPod();
  // Ignores SIGTERM; its background child must die with it.
  const stubborn = await rn.runContainer(pod.id, "stubborn", ["sh", "-c", 'trap "" TERM; sleep 1000 & echo "child $!"; echo ready; while :; do sleep 0.1; done']);
  // Leaves cleanly on SIGTERM.
  const polite = await rn.runContainer(pod.id, "polite", ["sh", "-c", 'trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done']);
  const log = await rn.waitForLog(stubborn.id, "ready");
  const child = Number(/child (\d+)/.exec(log)![1]);
  t.true(isAlive(child));
  await rn.waitForLog(polite.id, "ready");

  await rt.stopContainer({ containerId: stubborn.id, timeout: 1 });
  const s1 = (await rt.containerStatus({ containerId: stubborn.id })).status;
  t.is(s1.state, "CONTAINER_EXITED");
  t.is(s1.exitCode, 137, "killed by SIGKILL after the grace period");
  t.is(s1.reason, "Error");
  t.false(isAlive(stubborn.pid));
  t.false(isAlive(child), "the container's other processes are killed too");

  await rt.stopContainer({ containerId: polite.id, timeout: "30" });
  const s2 = (await rt.containerStatus({ containerId: polite.id })).status;
  t.is(s2.exitCode, 0, "ended by its own SIGTERM handler");
  t.is(s2.reason, "Completed");
  t.true((await rn.waitForLog(polite.id, "got TERM")).includes("got TERM"));

  // Stopping again, or a container that is gone, is not an error.
  await rt.stopContainer({ containerId: polite.id, timeout: 5 });
  t.is((await rt.containerStatus({ containerId: polite.id })).status.finishedAt, s2.finishedAt);
  // An exited container cannot start again.
  const again = await apiError(rt.startContainer({ containerId: polite.id }));
  t.is(again.code, "FailedPrecondition");

  // Timeout 0 kills at once.
  const quick = await rn.runContainer(pod.id, "quick", ["sh", "-c", 'trap "" TERM; while :; do sleep 0.1; done']);
  await rt.stopContainer({ containerId: quick.id, timeout: 0 });
  t.is((await rt.containerStatus({ containerId: quick.id })).status.exitCode, 137);

  // RemoveContainer removes the record and the log; again is fine.
  const logPath = s1.logPath;
  await rt.removeContainer({ containerId: stubborn.id });
  await rt.removeContainer({ containerId: stubborn.id });
  t.is((await apiError(rt.containerStatus({ containerId: stubborn.id }))).code, "NotFound");
  t.false((await import("node:fs")).existsSync(logPath));
  await rn.removeAllAndCheck(t);
});

test("containers that end on their own: exit codes, times, a running container removed by force, a failed start", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const pod = await rn.runPod();
  const five = await rn.runContainer(pod.id, "five", ["sh", "-c", "echo bye; exit 5"]);
  const st = await waitExited(rn, five.id);
  t.is(st.exitCode, 5);
  t.is(st.reason, "Error");
  t.true(BigInt(st.createdAt) <= BigInt(st.startedAt) && BigInt(st.startedAt) <= BigInt(st.finishedAt));
  const sig = await rn.runContainer(pod.id, "sig", ["sh", "-c", "kill -TERM $$"]);
  t.is((await waitExited(rn, sig.id)).exitCode, 143, "death by signal N reads 128+N");

  // Working directory and args.
  const wd = await rn.runContainer(pod.id, "wd", ["sh", "-c"], { args: ['pwd; echo "$0"', "zero"], workingDir: "/tmp" });
  await waitExited(rn, wd.id);
  t.deepEqual((await rn.logs(wd.id)).map((l) => l.rec!.text), ["/tmp", "zero"]);

  // A command that does not exist: StartContainer fails and says why; the container reads exited.
  const { containerId: bad } = await rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "bad" }, command: ["no-such-binary-xyz"] } });
  const e = await apiError(rt.startContainer({ containerId: bad }));
  t.is(e.code, "FailedPrecondition");
  t.regex(e.message, /executable file not found/);
  const bs = (await rt.containerStatus({ containerId: bad })).status;
  t.is(bs.state, "CONTAINER_EXITED");
  t.is(bs.reason, "StartError");

  // Container names are unique per sandbox and attempt.
  const dup = await apiError(rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "five" }, command: ["true"] } }));
  t.is(dup.code, "AlreadyExists");
  await rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "five", attempt: 1 }, command: ["true"] } });

  // A running container is removed by force.
  const running = await rn.runContainer(pod.id, "running", ["sleep", "1000"]);
  await rt.removeContainer({ containerId: running.id });
  t.false(isAlive(running.pid));

  // Filters.
  const all = (await rt.listContainers({ filter: { podSandboxId: pod.id.slice(0, 10) } })).containers.map((c) => c.metadata.name).sort();
  t.deepEqual(all, ["bad", "five", "five", "sig", "wd"]);
  const created = (await rt.listContainers({ filter: { state: { state: "CONTAINER_CREATED" } } })).containers;
  t.deepEqual(created.map((c) => [c.metadata.name, c.metadata.attempt]), [["five", 1]]);
  await rn.removeAllAndCheck(t);
});

test("bad input gets a clear error naming the field, and changes nothing", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const md = { name: "ok", namespace: "default", uid: "u" };
  const cases: [() => Promise<unknown>, string, RegExp][] = [
    [() => rt.podSandboxStatus({ podSandboxId: "../../etc" }), "InvalidArgument", /podSandboxId/],
    [() => rt.containerStatus({ containerId: "ABC" }), "InvalidArgument", /containerId/],
    [() => rt.runPodSandbox({ config: { metadata: { ...md, name: "Bad_Name" } } }), "InvalidArgument", /config\.metadata\.name/],
    [() => rt.runPodSandbox({ config: { metadata: { ...md, namespace: "" } } }), "InvalidArgument", /config\.metadata\.namespace/],
    [() => rt.runPodSandbox({ config: { metadata: md, hostname: "-x" } }), "InvalidArgument", /config\.hostname/],
    [() => rt.runPodSandbox({ config: { metadata: md, logDirectory: "rel/dir" } }), "InvalidArgument", /config\.logDirectory/],
    [() => rt.runPodSandbox({ config: { metadata: md, logDirectory: "/tmp/../etc" } }), "InvalidArgument", /config\.logDirectory/],
    [() => rt.runPodSandbox({ config: { metadata: md, dnsConfig: { servers: ["not-an-ip"] } } }), "InvalidArgument", /config\.dnsConfig\.servers\[0\]/],
    [() => rt.runPodSandbox({ config: { metadata: md, dnsConfig: { options: ["ndots:5\nnameserver 1.1.1.1"] } } }), "InvalidArgument", /config\.dnsConfig\.options\[0\]/],
    [() => rt.runPodSandbox({} as never), "InvalidArgument", /^config: is required$/],
    [() => rt.podSandboxStatus({ podSandboxId: "abc" }), "NotFound", /pod sandbox abc/],
    [() => rt.setPodSandboxNetwork({ podSandboxId: "0".repeat(64), ips: ["10.0.0.1"] }), "NotFound", /pod sandbox/],
  ];
  for (const [p, code, msg] of cases) {
    const e = await apiError(p());
    t.is(e.code as string, code, e.message);
    t.regex(e.message, msg);
  }

  const pod = await rn.runPod();
  const more: [() => Promise<unknown>, string, RegExp][] = [
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "c" } } }), "InvalidArgument", /config\.command/],
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "C/../x" }, command: ["true"] } }), "InvalidArgument", /config\.metadata\.name/],
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "c" }, command: ["true"], logPath: "../../escape.log" } }), "InvalidArgument", /config\.logPath/],
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "c" }, command: ["true"], workingDir: "/no/such/dir" } }), "InvalidArgument", /config\.workingDir/],
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "c" }, command: ["true"], envs: [{ key: "A=B", value: "x" }] } }), "InvalidArgument", /config\.envs\[0\]\.key/],
    [() => rt.createContainer({ podSandboxId: pod.id, config: { metadata: { name: "c" }, command: ["true"], mounts: [{ containerPath: "/x", hostPath: "/y" }] } }), "InvalidArgument", /config\.mounts/],
    [() => rt.setPodSandboxNetwork({ podSandboxId: pod.id, ips: ["10.0.0.300"] }), "InvalidArgument", /ips\[0\]/],
    [() => rt.execSync({ containerId: "f".repeat(64), cmd: ["true"] }), "NotFound", /container/],
  ];
  for (const [p, code, msg] of more) {
    const e = await apiError(p());
    t.is(e.code as string, code, e.message);
    t.regex(e.message, msg);
  }
  // Stop and remove of an id that is not there (any more) succeed: they are idempotent.
  await rt.stopPodSandbox({ podSandboxId: "e".repeat(64) });
  await rt.removePodSandbox({ podSandboxId: "e".repeat(64) });
  await rt.stopContainer({ containerId: "e".repeat(64), timeout: 1 });
  await rt.removeContainer({ containerId: "e".repeat(64) });
  // ...but an unknown prefix is a mistake.
  t.is((await apiError(rt.removePodSandbox({ podSandboxId: "eeee" }))).code, "NotFound");

  // Raw HTTP: bad JSON, an unknown method, another verb.
  const raw = (path: string, body: string, method = "POST") =>
    new Promise<{ status: number; json: any }>((resolve, reject) => {
      const req = request({ socketPath: rn.client.socketPath, path, method }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const badJson = await raw("/runtime.v1.RuntimeService/RunPodSandbox", "{not json");
  t.is(badJson.status, 400);
  t.is(badJson.json.code, "InvalidArgument");
  const unknown = await raw("/runtime.v1.RuntimeService/toString", "{}");
  t.is(unknown.status, 501);
  t.is(unknown.json.code, "Unimplemented");
  const get = await raw("/runtime.v1.RuntimeService/Version", "", "GET");
  t.is(get.json.code, "Unimplemented");
  const version = await raw("/runtime.v1.RuntimeService/Version", "");
  t.deepEqual(version.json, { version: "0.1.0", runtimeName: "podnet", runtimeVersion: "0.1.0", runtimeApiVersion: "v1" });

  // Nothing was made by the rejected calls: one sandbox, no containers.
  t.is((await rt.listPodSandbox()).items.length, 1);
  t.is((await rt.listContainers()).containers.length, 0);
  t.false(rn.daemonLog().includes("    at "), "no stack trace in the daemon's log for user errors");
  await rn.removeAllAndCheck(t);
});

test("sandbox lifecycle: hostname defaults and overrides, labels filter, stop then remove, a caller's logDirectory", async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const long = "a".repeat(60) + "-b.cd";
  const a = await rn.runPod({ metadata: { name: long }, labels: { tier: "front" } });
  const logDirectory = `${rn.base}/podlogs/ns_b_uid`;
  const b = await rn.runPod({ metadata: { name: "b" }, hostname: "custom-host", labels: { tier: "back" }, logDirectory });
  const c1 = await rn.runContainer(a.id, "c", ["sleep", "1000"]);
  const c2 = await rn.runContainer(b.id, "c", ["sh", "-c", "hostname; sleep 1000"], { logPath: "c/0.log" });
  t.is((await rt.execSync({ containerId: c1.id, cmd: ["hostname"] })).stdout.trim(), "a".repeat(60) + "-b", "the pod name cut to 63 characters, no trailing '-' or '.'");
  t.is((await rn.waitForLog(c2.id, "custom-host")).trim(), "custom-host");
  t.is((await rt.containerStatus({ containerId: c2.id })).status.logPath, `${logDirectory}/c/0.log`);

  const front = (await rt.listPodSandbox({ filter: { labelSelector: { tier: "front" } } })).items;
  t.deepEqual(front.map((p) => p.id), [a.id]);
  await rt.stopPodSandbox({ podSandboxId: a.id });
  const ready = (await rt.listPodSandbox({ filter: { state: { state: "SANDBOX_READY" } } })).items;
  t.deepEqual(ready.map((p) => p.id), [b.id]);
  t.false(isAlive(c1.pid));
  t.false(isAlive(a.holder));
  // A stopped sandbox takes no new containers.
  t.is((await apiError(rt.createContainer({ podSandboxId: a.id, config: { metadata: { name: "late" }, command: ["true"] } }))).code, "FailedPrecondition");

  await rt.removePodSandbox({ podSandboxId: b.id });
  const { existsSync } = await import("node:fs");
  t.false(existsSync(logDirectory), "the container's log file goes with the sandbox, and the emptied directories");
  t.false(existsSync(b.netnsPath));
  t.false(isAlive(c2.pid));
  await rn.removeAllAndCheck(t);
});
