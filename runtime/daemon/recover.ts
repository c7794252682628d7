// Start-up reconciliation. The daemon may have been killed at any point (kill -9 included); the
// records on disk say what it was doing, and the kernel and the monitors' files say what happened
// since:
//   - a sandbox still "creating" or "removing" is torn down (its netns, holder and anything in it);
//   - a ready sandbox whose holder died reads as NOTREADY (the kubelet then stops and removes it);
//   - a container still "starting" waits for its monitor's pid file, or goes back to "created";
//   - a running container whose monitor recorded an exit is marked exited with that code; one
//     whose monitor is gone without a record is killed and marked exited, code unknown;
//   - containers of a vanished sandbox, stray directories and temporary files are removed.
// Running sandboxes and containers are adopted as they are: nothing about them lives in the
// daemon's memory only.
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { dropContainer } from "./containers.ts";
import { allPids, killAndWait, pidsInSession, waitFor } from "./procs.ts";
import type { Runtime } from "./runtime.ts";
import { teardownSandbox } from "./sandboxes.ts";
import { readPidFile } from "./shim.ts";

/** A monitor started for this container directory, found by its command line. */
function findShim(dir: string): number | undefined {
  for (const pid of allPids()) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv.includes(dir) || argv.some((a) => a === `podnet-shim ${dir}`)) return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function removeTempFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (/\.tmp-\d+$/.test(name) || /^\..*\.tmp$/.test(name)) rmSync(join(dir, name), { force: true });
  }
}

export async function recover(rt: Runtime): Promise<void> {
  const { store } = rt;
  for (const name of store.strayDirs("sandboxes")) rmSync(join(store.sandboxesDir, name), { recursive: true, force: true });
  for (const name of store.strayDirs("containers")) rmSync(join(store.containersDir, name), { recursive: true, force: true });

  for (const c of [...rt.containers.values()]) {
    const dir = store.containerDir(c.id);
    removeTempFiles(dir);
    if (c.phase === "starting" && !readPidFile(dir)) {
      // Killed between recording "starting" and hearing from the monitor: the monitor, if it
      // got going, writes its pid file in a moment.
      if (findShim(dir)) await waitFor(() => !!readPidFile(dir), 5000, 50);
      if (!readPidFile(dir)) c.phase = "created";
      store.saveContainer(c);
    }
    rt.refresh(c);
    if (!rt.sandboxes.has(c.podSandboxId) || c.phase === "removing") {
      if (c.main) await killAndWait([...pidsInSession(c.main.pid)]);
      dropContainer(rt, c);
      rt.log(`recovery: removed container ${c.id.slice(0, 12)}`);
    }
  }

  for (const s of [...rt.sandboxes.values()]) {
    removeTempFiles(store.sandboxDir(s.id));
    if (s.phase === "creating" || s.phase === "removing") {
      await teardownSandbox(rt, s);
      rt.log(`recovery: tore down sandbox ${s.id.slice(0, 12)} left ${s.phase}`);
      continue;
    }
    const state = rt.sandboxState(s);
    rt.log(`recovery: adopted sandbox ${s.id.slice(0, 12)} (${state === "SANDBOX_READY" ? `ready, holder ${s.holder!.pid}` : "not ready"}, ${rt.containersOf(s.id).length} containers)`);
  }
  removeTempFiles(store.root);
}
