// Authoritative answers from the record store, per the Kubernetes DNS specification: which names
// are ours, NXDOMAIN (nothing at or below the name) versus NODATA (the name exists but has no
// record of the asked type, answered NOERROR with no answers), the SOA in the authority section of
// both, CNAME chains for ExternalName Services, and the A/AAAA records of SRV targets in the
// additional section. Sockets, EDNS and forwarding live in server.ts.
import type { Answer } from "dns-packet";
import { canonicalName, dashedIP, ipFromDashed, isUnder, reverseZone } from "./names.ts";
import { DNS_SCHEMA_VERSION, type RecordStore, type StoredRecord } from "./store.ts";

export type Rcode = "NOERROR" | "FORMERR" | "SERVFAIL" | "NXDOMAIN" | "NOTIMP" | "REFUSED";

export interface LocalAnswer {
  rcode: Rcode;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** Set when a CNAME chain leaves the cluster zone: the name (and type) still to resolve upstream. */
  external?: { name: string; type: string };
}

const MAX_CNAME_CHAIN = 8;

export class Resolver {
  constructor(
    readonly store: RecordStore,
    readonly ttl: number,
  ) {}

  /** True when the resolver answers `qname` itself (the cluster zone, or a reverse name it holds). */
  isLocal(qname: string): boolean {
    const name = canonicalName(qname);
    if (isUnder(name, this.store.zone)) return true;
    // Reverse names of ClusterIPs and headless endpoints are ours; every other reverse name is
    // somebody else's (the way CoreDNS falls through in-addr.arpa and ip6.arpa).
    return reverseZone(name) !== undefined && this.store.records(name).length > 0;
  }

  /**
   * Answers a question about a local name (isLocal() true). Owner names in the answer keep the
   * spelling of the question, so that clients that randomise case (0x20) see their own name.
   */
  answer(qname: string, qtype: string): LocalAnswer {
    const out: LocalAnswer = { rcode: "NOERROR", answers: [], authorities: [], additionals: [] };
    if (!this.store.synced) return { ...out, rcode: "SERVFAIL" }; // never a cacheable NXDOMAIN before the first sync
    if (qtype === "AXFR" || qtype === "IXFR") return { ...out, rcode: "REFUSED" };
    let asked = qname.replace(/\.$/, "");
    const seen = new Set<string>();
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      const name = canonicalName(asked);
      seen.add(name);
      const { exists, records } = this.lookup(name);
      const soaZone = reverseZone(name) ?? this.store.zone;
      if (!exists) {
        out.rcode = "NXDOMAIN";
        out.authorities.push(this.soa(soaZone));
        return out;
      }
      const cname = records.find((r) => r.type === "CNAME");
      if (cname && qtype !== "CNAME" && qtype !== "ANY") {
        out.answers.push(this.withOwner(cname, asked));
        const target = cname.data as string;
        if (!isUnder(target, this.store.zone)) return { ...out, external: { name: target, type: qtype } };
        if (seen.has(target)) return { ...out, rcode: "SERVFAIL" }; // a loop between ExternalNames
        asked = target;
        continue;
      }
      const matching = qtype === "ANY" ? records : records.filter((r) => r.type === qtype);
      if (matching.length === 0) {
        out.authorities.push(this.soa(soaZone)); // NODATA: the name exists, the type does not
        return out;
      }
      for (const r of matching) out.answers.push(this.withOwner(r, asked));
      if (qtype === "SRV") this.addTargets(matching, out);
      return out;
    }
    return { ...out, rcode: "SERVFAIL" };
  }

  /** The SOA record of the cluster zone or of a reverse zone (negative answers carry it). */
  soa(zone = this.store.zone): StoredRecord {
    return {
      name: zone,
      type: "SOA",
      class: "IN",
      ttl: this.ttl,
      data: {
        mname: `ns.dns.${this.store.zone}`,
        rname: `hostmaster.${this.store.zone}`,
        serial: this.store.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.ttl, // the negative-caching TTL (RFC 2308)
      },
    };
  }

  /** Records at a canonical local name, with the zone's fixed names, and whether it exists. */
  private lookup(name: string): { exists: boolean; records: StoredRecord[] } {
    const zone = this.store.zone;
    if (name === zone) {
      return { exists: true, records: [this.soa(), { name: zone, type: "NS", data: `ns.dns.${zone}` }] };
    }
    if (name === `dns-version.${zone}`) return { exists: true, records: [{ name, type: "TXT", data: DNS_SCHEMA_VERSION }] };
    if (name === `svc.${zone}` || name === `pod.${zone}`) return { exists: true, records: [] };
    const podName = this.canonicalPodName(name);
    const key = podName ?? name;
    return { exists: this.store.exists(key), records: this.store.records(key) };
  }

  /**
   * Pod names may spell an IPv6 address many ways (fd00--5, fd00-0-0-0-0-0-0-5); the store keeps
   * the canonical spelling, so the first label is rewritten to it before the lookup.
   */
  private canonicalPodName(name: string): string | undefined {
    const suffix = `.pod.${this.store.zone}`;
    if (!name.endsWith(suffix)) return undefined;
    const labels = name.slice(0, -suffix.length).split(".");
    if (labels.length !== 2) return undefined;
    const ip = ipFromDashed(labels[0]);
    return ip ? `${dashedIP(ip)}.${labels[1]}${suffix}` : undefined;
  }

  /** Additional section of an SRV answer: the addresses of its in-zone targets. */
  private addTargets(srvs: StoredRecord[], out: LocalAnswer): void {
    const done = new Set<string>();
    for (const r of srvs) {
      if (r.type !== "SRV") continue;
      const target = canonicalName(r.data.target);
      if (done.has(target)) continue;
      done.add(target);
      for (const a of this.store.records(target)) {
        if (a.type === "A" || a.type === "AAAA") out.additionals.push(this.withOwner(a, a.name));
      }
    }
  }

  private withOwner(r: StoredRecord, owner: string): Answer {
    return { ...r, name: owner, class: "IN", ttl: this.ttl } as Answer;
  }
}
