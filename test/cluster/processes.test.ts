// Daemon pid files: a daemon that has exited but is not reaped yet (a zombie: our daemons are
// detached, so PID 1 reaps them, sometimes seconds later) is not running, so `podnet down` does
// not wait for PID 1 and `podnet up` would start it again.
import test from "ava";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { once } from "node:events";
import { withDir } from "tmp-promise";
import { runningPid, stopDaemon } from "../../cluster/processes.ts";
import { waitFor } from "../../cluster/up.ts";
import { readStat } from "../../runtime/daemon/procs.ts";

const stateOf = (pid: number) => readStat(pid)?.state ?? "gone";
const startTimeOf = (pid: number) => readStat(pid)!.startTime;

test("a zombie daemon is not running; a live one is, and stopDaemon stops it", async (t) => {
  await withDir(
    async ({ path }) => {
      // sh starts a short sleep in the background, prints its pid and becomes a long sleep,
      // which never reaps it: the short one stays a zombie while the long one lives.
      const parent = spawn("sh", ["-c", "sleep 0.2 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
      t.teardown(() => parent.kill("SIGKILL"));
      const [line] = (await once(parent.stdout!, "data")) as [Buffer];
      const child = Number(String(line).trim());
      const childFile = `${path}/child.pid`;
      writeFileSync(childFile, JSON.stringify({ pid: child, startTime: startTimeOf(child), argv: ["sleep", "0.2"] }));
      t.is(runningPid(childFile), child, "running while it sleeps");
      await waitFor("the short sleep to become a zombie", 5000, async () => (stateOf(child) === "Z" ? true : undefined), 20);
      t.is(runningPid(childFile), undefined, "a zombie is not running");
      await stopDaemon(childFile, 3000); // returns at once: nothing to stop, the pid file goes
      t.is(stateOf(child), "Z");

      const liveFile = `${path}/live.pid`;
      writeFileSync(liveFile, JSON.stringify({ pid: parent.pid, startTime: startTimeOf(parent.pid!), argv: ["sleep", "30"] }));
      t.is(runningPid(liveFile), parent.pid);
      const exited = once(parent, "exit");
      await stopDaemon(liveFile, 3000);
      await exited;
      t.is(runningPid(liveFile), undefined);
    },
    { unsafeCleanup: true },
  );
});
