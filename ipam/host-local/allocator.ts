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
  // Loops rather than array builtins: see range.ts's roundRobin.
  const perSet: (RequestedIP | undefined)[] = [];
  for (let i = 0; i < sets.length; i++) perSet.push(undefined);
  for (const req of requested) {
    let i = -1;
    for (let j = 0; j < sets.length && i < 0; j++) if (rangeFor(sets[j]!, req.addr)) i = j;
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
  const got = roundRobin(set, store.lastReserved(idx), (c) => !taken.has(c.addr.n) && store.reserve(c.addr, owner, idx));
  if (got) return got;
  throw new CniError(ErrCode.IPAMExhausted, `failed to allocate for range ${idx}: no IP addresses available in range set: ${setString(set)}`);
}

/** Allocates for every range set, all or nothing. The store must be locked. */
export function allocate(store: Store, sets: RangeSet[], requested: (RequestedIP | undefined)[], containerID: string, ifname: string): IPConfig[] {
  const owner = ownerKey(containerID, ifname);
  const existing: OwnedReservation[] = store.listOwned();
  const owners = new Map<string, string>();
  const mine: OwnedReservation[] = [];
  for (const r of existing) {
    owners.set(addrKey(r.addr), r.owner);
    if (r.owner === owner || r.owner === containerID) mine.push(r);
  }
  const made: Addr[] = [];
  // A failed ADD leaves round robin where it was, too.
  const lastBefore: (string | undefined)[] = [];
  for (let idx = 0; idx < sets.length; idx++) lastBefore.push(store.lastReservedRaw(idx));
  try {
    const out: IPConfig[] = [];
    for (let idx = 0; idx < sets.length; idx++) {
      const set = sets[idx]!;
      let got: Got;
      const req = requested[idx];
      if (req) {
        got = takeRequested(store, set, idx, req, owner, owners);
      } else {
        // The spec forbids two ADDs for one attachment without a DEL between them.
        for (const dup of mine) {
          if (rangeFor(set, dup.addr)) throw unavailable(idx, `${formatAddr(dup.addr)} has been allocated to ${containerID}, duplicate allocation is not allowed`, `interface ${ifname}; run DEL first`);
        }
        const taken = new Set<bigint>();
        for (const r of existing) if (r.addr.v6 === set.v6) taken.add(r.addr.n);
        got = takeNext(store, set, idx, owner, taken);
      }
      made.push(got.addr);
      out.push({ address: `${formatAddr(got.addr)}/${got.range.subnet.prefix}`, gateway: formatAddr(got.range.gateway) });
    }
    return out;
  } catch (e) {
    for (const a of made) {
      try {
        store.release(reservationOf(a));
      } catch {
        /* the original error matters more */
      }
    }
    for (let idx = 0; idx < lastBefore.length; idx++) {
      if (store.lastReservedRaw(idx) !== lastBefore[idx]) store.restoreLastReserved(idx, lastBefore[idx]);
    }
    throw e;
  }
}
