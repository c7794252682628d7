// A small Prometheus text-format registry for kube-proxy's sync metrics (names as upstream's
// kubeproxy_sync_proxy_rules_*). No dependency: counters, gauges and histograms are enough.

type Labels = Record<string, string>;

function fmtLabels(l: Labels | undefined, extra?: Labels): string {
  const all = { ...(l ?? {}), ...(extra ?? {}) };
  const parts = Object.entries(all).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function fmtNum(n: number): string {
  if (n === Infinity) return "+Inf";
  return Number.isInteger(n) ? String(n) : n.toPrecision(9).replace(/\.?0+$/, "");
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private values = new Map<string, { labels?: Labels; v: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(by = 1, labels?: Labels): void {
    const k = fmtLabels(labels);
    const e = this.values.get(k) ?? { labels, v: 0 };
    e.v += by;
    this.values.set(k, e);
  }
  set(v: number, labels?: Labels): void {
    this.values.set(fmtLabels(labels), { labels, v });
  }
  render(): string {
    const vals = this.values.size ? [...this.values.values()] : [{ labels: undefined, v: 0 }];
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n${vals.map((e) => `${this.name}${fmtLabels(e.labels)} ${fmtNum(e.v)}`).join("\n")}\n`;
  }
}

export class Gauge implements Metric {
  private values = new Map<string, { labels?: Labels; v: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(v: number, labels?: Labels): void {
    this.values.set(fmtLabels(labels), { labels, v });
  }
  get(labels?: Labels): number | undefined {
    return this.values.get(fmtLabels(labels))?.v;
  }
  render(): string {
    const vals = this.values.size ? [...this.values.values()] : [{ labels: undefined, v: 0 }];
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${vals.map((e) => `${this.name}${fmtLabels(e.labels)} ${fmtNum(e.v)}`).join("\n")}\n`;
  }
}

export class Histogram implements Metric {
  private counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i]!++;
    });
  }
  get observations(): number {
    return this.count;
  }
  render(): string {
    const lines = this.buckets.map((b, i) => `${this.name}_bucket{le="${fmtNum(b)}"} ${this.counts[i]}`);
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${fmtNum(this.sum)}`, `${this.name}_count ${this.count}`);
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n${lines.join("\n")}\n`;
  }
}

/** kube-proxy's buckets: 1 ms doubling up to ~16 s. */
const SYNC_BUCKETS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

export class ProxyMetrics {
  readonly syncDuration = new Histogram("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds (full and partial)", SYNC_BUCKETS);
  readonly fullSyncDuration = new Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds", "Latency of full syncs in seconds", SYNC_BUCKETS);
  readonly partialSyncDuration = new Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds", "Latency of partial syncs in seconds", SYNC_BUCKETS);
  readonly lastTimestamp = new Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "The last time rules were successfully synced (unix seconds)");
  readonly lastQueued = new Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync was queued by a change (unix seconds)");
  readonly objects = new Gauge("kubeproxy_sync_proxy_rules_nftables_objects", "Number of nftables objects kube-proxy programmed, by family and kind");
  readonly endpointChanges = new Counter("kubeproxy_sync_proxy_rules_endpoint_changes_total", "Cumulative EndpointSlice changes");
  readonly serviceChanges = new Counter("kubeproxy_sync_proxy_rules_service_changes_total", "Cumulative Service changes");
  readonly endpointChangesPending = new Gauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending", "EndpointSlice changes not yet synced");
  readonly serviceChangesPending = new Gauge("kubeproxy_sync_proxy_rules_service_changes_pending", "Service changes not yet synced");
  readonly syncFailures = new Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures_total", "nft transactions that failed");
  readonly lastTxSize = new Gauge("kubeproxy_sync_proxy_rules_last_transaction_commands", "nft commands in the last transaction (it grows with the change, not the ruleset)");
  readonly conntrackCleanups = new Counter("kubeproxy_conntrack_cleanup_commands_total", "conntrack -D commands run for removed UDP endpoints");

  render(): string {
    return [
      this.syncDuration,
      this.fullSyncDuration,
      this.partialSyncDuration,
      this.lastTimestamp,
      this.lastQueued,
      this.objects,
      this.endpointChanges,
      this.serviceChanges,
      this.endpointChangesPending,
      this.serviceChangesPending,
      this.syncFailures,
      this.lastTxSize,
      this.conntrackCleanups,
    ]
      .map((m) => m.render())
      .join("");
  }
}
