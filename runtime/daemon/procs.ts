// Processes, read from /proc. A pid alone can be reused after its process dies, so every pid the
// runtime keeps is paired with the process's start time (field 22 of /proc/PID/stat, clock ticks
// since boot): the pair names one process for the life of the machine.
import { readdirSync, readFileSync, statSync } from "node:fs";

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  startTime: string;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { pid, state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), startTime: f[19]! };
}

export function startTimeOf(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

/** True while the process exists and has not exited (a zombie has). */
export function isRunning(pid: number | undefined, startTime?: string): boolean {
  if (!pid || pid <= 0) return false;
  const st = readStat(pid);
  if (!st || st.state === "Z" || st.state === "X") return false;
  return startTime === undefined || st.startTime === startTime;
}

export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Live members of session `sid`: a container's processes, unless one started its own session. */
export function pidsInSession(sid: number): number[] {
  if (sid <= 0) return [];
  return allPids().filter((pid) => {
    const st = readStat(pid);
    return st !== undefined && st.session === sid && st.state !== "Z";
  });
}

/** Processes whose network namespace is the one bound at `nsPath` (as `ip netns pids`). */
export function pidsInNetns(nsPath: string): number[] {
  let target;
  try {
    target = statSync(nsPath);
  } catch {
    return [];
  }
  return pidsInNamespace("net", `${target.dev}:${target.ino}`);
}

/** A namespace of a process as "dev:ino", the identity /proc/PID/ns/KIND links to. */
export function namespaceOf(pid: number, kind: "net" | "uts"): string | undefined {
  try {
    const st = statSync(`/proc/${pid}/ns/${kind}`);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined; // gone
  }
}

/** Processes in the namespace of kind `kind` whose identity (namespaceOf) is `id`. */
export function pidsInNamespace(kind: "net" | "uts", id: string): number[] {
  const out: number[] = [];
  for (const pid of allPids()) if (namespaceOf(pid, kind) === id) out.push(pid);
  return out;
}

/** Sends a signal; false when the process is gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `done` every `stepMs` until it returns true or `ms` pass; returns its last answer. */
export async function waitFor(done: () => boolean, ms: number, stepMs = 25): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

/** SIGKILLs `pids` and waits (briefly) until they are gone. */
export async function killAndWait(pids: number[], ms = 5000): Promise<boolean> {
  const stamped = pids.map((pid) => ({ pid, start: startTimeOf(pid) })).filter((p) => p.start !== undefined);
  for (const p of stamped) signal(p.pid, "SIGKILL");
  return waitFor(() => stamped.every((p) => !isRunning(p.pid, p.start)), ms);
}

/** Resident and proportional set size in KiB (PSS shares libc's pages among their users). */
export function memoryOf(pid: number): { rssKiB: number; pssKiB: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const rss = /^Rss:\s+(\d+) kB/m.exec(text);
    const pss = /^Pss:\s+(\d+) kB/m.exec(text);
    return { rssKiB: Number(rss?.[1] ?? 0), pssKiB: Number(pss?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}
