// Crash recovery and churn on a standalone kubelet: kill -9 of the kubelet and the runtime daemon
// in the middle of setting pods up and tearing them down, then a restart of both, converges to
// exactly the wanted pods with nothing leaked; hundreds of pods created and deleted in parallel
// batches leave no netns, veth, IP reservation, nftables rule, process or state file.
import test from "ava";
import type { KubeletNode } from "./harness.ts";
import { eventually, sleep, startNode } from "./harness.ts";

const sleeper = { containers: [{ name: "c", image: "host", command: ["sleep", "3600"] }] };

async function runningNames(n: KubeletNode): Promise<string[]> {
  return (await n.pods()).filter((p) => p.status?.phase === "Running" && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")).map((p) => p.metadata.name!).sort();
}

/** Exactly one sandbox, one IP, one veth and two CNI cache entries per running pod. */
async function assertExactly(t: import("ava").ExecutionContext, n: KubeletNode, count: number): Promise<void> {
  const left = await eventually(`exactly ${count} pods' worth of resources`, async () => {
    const l = await n.leftovers();
    const sandboxes = (await n.runtime.listPodSandbox({})).items.length;
    return l.netns.length === count && l.veths.length === count && l.ipReservations.length === count && l.cniCache.length === 2 * count && sandboxes === count ? l : undefined;
  }, 30_000).catch(async (e) => {
    t.log(JSON.stringify(await n.leftovers()), n.logs());
    throw e;
  });
  t.is(left.netns.length, count);
}

test.serial("kill -9 of the kubelet and the runtime mid-way, then a restart, converges with no leak", async (t) => {
  const n = await startNode(t);
  const names = Array.from({ length: 12 }, (_, i) => `p${i}`);
  for (const name of names) n.writeManifest(name, sleeper);
  // Mid-way: some sandboxes exist, the rest are being made.
  await eventually("some sandboxes to exist", async () => (await n.runtime.listPodSandbox({})).items.length >= 3, 30_000, 20);
  await n.recordSandboxes();
  await Promise.all([n.kill9Kubelet(), n.kill9Runtime()]);
  // While both are down the wanted set changes: 4 pods go, 2 come.
  for (const name of names.slice(0, 4)) n.removeManifest(name);
  n.writeManifest("late1", sleeper);
  n.writeManifest("late2", sleeper);
  await n.startRuntime();
  await n.startKubelet();
  const want = [...names.slice(4), "late1", "late2"].map((x) => n.podName(x)).sort();
  await eventually("the wanted pods to run", async () => JSON.stringify(await runningNames(n)) === JSON.stringify(want), 60_000).catch((e) => {
    t.log(n.logs());
    throw e;
  });
  t.deepEqual(await runningNames(n), want);
  await assertExactly(t, n, want.length);

  // Now kill both again in the middle of tearing pods down and setting others up.
  await n.recordSandboxes();
  for (const name of names.slice(4, 10)) n.removeManifest(name);
  for (const name of ["late3", "late4", "late5"]) n.writeManifest(name, sleeper);
  await sleep(300);
  await Promise.all([n.kill9Kubelet(), n.kill9Runtime()]);
  await n.startRuntime();
  await n.startKubelet();
  const want2 = [...names.slice(10), "late1", "late2", "late3", "late4", "late5"].map((x) => n.podName(x)).sort();
  await eventually("the wanted pods to run again", async () => JSON.stringify(await runningNames(n)) === JSON.stringify(want2), 60_000).catch((e) => {
    t.log(n.logs());
    throw e;
  });
  await assertExactly(t, n, want2.length);

  // The runtime alone dies and comes back: the kubelet keeps going and nothing changes.
  await n.recordSandboxes();
  await n.kill9Runtime();
  await sleep(500);
  await n.startRuntime();
  await sleep(1500);
  t.deepEqual(await runningNames(n), want2);
  await assertExactly(t, n, want2.length);

  await n.recordSandboxes();
  for (const name of [...names, "late1", "late2", "late3", "late4", "late5"]) n.removeManifest(name);
  await eventually("every pod to go", async () => (await n.pods()).length === 0, 60_000);
  await n.assertNoLeaks(t);
});

test.serial("SIGTERM stops the kubelet and leaves the pods running; the next start adopts them", async (t) => {
  const n = await startNode(t);
  n.writeManifest("keep", sleeper);
  const before = await n.waitRunning("keep");
  const cid = await n.containerId("keep", "c");
  await n.stopKubelet();
  t.is(n.kubeletProc?.exitCode, 0, "a clean exit");
  t.is((await n.runtime.containerStatus({ containerId: cid })).status.state, "CONTAINER_RUNNING", "the container keeps running");
  await n.startKubelet();
  const after = await n.waitRunning("keep");
  t.is(after.status?.podIP, before.status?.podIP, "adopted, same IP");
  t.is(await n.containerId("keep", "c"), cid, "same container");
  t.is(after.status?.containerStatuses?.[0]?.restartCount, 0);
  await n.recordSandboxes();
  n.removeManifest("keep");
  await eventually("the pod to go", async () => (await n.pods()).length === 0);
  await n.assertNoLeaks(t);
});

test.serial("churn: 200 pods created and deleted in parallel batches leave nothing behind", async (t) => {
  const n = await startNode(t, { podCIDR: "10.250.0.0/23" });
  const batch = 50;
  let made = 0;
  let previous: string[] = [];
  for (let round = 0; round < 4; round++) {
    const names = Array.from({ length: batch }, (_, i) => `ch${round}-${i}`);
    for (const name of names) n.writeManifest(name, sleeper);
    made += names.length;
    // The previous batch goes while this one comes.
    for (const name of previous) n.removeManifest(name);
    const want = names.map((x) => n.podName(x)).sort();
    await eventually(`batch ${round} to run`, async () => JSON.stringify(await runningNames(n)) === JSON.stringify(want), 120_000, 250).catch((e) => {
      t.log(n.logs());
      throw e;
    });
    await n.recordSandboxes();
    previous = names;
  }
  for (const name of previous) n.removeManifest(name);
  await eventually("every pod to go", async () => (await n.pods()).length === 0, 120_000, 250);
  t.true(made >= 200);
  t.true(n.sandboxIds.size >= 200, `${n.sandboxIds.size} sandboxes seen`);
  await n.assertNoLeaks(t, "no netns, veth, IP reservation, nftables rule, process or state file is left");
});
