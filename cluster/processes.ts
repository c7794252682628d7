// Background daemons of a cluster: started detached (optionally inside a node's netns), with a
// pid file and a log file each. A pid file records the process start time too, so a recycled pid
// is never mistaken for our daemon (and never killed).
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isRunning, startTimeOf } from "../runtime/daemon/procs.ts";

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

function readPid(pidFile: string): PidRecord | undefined {
  try {
    return JSON.parse(readFileSync(pidFile, "utf8")) as PidRecord;
  } catch {
    return undefined;
  }
}

/**
 * The daemon's pid when it is running (and really is the process we started). One that exited
 * but is not reaped yet counts as stopped: our daemons are detached, so PID 1 reaps them, and it
 * may take a second or two (it does here).
 */
export function runningPid(pidFile: string): number | undefined {
  const rec = readPid(pidFile);
  if (!rec) return undefined;
  return isRunning(rec.pid, rec.startTime) ? rec.pid : undefined;
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
  while (pids.some((p) => isRunning(p)) && Date.now() < deadline) await sleep(20);
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
