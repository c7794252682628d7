// A few libc calls, made through bun:ffi when the plugins run as the Bun-compiled executable:
// setns(2), to act inside a container's netns without starting nsenter; flock(2), for
// host-local's store; socket/send/recv, for rtnetlink (netlink.ts) instead of an `ip` process;
// open/read/write/close, so that a plugin start does not load node:fs (fd.ts). Under Node
// `libc()` is null and callers fall back to node:fs and to util-linux and iproute2 programs
// (nsenter, flock, ip), which do the same with one more process start.
// PODNET_NO_FFI=1 forces the fallbacks (to compare them, or where FFI misbehaves).

export interface Libc {
  setns(fd: number, nstype: number): number;
  flock(fd: number, op: number): number;
  socket(domain: number, type: number, protocol: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  /** open(2) with its mode argument always passed (ignored without O_CREAT). */
  open(path: Uint8Array, flags: number, mode: number): number;
  mkdir(path: Uint8Array, mode: number): number;
  unlink(path: Uint8Array): number;
  /** opendir(3)/readdir(3)/closedir(3): pointers as numbers, 0 for NULL. */
  opendir(path: Uint8Array): number;
  readdir(dir: number): number;
  closedir(dir: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  close(fd: number): number;
  access(path: Uint8Array, mode: number): number;
  /** stat(2) into `buf` (struct stat, at least 144 bytes; glibc 2.33 and later export it). */
  stat(path: Uint8Array, buf: Uint8Array): number;
  isatty(fd: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
  /** strerror(3) of an errno value. */
  describe(errno: number): string;
  /** The NUL-terminated string at `ptr + offset`. */
  cstring(ptr: number, offset: number): string;
}

interface BunFfi {
  dlopen(lib: string, syms: object): { symbols: Record<string, (...a: unknown[]) => unknown> };
  read: { i32(ptr: unknown, offset: number): number };
  CString: new (ptr: number, offset?: number) => { toString(): string };
}

/** bun:ffi's FFIType numbers for the types used here (test/cni/libc.test.ts compares them). */
export const FFI_TYPE = { i32: 5, u64: 8, ptr: 12 } as const;

/**
 * Bun.FFI is the native side of bun:ffi: the same dlopen and read, given FFIType numbers. Going
 * to it directly spares a start loading bun:ffi's JavaScript (about 0.6 ms of CPU here); bun:ffi
 * itself is the fallback should a Bun version not expose it.
 */
function ffiModule(): BunFfi {
  const native = (globalThis as { Bun?: { FFI?: Partial<BunFfi> } }).Bun?.FFI;
  if (typeof native?.dlopen === "function" && typeof native.read?.i32 === "function" && typeof native.CString === "function") return native as BunFfi;
  // The computed specifier keeps bundlers for Node from trying to resolve the Bun-only module.
  const spec = "bun:ffi";
  return (import.meta as unknown as { require(s: string): BunFfi }).require(spec);
}

function load(): Libc | null {
  if (!process.versions.bun || process.env.PODNET_NO_FFI === "1") return null;
  try {
    // Synchronous, on first use: a start that needs no libc call does not pay for dlopen.
    const ffi = ffiModule();
    const { i32, u64, ptr } = FFI_TYPE;
    // ssize_t results read as 32 bits: every buffer here is far below 2 GiB, and -1 stays -1.
    const s = ffi.dlopen("libc.so.6", {
      setns: { args: [i32, i32], returns: i32 },
      flock: { args: [i32, i32], returns: i32 },
      socket: { args: [i32, i32, i32], returns: i32 },
      send: { args: [i32, ptr, u64, i32], returns: i32 },
      recv: { args: [i32, ptr, u64, i32], returns: i32 },
      open: { args: [ptr, i32, i32], returns: i32 },
      mkdir: { args: [ptr, i32], returns: i32 },
      unlink: { args: [ptr], returns: i32 },
      opendir: { args: [ptr], returns: ptr },
      readdir: { args: [ptr], returns: ptr },
      closedir: { args: [ptr], returns: i32 },
      strerror: { args: [i32], returns: ptr },
      read: { args: [i32, ptr, u64], returns: i32 },
      write: { args: [i32, ptr, u64], returns: i32 },
      close: { args: [i32], returns: i32 },
      access: { args: [ptr, i32], returns: i32 },
      stat: { args: [ptr, ptr], returns: i32 },
      isatty: { args: [i32], returns: i32 },
      __errno_location: { args: [], returns: ptr },
    }).symbols;
    const errnoAt = s.__errno_location!;
    const strerror = s.strerror!;
    return {
      ...(s as unknown as Libc),
      errno: () => ffi.read.i32(errnoAt(), 0),
      describe: (errno) => String(new ffi.CString(strerror(errno) as number)),
      cstring: (p, offset) => String(new ffi.CString(p, offset)),
    };
  } catch {
    return null; // no glibc (musl) or no FFI
  }
}

let loaded: Libc | null | undefined;

/** libc through FFI, loaded on the first call; null where it is not available. */
export function libc(): Libc | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

export const CLONE_NEWNET = 0x40000000;
export const LOCK_EX = 2;
