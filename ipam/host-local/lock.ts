// An exclusive flock(2) on the store's lock file, the same lock the reference plugin takes, so
// both can share one store. Node has no flock API: under Bun, flock(2) is called through
// bun:ffi; otherwise util-linux flock(1) locks our descriptor, passed to it as its fd 3. The
// lock belongs to the open file description both descriptors share, so it stays held after
// the child exits, until we close our descriptor.
import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { CniError, ErrCode } from "../../cni-plugins/pkg/errors.ts";

export interface FileLock {
  release(): void;
}

const LOCK_EX = 2;
type FlockFn = (fd: number, op: number) => number;
// A cache of what this process can do (not state about any lock): undefined until first tried.
let ffiFlock: FlockFn | null | undefined;

async function loadFfiFlock(): Promise<FlockFn | null> {
  if (ffiFlock !== undefined) return ffiFlock;
  ffiFlock = null;
  // PODNET_FLOCK=child forces the flock(1) path (to measure it, or where FFI misbehaves).
  if (!process.versions.bun || process.env.PODNET_FLOCK === "child") return null;
  try {
    // A computed specifier keeps bundlers for Node from trying to resolve the Bun-only module.
    const spec = "bun:ffi";
    const ffi = (await import(spec)) as { dlopen(lib: string, syms: object): { symbols: { flock: FlockFn } } };
    ffiFlock = ffi.dlopen("libc.so.6", { flock: { args: ["i32", "i32"], returns: "i32" } }).symbols.flock;
  } catch {
    ffiFlock = null; // no glibc (musl) or no FFI: flock(1) still works
  }
  return ffiFlock;
}

const FLOCK_PROGRAMS = ["flock", "/usr/bin/flock", "/bin/flock"];

function flockViaChild(fd: number, path: string): void {
  for (const program of FLOCK_PROGRAMS) {
    const r = spawnSync(program, ["-x", "3"], { stdio: ["ignore", "ignore", "pipe", fd], encoding: "utf8" });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") continue;
    if (r.error) throw new CniError(ErrCode.IOFailure, `cannot lock ${path}: ${r.error.message}`);
    if (r.status !== 0) throw new CniError(ErrCode.IOFailure, `cannot lock ${path}: flock: ${(r.stderr ?? "").trim() || `killed by ${r.signal}`}`);
    return;
  }
  throw new CniError(ErrCode.IOFailure, `cannot lock ${path}: util-linux flock(1) is not installed`);
}

/** Waits for the exclusive lock on `path` (created when missing); release() closes it. */
export async function lockFile(path: string): Promise<FileLock> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_CREAT, 0o600);
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `cannot open lock file ${path}: ${(e as Error).message}`);
  }
  try {
    const flock = await loadFfiFlock();
    // flock(2) can fail with EINTR; a second try, then flock(1), covers it without needing errno.
    if (!flock || (flock(fd, LOCK_EX) !== 0 && flock(fd, LOCK_EX) !== 0)) flockViaChild(fd, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let open = true;
  return {
    release() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
