// The record store: every DNS record the cluster DNS can answer, indexed by owner name, and kept
// current from Service, EndpointSlice and Pod add/update/delete events. A change rebuilds only
// the records of the one Service (or Pod) it touches and diffs them into the index, so a lookup
// is one map access whatever the number of Services, and an update costs the size of that
// Service, not of the cluster. The store knows nothing of the API server or of sockets.
import type { Answer, OptAnswer } from "dns-packet";
import type { Endpoint, EndpointSlice, Pod, Service } from "../apiserver/types.ts";
import { canonicalName, dashedIP, ipFamily, isDnsLabel, isDnsName, isUnder, reverseName } from "./names.ts";

/** A record as the store keeps it: canonical owner name, no TTL (the resolver adds it). */
export type StoredRecord = Exclude<Answer, OptAnswer>;

/** The version of the Kubernetes DNS schema served (dns-version.<zone> TXT). */
export const DNS_SCHEMA_VERSION = "1.1.0";

const TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints";
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface StoreStats {
  names: number;
  services: number;
  endpointSlices: number;
  pods: number;
}

function keyOf(o: { metadata: { namespace?: string; name?: string } }): string | undefined {
  const { namespace, name } = o.metadata;
  return namespace && name ? `${namespace}/${name}` : undefined;
}

function addressRecord(name: string, ip: string): StoredRecord | undefined {
  const fam = ipFamily(ip);
  if (fam === 4) return { name, type: "A", data: ip };
  if (fam === 6) return { name, type: "AAAA", data: ip };
  return undefined;
}

/** Collects records by owner name, dropping exact duplicates (the same IP in two slices). */
class RecordSet {
  readonly byName = new Map<string, StoredRecord[]>();
  private readonly seen = new Set<string>();
  add(r: StoredRecord | undefined): void {
    if (!r) return;
    const id = `${r.name}|${r.type}|${JSON.stringify(r.data)}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    const list = this.byName.get(r.name);
    if (list) list.push(r);
    else this.byName.set(r.name, [r]);
  }
}

export class RecordStore {
  readonly zone: string;
  /** Owner name -> (contributing object -> its records at that name). */
  private readonly names = new Map<string, Map<string, StoredRecord[]>>();
  /** Name -> how many names with records lie strictly below it (empty non-terminals exist). */
  private readonly below = new Map<string, number>();
  /** Contributing object ("svc:ns/name", "pod:ns/name") -> the records it put in. */
  private readonly owned = new Map<string, Map<string, StoredRecord[]>>();
  private readonly services = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  private readonly sliceService = new Map<string, string>();
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly podKeys = new Set<string>();
  /** SOA serial: bumped on every change that alters records. */
  serial = Math.floor(Date.now() / 1000) >>> 0;
  /** False until the data source has delivered its first full list (queries get SERVFAIL). */
  synced = false;

  constructor(zone = "cluster.local") {
    const z = canonicalName(zone);
    if (!isDnsName(z)) throw new Error(`cluster domain "${zone}" is not a valid DNS name`);
    this.zone = z;
  }

  // ---- events ----

  upsertService(svc: Service): void {
    const key = keyOf(svc);
    if (!key) return;
    this.services.set(key, svc);
    this.rebuildService(key);
  }

  deleteService(svc: Service): void {
    const key = keyOf(svc);
    if (!key) return;
    this.services.delete(key);
    this.rebuildService(key);
  }

  upsertEndpointSlice(slice: EndpointSlice): void {
    const key = keyOf(slice);
    if (!key) return;
    const svcName = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    const svcKey = svcName ? `${slice.metadata.namespace}/${svcName}` : undefined;
    const before = this.sliceService.get(key);
    if (before && before !== svcKey) this.unlinkSlice(key, before);
    this.slices.set(key, slice);
    if (svcKey) {
      this.sliceService.set(key, svcKey);
      let set = this.slicesByService.get(svcKey);
      if (!set) this.slicesByService.set(svcKey, (set = new Set()));
      set.add(key);
      this.rebuildService(svcKey);
    }
  }

  deleteEndpointSlice(slice: EndpointSlice): void {
    const key = keyOf(slice);
    if (!key) return;
    this.slices.delete(key);
    const svcKey = this.sliceService.get(key);
    if (svcKey) this.unlinkSlice(key, svcKey);
  }

  upsertPod(pod: Pod): void {
    const key = keyOf(pod);
    if (!key) return;
    this.podKeys.add(key);
    this.setOwnerRecords(`pod:${key}`, this.podRecords(pod));
  }

  deletePod(pod: Pod): void {
    const key = keyOf(pod);
    if (!key) return;
    this.podKeys.delete(key);
    this.setOwnerRecords(`pod:${key}`, new Map());
  }

  // ---- lookups ----

  /** The records owned by a canonical name (empty when there are none). */
  records(name: string): StoredRecord[] {
    const owners = this.names.get(name);
    if (!owners) return [];
    if (owners.size === 1) return owners.values().next().value!;
    // Several objects at one name (host-network pods sharing the node's address, say) must not
    // make an RRset with duplicate records (RFC 2181 5).
    const out: StoredRecord[] = [];
    const seen = new Set<string>();
    for (const list of owners.values()) {
      for (const r of list) {
        const id = `${r.type}|${JSON.stringify(r.data)}`;
        if (!seen.has(id)) {
          seen.add(id);
          out.push(r);
        }
      }
    }
    return out;
  }

  /** True when the name owns records or has names with records below it. */
  exists(name: string): boolean {
    return this.names.has(name) || (this.below.get(name) ?? 0) > 0;
  }

  stats(): StoreStats {
    return { names: this.names.size, services: this.services.size, endpointSlices: this.slices.size, pods: this.podKeys.size };
  }

  // ---- building records ----

  private unlinkSlice(sliceKey: string, svcKey: string): void {
    this.sliceService.delete(sliceKey);
    const set = this.slicesByService.get(svcKey);
    set?.delete(sliceKey);
    if (set && set.size === 0) this.slicesByService.delete(svcKey);
    this.rebuildService(svcKey);
  }

  private rebuildService(svcKey: string): void {
    const svc = this.services.get(svcKey);
    this.setOwnerRecords(`svc:${svcKey}`, svc ? this.serviceRecords(svc, svcKey) : new Map());
  }

  private serviceRecords(svc: Service, svcKey: string): Map<string, StoredRecord[]> {
    const set = new RecordSet();
    const [ns, name] = svcKey.split("/");
    if (!isDnsLabel(ns) || !isDnsLabel(name)) return set.byName;
    const base = `${name}.${ns}.svc.${this.zone}`;
    const spec = svc.spec ?? {};

    if (spec.type === "ExternalName") {
      const target = spec.externalName ? canonicalName(spec.externalName) : "";
      if (isDnsName(target)) set.add({ name: base, type: "CNAME", data: target });
      return set.byName;
    }

    const clusterIPs = (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).filter((ip) => ip && ip !== "None");
    if (clusterIPs.length > 0) {
      for (const ip of clusterIPs) {
        set.add(addressRecord(base, ip));
        const rev = reverseName(ip);
        if (rev) set.add({ name: rev, type: "PTR", data: base });
        // The apex NS record names ns.dns.<zone>; the kube-dns Service's address is its glue.
        if (svcKey === "kube-system/kube-dns") set.add(addressRecord(`ns.dns.${this.zone}`, ip));
      }
      const srv: StoredRecord[] = [];
      for (const p of spec.ports ?? []) {
        if (!p.name || !isDnsLabel(p.name)) continue; // unnamed ports have no SRV record
        const proto = (p.protocol ?? "TCP").toLowerCase();
        srv.push({ name: `_${p.name}._${proto}.${base}`, type: "SRV", data: { priority: 0, weight: 100, port: p.port, target: base } });
      }
      for (const r of srv) set.add(r);
      return set.byName;
    }

    if (spec.clusterIP === "None" || spec.clusterIPs?.[0] === "None") this.headlessRecords(svc, svcKey, base, set);
    return set.byName;
  }

  /** A headless Service: its ready endpoints by address, by hostname, by port (SRV), and PTR. */
  private headlessRecords(svc: Service, svcKey: string, base: string, set: RecordSet): void {
    const publishAll = svc.spec.publishNotReadyAddresses === true || svc.metadata.annotations?.[TOLERATE_UNREADY] === "true";
    const srvByName = new Map<string, StoredRecord[]>();
    for (const sliceKey of this.slicesByService.get(svcKey) ?? []) {
      const slice = this.slices.get(sliceKey);
      if (!slice || (slice.addressType !== "IPv4" && slice.addressType !== "IPv6")) continue;
      for (const ep of slice.endpoints ?? []) {
        if (!publishAll && !isReady(ep)) continue;
        for (const ip of ep.addresses ?? []) {
          const rr = addressRecord(base, ip);
          if (!rr) continue;
          set.add(rr);
          // The endpoint's hostname, or (per the spec's "system-assigned identifier") its
          // address spelled with dashes, as CoreDNS does.
          const host = ep.hostname && isDnsLabel(ep.hostname) ? ep.hostname : dashedIP(ip)!;
          const hostName = `${host}.${base}`;
          set.add(addressRecord(hostName, ip));
          set.add({ name: reverseName(ip)!, type: "PTR", data: hostName });
          for (const p of slice.ports ?? []) {
            if (!p.name || !isDnsLabel(p.name) || p.port === undefined) continue;
            const owner = `_${p.name}._${(p.protocol ?? "TCP").toLowerCase()}.${base}`;
            // The endpoint's port (the Service's targetPort): the one a client must use on a
            // headless endpoint's address. It equals the Service port when port == targetPort.
            const list = srvByName.get(owner) ?? [];
            if (!list.some((r) => r.type === "SRV" && r.data.target === hostName && r.data.port === p.port)) {
              list.push({ name: owner, type: "SRV", data: { priority: 0, weight: 0, port: p.port, target: hostName } });
            }
            srvByName.set(owner, list);
          }
        }
      }
    }
    for (const list of srvByName.values()) {
      const weight = Math.max(1, Math.floor(100 / list.length)); // equal shares, as RFC 2782 weighs
      for (const r of list) {
        if (r.type === "SRV") r.data.weight = weight;
        set.add(r);
      }
    }
  }

  private podRecords(pod: Pod): Map<string, StoredRecord[]> {
    const set = new RecordSet();
    const ns = pod.metadata.namespace!;
    const phase = pod.status?.phase;
    // A finished pod's address may already belong to a new pod.
    if (!isDnsLabel(ns) || phase === "Succeeded" || phase === "Failed") return set.byName;
    const ips = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
    for (const ip of ips) {
      const label = dashedIP(ip);
      if (label) set.add(addressRecord(`${label}.${ns}.pod.${this.zone}`, ip));
    }
    return set.byName;
  }

  // ---- the index ----

  /** Replaces everything `owner` contributed with `next`, touching only the names that changed. */
  private setOwnerRecords(owner: string, next: Map<string, StoredRecord[]>): void {
    const prev = this.owned.get(owner) ?? new Map<string, StoredRecord[]>();
    let changed = false;
    for (const name of prev.keys()) {
      if (next.has(name)) continue;
      const owners = this.names.get(name)!;
      owners.delete(owner);
      if (owners.size === 0) {
        this.names.delete(name);
        this.countBelow(name, -1);
      }
      changed = true;
    }
    for (const [name, records] of next) {
      const before = prev.get(name);
      if (before && sameRecords(before, records)) continue;
      let owners = this.names.get(name);
      if (!owners) {
        this.names.set(name, (owners = new Map()));
        this.countBelow(name, +1);
      }
      owners.set(owner, records);
      changed = true;
    }
    if (next.size > 0) this.owned.set(owner, next);
    else this.owned.delete(owner);
    if (changed) this.serial = (this.serial + 1) >>> 0;
  }

  /** Keeps the empty-non-terminal counts of the names between `name` and the zone apex. */
  private countBelow(name: string, delta: number): void {
    if (!isUnder(name, this.zone)) return; // reverse names: only exact names are ours
    let n = name;
    while (n !== this.zone) {
      const dot = n.indexOf(".");
      if (dot < 0) return;
      n = n.slice(dot + 1);
      const c = (this.below.get(n) ?? 0) + delta;
      if (c > 0) this.below.set(n, c);
      else this.below.delete(n);
    }
  }
}

/** EndpointSlice semantics: a nil `ready` means ready. */
function isReady(ep: Endpoint): boolean {
  return ep.conditions?.ready !== false;
}

function sameRecords(a: StoredRecord[], b: StoredRecord[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}
