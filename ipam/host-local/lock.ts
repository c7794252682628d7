// An exclusive flock(2) on the store's lock file, the same lock the reference plugin takes, so
// both can share one store. Node has no flock API: under Bun, flock(2) is called through
// bun:ffi; otherwise util-linux flock(1) locks our descriptor, passed to it as its fd 3. The
// lock belongs to the open file description both descriptors share, so it stays held after
// the child exits, until we close our descriptor.
import { CniError, ErrCode } from "../../cni-plugins/pkg/errors.ts";
import { closeFd, openOrCreate } from "../../cni-plugins/pkg/fd.ts";
import { libc, LOCK_EX } from "../../cni-plugins/pkg/libc.ts";

export interface FileLock {
  release(): void;
}

const FLOCK_PROGRAMS = ["flock", "/usr/bin/flock", "/bin/flock"];

function flockViaChild(fd: number, path: string): void {
  for (const program of FLOCK_PROGRAMS) {
    const r = process.getBuiltinModule("node:child_process").spawnSync(program, ["-x", "3"], { stdio: ["ignore", "ignore", "pipe", fd], encoding: "utf8" });
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
    fd = openOrCreate(path);
  } catch (e) {
    throw new CniError(ErrCode.IOFailure, `cannot open lock file ${path}: ${(e as Error).message}`);
  }
  try {
    // flock(2) can fail with EINTR; a second try, then flock(1), covers it without needing errno.
    // PODNET_FLOCK=child forces flock(1), to measure it.
    const direct = process.env.PODNET_FLOCK === "child" ? null : libc();
    if (!direct || (direct.flock(fd, LOCK_EX) !== 0 && direct.flock(fd, LOCK_EX) !== 0)) flockViaChild(fd, path);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  let open = true;
  return {
    release() {
      if (open) closeFd(fd);
      open = false;
    },
  };
}
