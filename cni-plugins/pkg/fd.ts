// Descriptors on a plugin's start-up path: stdin, stdout and stderr, netns files and sockets.
// Through libc (FFI) in the compiled plugin, because loading node:fs costs each start about 1 ms
// of CPU; through node:fs, loaded on first use, elsewhere. Failures are node:fs-style errors
// (err.code "ENOENT", ...), so callers handle both alike.
import { libc } from "./libc.ts";

const fs = () => process.getBuiltinModule("node:fs");

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const F_OK = 0;
const EINTR = 4;
const EAGAIN = 11;
const ERRNO_NAMES: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EAGAIN", 13: "EACCES", 20: "ENOTDIR", 21: "EISDIR", 24: "EMFILE", 36: "ENAMETOOLONG", 40: "ELOOP" };

function errnoError(syscall: string, errno: number, path?: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
  const err = new Error(`${code}: ${syscall} failed${path ? `, '${path}'` : ""}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (path) err.path = path;
  return err;
}

const cPath = (p: string) => new TextEncoder().encode(`${p}\0`);

/** Everything readable from `fd` until end of file, as UTF-8. */
export function readAll(fd: number): string {
  const c = libc();
  if (!c) return fs().readFileSync(fd, "utf8");
  const chunks: Uint8Array[] = [];
  for (;;) {
    const buf = new Uint8Array(64 * 1024);
    const n = c.read(fd, buf, buf.length);
    if (n === 0) break;
    if (n > 0) {
      chunks.push(buf.subarray(0, n));
      continue;
    }
    const errno = c.errno();
    if (errno === EINTR) continue;
    throw errnoError("read", errno);
  }
  const all = new Uint8Array(chunks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of chunks) {
    all.set(b, at);
    at += b.length;
  }
  return new TextDecoder().decode(all);
}

/** Writes all of `text` to `fd`. */
export function writeAll(fd: number, text: string): void {
  const c = libc();
  if (!c) {
    fs().writeSync(fd, text);
    return;
  }
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length; ) {
    const n = c.write(fd, bytes.subarray(off), bytes.length - off);
    if (n >= 0) {
      off += n;
      continue;
    }
    const errno = c.errno();
    if (errno !== EINTR && errno !== EAGAIN) throw errnoError("write", errno);
  }
}

/** Opens `path` read-only (close-on-exec) and returns the descriptor. */
export function openRead(path: string): number {
  const c = libc();
  if (!c) return fs().openSync(path, "r");
  const fd = c.open(cPath(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw errnoError("open", c.errno(), path);
  return fd;
}

export function closeFd(fd: number): void {
  const c = libc();
  if (!c) return fs().closeSync(fd);
  c.close(fd);
}

/** True when `path` exists (symlinks followed), as statSync succeeding would say. */
export function pathExists(path: string): boolean {
  const c = libc();
  if (!c) return fs().existsSync(path);
  return c.access(cPath(path), F_OK) === 0;
}

/** True when `fd` is a terminal. */
export function isTerminal(fd: number): boolean {
  const c = libc();
  if (!c) return process.getBuiltinModule("node:tty").isatty(fd);
  return c.isatty(fd) === 1;
}

