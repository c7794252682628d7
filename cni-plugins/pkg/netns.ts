// Network namespace references (CNI_NETNS) and sysctls inside them.
import { statSync, writeFileSync, readFileSync } from "node:fs";
import { run } from "./exec.ts";
import { CniError, ErrCode } from "./errors.ts";

/** True when `path` names something that exists (a netns bind mount or /proc/PID/ns/net). */
export function netnsExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
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
  if (!SYSCTL_KEY.test(key) || key.split("/").some((p) => p === "." || p === "..")) throw new CniError(ErrCode.Internal, `bad sysctl key ${key}`);
}

/** Writes a sysctl in the current netns, or in `netns` through nsenter + sysctl(8). */
export function setSysctl(key: string, value: string, netns?: string): void {
  checkKey(key);
  if (netns) {
    run("sysctl", ["-q", "-w", `${key}=${value}`], { netns });
    return;
  }
  writeFileSync(`/proc/sys/${key}`, value);
}

export function getSysctl(key: string): string {
  checkKey(key);
  return readFileSync(`/proc/sys/${key}`, "utf8").trim();
}
