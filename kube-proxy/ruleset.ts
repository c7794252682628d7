// The kube-proxy table: its fixed skeleton, and the per-family state that turns changes in
// contributions into the smallest nft transaction (chains created/flushed/deleted only for the
// Services that changed, map elements added/removed by difference).
import { endpointMap, FAMILY, MASQ_MARK, sharedChainRules, type Contribution, type FamilyWords } from "./render.ts";
import type { Family } from "./model.ts";

export const TABLE = "kube-proxy";

export interface SkeletonOptions {
  clusterCIDR?: string;
  /** Node addresses NodePorts answer on; when empty, every local address but loopback. */
  nodePortIPs: string[];
}

/** Maps and sets whose elements contributions own (everything else is fixed). */
export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export const ENDPOINT_MAPS = PROTOCOLS.flatMap((p) => [false, true].flatMap((np) => [false, true].map((internal) => endpointMap(np, internal, p))));
export const ELEMENT_SETS = ["cluster-ips", "service-ips", "service-nodeports", ...ENDPOINT_MAPS, "no-endpoint-services", "no-endpoint-nodeports", "firewall-ips", "hairpin"];

/** The whole table minus what Services contribute: created by every full sync. */
export function skeleton(fam: FamilyWords, opts: SkeletonOptions): string {
  const F = fam.f;
  const A = fam.addrType;
  const nodePortMatch = opts.nodePortIPs.length > 0 ? `${F} daddr @nodeport-ips` : `fib daddr type local ${F} daddr != ${fam.loopback}`;
  const lines = [
    `table ${F} ${TABLE} {`,
    `  comment "rules for kube-proxy";`,
    // Lookups keyed by destination: the first packet's cost does not depend on the Service count.
    `  map service-ips { type ${A} . inet_proto . inet_service : verdict; comment "ClusterIP, external IP and LoadBalancer IP dispatch"; }`,
    `  map service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort dispatch"; }`,
    `  map no-endpoint-services { type ${A} . inet_proto . inet_service : verdict; comment "reject or drop: no usable endpoints"; }`,
    `  map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }`,
    `  map firewall-ips { type ${A} . inet_proto . inet_service : verdict; comment "loadBalancerSourceRanges"; }`,
    // Endpoint slots, per protocol: destination . slot -> endpoint, picked with numgen in lb-* chains.
    ...PROTOCOLS.flatMap((p) => [
      `  map ${endpointMap(false, false, p)} { typeof ${F} daddr . ${p} dport . numgen random mod 1 : ${F} daddr . ${p} dport; comment "${p} destination . slot -> endpoint"; }`,
      `  map ${endpointMap(false, true, p)} { typeof ${F} daddr . ${p} dport . numgen random mod 1 : ${F} daddr . ${p} dport; comment "eTP Local: slots for pod and node clients"; }`,
      `  map ${endpointMap(true, false, p)} { typeof ${p} dport . numgen random mod 1 : ${F} daddr . ${p} dport; comment "${p} NodePort . slot -> endpoint"; }`,
      `  map ${endpointMap(true, true, p)} { typeof ${p} dport . numgen random mod 1 : ${F} daddr . ${p} dport; }`,
    ]),
    `  set cluster-ips { type ${A}; comment "active ClusterIPs"; }`,
    `  set hairpin { type ${A} . ${A}; comment "local endpoint . itself: masquerade hairpin traffic"; }`,
    `  set nodeport-ips { type ${A}; comment "addresses NodePorts answer on"; }`,
    `  chain filter-prerouting { type filter hook prerouting priority -110; ct state new jump firewall-check; }`,
    `  chain filter-input { type filter hook input priority -110; ct state new jump nodeport-endpoints-check; ct state new jump service-endpoints-check; }`,
    `  chain filter-forward { type filter hook forward priority -110; ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }`,
    `  chain filter-output { type filter hook output priority -110; ct state new jump service-endpoints-check; ct state new jump nodeport-endpoints-check; ct state new jump firewall-check; }`,
    `  chain filter-output-post-dnat { type filter hook output priority -90; ct state new jump cluster-ips-check; }`,
    `  chain nat-prerouting { type nat hook prerouting priority -100; jump services; }`,
    `  chain nat-output { type nat hook output priority -100; jump services; }`,
    `  chain nat-postrouting { type nat hook postrouting priority 100; jump masquerading; }`,
    `  chain firewall-check { ${F} daddr . meta l4proto . th dport vmap @firewall-ips; }`,
    `  chain service-endpoints-check { ${F} daddr . meta l4proto . th dport vmap @no-endpoint-services; }`,
    `  chain nodeport-endpoints-check { ${nodePortMatch} meta l4proto . th dport vmap @no-endpoint-nodeports; }`,
    `  chain cluster-ips-check { ${F} daddr @cluster-ips reject comment "no such port on this ClusterIP"; }`,
    `  chain reject-chain { meta l4proto tcp reject with tcp reset; reject; }`,
    `  chain mark-for-masquerade { meta mark set meta mark | ${MASQ_MARK}; }`,
    `  chain masquerading {`,
    `    ${F} saddr . ${F} daddr @hairpin masquerade fully-random`,
    `    meta mark & ${MASQ_MARK} == 0 return`,
    `    meta mark set meta mark ^ ${MASQ_MARK}`,
    `    masquerade fully-random`,
    `  }`,
    `  chain services {`,
    ...(opts.clusterCIDR ? [`    ${F} daddr @cluster-ips ${F} saddr != ${opts.clusterCIDR} jump mark-for-masquerade`] : []),
    `    ${F} daddr . meta l4proto . th dport vmap @service-ips`,
    `    ${nodePortMatch} meta l4proto . th dport vmap @service-nodeports`,
    `  }`,
    `}`,
  ];
  if (opts.nodePortIPs.length > 0) lines.push(`add element ${F} ${TABLE} nodeport-ips { ${opts.nodePortIPs.join(", ")} }`);
  return lines.join("\n") + "\n";
}

/** Chains the skeleton creates, for the object-count metric (a test compares it with the kernel's). */
export const SKELETON_CHAINS = 16;

interface Entry {
  value: string;
  owner: string;
  /** Other owners of the same key (a rare conflict, e.g. one externalIP in two Services). */
  others?: Map<string, string>;
}

/** The element contents of one family's table, with owners, so changes diff exactly. */
export class FamilyState {
  readonly fam: FamilyWords;
  readonly contributions = new Map<string, Contribution[]>();
  private readonly elements = new Map<string, Map<string, Entry>>();
  private readonly sharedRefs = new Map<string, number>();
  private readonly chainOwner = new Map<string, string>();
  ownedChains = 0;
  ownedRules = 0;

  constructor(readonly family: Family) {
    this.fam = FAMILY[family];
    for (const s of ELEMENT_SETS) this.elements.set(s, new Map());
  }

  elementCount(set: string): number {
    return this.elements.get(set)?.size ?? 0;
  }

  sharedChainCount(): number {
    return this.sharedRefs.size;
  }

  sharedChainNames(): string[] {
    return [...this.sharedRefs.keys()];
  }

  private effective(set: string, key: string): string | undefined {
    return this.elements.get(set)!.get(key)?.value;
  }

  private addElem(set: string, key: string, value: string, owner: string): void {
    const m = this.elements.get(set)!;
    const e = m.get(key);
    if (!e) m.set(key, { value, owner });
    else if (e.owner !== owner) (e.others ??= new Map()).set(owner, value);
    else e.value = value;
  }

  private removeElem(set: string, key: string, owner: string): void {
    const m = this.elements.get(set)!;
    const e = m.get(key);
    if (!e) return;
    if (e.owner === owner) {
      const next = e.others?.entries().next();
      if (next && !next.done) {
        const [o, v] = next.value;
        e.others!.delete(o);
        m.set(key, { value: v, owner: o, others: e.others!.size ? e.others : undefined });
      } else m.delete(key);
    } else e.others?.delete(owner);
  }

  /** Shared chain reference counts before this sync's first change to them. */
  private sharedBefore = new Map<string, number>();

  private refShared(name: string, delta: number): void {
    const before = this.sharedRefs.get(name) ?? 0;
    if (!this.sharedBefore.has(name)) this.sharedBefore.set(name, before);
    const after = before + delta;
    if (after <= 0) this.sharedRefs.delete(name);
    else this.sharedRefs.set(name, after);
  }

  /**
   * Creates and deletes shared chains once every Service of this sync is replaced: one Service
   * may drop the last use of lb-tcp-3 while another starts using it in the same transaction.
   */
  finish(tx: Transaction): void {
    for (const [name, before] of this.sharedBefore) {
      const after = this.sharedRefs.get(name) ?? 0;
      if (before === 0 && after > 0) tx.addChain(this.family, name, sharedChainRules(this.fam, name), true);
      if (before > 0 && after === 0) tx.deleteChain(this.family, name, true);
    }
    this.sharedBefore.clear();
  }

  /** The common case of a full sync: nothing to diff against. */
  private addFresh(serviceKey: string, next: Contribution[], tx: Transaction): void {
    if (next.length === 0) return;
    for (const c of next) {
      for (const [name, rules] of c.chains) {
        tx.addChain(this.family, name, rules);
        this.ownedChains++;
        this.ownedRules += rules.length;
        this.chainOwner.set(name, serviceKey);
      }
      for (const [name, decl] of c.sets) tx.addSet(this.family, name, decl);
      for (const name of c.shared) this.refShared(name, 1);
      for (const e of c.elements) {
        const m = this.elements.get(e.set)!;
        const cur = m.get(e.key);
        if (!cur) {
          m.set(e.key, { value: e.value, owner: c.owner });
          tx.addElement(this.family, e.set, e.key, e.value);
        } else if (cur.owner !== c.owner) (cur.others ??= new Map()).set(c.owner, e.value);
      }
    }
    this.contributions.set(serviceKey, next);
  }

  /**
   * Replaces the contributions of one Service and appends what changes to `tx`. State is updated
   * at once: a failed transaction is followed by a full sync, which starts from an empty state.
   */
  replace(serviceKey: string, next: Contribution[], tx: Transaction): void {
    const prev = this.contributions.get(serviceKey) ?? [];
    if (prev.length === 0) return this.addFresh(serviceKey, next, tx);
    const prevChains = new Map<string, string[]>();
    const prevSets = new Map<string, string>();
    for (const c of prev) {
      for (const [n, r] of c.chains) prevChains.set(n, r);
      for (const [n, d] of c.sets) prevSets.set(n, d);
    }
    const nextChains = new Map<string, string[]>();
    const nextSets = new Map<string, string>();
    for (const c of next) {
      for (const [n, r] of c.chains) nextChains.set(n, r);
      for (const [n, d] of c.sets) nextSets.set(n, d);
    }
    for (const [name, decl] of nextSets) if (!prevSets.has(name)) tx.addSet(this.family, name, decl);
    for (const name of prevSets.keys()) if (!nextSets.has(name)) tx.deleteSet(this.family, name);
    for (const [name, rules] of nextChains) {
      const old = prevChains.get(name);
      if (!old) {
        tx.addChain(this.family, name, rules);
        this.ownedChains++;
        this.ownedRules += rules.length;
      } else if (old.length !== rules.length || old.some((r, i) => r !== rules[i])) {
        tx.rewriteChain(this.family, name, rules);
        this.ownedRules += rules.length - old.length;
      }
      this.chainOwner.set(name, serviceKey);
    }
    for (const [name, rules] of prevChains) {
      if (nextChains.has(name)) continue;
      tx.deleteChain(this.family, name);
      this.ownedChains--;
      this.ownedRules -= rules.length;
      this.chainOwner.delete(name);
    }

    // Shared chains: reference counts across all Services.
    const sharedDelta = new Map<string, number>();
    for (const c of prev) for (const s of c.shared) sharedDelta.set(s, (sharedDelta.get(s) ?? 0) - 1);
    for (const c of next) for (const s of c.shared) sharedDelta.set(s, (sharedDelta.get(s) ?? 0) + 1);
    for (const [name, d] of sharedDelta) if (d !== 0) this.refShared(name, d);

    // Elements: remember the effective value of every touched key, apply, then compare.
    const touched = new Map<string, string | undefined>();
    const touch = (set: string, key: string) => {
      const id = `${set}\u0000${key}`;
      if (!touched.has(id)) touched.set(id, this.effective(set, key));
    };
    // Unchanged elements (same owner, key and value) are not touched at all.
    const ownKey = (owner: string, e: { set: string; key: string }) => `${owner}\u0000${e.set}\u0000${e.key}`;
    const nextElems = new Map<string, string>();
    for (const c of next) for (const e of c.elements) nextElems.set(ownKey(c.owner, e), e.value);
    const prevElems = new Map<string, string>();
    for (const c of prev) {
      for (const e of c.elements) {
        const k = ownKey(c.owner, e);
        prevElems.set(k, e.value);
        if (nextElems.get(k) === e.value) continue;
        touch(e.set, e.key);
        this.removeElem(e.set, e.key, c.owner);
      }
    }
    for (const c of next) {
      for (const e of c.elements) {
        if (prevElems.get(ownKey(c.owner, e)) === e.value) continue;
        touch(e.set, e.key);
        this.addElem(e.set, e.key, e.value, c.owner);
      }
    }
    for (const [id, before] of touched) {
      const sep = id.indexOf("\u0000");
      const set = id.slice(0, sep);
      const key = id.slice(sep + 1);
      const after = this.effective(set, key);
      if (before === after) continue;
      if (before !== undefined) tx.deleteElement(this.family, set, key);
      if (after !== undefined) tx.addElement(this.family, set, key, after);
    }

    if (next.length > 0) this.contributions.set(serviceKey, next);
    else this.contributions.delete(serviceKey);
  }
}

/** One nft transaction, written in the order the kernel needs (see README "How a sync works"). */
export class Transaction {
  private readonly header: string[] = [];
  private readonly newChains: string[] = [];
  private readonly newSets: string[] = [];
  private readonly rules: string[] = [];
  private readonly elemDel = new Map<string, string[]>();
  private readonly elemAdd = new Map<string, string[]>();
  private readonly flushDoomed: string[] = [];
  private readonly deleteChains: string[] = [];
  private readonly deleteSets: string[] = [];
  private readonly deleteShared: string[] = [];
  /** Counts for metrics and tests. */
  stats = { chainsAdded: 0, chainsRewritten: 0, chainsDeleted: 0, elementsAdded: 0, elementsDeleted: 0, setsAdded: 0, setsDeleted: 0 };

  prepend(text: string): void {
    this.header.push(text);
  }

  addChain(f: Family, name: string, rules: string[], shared = false): void {
    this.newChains.push(`add chain ${f} ${TABLE} ${name}`);
    for (const r of rules) this.rules.push(`add rule ${f} ${TABLE} ${name} ${r}`);
    if (!shared) this.stats.chainsAdded++;
  }

  rewriteChain(f: Family, name: string, rules: string[]): void {
    this.rules.push(`flush chain ${f} ${TABLE} ${name}`);
    for (const r of rules) this.rules.push(`add rule ${f} ${TABLE} ${name} ${r}`);
    this.stats.chainsRewritten++;
  }

  deleteChain(f: Family, name: string, shared = false): void {
    if (shared) {
      this.deleteShared.push(`delete chain ${f} ${TABLE} ${name}`);
      return;
    }
    this.flushDoomed.push(`flush chain ${f} ${TABLE} ${name}`);
    this.deleteChains.push(`delete chain ${f} ${TABLE} ${name}`);
    this.stats.chainsDeleted++;
  }

  addSet(f: Family, name: string, decl: string): void {
    this.newSets.push(`add set ${f} ${TABLE} ${name} { ${decl} }`);
    this.stats.setsAdded++;
  }

  deleteSet(f: Family, name: string): void {
    this.deleteSets.push(`delete set ${f} ${TABLE} ${name}`);
    this.stats.setsDeleted++;
  }

  addElement(f: Family, set: string, key: string, value: string): void {
    const id = f === "ip" ? set : `${f}\u0000${set}`;
    let l = this.elemAdd.get(id);
    if (!l) this.elemAdd.set(id, (l = []));
    l.push(value ? `${key} : ${value}` : key);
    this.stats.elementsAdded++;
  }

  deleteElement(f: Family, set: string, key: string): void {
    const id = f === "ip" ? set : `${f}\u0000${set}`;
    let l = this.elemDel.get(id);
    if (!l) this.elemDel.set(id, (l = []));
    l.push(key);
    this.stats.elementsDeleted++;
  }

  get empty(): boolean {
    return (
      this.header.length + this.newChains.length + this.newSets.length + this.rules.length + this.elemDel.size + this.elemAdd.size + this.deleteChains.length + this.deleteSets.length + this.deleteShared.length ===
      0
    );
  }

  /** The script: create, fill, then remove, so every reference resolves inside the transaction. */
  script(): string {
    const out: string[] = [...this.header, ...this.newChains, ...this.newSets, ...this.rules];
    const chunked = (verb: string, m: Map<string, string[]>) => {
      for (const [k, items] of m) {
        const sep = k.indexOf("\u0000");
        const id = sep < 0 ? `ip ${TABLE} ${k}` : `${k.slice(0, sep)} ${TABLE} ${k.slice(sep + 1)}`;
        for (let i = 0; i < items.length; i += 2000) out.push(`${verb} element ${id} { ${items.slice(i, i + 2000).join(", ")} }`);
      }
    };
    chunked("delete", this.elemDel);
    chunked("add", this.elemAdd);
    out.push(...this.flushDoomed, ...this.deleteChains, ...this.deleteSets, ...this.deleteShared);
    return out.length ? out.join("\n") + "\n" : "";
  }
}
