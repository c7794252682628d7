// Helpers for the API server tests: in-process servers on throwaway state directories, polling
// with a deadline, Nodes that heartbeat and a small stand-in for the kubelet (it reports pods
// running and ready with an IP from the node's podCIDR, and confirms graceful deletions).
import type { ExecutionContext } from "ava";
import { dir, setGracefulCleanup } from "tmp-promise";
import { ApiClient, isApiError, resourcePath } from "../../apiserver/client.ts";
import { startApiServer, type ApiServerOptions, type RunningApiServer } from "../../apiserver/server.ts";
import type { Node, Pod } from "../../apiserver/types.ts";

// State directories go even when a test worker dies before its teardowns run.
setGracefulCleanup();

export interface TestServer {
  server: RunningApiServer;
  client: ApiClient;
  stateDir: string;
  /** Stops the server (the state directory stays until the test ends). */
  stop(): Promise<void>;
  /** Starts a server again on the same state directory. */
  restart(extra?: Partial<ApiServerOptions>): Promise<void>;
}

export async function startTestServer(t: ExecutionContext, opts: Partial<ApiServerOptions> = {}): Promise<TestServer> {
  const tmp = await dir({ unsafeCleanup: true, prefix: "podnet-api-" });
  const stateDir = tmp.path;
  let server = await startApiServer({ stateDir, quiet: true, ...opts });
  let stopped = false;
  const ts: TestServer = {
    server,
    client: new ApiClient({ socketPath: server.socketPath, userAgent: "podnet-test" }),
    stateDir,
    async stop() {
      if (!stopped) await ts.server.close();
      stopped = true;
    },
    async restart(extra = {}) {
      await ts.stop();
      server = await startApiServer({ stateDir, quiet: true, ...opts, ...extra });
      ts.server = server;
      stopped = false;
    },
  };
  t.teardown(async () => {
    await ts.stop();
    await tmp.cleanup();
  });
  return ts;
}

/** Polls `fn` until it returns a truthy value; fails with `what` after the deadline. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Expects a promise to fail with an ApiError of this status; returns the error. */
export async function apiError(p: Promise<unknown>, status: number) {
  try {
    await p;
  } catch (e) {
    if (isApiError(e, status)) return e;
    throw e;
  }
  throw new Error(`expected an API error ${status}, but the request succeeded`);
}

export const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export async function createReadyNode(client: ApiClient, name: string, labels: Record<string, string> = {}): Promise<Node> {
  return client.create<Node>(resourcePath("nodes"), {
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels } },
    status: { conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: now(), lastTransitionTime: now(), reason: "KubeletReady" }] },
  });
}

export async function heartbeat(client: ApiClient, name: string, ready = true): Promise<void> {
  await client.patch(
    resourcePath("nodes", undefined, name),
    { status: { conditions: [{ type: "Ready", status: ready ? "True" : "False", lastHeartbeatTime: new Date().toISOString(), reason: ready ? "KubeletReady" : "KubeletNotReady" }] } },
    { subresource: "status" },
  );
}

/**
 * A stand-in for the kubelets of some nodes: every pod bound to one of them gets an IP from the
 * node's podCIDR, Running, and Ready (unless `ready` says otherwise); graceful deletions are
 * confirmed. It works by polling, like a status loop would.
 */
export class FakeKubelet {
  private timer?: NodeJS.Timeout;
  private busy = false;
  private readonly nextIP = new Map<string, number>();
  /** Decides readiness per pod (default: ready). */
  ready: (pod: Pod) => boolean = () => true;
  /** Whether to confirm deletions (remove terminating pods). */
  confirmDeletes = true;
  /** A pod turns ready this long after the kubelet first sees it (a readiness probe's delay). */
  readyDelayMs = 0;
  private readonly firstSeen = new Map<string, number>();

  constructor(
    private readonly client: ApiClient,
    private readonly nodes: string[],
  ) {}

  start(everyMs = 50): this {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.tick()
        .catch(() => {})
        .finally(() => (this.busy = false));
    }, everyMs);
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private ipFor(node: Node): string {
    const base = node.spec!.podCIDR!.split("/")[0].split(".").map(Number);
    const n = (this.nextIP.get(node.metadata.name!) ?? 1) + 1;
    this.nextIP.set(node.metadata.name!, n);
    return `${base[0]}.${base[1]}.${base[2] + Math.floor(n / 256)}.${n % 256}`;
  }

  async tick(): Promise<void> {
    const nodes = new Map((await this.client.list<Node>(resourcePath("nodes"))).items.map((n) => [n.metadata.name!, n]));
    const pods = (await this.client.list<Pod>(resourcePath("pods"))).items;
    for (const pod of pods) {
      const nodeName = pod.spec.nodeName;
      if (!nodeName || !this.nodes.includes(nodeName)) continue;
      const path = resourcePath("pods", pod.metadata.namespace, pod.metadata.name);
      if (pod.metadata.deletionTimestamp) {
        if (this.confirmDeletes) await this.client.delete(path, { gracePeriodSeconds: 0 }).catch(() => {});
        continue;
      }
      const uid = pod.metadata.uid!;
      if (!this.firstSeen.has(uid)) this.firstSeen.set(uid, Date.now());
      const want = this.ready(pod) && Date.now() - this.firstSeen.get(uid)! >= this.readyDelayMs;
      const isReady = pod.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      if (pod.status?.podIP && isReady === want && pod.status.phase === "Running") continue;
      const node = nodes.get(nodeName);
      if (!node?.spec?.podCIDR) continue;
      const ip = pod.status?.podIP ?? this.ipFor(node);
      const t = now();
      await this.client
        .patch(
          path,
          {
            status: {
              phase: "Running",
              podIP: ip,
              podIPs: [{ ip }],
              hostIP: "198.18.0.10",
              conditions: [
                { type: "PodScheduled", status: "True", lastTransitionTime: t },
                { type: "Initialized", status: "True", lastTransitionTime: t },
                { type: "ContainersReady", status: want ? "True" : "False", lastTransitionTime: t },
                { type: "Ready", status: want ? "True" : "False", lastTransitionTime: t },
              ],
            },
          },
          { subresource: "status" },
        )
        .catch(() => {});
    }
  }
}

/** A pod bound to a node, reported running with an IP: for EndpointSlice tests without a scheduler in the way. */
export async function runningPod(client: ApiClient, ns: string, name: string, opts: { labels: Record<string, string>; node: string; ip: string; ready?: boolean; ports?: { name?: string; containerPort: number; protocol?: "TCP" | "UDP" }[]; hostname?: string; subdomain?: string }): Promise<Pod> {
  await client.create<Pod>(resourcePath("pods", ns), {
    metadata: { name, labels: opts.labels },
    spec: {
      nodeName: opts.node,
      hostname: opts.hostname,
      subdomain: opts.subdomain,
      containers: [{ name: "app", image: "podnet/agnhost", ports: opts.ports }],
    },
  });
  return setPodStatus(client, ns, name, opts.ip, opts.ready ?? true);
}

export function setPodStatus(client: ApiClient, ns: string, name: string, ip: string, ready: boolean): Promise<Pod> {
  return client.patch<Pod>(
    resourcePath("pods", ns, name),
    { status: { phase: "Running", podIP: ip, podIPs: [{ ip }], conditions: [{ type: "Ready", status: ready ? "True" : "False", lastTransitionTime: now() }] } },
    { subresource: "status" },
  );
}
