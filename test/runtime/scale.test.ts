// 100 sandboxes made and removed on one node: the cost of each (time per RunPodSandbox, memory of
// the holder and of a container's monitor) is reported, not asserted; what is asserted is that
// all of them work and that nothing is left afterwards.
import test from "ava";
import { execa } from "execa";
import { readFileSync, statSync } from "node:fs";
import { memoryOf } from "../../runtime/daemon/procs.ts";
import { startRuntimeNode } from "./harness.ts";

const SANDBOXES = 100;
const BATCH = 10;

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test(`${SANDBOXES} sandboxes created and removed; holder memory and RunPodSandbox time reported`, async (t) => {
  const rn = await startRuntimeNode(t);
  const rt = rn.client;
  const made: { id: string; holder: number; netnsPath: string }[] = [];
  const runMs: number[] = [];
  // The first ten one at a time (the latency of one call), the rest ten at a time (throughput).
  const soloMs: number[] = [];
  for (let i = 0; i < BATCH; i++) {
    const start = performance.now();
    made.push(await rn.runPod({ metadata: { name: `pod-${i}` } }));
    soloMs.push(performance.now() - start);
  }
  const t0 = Date.now();
  for (let b = BATCH; b < SANDBOXES; b += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: BATCH }, async (_, i) => {
        const start = performance.now();
        const pod = await rn.runPod({ metadata: { name: `pod-${b + i}` } });
        runMs.push(performance.now() - start);
        return pod;
      }),
    );
    made.push(...batch);
  }
  const createAll = Date.now() - t0;
  const ready = (await rt.listPodSandbox({ filter: { state: { state: "SANDBOX_READY" } } })).items;
  t.is(ready.length, SANDBOXES);
  t.is(new Set(made.map((m) => m.holder)).size, SANDBOXES, "one holder each");

  const mem = made.map((m) => memoryOf(m.holder)!);
  t.true(mem.every((m) => m && m.rssKiB > 0));
  // Each holder really holds its own hostname (UTS namespace) in its own netns.
  for (const i of [0, 37, SANDBOXES - 1]) {
    const m = made[i]!;
    const h = await execa("nsenter", [`--target=${m.holder}`, "--uts", "hostname"]);
    t.is(String(h.stdout), `pod-${i}`);
    t.is(statSync(`/proc/${m.holder}/ns/net`).ino, statSync(m.netnsPath).ino);
  }

  // A container in ten of them, to weigh the per-container monitor too.
  const shims: number[] = [];
  for (const m of made.slice(0, 10)) {
    const c = await rn.runContainer(m.id, "c", ["sleep", "1000"]);
    const st = await rt.containerStatus({ containerId: c.id, verbose: true });
    t.is((await rt.execSync({ containerId: c.id, cmd: ["hostname"] })).stdout.trim(), `pod-${made.indexOf(m)}`);
    shims.push(st.info!.pid);
  }
  const shimPids = shims.map((pid) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]));
  const shimMem = shimPids.map((pid) => memoryOf(pid)!);

  const t1 = Date.now();
  for (let b = 0; b < made.length; b += BATCH) await Promise.all(made.slice(b, b + BATCH).map((m) => rt.removePodSandbox({ podSandboxId: m.id })));
  const removeAll = Date.now() - t1;

  t.log(`RunPodSandbox: ${avg(soloMs).toFixed(1)} ms per call one at a time; ${avg(runMs).toFixed(1)} ms per call ${BATCH} in parallel, ${(createAll / (SANDBOXES - BATCH)).toFixed(1)} ms per sandbox overall`);
  t.log(`holder (sleep): RSS mean ${avg(mem.map((m) => m.rssKiB)).toFixed(0)} KiB, PSS mean ${avg(mem.map((m) => m.pssKiB)).toFixed(0)} KiB per sandbox`);
  t.log(`container monitor (perl): RSS mean ${avg(shimMem.map((m) => m.rssKiB)).toFixed(0)} KiB, PSS mean ${avg(shimMem.map((m) => m.pssKiB)).toFixed(0)} KiB per container`);
  t.log(`RemovePodSandbox: ${(removeAll / SANDBOXES).toFixed(1)} ms per sandbox overall (${BATCH} in parallel)`);
  await rn.removeAllAndCheck(t);
});
