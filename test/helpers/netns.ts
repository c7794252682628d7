// Throwaway network namespaces for tests. Every namespace a test makes is removed in its
// teardown, together with any process still running inside it, even when the test fails.
import type { ExecutionContext } from "ava";
import { execa, type Options } from "execa";
import { randomBytes } from "node:crypto";

export interface Netns {
  name: string;
  path: string;
}

/** A short unique name: tests run in parallel and interface names are at most 15 bytes. */
export function uniqueName(prefix = "pnt"): string {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}

export async function removeNetns(name: string): Promise<void> {
  const pids = await execa("ip", ["netns", "pids", name], { reject: false });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  await execa("ip", ["netns", "del", name], { reject: false });
}

/** Creates a netns with `lo` up, removed when the test ends. */
export async function createNetns(t: ExecutionContext, prefix = "pnt"): Promise<Netns> {
  const name = uniqueName(prefix);
  await execa("ip", ["netns", "add", name]);
  t.teardown(() => removeNetns(name));
  await execa("ip", ["-n", name, "link", "set", "lo", "up"]);
  return { name, path: `/run/netns/${name}` };
}

/** Runs a program inside a netns (only the network namespace changes, as with nsenter). */
export function inNetns(ns: Netns | string, cmd: string, args: string[], opts: Options = {}) {
  const path = typeof ns === "string" ? ns : ns.path;
  return execa("nsenter", [`--net=${path}`, "--", cmd, ...args], opts);
}

/** JSON of `ip -j ...` inside a netns. */
export async function ipJSON<T = any>(ns: Netns, args: string[]): Promise<T> {
  const r = await inNetns(ns, "ip", ["-j", ...args]);
  return JSON.parse(String(r.stdout) || "[]") as T;
}

/** Connects two namespaces with a veth pair and gives each end an address. */
export async function linkNetns(a: Netns, aIf: string, aAddr: string, b: Netns, bIf: string, bAddr: string): Promise<void> {
  await execa("ip", ["-n", a.name, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name]);
  await execa("ip", ["-n", a.name, "addr", "add", aAddr, "dev", aIf]);
  await execa("ip", ["-n", b.name, "addr", "add", bAddr, "dev", bIf]);
  await execa("ip", ["-n", a.name, "link", "set", aIf, "up"]);
  await execa("ip", ["-n", b.name, "link", "set", bIf, "up"]);
}
