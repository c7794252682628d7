// One pod's worker: every change to the pod (source update, container exit seen by the relist,
// probe result, back-off expiry) kicks it, and its syncs run one at a time. A sync compares what
// the pod wants with what the runtime has and acts like the kubelet's SyncPod:
//   sandbox missing or dead -> (tear the old one down) RunPodSandbox, CNI ADD lo + eth0,
//                              SetPodSandboxNetwork;
//   containers              -> init containers one by one, then the app containers in order,
//                              restarted by restartPolicy with crash-loop back-off;
//   terminal pod            -> CNI DEL, sandbox stopped (records kept for its status);
//   deleted or removed pod  -> containers stopped with the grace period (preStop, SIGTERM,
//                              SIGKILL), CNI DEL of both networks, StopPodSandbox,
//                              RemovePodSandbox; then the kubelet confirms the deletion.
import type { Container, Pod, PodStatus, Service } from "../apiserver/types.ts";
import type { RuntimeClient } from "../runtime/cri/client.ts";
import type { ContainerStatusResponse, DNSConfig, PodSandbox } from "../runtime/cri/types.ts";
import type { Backoff } from "./backoff.ts";
import { containerConfig, ContainerConfigError, sandboxConfig } from "./containers.ts";
import type { KubeletConfig } from "./flags.ts";
import { POD_UID_LABEL } from "./labels.ts";
import type { Limiter } from "./limiter.ts";
import { errMsg, type Logger } from "./log.ts";
import { sandboxNetwork, type PodNetwork } from "./network.ts";
import type { ProbeManager } from "./probes.ts";
import { computeStatus, nowTime, nsToTime, type ContainerView, type Waiting } from "./status.ts";

export interface WorkerContext {
  cfg: KubeletConfig;
  log: Logger;
  runtime: RuntimeClient;
  network(): PodNetwork;
  probes: ProbeManager;
  backoff: Backoff;
  limiter: Limiter;
  services(): Service[];
  hostIPs(): string[];
  dns(pod: Pod): DNSConfig;
  onStatus(worker: PodWorker, status: PodStatus): void;
  onTerminated(worker: PodWorker): void;
}

interface SandboxView {
  id: string;
  ready: boolean;
  createdAt: string;
  attempt: number;
}

interface PodView {
  sandboxes: SandboxView[];
  /** Attempts per container name, newest first, of the current sandbox only. */
  attempts: Map<string, ContainerView[]>;
  /** Containers of sandboxes other than the current one. */
  stale: ContainerView[];
}

const podKey = (p: Pod) => `${p.metadata.namespace ?? "default"}/${p.metadata.name}`;

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

export class PodWorker {
  pod: Pod;
  readonly uid: string;
  /** The pod left its source (deleted from the API for good, manifest removed). */
  removed = false;
  /** Everything of the pod is gone; the worker does nothing more. */
  done = false;
  lastStatus?: PodStatus;
  private running = false;
  private dirty = false;
  private retryTimer?: NodeJS.Timeout;
  private wakeTimer?: NodeJS.Timeout;
  private errorDelayMs = 0;
  private lastError = "";
  private startTime?: string;
  private readonly restartBase = new Map<string, number>();
  private readonly waiting = new Map<string, Waiting>();
  /** Containers a liveness or startup probe wants restarted. */
  private readonly killRequests = new Map<string, string>();
  /** Sandboxes whose pod network ADD completed, with the pod's IPs. */
  private readonly networks = new Map<string, string[]>();
  /** Sandboxes whose network has been torn down (terminal pods). */
  private readonly tornDown = new Set<string>();
  private readonly statusCache = new Map<string, ContainerStatusResponse["status"]>();
  private stopped = false;

  constructor(
    private readonly ctx: WorkerContext,
    pod: Pod,
  ) {
    this.pod = pod;
    this.uid = pod.metadata.uid!;
  }

  get key(): string {
    return podKey(this.pod);
  }

  get terminating(): boolean {
    return this.removed || !!this.pod.metadata.deletionTimestamp;
  }

  update(pod: Pod): void {
    this.pod = pod;
    this.kick();
  }

  /** The pod is gone from its source: tear it down. */
  remove(): void {
    this.removed = true;
    this.kick();
  }

  requestKill(containerId: string, why: string): void {
    if (this.killRequests.has(containerId)) return;
    this.killRequests.set(containerId, why);
    this.kick();
  }

  /** Stops reacting (kubelet shutdown); the pod keeps running. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
  }

  kick(): void {
    if (this.done || this.stopped) return;
    this.dirty = true;
    if (!this.running) void this.loop();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty && !this.done && !this.stopped) {
        this.dirty = false;
        if (this.retryTimer) {
          clearTimeout(this.retryTimer);
          this.retryTimer = undefined;
        }
        try {
          await this.sync();
          this.errorDelayMs = 0;
          this.lastError = "";
        } catch (e) {
          const msg = errMsg(e);
          if (msg !== this.lastError) this.ctx.log.warn(`pod ${this.key}: ${msg}`);
          this.lastError = msg;
          this.errorDelayMs = Math.min(this.errorDelayMs ? this.errorDelayMs * 2 : 250, 10_000);
          if (!this.stopped) this.retryTimer = setTimeout(() => this.kick(), this.errorDelayMs);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Wakes the worker after `ms` (a back-off ending); the earliest wake wins. */
  private wakeIn(ms: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.kick();
    }, ms + 20);
  }

  // ---- what the runtime has ----

  private async observe(): Promise<PodView> {
    const rt = this.ctx.runtime;
    const selector = { [POD_UID_LABEL]: this.uid };
    const [sbs, cs] = await Promise.all([rt.listPodSandbox({ filter: { labelSelector: selector } }), rt.listContainers({ filter: { labelSelector: selector } })]);
    const sandboxes: SandboxView[] = (sbs.items ?? []).map((s: PodSandbox) => ({ id: s.id, ready: s.state === "SANDBOX_READY", createdAt: s.createdAt, attempt: s.metadata.attempt ?? 0 }));
    // The current sandbox: the newest ready one, else the newest.
    sandboxes.sort((a, b) => Number(b.ready) - Number(a.ready) || (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
    const current = sandboxes[0]?.id;
    const attempts = new Map<string, ContainerView[]>();
    const stale: ContainerView[] = [];
    const seen = new Set<string>();
    for (const c of cs.containers ?? []) {
      seen.add(c.id);
      const cacheKey = `${c.id}`;
      let st = this.statusCache.get(cacheKey);
      if (!st || st.state !== c.state) {
        st = (await rt.containerStatus({ containerId: c.id })).status;
        this.statusCache.set(cacheKey, st);
      }
      const v: ContainerView = { id: c.id, name: c.metadata.name, attempt: c.metadata.attempt ?? 0, state: st.state, createdAt: st.createdAt, startedAt: st.startedAt, finishedAt: st.finishedAt, exitCode: st.exitCode, reason: st.reason, message: st.message };
      if (c.podSandboxId !== current) {
        stale.push(v);
        continue;
      }
      const list = attempts.get(v.name) ?? [];
      list.push(v);
      attempts.set(v.name, list);
    }
    for (const k of [...this.statusCache.keys()]) if (!seen.has(k)) this.statusCache.delete(k);
    for (const list of attempts.values()) list.sort((a, b) => b.attempt - a.attempt || (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
    return { sandboxes, attempts, stale };
  }

  private async networkOf(sandboxId: string): Promise<string[] | undefined> {
    const known = this.networks.get(sandboxId);
    if (known) return known;
    if (this.pod.spec.hostNetwork) return this.onNodeNetwork(sandboxId);
    // Adopted after a restart: the ADD completed if its result is cached, and the runtime has the IPs.
    if (!(await this.ctx.network().isSetUp(sandboxId))) return undefined;
    const st = await this.ctx.runtime.podSandboxStatus({ podSandboxId: sandboxId });
    const ips = [st.status.network?.ip, ...(st.status.network?.additionalIps ?? []).map((x) => x.ip)].filter((x): x is string => !!x);
    if (!ips.length) return undefined;
    this.networks.set(sandboxId, ips);
    return ips;
  }

  // ---- the sync ----

  private async sync(): Promise<void> {
    if (this.terminating) return this.terminate();
    const pod = this.pod;
    let view = await this.observe();
    let sb = view.sandboxes[0];
    // Older sandboxes of this pod (replaced ones) go first.
    for (const old of view.sandboxes.slice(1)) await this.ctx.limiter.run(() => this.teardownSandbox(old.id, true));
    const apiPhase = pod.status?.phase;
    if (!sb && (apiPhase === "Succeeded" || apiPhase === "Failed")) return; // finished before; nothing to run
    const ips = sb?.ready ? await this.networkOf(sb.id) : undefined;
    if (!sb || !sb.ready || !ips) {
      if (sb && this.finished(pod, view)) {
        // A finished pod whose sandbox is stopped: its status stands as the runtime records it.
        // (Containers still running in a sandbox whose holder died are killed, as the kubelet does.)
        const left = [...view.attempts.values()].flat().filter((c) => c.state === "CONTAINER_RUNNING");
        await Promise.all(left.map((c) => this.ctx.runtime.stopContainer({ containerId: c.id, timeout: 0 })));
        await this.releaseNetwork(sb.id);
        this.report(view, sb.id, false);
        return;
      }
      if (sb) {
        this.carryRestarts(view);
        await this.ctx.limiter.run(() => this.teardownSandbox(sb!.id, true));
      }
      const attempt = sb ? sb.attempt + 1 : 0;
      await this.createSandbox(attempt);
      view = await this.observe();
      sb = view.sandboxes[0];
      if (!sb) throw new Error("the new sandbox vanished");
    }
    const podIPs = this.networks.get(sb.id) ?? [];
    this.startTime ??= pod.status?.startTime ?? nowTime();
    const acted = await this.syncContainers(view, sb.id, podIPs);
    if (acted) view = await this.observe();
    const status = this.report(view, sb.id, true);
    if (status.phase === "Succeeded" || status.phase === "Failed") {
      // As the kubelet does for terminal pods: release the network, stop the sandbox, keep the records.
      this.ctx.probes.retain(this.uid, new Set());
      await this.ctx.limiter.run(async () => {
        await this.releaseNetwork(sb!.id);
        await this.ctx.runtime.stopPodSandbox({ podSandboxId: sb!.id });
      });
      this.report(await this.observe(), sb.id, false);
    }
  }

  /** Whether the pod has run and must not run again (restartPolicy). */
  private finished(pod: Pod, view: PodView): boolean {
    const policy = pod.spec.restartPolicy ?? "Always";
    if (policy === "Always") return false;
    const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
    const latest = all.map((c) => view.attempts.get(c.name)?.[0]);
    if (latest.every((v) => !v)) return false;
    if (policy === "Never") return true;
    // OnFailure: done when every app container succeeded.
    return pod.spec.containers.every((c) => {
      const v = view.attempts.get(c.name)?.[0];
      return v && v.state === "CONTAINER_EXITED" && v.exitCode === 0;
    });
  }

  /** Restart counts continue across a sandbox replacement. */
  private carryRestarts(view: PodView): void {
    for (const [name, list] of view.attempts) {
      const latest = list[0];
      if (latest) this.restartBase.set(name, (this.restartBase.get(name) ?? 0) + latest.attempt + 1);
    }
  }

  private async createSandbox(attempt: number): Promise<void> {
    const pod = this.pod;
    const net = this.ctx.network();
    const rt = this.ctx.runtime;
    await this.ctx.limiter.run(async () => {
      const { podSandboxId, netnsPath } = await rt.runPodSandbox({ config: sandboxConfig(pod, attempt, this.ctx.dns(pod), this.ctx.cfg.node) });
      if (pod.spec.hostNetwork) {
        const ips = this.onNodeNetwork(podSandboxId);
        await rt.setPodSandboxNetwork({ podSandboxId, ips });
        this.ctx.log.info(`pod ${this.key}: sandbox ${podSandboxId.slice(0, 12)} ready on the node's network, IP ${ips.join(", ") || "unknown"}`);
        return;
      }
      let ips: string[];
      try {
        ips = await net.setUp(pod, podSandboxId, netnsPath);
      } catch (addErr) {
        // DEL always follows an ADD, even a failed one; then the sandbox goes and the sync retries.
        try {
          await net.tearDown(podSandboxId, netnsPath, pod);
          await rt.stopPodSandbox({ podSandboxId });
          await rt.removePodSandbox({ podSandboxId });
        } catch (delErr) {
          this.ctx.log.warn(`pod ${this.key}: cleaning up after a failed network setup: ${errMsg(delErr)}`);
        }
        throw new Error(`failed to set up the pod network of sandbox ${podSandboxId.slice(0, 12)}: ${errMsg(addErr)}`);
      }
      this.networks.set(podSandboxId, ips);
      await rt.setPodSandboxNetwork({ podSandboxId, ips });
      this.ctx.log.info(`pod ${this.key}: sandbox ${podSandboxId.slice(0, 12)} ready, IP ${ips.join(", ")}`);
    });
  }

  /** Returns whether anything was started or stopped. */
  private async syncContainers(view: PodView, sandboxId: string, podIPs: string[]): Promise<boolean> {
    const pod = this.pod;
    let acted = false;
    const policy = pod.spec.restartPolicy ?? "Always";
    const keep = new Set<string>();
    // Init containers: one at a time, each to success, before the app containers.
    for (const c of pod.spec.initContainers ?? []) {
      const cur = view.attempts.get(c.name)?.[0];
      if (cur?.state === "CONTAINER_EXITED" && cur.exitCode === 0) continue;
      if (cur?.state === "CONTAINER_RUNNING") {
        this.ctx.probes.retain(this.uid, keep);
        return acted; // the relist wakes us when it exits
      }
      const r = await this.maybeStart(c, view, sandboxId, podIPs, policy === "Always" ? "OnFailure" : policy);
      this.ctx.probes.retain(this.uid, keep);
      return acted || r;
    }
    for (const c of pod.spec.containers) {
      const cur = view.attempts.get(c.name)?.[0];
      if (cur?.state === "CONTAINER_RUNNING") {
        const why = this.killRequests.get(cur.id);
        if (why) {
          this.ctx.log.info(`pod ${this.key}: container ${c.name} ${why}, will be restarted`);
          await this.stopContainer(c, cur.id, this.probeGrace(c));
          this.killRequests.delete(cur.id);
          acted = true;
          this.dirty = true; // look again: the exit decides the restart
          continue;
        }
        keep.add(cur.id);
        this.ctx.probes.ensure({ podUID: this.uid, podIP: podIPs[0] ?? "", container: c, containerId: cur.id });
        this.waiting.delete(c.name);
        continue;
      }
      if (await this.maybeStart(c, view, sandboxId, podIPs, policy)) acted = true;
    }
    this.ctx.probes.retain(this.uid, keep);
    for (const id of [...this.killRequests.keys()]) if (!keep.has(id)) this.killRequests.delete(id);
    return acted;
  }

  /** Starts the container's first or next attempt when the restart policy and back-off allow. */
  private async maybeStart(c: Container, view: PodView, sandboxId: string, podIPs: string[], policy: string): Promise<boolean> {
    const list = view.attempts.get(c.name) ?? [];
    const cur = list[0];
    const rt = this.ctx.runtime;
    if (cur?.state === "CONTAINER_CREATED" || cur?.state === "CONTAINER_UNKNOWN") {
      // Made but never started (a kubelet that died in between): make it again.
      await rt.removeContainer({ containerId: cur.id });
      return this.start(c, sandboxId, podIPs, cur.attempt, list.slice(2));
    }
    if (!cur) return this.start(c, sandboxId, podIPs, 0, []);
    // Exited.
    const restart = policy === "Always" || (policy === "OnFailure" && cur.exitCode !== 0);
    if (!restart) {
      this.waiting.delete(c.name);
      return false;
    }
    const key = `${this.uid}/${c.name}`;
    const finished = Number(BigInt(cur.finishedAt || "0") / 1_000_000n) || Date.now();
    const left = this.ctx.backoff.remaining(key, finished);
    if (left > 0) {
      const msg = `back-off ${fmtDuration(this.ctx.backoff.delay(key))} restarting failed container=${c.name} pod=${this.pod.metadata.name}_${this.pod.metadata.namespace ?? "default"}(${this.uid})`;
      this.waiting.set(c.name, { reason: "CrashLoopBackOff", message: msg });
      this.wakeIn(left);
      return false;
    }
    this.ctx.backoff.next(key);
    return this.start(c, sandboxId, podIPs, cur.attempt + 1, list.slice(1));
  }

  private async start(c: Container, sandboxId: string, podIPs: string[], attempt: number, older: ContainerView[]): Promise<boolean> {
    const rt = this.ctx.runtime;
    // Only the previous attempt is kept (for lastState and logs), as the kubelet's GC does.
    for (const o of older) await rt.removeContainer({ containerId: o.id });
    let config;
    try {
      config = containerConfig(this.pod, c, attempt, this.ctx.services(), { podIPs, hostIPs: this.ctx.hostIPs(), nodeName: this.ctx.cfg.node });
    } catch (e) {
      if (!(e instanceof ContainerConfigError)) throw e;
      this.waiting.set(c.name, { reason: "CreateContainerConfigError", message: e.message });
      return false;
    }
    let containerId: string;
    try {
      containerId = (await rt.createContainer({ podSandboxId: sandboxId, config })).containerId;
    } catch (e) {
      if ((e as { code?: string }).code === "InvalidArgument") {
        this.waiting.set(c.name, { reason: "CreateContainerError", message: errMsg(e) });
        return false;
      }
      throw e;
    }
    this.waiting.delete(c.name);
    try {
      await rt.startContainer({ containerId });
    } catch (e) {
      // The runtime records a start failure as an exit (StartError, 128): the restart policy decides.
      this.ctx.log.warn(`pod ${this.key}: container ${c.name} failed to start: ${errMsg(e)}`);
    }
    return true;
  }

  private probeGrace(c: Container): number {
    const p = c.livenessProbe?.terminationGracePeriodSeconds ?? c.startupProbe?.terminationGracePeriodSeconds;
    return p ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
  }

  /** preStop hook (exec), then SIGTERM, then SIGKILL after what is left of the grace period. */
  private async stopContainer(c: Container | undefined, containerId: string, graceSec: number): Promise<void> {
    const deadline = Date.now() + graceSec * 1000;
    const preStop = c?.lifecycle?.preStop?.exec?.command;
    if (preStop?.length && graceSec > 0) {
      try {
        await this.ctx.runtime.execSync({ containerId, cmd: preStop, timeout: graceSec });
      } catch (e) {
        this.ctx.log.warn(`pod ${this.key}: preStop hook of ${c!.name} failed: ${errMsg(e)}`);
      }
    }
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    await this.ctx.runtime.stopContainer({ containerId, timeout: graceSec > 0 ? Math.max(1, left) : 0 });
  }

  /** A hostNetwork pod's sandbox: no CNI; the pod's IPs are the node's, as Kubernetes reports them. */
  private onNodeNetwork(sandboxId: string): string[] {
    const ips = this.ctx.hostIPs();
    this.networks.set(sandboxId, ips);
    return ips;
  }

  /** CNI DEL of a sandbox's networks, once (none for a sandbox on the node's network). */
  private async releaseNetwork(sandboxId: string): Promise<void> {
    if (this.tornDown.has(sandboxId)) return;
    const { netnsPath, hostNetwork } = await sandboxNetwork(this.ctx.runtime, sandboxId);
    if (!hostNetwork) await this.ctx.network().tearDown(sandboxId, netnsPath, this.pod);
    this.tornDown.add(sandboxId);
    this.networks.delete(sandboxId);
  }

  /** Containers are already stopped (or are killed now): network DEL, then the sandbox goes. */
  private async teardownSandbox(sandboxId: string, remove: boolean): Promise<void> {
    await this.releaseNetwork(sandboxId);
    await this.ctx.runtime.stopPodSandbox({ podSandboxId: sandboxId });
    if (remove) {
      await this.ctx.runtime.removePodSandbox({ podSandboxId: sandboxId });
      this.tornDown.delete(sandboxId);
      this.ctx.log.info(`pod ${this.key}: removed sandbox ${sandboxId.slice(0, 12)}`);
    }
  }

  private gracePeriod(): number {
    const p = this.pod;
    return p.metadata.deletionGracePeriodSeconds ?? p.spec.terminationGracePeriodSeconds ?? 30;
  }

  private async terminate(): Promise<void> {
    this.ctx.probes.retain(this.uid, new Set());
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    const view = await this.observe();
    const grace = this.gracePeriod();
    const byName = new Map(this.pod.spec.containers.concat(this.pod.spec.initContainers ?? []).map((c) => [c.name, c]));
    const running = [...view.attempts.values()].flat().concat(view.stale).filter((c) => c.state === "CONTAINER_RUNNING");
    if (running.length) this.ctx.log.info(`pod ${this.key}: stopping ${running.length} container(s), grace period ${grace}s`);
    await Promise.all(running.map((c) => this.stopContainer(byName.get(c.name), c.id, grace)));
    if (view.sandboxes.length) {
      const final = await this.observe();
      if (final.sandboxes[0]) this.report(final, final.sandboxes[0].id, false, true);
    }
    await this.ctx.limiter.run(async () => {
      for (const sb of view.sandboxes) await this.teardownSandbox(sb.id, true);
    });
    this.done = true;
    this.ctx.backoff.forgetPrefix(`${this.uid}/`);
    this.ctx.log.info(`pod ${this.key}: torn down`);
    this.ctx.onTerminated(this);
  }

  private report(view: PodView, sandboxId: string, sandboxReady: boolean, terminating = false): PodStatus {
    const status = computeStatus({
      pod: this.pod,
      sandboxReady: sandboxReady && this.networks.has(sandboxId),
      podIPs: this.networks.get(sandboxId) ?? this.lastIPs(),
      hostIPs: this.ctx.hostIPs(),
      startTime: this.startTime ?? this.pod.status?.startTime ?? nsToTime(view.sandboxes[0]?.createdAt),
      attempts: view.attempts,
      restartBase: this.restartBase,
      waiting: this.waiting,
      ready: (c, id) => this.ctx.probes.ready(this.uid, id, c),
      started: (c, id) => this.ctx.probes.started(this.uid, id, c),
      previous: this.lastStatus ?? this.pod.status,
      terminating,
    });
    this.lastStatus = status;
    this.ctx.onStatus(this, status);
    return status;
  }

  /** A finished pod keeps reporting the IPs it had. */
  private lastIPs(): string[] {
    const s = this.lastStatus ?? this.pod.status;
    return (s?.podIPs ?? []).map((x) => x.ip);
  }
}
