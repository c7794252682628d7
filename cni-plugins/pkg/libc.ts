// A few libc calls that Node cannot make, available when the plugins run as the Bun-compiled
// executable (bun:ffi): setns(2), to act inside a container's netns without starting nsenter;
// flock(2), for host-local's store; socket/send/recv, for rtnetlink (netlink.ts) instead of an
// `ip` process. Under Node `libc` is null and callers fall back to util-linux and iproute2
// programs (nsenter, flock, ip), which do the same with one more process start.
// PODNET_NO_FFI=1 forces the fallbacks (to compare them, or where FFI misbehaves).
import { closeSync, openSync } from "node:fs";
import { CniError, ErrCode } from "./errors.ts";

export interface Libc {
  setns(fd: number, nstype: number): number;
  flock(fd: number, op: number): number;
  socket(domain: number, type: number, protocol: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
}

async function load(): Promise<Libc | null> {
  if (!process.versions.bun || process.env.PODNET_NO_FFI === "1") return null;
  try {
    // A computed specifier keeps bundlers for Node from trying to resolve the Bun-only module.
    const spec = "bun:ffi";
    const ffi = (await import(spec)) as { dlopen(lib: string, syms: object): { symbols: Libc } };
    return ffi.dlopen("libc.so.6", {
      setns: { args: ["i32", "i32"], returns: "i32" },
      flock: { args: ["i32", "i32"], returns: "i32" },
      socket: { args: ["i32", "i32", "i32"], returns: "i32" },
      // ssize_t results read as 32 bits: netlink messages here are far below 2 GiB, and -1 stays -1.
      send: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
      recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
    }).symbols;
  } catch {
    return null; // no glibc (musl) or no FFI
  }
}

export const libc: Libc | null = await load();

export const CLONE_NEWNET = 0x40000000;
export const LOCK_EX = 2;

let ownNetns: number | undefined;

/**
 * A netns that cannot be entered. Its message is worded as nsenter's would be, so callers see the
 * same failure whichever way a command was started in the netns.
 */
export class NetnsError extends CniError {
  constructor(
    readonly path: string,
    readonly stderr: string,
  ) {
    super(ErrCode.Kernel, stderr);
  }
}

/**
 * Moves this thread into the netns at `path` and returns the function that moves it back, or
 * undefined when setns(2) is not available (then use nsenter). Between the two, file writes under
 * /proc/sys and processes started from this thread act in that netns. Callers keep the window
 * synchronous, so nothing else of ours runs inside it.
 */
export function enterNetns(path: string): (() => void) | undefined {
  if (!libc) return undefined;
  ownNetns ??= openSync("/proc/thread-self/ns/net", "r");
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NetnsError(path, `nsenter: cannot open ${path}: ${code === "ENOENT" ? "No such file or directory" : code ?? (e as Error).message}`);
  }
  try {
    if (libc.setns(fd, CLONE_NEWNET) !== 0) throw new NetnsError(path, `nsenter: reassociate to namespace 'ns/net' failed: Invalid argument`);
  } finally {
    closeSync(fd);
  }
  const back = ownNetns;
  return () => {
    if (libc!.setns(back, CLONE_NEWNET) !== 0) throw new CniError(ErrCode.Internal, "cannot return to the plugin's own netns");
  };
}
