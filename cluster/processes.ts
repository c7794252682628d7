// Background daemons of a cluster: started detached (optionally inside a node's netns), with a
// pid file and a log file each. A pid file records the process start time too, so a recycled pid
// is never mistaken for our daemon (and never killed).
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface DaemonSpec {
  /** Stable name, e.g. "apiserver" or "node-1/kubelet"; also the pid/log file stem. */
  name: string;
  argv: string[];
  netns?: string;
  pidFile: string;
  logFile: string;
  env?: Record<string, string>;
}

interface PidRecord {
  pid: number;
  startTime: string;
  argv: string[];
}

/** The podnet entry script: the bundle when running from dist, else the bundle in the checkout. */
export function podnetEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith("podnet.mjs")) return here;
  return join(dirname(here), "..", "dist", "podnet.mjs");
}

/** argv running `podnet ARGS` with the current Node. */
export function podnetArgv(...args: string[]): string[] {
  return [process.execPath, podnetEntry(), ...args];
}

/** State (field 3) and start time (field 22) of a process, counted after the ")" that closes its command name. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, startTime: f[19]! };
  } catch {
    return undefined;
  }
}

const startTimeOf = (pid: number) => procStat(pid)?.startTime;

/**
 * A process that exited: gone, or a zombie waiting to be reaped. Our daemons are detached, so
 * their parent is PID 1, which may take a second or two to reap them (it does here): a zombie
 * holds nothing any more and counts as stopped.
 */
function exited(pid: number): boolean {
  const st = procStat(pid);
  return !st || st.state === "Z" || st.state === "X";
}

function readPid(pidFile: string): PidRecord | undefined {
  try {
    return JSON.parse(readFileSync(pidFile, "utf8")) as PidRecord;
  } catch {
    return undefined;
  }
}

/** The daemon's pid when it is running (and really is the process we started). */
export function runningPid(pidFile: string): number | undefined {
  const rec = readPid(pidFile);
  if (!rec) return undefined;
  return !exited(rec.pid) && startTimeOf(rec.pid) === rec.startTime ? rec.pid : undefined;
}

export function startDaemon(spec: DaemonSpec): number {
  const existing = runningPid(spec.pidFile);
  if (existing) return existing;
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const log = openSync(spec.logFile, "a");
  const argv = spec.netns ? ["nsenter", `--net=/run/netns/${spec.netns}`, "--", ...spec.argv] : spec.argv;
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...spec.env },
  });
  closeSync(log);
  const pid = child.pid;
  if (!pid) throw new Error(`cannot start ${spec.name}`);
  child.unref();
  // nsenter execs the daemon in place, so the pid is the daemon's; wait for /proc to show it.
  const startTime = startTimeOf(pid) ?? "";
  const rec: PidRecord = { pid, startTime, argv };
  writeFileSync(spec.pidFile, JSON.stringify(rec) + "\n");
  return pid;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after `graceMs`; removes the pid file. */
export async function stopDaemon(pidFile: string, graceMs = 5000): Promise<void> {
  const pid = runningPid(pidFile);
  if (pid) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* gone already */
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && runningPid(pidFile)) await sleep(50);
    if (runningPid(pidFile)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone already */
      }
      while (runningPid(pidFile)) await sleep(20);
    }
  }
  if (existsSync(pidFile)) rmSync(pidFile, { force: true });
}

/** Waits (up to `timeoutMs`) until every one of `pids` has exited: SIGKILL is not instant. */
export async function waitExited(pids: number[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((p) => !exited(p)) && Date.now() < deadline) await sleep(20);
}

export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone already */
    }
  }
}
