// The on-disk store, in the reference plugin's layout so either plugin can take over the other's:
//   <dataDir>/<network>/<ip>                  "<containerID>\r\n<ifname>" (older files: "<containerID>")
//   <dataDir>/<network>/last_reserved_ip.<N>  the address last handed out from range set N
//   <dataDir>/<network>/lock                  flock(2)-ed around every change
// File names are only ever our own formatting of parsed addresses, never input.
import { CniError, ErrCode } from "../../cni-plugins/pkg/errors.ts";
import { createExclusive, listDir, makeDirs, pathExists, readText, removeFile, writeText } from "../../cni-plugins/pkg/fd.ts";
import { joinPath } from "../../cni-plugins/pkg/paths.ts";
import { formatAddr, parseAddr, type Addr } from "../../cni-plugins/pkg/addr.ts";
import { lockFile } from "./lock.ts";

const LAST_RESERVED = "last_reserved_ip.";
const LINE_BREAK = "\r\n";

export interface Reservation {
  addr: Addr;
  /** The file name: formatAddr(addr), or a name read from the store that parses as an address. */
  name: string;
}

/** A reservation for an address we formatted ourselves. */
export const reservationOf = (addr: Addr): Reservation => ({ addr, name: formatAddr(addr) });

const ADDRESS_CHARS = /^[0-9a-fA-F:.]+$/;

export interface OwnedReservation extends Reservation {
  /** The file's content, whitespace-trimmed as the reference compares it. */
  owner: string;
}

/** What a reservation file holds for an attachment. */
export const ownerKey = (containerID: string, ifname: string) => `${containerID}${LINE_BREAK}${ifname}`;

/** Splits an owner string into its container ID and ifname (undefined for an ID-only legacy file). */
export function splitOwner(owner: string): { containerID: string; ifname?: string } {
  const i = owner.indexOf(LINE_BREAK);
  return i < 0 ? { containerID: owner } : { containerID: owner.slice(0, i), ifname: owner.slice(i + LINE_BREAK.length) };
}

function ioError(what: string, e: unknown): CniError {
  return new CniError(ErrCode.IOFailure, `${what}: ${(e as Error).message}`);
}

export class Store {
  /** The directory with a trailing "/": file names here are ours or checked addresses (no "/", no ".."). */
  private readonly prefix: string;

  private constructor(readonly dir: string) {
    const clean = joinPath(dir);
    this.prefix = clean.endsWith("/") ? clean : `${clean}/`;
  }

  private pathOf(name: string): string {
    return this.prefix + name;
  }

  /**
   * Runs `fn` holding the store's lock. With `create`, the directory is made when missing;
   * without, a missing directory means an empty store and `fn` is not run (undefined).
   */
  static async locked<T>(dir: string, create: boolean, fn: (s: Store) => T): Promise<T | undefined> {
    if (create) {
      try {
        makeDirs(dir, 0o755);
      } catch (e) {
        throw ioError(`cannot create the IPAM store ${dir}`, e);
      }
    } else if (!pathExists(dir)) return undefined;
    const lock = await lockFile(joinPath(dir, "lock"));
    try {
      return fn(new Store(dir));
    } finally {
      lock.release();
    }
  }

  /** A view without the lock, for read-only questions (STATUS). */
  static peek(dir: string): Store | undefined {
    return pathExists(dir) ? new Store(dir) : undefined;
  }

  /** The reservation files, by name (only names that are canonical addresses count). */
  list(): Reservation[] {
    let names: string[];
    try {
      names = listDir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw ioError(`cannot read the IPAM store ${this.dir}`, e);
    }
    const out: Reservation[] = [];
    for (const name of names) {
      // A name that parses as an address is safe as a path component (no '/', never "..").
      const addr = ADDRESS_CHARS.test(name) ? parseAddr(name) : undefined;
      if (addr) out.push({ addr, name });
    }
    return out;
  }

  /** The reservations with their owners. */
  listOwned(): OwnedReservation[] {
    const out: OwnedReservation[] = [];
    for (const r of this.list()) {
      try {
        out.push({ addr: r.addr, name: r.name, owner: readText(this.pathOf(r.name)).trim() });
      } catch {
        /* a directory or unreadable file under an address name is no reservation */
      }
    }
    return out;
  }

  /** Claims `addr` for `owner`; false when it is taken. Records it as set `setIndex`'s last. */
  reserve(addr: Addr, owner: string, setIndex: number): boolean {
    const name = formatAddr(addr);
    const path = this.pathOf(name);
    try {
      // Exclusive creation is the claim: a file that exists is somebody's reservation.
      if (!createExclusive(path, owner, 0o600)) return false;
    } catch (e) {
      throw ioError(`cannot reserve ${name}`, e);
    }
    try {
      writeText(this.pathOf(`${LAST_RESERVED}${setIndex}`), name, 0o600);
    } catch (e) {
      this.release({ addr, name });
      throw ioError(`cannot record the last reserved IP of range set ${setIndex}`, e);
    }
    return true;
  }

  lastReserved(setIndex: number): Addr | undefined {
    const raw = this.lastReservedRaw(setIndex);
    // None yet (or unreadable): start from the beginning, as the reference does.
    return raw === undefined ? undefined : parseAddr(raw.trim());
  }

  /** The last_reserved_ip file's exact content, to put back when an ADD is undone. */
  lastReservedRaw(setIndex: number): string | undefined {
    try {
      return readText(this.pathOf(`${LAST_RESERVED}${setIndex}`));
    } catch {
      return undefined;
    }
  }

  restoreLastReserved(setIndex: number, raw: string | undefined): void {
    const path = this.pathOf(`${LAST_RESERVED}${setIndex}`);
    try {
      if (raw === undefined) removeFile(path);
      else writeText(path, raw, 0o600);
    } catch {
      /* round robin only loses its place: never worth failing for */
    }
  }

  /** Removes a reservation file; one that is already gone is released. */
  release({ name }: Reservation): void {
    try {
      removeFile(this.pathOf(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cannot release ${name}`, e);
    }
  }
}
