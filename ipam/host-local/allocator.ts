// Hands out one address per range set: a requested one when asked (and free), otherwise the
// next free one round-robin after the set's last reserved address, as the reference does.
import { CniError, ErrCode, invalidConfig } from "../../cni-plugins/pkg/errors.ts";
import type { IPConfig } from "../../cni-plugins/pkg/types.ts";
import { addrKey, formatAddr, sameAddr, type Addr } from "../../cni-plugins/pkg/addr.ts";
import type { RequestedIP } from "./config.ts";
import { allocatable, rangeFor, roundRobin, setString, type Range, type RangeSet } from "./range.ts";
import { ownerKey, reservationOf, type OwnedReservation, type Store } from "./store.ts";

/**
 * Matches each requested IP to the range set that holds it (at most one per set). An IP that no
 * set holds cannot be honoured: refused before the store is touched.
 */
export function assignRequested(sets: RangeSet[], requested: RequestedIP[]): (RequestedIP | undefined)[] {
  const perSet: (RequestedIP | undefined)[] = sets.map(() => undefined);
  for (const req of requested) {
    const i = sets.findIndex((s) => rangeFor(s, req.addr));
    const ip = formatAddr(req.addr);
    if (i < 0) {
      throw invalidConfig(`failed to allocate all requested IPs: ${ip} (${req.source}) is not in any range of this network`, `ranges: ${sets.map(setString).join("; ")}`);
    }
    const already = perSet[i];
    if (already) {
      throw invalidConfig(`failed to allocate all requested IPs: ${ip} (${req.source}) and ${formatAddr(already.addr)} (${already.source}) are both in range set ${sets[i]!.where}`, "host-local gives one IP per range set");
    }
    perSet[i] = req;
  }
  return perSet;
}

interface Got {
  addr: Addr;
  range: Range;
}

function unavailable(idx: number, msg: string, details?: string): CniError {
  return new CniError(ErrCode.AddressUnavailable, `failed to allocate for range ${idx}: ${msg}`, details);
}

function takeRequested(store: Store, set: RangeSet, idx: number, req: RequestedIP, owner: string, owners: Map<string, string>): Got {
  const range = rangeFor(set, req.addr)!;
  const ip = formatAddr(req.addr);
  if (sameAddr(req.addr, range.gateway)) throw unavailable(idx, `requested ip ${ip} is subnet's gateway`, `requested by ${req.source}`);
  if (!allocatable(range, req.addr)) throw unavailable(idx, `requested ip ${ip} is the network or broadcast address of its subnet`, `requested by ${req.source}`);
  if (!store.reserve(req.addr, owner, idx)) {
    const holder = owners.get(addrKey(req.addr));
    throw unavailable(idx, `requested IP address ${ip} is not available in range set ${setString(set)}`, holder ? `reserved by container ${holder.split("\r\n")[0]}` : undefined);
  }
  return { addr: req.addr, range };
}

function takeNext(store: Store, set: RangeSet, idx: number, owner: string, taken: Set<bigint>): Got {
  for (const c of roundRobin(set, store.lastReserved(idx))) {
    if (!taken.has(c.addr.n) && store.reserve(c.addr, owner, idx)) return c;
  }
  throw new CniError(ErrCode.IPAMExhausted, `failed to allocate for range ${idx}: no IP addresses available in range set: ${setString(set)}`);
}

/** Allocates for every range set, all or nothing. The store must be locked. */
export function allocate(store: Store, sets: RangeSet[], requested: (RequestedIP | undefined)[], containerID: string, ifname: string): IPConfig[] {
  const owner = ownerKey(containerID, ifname);
  const existing: OwnedReservation[] = store.listOwned();
  const owners = new Map(existing.map((r) => [addrKey(r.addr), r.owner]));
  const mine = existing.filter((r) => r.owner === owner || r.owner === containerID);
  const made: Addr[] = [];
  // A failed ADD leaves round robin where it was, too.
  const lastBefore = sets.map((_, idx) => store.lastReservedRaw(idx));
  try {
    return sets.map((set, idx) => {
      let got: Got;
      const req = requested[idx];
      if (req) {
        got = takeRequested(store, set, idx, req, owner, owners);
      } else {
        // The spec forbids two ADDs for one attachment without a DEL between them.
        const dup = mine.find((r) => rangeFor(set, r.addr));
        if (dup) throw unavailable(idx, `${formatAddr(dup.addr)} has been allocated to ${containerID}, duplicate allocation is not allowed`, `interface ${ifname}; run DEL first`);
        const taken = new Set(existing.filter((r) => r.addr.v6 === set.v6).map((r) => r.addr.n));
        got = takeNext(store, set, idx, owner, taken);
      }
      made.push(got.addr);
      return { address: `${formatAddr(got.addr)}/${got.range.subnet.prefix}`, gateway: formatAddr(got.range.gateway) };
    });
  } catch (e) {
    for (const a of made) {
      try {
        store.release(reservationOf(a));
      } catch {
        /* the original error matters more */
      }
    }
    lastBefore.forEach((raw, idx) => {
      if (store.lastReservedRaw(idx) !== raw) store.restoreLastReserved(idx, raw);
    });
    throw e;
  }
}
