// ExecSync: a command run in a running container's namespaces, working directory and environment,
// with its output collected (up to 16 MiB per stream, as CRI runtimes cap it) and an optional
// timeout. The command gets its own session so a timeout or the container's stop ends all of it.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { ExecSyncResponse } from "../cri/types.ts";
import { containerEnv, liveHolder, nsenterArgv } from "./containers.ts";
import { invalid, precondition, RuntimeError } from "./errors.ts";
import { killAndWait, pidsInSession } from "./procs.ts";
import type { Runtime } from "./runtime.ts";
import { checkInt64, checkString, checkStringList } from "./validate.ts";

const MAX_OUTPUT = 16 * 1024 * 1024;

export async function execSync(rt: Runtime, req: Record<string, unknown>): Promise<ExecSyncResponse> {
  const c = rt.requireContainer("containerId", req.containerId);
  const cmd = checkStringList("cmd", req.cmd);
  if (!cmd.length || !cmd[0]) throw invalid("cmd", "is required");
  const timeout = checkInt64("timeout", req.timeout);
  if (timeout < 0) throw invalid("timeout", "must not be negative");
  const stdin = req.stdin === undefined ? undefined : checkString("stdin", req.stdin);
  if (rt.refresh(c) !== "CONTAINER_RUNNING") throw precondition(`container ${c.id} is not running`);
  const s = rt.sandboxes.get(c.podSandboxId);
  if (!s) throw precondition(`pod sandbox ${c.podSandboxId} is gone`);
  const holder = liveHolder(rt, s);
  const [bin, ...args] = nsenterArgv(rt, holder, c.workingDir, cmd);

  return new Promise((resolve, reject) => {
    const child = spawn(bin!, args, { detached: true, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"], env: containerEnv(rt, s, c) });
    const pid = child.pid;
    const tracked = rt.execs.get(c.id) ?? new Set<number>();
    if (pid) {
      tracked.add(pid);
      rt.execs.set(c.id, tracked);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    child.stdout!.on("data", (d: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(d.subarray(0, MAX_OUTPUT - outLen));
      outLen += d.length;
    });
    child.stderr!.on("data", (d: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(d.subarray(0, MAX_OUTPUT - errLen));
      errLen += d.length;
    });
    if (stdin !== undefined) {
      child.stdin!.on("error", () => {}); // a command that does not read its stdin is fine
      child.stdin!.end(stdin);
    }
    const timer =
      timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            if (pid) void killAndWait([pid, ...pidsInSession(pid)]);
          }, timeout * 1000)
        : undefined;
    child.on("error", (e) => {
      clearTimeout(timer);
      if (pid) tracked.delete(pid);
      reject(new RuntimeError("Internal", `cannot run exec: ${e.message}`));
    });
    // Children it left behind in its session end with it; otherwise one holding stdout open
    // would keep the call waiting.
    child.on("exit", () => {
      if (pid) void killAndWait(pidsInSession(pid));
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      if (pid) tracked.delete(pid);
      if (timedOut) return reject(new RuntimeError("DeadlineExceeded", `command ${JSON.stringify(cmd.join(" "))} timed out after ${timeout}s`));
      const exitCode = code ?? (sig ? 128 + (constants.signals[sig] ?? 0) : -1);
      resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), exitCode });
    });
  });
}
