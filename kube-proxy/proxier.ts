// The proxier: keeps the node's `kube-proxy` nftables table equal to the Services and
// EndpointSlices the change tracker holds. The first sync (and any sync after a failure) writes
// the whole table in one transaction; every later sync re-renders only the Services that changed
// and sends the difference, also in one transaction. After a sync, conntrack entries of removed
// UDP endpoints are deleted and the health check servers follow the eTP=Local Services.
import type { ChangeTracker } from "./change-tracker.ts";
import { nftApply, type Runner } from "./exec.ts";
import { ProxyMetrics } from "./metrics.ts";
import { canonicalCIDR, familyOf, planService, type Family } from "./model.ts";
import { render, summarize, type Contribution } from "./render.ts";
import { ELEMENT_SETS, FamilyState, skeleton, SKELETON_CHAINS, TABLE, Transaction } from "./ruleset.ts";
import type { ServiceHealth } from "./healthcheck.ts";

export interface ProxierOptions {
  nodeName: string;
  runner: Runner;
  /** Families to program Services for (each gets its own table). Default: ip and ip6. */
  families?: Family[];
  /** Pod CIDRs of the cluster (one per family at most). */
  clusterCIDRs?: string[];
  /** Addresses NodePorts answer on; default every local address but loopback. */
  nodeIPs?: string[];
  metrics?: ProxyMetrics;
  /** Told the desired health check servers after every sync (the daemon runs them). */
  onHealthChange?: (want: Map<number, ServiceHealth>) => Promise<void> | void;
  log?: (msg: string) => void;
  /** Skip conntrack cleanup (benchmarks). */
  conntrackCleanup?: boolean;
}

export interface SyncResult {
  full: boolean;
  servicesRendered: number;
  /** Seconds spent in total, and in nft alone. */
  seconds: number;
  nftSeconds: number;
  scriptBytes: number;
  commands: number;
  stats: Transaction["stats"];
}

export class Proxier {
  readonly metrics: ProxyMetrics;
  private states = new Map<Family, FamilyState>();
  private needFull = true;
  private readonly families: Family[];
  private readonly clusterCIDR = new Map<Family, string>();
  private readonly nodeIPs = new Map<Family, string[]>();
  /** service key -> health check port -> state */
  private health = new Map<string, Map<number, ServiceHealth>>();
  /** Set after the first successful sync. */
  lastSync?: SyncResult;
  syncs = 0;
  private readonly log: (msg: string) => void;

  constructor(
    readonly tracker: ChangeTracker,
    private readonly opts: ProxierOptions,
  ) {
    this.metrics = opts.metrics ?? new ProxyMetrics();
    this.families = opts.families ?? ["ip", "ip6"];
    this.log = opts.log ?? (() => {});
    for (const c of opts.clusterCIDRs ?? []) {
      const p = canonicalCIDR(c);
      if (!p) throw new Error(`--cluster-cidr ${JSON.stringify(c)} is not a CIDR`);
      this.clusterCIDR.set(p.family, p.cidr);
    }
    for (const ip of opts.nodeIPs ?? []) {
      const f = familyOf(ip);
      if (!f) throw new Error(`--node-ip ${JSON.stringify(ip)} is not an IP address`);
      this.nodeIPs.set(f, [...(this.nodeIPs.get(f) ?? []), ip]);
    }
    this.reset();
  }

  private reset(): void {
    this.states = new Map(this.families.map((f) => [f, new FamilyState(f)]));
    this.health = new Map();
  }

  get runner(): Runner {
    return this.opts.runner;
  }

  /** Forces the next sync to rewrite the whole table. */
  forceFullSync(): void {
    this.needFull = true;
  }

  /**
   * One sync. Returns undefined (and writes nothing) until both Services and EndpointSlices are
   * synced; throws when nft rejects the transaction (the next sync is then a full one).
   */
  async sync(): Promise<SyncResult | undefined> {
    const tracker = this.tracker;
    if (!tracker.synced) return undefined;
    const t0 = performance.now();
    const full = this.needFull;
    const pendingSvc = tracker.pendingServiceChanges;
    const pendingEp = tracker.pendingEndpointChanges;
    // The change counters report what this sync covers: changes that arrive while it runs belong
    // to the next one (tests and tools read "N changes counted" as "N changes programmed").
    const covered = { services: tracker.serviceChangesTotal, endpoints: tracker.endpointChangesTotal };
    const dirty = tracker.takeDirty();
    let keys: Iterable<string> = dirty;
    const tx = new Transaction();
    if (full) {
      this.reset();
      keys = tracker.services.keys();
      for (const f of this.families) {
        tx.prepend(`add table ${f} ${TABLE}\ndelete table ${f} ${TABLE}`);
        tx.prepend(skeleton(this.states.get(f)!.fam, { clusterCIDR: this.clusterCIDR.get(f), nodePortIPs: this.nodeIPs.get(f) ?? [] }));
      }
    }
    const removedUDP: { addrs: string[]; nodePort?: number; gone: string[]; fresh: boolean }[] = [];
    let rendered = 0;
    for (const key of keys) {
      rendered++;
      const svc = tracker.services.get(key);
      const plans = svc ? planService(svc, tracker.slicesOf(key), { nodeName: this.opts.nodeName, families: this.families, warn: this.log }) : [];
      for (const f of this.families) {
        const state = this.states.get(f)!;
        const prev = state.contributions.get(key);
        const next: Contribution[] = [];
        for (const p of plans) {
          if (p.family !== f) continue;
          const old = prev?.find((c) => c.owner === p.id);
          next.push(render(p, old, { nodeName: this.opts.nodeName, clusterCIDR: this.clusterCIDR.get(f) }));
        }
        if (!prev && next.length === 0) continue;
        if (!full && prev) collectUDPRemovals(prev, next, removedUDP);
        state.replace(key, next, tx);
      }
      this.updateHealth(key);
    }
    for (const st of this.states.values()) st.finish(tx);
    const script = tx.script();
    const tGen = performance.now();
    if (script) {
      try {
        await nftApply(this.opts.runner, script);
      } catch (e) {
        this.needFull = true;
        this.metrics.syncFailures.inc();
        throw e;
      }
    }
    const tEnd = performance.now();
    this.needFull = false;
    this.syncs++;
    const seconds = (tEnd - t0) / 1000;
    const result: SyncResult = {
      full,
      servicesRendered: rendered,
      seconds,
      nftSeconds: (tEnd - tGen) / 1000,
      scriptBytes: script.length,
      commands: script ? countLines(script) : 0,
      stats: tx.stats,
    };
    this.lastSync = result;
    this.recordMetrics(result, covered, pendingSvc, pendingEp);
    if (this.opts.conntrackCleanup !== false && removedUDP.length) await this.cleanupConntrack(removedUDP);
    await this.opts.onHealthChange?.(this.healthWanted());
    return result;
  }

  private updateHealth(serviceKey: string): void {
    this.health.delete(serviceKey);
    for (const f of this.families) {
      for (const c of this.states.get(f)!.contributions.get(serviceKey) ?? []) {
        if (!c.health) continue;
        let m = this.health.get(serviceKey);
        if (!m) this.health.set(serviceKey, (m = new Map()));
        const cur = m.get(c.health.port);
        // Ports of one Service share the check; a family or port with local endpoints counts.
        if (!cur || c.health.localEndpoints > cur.localEndpoints) m.set(c.health.port, { namespace: c.health.namespace, name: c.health.name, localEndpoints: c.health.localEndpoints });
      }
    }
  }

  healthWanted(): Map<number, ServiceHealth> {
    const out = new Map<number, ServiceHealth>();
    for (const m of this.health.values()) for (const [port, h] of m) out.set(port, h);
    return out;
  }

  private recordMetrics(r: SyncResult, covered: { services: number; endpoints: number }, pendingSvc: number, pendingEp: number): void {
    const m = this.metrics;
    m.syncDuration.observe(r.seconds);
    (r.full ? m.fullSyncDuration : m.partialSyncDuration).observe(r.seconds);
    m.lastTimestamp.set(Date.now() / 1000);
    m.serviceChanges.set(covered.services);
    m.endpointChanges.set(covered.endpoints);
    m.serviceChangesPending.set(this.tracker.pendingServiceChanges);
    m.endpointChangesPending.set(this.tracker.pendingEndpointChanges);
    void pendingSvc;
    void pendingEp;
    m.lastTxSize.set(r.commands);
    for (const [f, st] of this.states) {
      m.objects.set(SKELETON_CHAINS + st.ownedChains + st.sharedChainCount(), { family: f, kind: "chains" });
      m.objects.set(st.ownedRules, { family: f, kind: "service_chain_rules" });
      let total = 0;
      for (const s of ELEMENT_SETS) {
        const n = st.elementCount(s);
        total += n;
        m.objects.set(n, { family: f, kind: "elements", set: s });
      }
      m.objects.set(total, { family: f, kind: "elements_total" });
    }
  }

  /** Object counts of the programmed table (from the proxier's own model, not the kernel). */
  objectCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [f, st] of this.states) {
      out[`${f}.chains`] = SKELETON_CHAINS + st.ownedChains + st.sharedChainCount();
      out[`${f}.rules_in_service_chains`] = st.ownedRules;
      let total = 0;
      for (const s of ELEMENT_SETS) total += st.elementCount(s);
      out[`${f}.elements`] = total;
    }
    return out;
  }

  /** One line per programmed service port: destinations -> endpoints. */
  summary(): string[] {
    const out: string[] = [];
    for (const st of this.states.values()) for (const cs of st.contributions.values()) for (const c of cs) out.push(summarize(c, this.opts.nodeName));
    return out.sort();
  }

  /**
   * Deletes conntrack entries of UDP flows whose reply source is an endpoint that is no longer
   * used (they would otherwise keep going to a gone pod), and entries to Services that just got
   * their first endpoints (flows that were not NATed while there were none).
   */
  private async cleanupConntrack(items: { addrs: string[]; nodePort?: number; gone: string[]; fresh: boolean }[]): Promise<void> {
    const cmds: string[][] = [];
    for (const it of items) {
      for (const ep of it.gone) {
        for (const a of it.addrs) cmds.push(["-D", "-p", "udp", "--orig-dst", a, "--reply-src", ep]);
        if (it.nodePort) cmds.push(["-D", "-p", "udp", "--orig-port-dst", String(it.nodePort), "--reply-src", ep]);
      }
      if (it.fresh) for (const a of it.addrs) cmds.push(["-D", "-p", "udp", "--orig-dst", a, "--reply-src", a]);
    }
    for (const args of cmds) {
      if (familyOf(args[4]!) === "ip6") args.splice(0, 0, "-f", "ipv6");
      // Exit status 1 means "nothing matched": not an error.
      const r = await this.opts.runner.exec("conntrack", args);
      this.metrics.conntrackCleanups.inc();
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) this.log(`conntrack ${args.join(" ")}: ${r.stderr.trim()}`);
    }
  }
}

function collectUDPRemovals(prev: Contribution[], next: Contribution[], out: { addrs: string[]; nodePort?: number; gone: string[]; fresh: boolean }[]): void {
  const nextById = new Map(next.map((c) => [c.owner, c]));
  for (const p of prev) {
    if (!p.udp) continue;
    const n = nextById.get(p.owner)?.udp;
    const still = new Set(n?.endpointIPs ?? []);
    const gone = p.udp.endpointIPs.filter((ip) => !still.has(ip));
    const fresh = p.udp.endpointIPs.length === 0 && still.size > 0;
    if (gone.length || fresh) out.push({ addrs: p.udp.addrs, nodePort: p.udp.nodePort, gone, fresh });
  }
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) n++;
  return n;
}
