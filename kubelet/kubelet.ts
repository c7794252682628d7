// The kubelet: wires the pod sources (static manifests, the API server) to one worker per pod,
// and runs the node's duties beside them: registration and heartbeat, pod status reports,
// mirror pods, the runtime relist, host-gw routes, the masquerade table and the status endpoint.
import type { Server } from "node:http";
import { ApiClient, Informer, isApiError, resourcePath } from "../apiserver/client.ts";
import type { Node, Pod, PodStatus, Service } from "../apiserver/types.ts";
import { RuntimeClient } from "../runtime/cri/client.ts";
import type { DNSConfig } from "../runtime/cri/types.ts";
import { Backoff } from "./backoff.ts";
import { podDNSConfig, readHostResolvConf } from "./dns.ts";
import type { KubeletConfig } from "./flags.ts";
import { Limiter } from "./limiter.ts";
import { errMsg, type Logger } from "./log.ts";
import { ensureMasquerade } from "./masquerade.ts";
import { isMirrorPod, MirrorPods } from "./mirror.ts";
import { PodNetwork, writeCniConfig } from "./network.ts";
import { NodeStatusManager } from "./node-status.ts";
import { Pleg } from "./pleg.ts";
import { ProbeManager, type ProbeKind } from "./probes.ts";
import { reconcile, removeStaleCacheTemps } from "./reconcile.ts";
import { HostGwRoutes } from "./routes.ts";
import { serveStatus } from "./server.ts";
import { StaticPodSource } from "./static-pods.ts";
import { StatusManager } from "./status-manager.ts";
import { sysOk } from "./sys.ts";
import { PodWorker, type WorkerContext } from "./worker.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function firstGlobalIPv4(): Promise<string | undefined> {
  try {
    const out = JSON.parse(await sysOk("ip", ["-j", "-4", "addr", "show", "scope", "global"])) as { ifname: string; addr_info?: { local?: string }[] }[];
    for (const l of out) {
      if (l.ifname === "cni0") continue;
      const a = l.addr_info?.find((x) => x.local)?.local;
      if (a) return a;
    }
  } catch {
    /* none */
  }
  return undefined;
}

/** Only spec and deletion matter to a worker; status writes (ours) must not wake it. */
function specChanged(a: Pod, b: Pod): boolean {
  return a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp || a.metadata.deletionGracePeriodSeconds !== b.metadata.deletionGracePeriodSeconds || JSON.stringify(a.spec) !== JSON.stringify(b.spec);
}

export class Kubelet {
  readonly runtime: RuntimeClient;
  private readonly limiter: Limiter;
  private readonly backoff: Backoff;
  private readonly probes: ProbeManager;
  private readonly workers = new Map<string, PodWorker>();
  private network?: PodNetwork;
  private podCIDR?: string;
  private nodeIP?: string;
  private api?: ApiClient;
  private podInformer?: Informer<Pod>;
  private serviceInformer?: Informer<Service>;
  private nodeInformer?: Informer<Node>;
  private staticSource?: StaticPodSource;
  private statusManager?: StatusManager;
  private nodeStatus?: NodeStatusManager;
  private mirrors?: MirrorPods;
  private routes?: HostGwRoutes;
  private pleg?: Pleg;
  private server?: Server;
  private resyncTimer?: NodeJS.Timeout;
  private started = false;
  private stopped = false;
  private readonly host;
  /** Statuses of pods whose workers ended, for /pods until the source drops them. */
  private readonly finalStatus = new Map<string, PodStatus>();

  constructor(
    readonly cfg: KubeletConfig,
    readonly log: Logger,
  ) {
    this.runtime = new RuntimeClient(cfg.runtimeEndpoint);
    this.limiter = new Limiter(cfg.maxParallelPods);
    this.backoff = new Backoff(cfg.restartBackoffBaseMs, cfg.restartBackoffMaxMs);
    this.probes = new ProbeManager(this.runtime, { onChange: (uid, name, id, kind, ok, msg) => this.onProbe(uid, name, id, kind, ok, msg) });
    this.host = readHostResolvConf(cfg.resolvConf);
  }

  // ---- start and stop ----

  async start(): Promise<void> {
    const cfg = this.cfg;
    this.log.info(`starting: node ${cfg.node}, ${cfg.api ? `API ${cfg.api}` : "standalone"}${cfg.manifestDir ? `, manifests ${cfg.manifestDir}` : ""}, runtime ${cfg.runtimeEndpoint}, CNI plugins ${cfg.cniBinDirs.join(":")}`);
    this.server = await serveStatus(cfg.statusSocket, { pods: () => this.podList(), health: () => this.health() });
    this.nodeIP = cfg.nodeIP ?? (await firstGlobalIPv4());
    await this.waitForRuntime();
    if (cfg.api) {
      this.api = cfg.api.startsWith("http://") ? new ApiClient({ baseUrl: cfg.api, userAgent: `podnet-kubelet/${cfg.node}` }) : new ApiClient({ socketPath: cfg.api, userAgent: `podnet-kubelet/${cfg.node}` });
      if (!this.nodeIP) throw new Error("cannot tell the node's IP address: pass --node-ip");
      this.nodeStatus = new NodeStatusManager(this.api, { name: cfg.node, nodeIP: this.nodeIP, maxPods: cfg.maxPods }, this.log, () => this.readiness());
      await this.nodeStatus.register();
      this.podCIDR = cfg.podCIDR ?? (await this.nodeStatus.podCIDR());
      this.statusManager = new StatusManager(this.api, this.log);
    } else {
      this.podCIDR = cfg.podCIDR!;
    }
    if (writeCniConfig(cfg, this.podCIDR)) this.log.info(`wrote the CNI configuration for pod CIDR ${this.podCIDR} to ${cfg.cniConfDir}`);
    this.network = new PodNetwork(cfg, (plugin, text) => this.log.info(`CNI ${plugin}: ${text.trim()}`));
    await ensureMasquerade(this.podCIDR, cfg.clusterCIDR ?? this.podCIDR);
    if (this.nodeStatus) this.nodeStatus.start(cfg.nodeStatusUpdateMs);

    await this.startSources();
    removeStaleCacheTemps(cfg.cniCacheDir, this.log);
    const report = await reconcile(this.runtime, this.network, (uid) => this.desired().has(uid), this.limiter, this.log);
    void report;
    this.started = true;
    this.syncPods();
    this.pleg = new Pleg(this.runtime, cfg.relistMs, (uid) => this.workers.get(uid)?.kick());
    this.pleg.start();
    this.resyncTimer = setInterval(() => this.resync(), cfg.syncFrequencyMs);
    if (cfg.hostGw && this.api) {
      this.nodeInformer = new Informer<Node>(this.api, resourcePath("nodes"));
      this.routes = new HostGwRoutes(cfg.node, () => this.nodeInformer!.list(), this.log);
      const kick = () => this.routes!.kick();
      this.nodeInformer.on("add", kick).on("update", kick).on("delete", kick);
      await this.nodeInformer.start();
    } else if (cfg.hostGw) {
      this.log.info("--host-gw needs --api (routes follow the Node objects); no routes in standalone mode");
    }
    if (this.nodeStatus) void this.nodeStatus.heartbeat();
    this.log.info(`started: pod CIDR ${this.podCIDR}, node IP ${this.nodeIP ?? "unknown"}, ${this.workers.size} pod(s)`);
  }

  private async waitForRuntime(): Promise<void> {
    let logged = false;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      if (this.stopped) throw new Error("stopped");
      try {
        await this.runtime.version();
        return;
      } catch (e) {
        if (!logged) this.log.warn(`waiting for the container runtime: ${errMsg(e)}`);
        logged = true;
        await sleep(delay);
      }
    }
  }

  private async startSources(): Promise<void> {
    const cfg = this.cfg;
    if (cfg.manifestDir) {
      this.staticSource = new StaticPodSource(cfg.manifestDir, cfg.node, this.log, () => this.onSourceChange(), cfg.syncFrequencyMs);
      await this.staticSource.start();
    }
    if (this.api) {
      this.podInformer = new Informer<Pod>(this.api, resourcePath("pods"), { fieldSelector: `spec.nodeName=${cfg.node}` });
      this.podInformer
        .on("add", (p) => this.onApiPod(p))
        .on("update", (p, old) => this.onApiPod(p, old))
        .on("delete", (p) => this.onApiPodDeleted(p));
      this.serviceInformer = new Informer<Service>(this.api, resourcePath("services"));
      await Promise.all([this.podInformer.start(), this.serviceInformer.start()]);
      this.mirrors = new MirrorPods(this.api, () => this.staticSource?.current().map((s) => s.pod) ?? [], () => this.podInformer!.list(), this.log);
      this.mirrors.kick();
    }
  }

  /** SIGTERM: stop watching and acting; the pods keep running (the next start adopts them). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.nodeStatus?.stop();
    this.pleg?.stop();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.staticSource?.stop();
    this.podInformer?.stop();
    this.serviceInformer?.stop();
    this.nodeInformer?.stop();
    this.probes.stopAll();
    this.statusManager?.stop();
    for (const w of this.workers.values()) w.stop();
    await this.routes?.idle();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
  }

  // ---- the pods ----

  /** Every pod this node should run, by the kubelet's UID. */
  desired(): Map<string, Pod> {
    const out = new Map<string, Pod>();
    for (const sp of this.staticSource?.current() ?? []) out.set(sp.pod.metadata.uid!, sp.pod);
    for (const p of this.podInformer?.list() ?? []) if (!isMirrorPod(p) && p.metadata.uid) out.set(p.metadata.uid, p);
    return out;
  }

  private onSourceChange(): void {
    this.mirrors?.kick();
    if (this.started) this.syncPods();
  }

  private onApiPod(p: Pod, old?: Pod): void {
    if (isMirrorPod(p)) {
      this.mirrors?.kick();
      const sp = this.staticSource?.current().find((s) => s.pod.metadata.namespace === p.metadata.namespace && s.pod.metadata.name === p.metadata.name);
      if (sp && this.statusManager) this.statusManager.observed(sp.pod.metadata.uid!, p.status, { namespace: p.metadata.namespace!, name: p.metadata.name!, uid: p.metadata.uid! });
      return;
    }
    if (!this.started) return;
    const w = this.workers.get(p.metadata.uid!);
    if (w) {
      if (!old || specChanged(old, p)) w.update(p);
      else w.pod = p;
      this.statusManager?.observed(w.uid, p.status, { namespace: p.metadata.namespace!, name: p.metadata.name!, uid: w.uid });
    } else this.syncPods();
  }

  private onApiPodDeleted(p: Pod): void {
    if (isMirrorPod(p)) {
      this.mirrors?.kick();
      return;
    }
    if (this.started) this.syncPods();
  }

  /** Starts workers for new pods, updates changed ones, removes those that left their source. */
  private syncPods(): void {
    if (this.stopped) return;
    const want = this.desired();
    for (const [uid, pod] of want) {
      const w = this.workers.get(uid);
      if (!w) {
        const nw = new PodWorker(this.workerContext(), pod);
        this.workers.set(uid, nw);
        this.finalStatus.delete(uid);
        nw.kick();
      } else if (w.pod !== pod && specChanged(w.pod, pod)) w.update(pod);
      else w.pod = pod;
    }
    for (const [uid, w] of this.workers) if (!want.has(uid) && !w.removed) w.remove();
    for (const uid of [...this.finalStatus.keys()]) if (!want.has(uid)) this.finalStatus.delete(uid);
  }

  private resync(): void {
    this.syncPods();
    for (const w of this.workers.values()) w.kick();
    this.mirrors?.kick();
    // Like the kubelet's status manager, compare the API server's copy with ours now and then,
    // so that a status overwritten without a watch event reaching us is repaired too.
    for (const p of this.podInformer?.list() ?? []) {
      const w = p.metadata.uid ? this.workers.get(p.metadata.uid) : undefined;
      if (w && !isMirrorPod(p)) this.statusManager?.observed(w.uid, p.status, { namespace: p.metadata.namespace!, name: p.metadata.name!, uid: w.uid });
    }
  }

  private isStatic(pod: Pod): boolean {
    return pod.metadata.annotations?.["kubernetes.io/config.source"] === "file";
  }

  private workerContext(): WorkerContext {
    return {
      cfg: this.cfg,
      log: this.log,
      runtime: this.runtime,
      network: () => this.network!,
      probes: this.probes,
      backoff: this.backoff,
      limiter: this.limiter,
      services: () => this.serviceInformer?.list() ?? [],
      hostIPs: () => (this.nodeIP ? [this.nodeIP] : []),
      dns: (pod: Pod): DNSConfig => podDNSConfig(pod, { clusterDNS: this.cfg.clusterDNS, clusterDomain: this.cfg.clusterDomain, host: this.host }),
      onStatus: (w, status) => this.onStatus(w, status),
      onTerminated: (w) => void this.onTerminated(w),
    };
  }

  private onStatus(w: PodWorker, status: PodStatus): void {
    if (!this.statusManager) return;
    const pod = w.pod;
    if (this.isStatic(pod)) {
      const mirror = this.mirrors?.mirrorFor(pod);
      this.statusManager.set(w.uid, status, mirror ? { namespace: mirror.metadata.namespace!, name: mirror.metadata.name!, uid: mirror.metadata.uid! } : undefined);
    } else this.statusManager.set(w.uid, status, { namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: w.uid });
  }

  private async onTerminated(w: PodWorker): Promise<void> {
    if (this.workers.get(w.uid) === w) this.workers.delete(w.uid);
    this.statusManager?.forget(w.uid);
    if (w.lastStatus) this.finalStatus.set(w.uid, w.lastStatus);
    const pod = w.pod;
    if (this.api && !this.isStatic(pod) && pod.metadata.deletionTimestamp) {
      // Confirms the graceful deletion, as the kubelet does once the pod is fully stopped.
      try {
        await this.api.request("DELETE", resourcePath("pods", pod.metadata.namespace, pod.metadata.name), { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: w.uid } });
      } catch (e) {
        if (!isApiError(e, 404) && !isApiError(e, 409)) this.log.warn(`pod ${w.key}: cannot confirm the deletion: ${errMsg(e)} (retried at the next resync)`);
      }
    }
    // Still wanted (a pod deleted in the API whose deletion did not go through): a new worker retries.
    if (this.desired().has(w.uid) && !this.stopped) setTimeout(() => this.syncPods(), 1000).unref();
  }

  private onProbe(uid: string, name: string, containerId: string, kind: ProbeKind, ok: boolean, message: string): void {
    const w = this.workers.get(uid);
    if (!w) return;
    if (kind === "readiness") {
      this.log.info(`pod ${w.key}: container ${name} readiness ${ok ? "succeeded" : `failed: ${message}`}`);
      w.kick();
      return;
    }
    if (!ok) w.requestKill(containerId, `failed ${kind} probe: ${message}`);
    else w.kick();
  }

  // ---- observation ----

  private readiness(): { ready: boolean; reason: string; message: string } {
    if (!this.network) return { ready: false, reason: "KubeletNotReady", message: "container runtime network not ready: the CNI configuration is not written yet" };
    if (this.pleg && !this.pleg.healthy && this.pleg.lastRelist) return { ready: false, reason: "KubeletNotReady", message: "container runtime is down" };
    return { ready: true, reason: "KubeletReady", message: "kubelet is posting ready status" };
  }

  private health(): { ok: boolean; message: string } {
    const r = this.readiness();
    return { ok: this.started && r.ready, message: this.started ? r.message : "starting" };
  }

  podList(): Pod[] {
    const out: Pod[] = [];
    for (const [uid, pod] of this.desired()) {
      const w = this.workers.get(uid);
      const status = w?.lastStatus ?? this.finalStatus.get(uid) ?? pod.status;
      out.push({ ...pod, apiVersion: "v1", kind: "Pod", status });
    }
    return out.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  }
}
