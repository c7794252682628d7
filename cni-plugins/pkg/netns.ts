// Network namespace references (CNI_NETNS) and sysctls inside them.
import { run, runAsync } from "./exec.ts";
import { CniError, ErrCode } from "./errors.ts";
import { pathExists, readText, writeText } from "./fd.ts";
import { enterNetns } from "./setns.ts";

export { enterNetns };

/** True when `path` names something that exists (a netns bind mount or /proc/PID/ns/net). */
export function netnsExists(path: string): boolean {
  return pathExists(path);
}

/** For ADD and CHECK, the netns must exist; the variable is named in the error, as the spec asks. */
export function requireNetns(path: string): void {
  if (!netnsExists(path)) {
    throw new CniError(ErrCode.InvalidEnv, `CNI_NETNS ${path} does not exist`, "the container's network namespace must exist for ADD and CHECK");
  }
}

// Keys are written with '/' separators ("net/ipv4/conf/eth0.100/arp_notify") so that interface
// names containing dots stay unambiguous.
const SYSCTL_KEY = /^[a-z0-9_.\-]+(\/[a-z0-9_.\-]+)+$/i;

function checkKey(key: string): void {
  const parts = key.split("/");
  if (!SYSCTL_KEY.test(key) || parts.includes(".") || parts.includes("..")) throw new CniError(ErrCode.Internal, `bad sysctl key ${key}`);
}

/** Writes a sysctl in the current netns, or in `netns` (through setns, else nsenter + sysctl(8)). */
export function setSysctl(key: string, value: string, netns?: string): void {
  checkKey(key);
  const leave = netns ? enterNetns(netns) : undefined;
  if (netns && !leave) {
    run("sysctl", ["-q", "-w", `${key}=${value}`], { netns });
    return;
  }
  try {
    writeText(`/proc/sys/${key}`, value);
  } finally {
    leave?.();
  }
}

export function getSysctl(key: string): string {
  checkKey(key);
  return readText(`/proc/sys/${key}`).trim();
}

/**
 * Best-effort sysctl in another netns that does not hold up the caller: written at once through
 * setns(2) when possible, else by sysctl(8) under nsenter in the background. Resolves to whether
 * it was written.
 */
export async function trySysctlIn(netns: string, key: string, value: string): Promise<boolean> {
  checkKey(key);
  let leave: (() => void) | undefined;
  try {
    leave = enterNetns(netns);
  } catch {
    return false;
  }
  if (!leave) return (await runAsync("sysctl", ["-q", "-w", `${key}=${value}`], { netns, allowFail: true })).status === 0;
  try {
    writeText(`/proc/sys/${key}`, value);
    return true;
  } catch {
    return false;
  } finally {
    leave();
  }
}
