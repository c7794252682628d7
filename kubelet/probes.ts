// Probes, with Kubernetes' timing fields and defaults (initialDelaySeconds 0, periodSeconds 10,
// timeoutSeconds 1, successThreshold 1, failureThreshold 3): httpGet (the kubelet is in the node
// netns and reaches the pod IP directly), tcpSocket and exec (ExecSync in the container).
// One worker per running container and probe kind; results go to the kubelet, which turns
// readiness into the Ready conditions and liveness/startup failures into restarts.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Container, Probe } from "../apiserver/types.ts";
import type { RuntimeClient } from "../runtime/cri/client.ts";
import { errMsg } from "./log.ts";

export type ProbeKind = "startup" | "liveness" | "readiness";

export interface ProbeTarget {
  podUID: string;
  podIP: string;
  container: Container;
  containerId: string;
}

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

export function resolvePort(port: number | string, c: Container): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = (c.ports ?? []).find((x) => x.name === port);
  if (!p) throw new Error(`port ${JSON.stringify(port)} is not a named port of container ${c.name}`);
  return p.containerPort;
}

function httpProbe(p: NonNullable<Probe["httpGet"]>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(p.port, target.container);
    } catch (e) {
      return resolve({ ok: false, message: errMsg(e) });
    }
    const host = p.host || target.podIP;
    const mod = p.scheme === "HTTPS" ? https : http;
    const headers: Record<string, string> = { "User-Agent": "kube-probe/podnet", Accept: "*/*" };
    for (const h of p.httpHeaders ?? []) headers[h.name] = h.value;
    const path = p.path || "/";
    const req = mod.request({ host, port, path: path.startsWith("/") ? path : `/${path}`, method: "GET", headers, agent: false, rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      // Kubernetes: 200 <= code < 400 is success (redirects are not followed off the pod).
      resolve(code >= 200 && code < 400 ? { ok: true, message: `HTTP ${code}` } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
    });
    req.on("timeout", () => req.destroy(new Error(`Get "http://${host}:${port}${path}": context deadline exceeded (timeout ${timeoutMs / 1000}s)`)));
    req.on("error", (e) => resolve({ ok: false, message: errMsg(e) }));
    req.end();
  });
}

function tcpProbe(p: NonNullable<Probe["tcpSocket"]>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(p.port, target.container);
    } catch (e) {
      return resolve({ ok: false, message: errMsg(e) });
    }
    const host = p.host || target.podIP;
    const s = net.connect({ host, port });
    const done = (o: ProbeOutcome) => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` }), timeoutMs);
    s.once("connect", () => done({ ok: true, message: "" }));
    s.once("error", (e) => done({ ok: false, message: `dial tcp ${host}:${port}: ${errMsg(e)}` }));
  });
}

async function execProbe(p: NonNullable<Probe["exec"]>, target: ProbeTarget, timeoutMs: number, runtime: RuntimeClient): Promise<ProbeOutcome> {
  try {
    const r = await runtime.execSync({ containerId: target.containerId, cmd: p.command, timeout: Math.max(1, Math.ceil(timeoutMs / 1000)) });
    return r.exitCode === 0 ? { ok: true, message: r.stdout } : { ok: false, message: `command ${JSON.stringify(p.command)} exited with ${r.exitCode}: ${(r.stdout + r.stderr).trim().slice(0, 200)}` };
  } catch (e) {
    return { ok: false, message: errMsg(e) };
  }
}

export function runProbe(p: Probe, target: ProbeTarget, runtime: RuntimeClient): Promise<ProbeOutcome> {
  const timeoutMs = Math.max(1, p.timeoutSeconds ?? 1) * 1000;
  if (p.httpGet) return httpProbe(p.httpGet, target, timeoutMs);
  if (p.tcpSocket) return tcpProbe(p.tcpSocket, target, timeoutMs);
  if (p.exec) return execProbe(p.exec, target, timeoutMs, runtime);
  return Promise.resolve({ ok: false, message: "probe has no handler (httpGet, tcpSocket or exec)" });
}

export interface ProbeEvents {
  /** A probe's result changed (readiness flipped, liveness/startup reached a threshold). */
  onChange(podUID: string, containerName: string, containerId: string, kind: ProbeKind, ok: boolean, message: string): void;
}

/** One probe of one running container. */
class ProbeWorker {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  /** The last result: liveness starts true; readiness and startup false until they succeed. */
  result: boolean;

  constructor(
    readonly kind: ProbeKind,
    readonly probe: Probe,
    readonly target: ProbeTarget,
    private readonly runtime: RuntimeClient,
    private readonly events: ProbeEvents,
    private readonly gate: () => boolean,
  ) {
    this.result = kind === "liveness";
    const delay = Math.max(0, probe.initialDelaySeconds ?? 0) * 1000;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    // Liveness and readiness wait for the startup probe to succeed.
    if (this.gate()) {
      const out = await runProbe(this.probe, this.target, this.runtime);
      if (this.stopped) return;
      this.record(out);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(1, this.probe.periodSeconds ?? 10) * 1000);
  }

  private record(out: ProbeOutcome): void {
    if (out.ok) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const successThreshold = this.kind === "readiness" ? Math.max(1, this.probe.successThreshold ?? 1) : 1;
    const failureThreshold = Math.max(1, this.probe.failureThreshold ?? 3);
    let next = this.result;
    if (out.ok && this.successes >= successThreshold) next = true;
    if (!out.ok && this.failures >= failureThreshold) next = false;
    if (next !== this.result) {
      this.result = next;
      this.events.onChange(this.target.podUID, this.target.container.name, this.target.containerId, this.kind, next, out.message);
    } else if (!next && this.kind !== "readiness" && !out.ok && this.failures >= failureThreshold) {
      // A liveness/startup failure keeps being reported until the container is restarted.
      this.events.onChange(this.target.podUID, this.target.container.name, this.target.containerId, this.kind, next, out.message);
    }
    if (this.kind === "startup" && next) this.stop(); // a startup probe is done once it succeeds
  }
}

/** Every probe worker of the node, keyed by pod, container id and kind. */
export class ProbeManager {
  private readonly workers = new Map<string, ProbeWorker>();

  constructor(
    private readonly runtime: RuntimeClient,
    private readonly events: ProbeEvents,
  ) {}

  private key(podUID: string, containerId: string, kind: ProbeKind): string {
    return `${podUID}/${containerId}/${kind}`;
  }

  /** Starts the container's probes once (per container id); idempotent. */
  ensure(target: ProbeTarget): void {
    const c = target.container;
    const startupKey = this.key(target.podUID, target.containerId, "startup");
    const kinds: [ProbeKind, Probe | undefined][] = [
      ["startup", c.startupProbe],
      ["liveness", c.livenessProbe],
      ["readiness", c.readinessProbe],
    ];
    for (const [kind, probe] of kinds) {
      if (!probe) continue;
      const k = this.key(target.podUID, target.containerId, kind);
      if (this.workers.has(k)) continue;
      const gate = kind === "startup" ? () => true : () => this.workers.get(startupKey)?.result ?? true;
      this.workers.set(k, new ProbeWorker(kind, probe, target, this.runtime, this.events, gate));
    }
  }

  /** Readiness of a running container: its readiness probe's result, true without one. */
  ready(podUID: string, containerId: string, c: Container): boolean {
    if (!this.started(podUID, containerId, c)) return false;
    if (!c.readinessProbe) return true;
    return this.workers.get(this.key(podUID, containerId, "readiness"))?.result ?? false;
  }

  /** Whether the container counts as started: its startup probe succeeded (true without one). */
  started(podUID: string, containerId: string, c: Container): boolean {
    if (!c.startupProbe) return true;
    return this.workers.get(this.key(podUID, containerId, "startup"))?.result ?? false;
  }

  /** Stops every probe of a pod except those of the given (still running) containers. */
  retain(podUID: string, keepContainerIds: Set<string>): void {
    for (const [k, w] of this.workers) {
      if (w.target.podUID !== podUID || keepContainerIds.has(w.target.containerId)) continue;
      w.stop();
      this.workers.delete(k);
    }
  }

  stopAll(): void {
    for (const w of this.workers.values()) w.stop();
    this.workers.clear();
  }
}
