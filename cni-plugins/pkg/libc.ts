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
  open(path: Uint8Array, flags: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  close(fd: number): number;
  access(path: Uint8Array, mode: number): number;
  isatty(fd: number): number;
  /** errno of the last failed call on this thread. */
  errno(): number;
}

interface BunFfi {
  dlopen(lib: string, syms: object): { symbols: Record<string, (...a: unknown[]) => unknown> };
  read: { i32(ptr: unknown, offset: number): number };
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
  if (typeof native?.dlopen === "function" && typeof native.read?.i32 === "function") return native as BunFfi;
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
      open: { args: [ptr, i32], returns: i32 },
      read: { args: [i32, ptr, u64], returns: i32 },
      write: { args: [i32, ptr, u64], returns: i32 },
      close: { args: [i32], returns: i32 },
      access: { args: [ptr, i32], returns: i32 },
      isatty: { args: [i32], returns: i32 },
      __errno_location: { args: [], returns: ptr },
    }).symbols;
    const errnoAt = s.__errno_location!;
    return { ...(s as unknown as Libc), errno: () => ffi.read.i32(errnoAt(), 0) };
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
