// Descriptors and files on a plugin's path: stdin, stdout and stderr, netns files, the
// reservation files of host-local, sysctls. Through libc (FFI) in the compiled plugin, because
// loading node:fs costs each start about 1 ms of CPU; through node:fs, loaded on first use,
// elsewhere. Failures are node:fs-style errors (err.code "ENOENT", err.message "ENOENT: no such
// file or directory, open '/x'"), so callers handle both alike.
import { libc, type Libc } from "./libc.ts";

const fs = () => process.getBuiltinModule("node:fs");

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const F_OK = 0;
const X_OK = 1;
const EINTR = 4;
const EAGAIN = 11;
const EEXIST = 17;
const ENOENT = 2;
/** Offset of d_name in glibc's struct dirent on 64-bit Linux (ino 8, off 8, reclen 2, type 1). */
const DIRENT_NAME = 19;
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EAGAIN", 13: "EACCES", 17: "EEXIST", 20: "ENOTDIR",
  21: "EISDIR", 22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 30: "EROFS", 36: "ENAMETOOLONG", 39: "ENOTEMPTY", 40: "ELOOP",
};

function errnoError(c: Libc, syscall: string, errno: number, path?: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES[errno] ?? `E${errno}`;
  const text = c.describe(errno);
  const err = new Error(`${code}: ${text.charAt(0).toLowerCase()}${text.slice(1)}, ${syscall}${path ? ` '${path}'` : ""}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (path) err.path = path;
  return err;
}

// One encoder, decoder and read buffer for the process (plugins are single-threaded): host-local
// reads every reservation file of its store on each ADD, a hundred on a full node.
let encoder: InstanceType<typeof TextEncoder> | undefined;
let decoder: InstanceType<typeof TextDecoder> | undefined;
let readBuffer: Uint8Array | undefined;
let pathBuffer: Uint8Array | undefined;

/** `text` as UTF-8 bytes, through the one encoder. */
export const encode = (text: string) => (encoder ??= new TextEncoder()).encode(text);

/** `p` NUL-terminated, in a buffer reused by the next call: pass it to one libc call at once. */
function cPath(p: string): Uint8Array {
  const buf = (pathBuffer ??= new Uint8Array(4096));
  const r = (encoder ??= new TextEncoder()).encodeInto(p, buf);
  if (r.read !== p.length || r.written >= buf.length) return encode(`${p}\0`);
  buf[r.written] = 0;
  return buf;
}

function readFd(c: Libc, fd: number, what: string, path?: string): string {
  const buf = (readBuffer ??= new Uint8Array(64 * 1024));
  decoder ??= new TextDecoder();
  const full: Uint8Array[] = []; // copies of the buffer each time it filled up
  let filled = 0;
  for (;;) {
    if (filled === buf.length) {
      full.push(buf.slice());
      filled = 0;
    }
    const n = c.read(fd, filled ? buf.subarray(filled) : buf, buf.length - filled);
    if (n === 0) break;
    if (n > 0) {
      filled += n;
      continue;
    }
    const errno = c.errno();
    if (errno === EINTR) continue;
    throw errnoError(c, what, errno, path);
  }
  // Most files fit the buffer: decoded from it, nothing copied.
  if (full.length === 0) return decoder.decode(buf.subarray(0, filled));
  const all = new Uint8Array(full.length * buf.length + filled);
  for (let i = 0; i < full.length; i++) all.set(full[i]!, i * buf.length);
  all.set(buf.subarray(0, filled), full.length * buf.length);
  return decoder.decode(all);
}

function writeFd(c: Libc, fd: number, text: string, path?: string): void {
  const bytes = encode(text);
  for (let off = 0; off < bytes.length; ) {
    const n = c.write(fd, bytes.subarray(off), bytes.length - off);
    if (n >= 0) {
      off += n;
      continue;
    }
    const errno = c.errno();
    if (errno !== EINTR && errno !== EAGAIN) throw errnoError(c, "write", errno, path);
  }
}

function openFd(c: Libc, path: string, flags: number, mode = 0): number {
  for (;;) {
    const fd = c.open(cPath(path), flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    const errno = c.errno();
    if (errno !== EINTR) throw errnoError(c, "open", errno, path);
  }
}

/** Everything readable from `fd` until end of file, as UTF-8. */
export function readAll(fd: number): string {
  const c = libc();
  return c ? readFd(c, fd, "read") : fs().readFileSync(fd, "utf8");
}

/** Writes all of `text` to `fd`. */
export function writeAll(fd: number, text: string): void {
  const c = libc();
  if (c) writeFd(c, fd, text);
  else fs().writeSync(fd, text);
}

/** Opens `path` read-only (close-on-exec) and returns the descriptor. */
export function openRead(path: string): number {
  const c = libc();
  return c ? openFd(c, path, O_RDONLY) : fs().openSync(path, "r");
}

/** Opens `path` read-only, creating it (mode 0600) when missing: a lock file. */
export function openOrCreate(path: string): number {
  const c = libc();
  if (!c) return fs().openSync(path, fs().constants.O_RDONLY | fs().constants.O_CREAT, 0o600);
  return openFd(c, path, O_RDONLY | O_CREAT, 0o600);
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

/** True when `path` exists and this process may execute it. */
export function isExecutable(path: string): boolean {
  const c = libc();
  if (!c) {
    try {
      fs().accessSync(path, fs().constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  return c.access(cPath(path), X_OK) === 0;
}

/** "device:inode" of the file at `path` (symlinks followed); undefined when it cannot be stat'ed. */
export function fileIdentity(path: string): string | undefined {
  const c = libc();
  if (!c) {
    try {
      const st = fs().statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  }
  // struct stat on 64-bit Linux starts with st_dev and st_ino, 8 bytes each.
  const buf = new Uint8Array(256);
  if (c.stat(cPath(path), buf) !== 0) return undefined;
  const view = new DataView(buf.buffer);
  return `${view.getBigUint64(0, true)}:${view.getBigUint64(8, true)}`;
}

/** True when `fd` is a terminal. */
export function isTerminal(fd: number): boolean {
  const c = libc();
  if (!c) return process.getBuiltinModule("node:tty").isatty(fd);
  return c.isatty(fd) === 1;
}

/** The whole file as UTF-8 text. */
export function readText(path: string): string {
  const c = libc();
  if (!c) return fs().readFileSync(path, "utf8");
  const fd = openFd(c, path, O_RDONLY);
  try {
    return readFd(c, fd, "read", path);
  } finally {
    c.close(fd);
  }
}

/** Replaces the file's content (created with `mode` when missing), as writeFileSync does. */
export function writeText(path: string, text: string, mode = 0o666): void {
  const c = libc();
  if (!c) return fs().writeFileSync(path, text, { mode });
  const fd = openFd(c, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  try {
    writeFd(c, fd, text, path);
  } finally {
    c.close(fd);
  }
}

/** Creates `path` with `text` only if it does not exist; false when it does (EEXIST). */
export function createExclusive(path: string, text: string, mode: number): boolean {
  const c = libc();
  let fd: number;
  try {
    fd = c ? openFd(c, path, O_RDWR | O_CREAT | O_EXCL, mode) : fs().openSync(path, "wx+", mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    if (c) writeFd(c, fd, text, path);
    else fs().writeSync(fd, text);
  } catch (e) {
    closeFd(fd);
    removeFile(path);
    throw e;
  }
  closeFd(fd);
  return true;
}

export function removeFile(path: string): void {
  const c = libc();
  if (!c) return fs().unlinkSync(path);
  if (c.unlink(cPath(path)) !== 0) throw errnoError(c, "unlink", c.errno(), path);
}

function isDirectory(c: Libc, path: string): boolean {
  const fd = c.open(cPath(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return false;
  c.close(fd);
  return true;
}

/** mkdir -p: every missing directory up to `path` (with `mode`); an existing directory is fine. */
export function makeDirs(path: string, mode = 0o777): void {
  const c = libc();
  if (!c) {
    fs().mkdirSync(path, { recursive: true, mode });
    return;
  }
  if (c.mkdir(cPath(path), mode) === 0) return;
  const errno = c.errno();
  if (errno === EEXIST && isDirectory(c, path)) return;
  const parent = path.replace(/\/+[^/]*\/*$/, "");
  if (errno !== ENOENT || parent === "" || parent === path) throw errnoError(c, "mkdir", errno, path);
  makeDirs(parent, mode);
  if (c.mkdir(cPath(path), mode) !== 0 && !(c.errno() === EEXIST && isDirectory(c, path))) throw errnoError(c, "mkdir", c.errno(), path);
}

/** The names in a directory, "." and ".." left out (order as the kernel gives them). */
export function listDir(path: string): string[] {
  const c = libc();
  if (!c) return fs().readdirSync(path);
  const dir = c.opendir(cPath(path));
  if (!dir) throw errnoError(c, "scandir", c.errno(), path);
  const names: string[] = [];
  try {
    for (let entry = c.readdir(dir); entry; entry = c.readdir(dir)) {
      const name = c.cstring(entry, DIRENT_NAME);
      if (name !== "." && name !== "..") names.push(name);
    }
  } finally {
    c.closedir(dir);
  }
  return names;
}
