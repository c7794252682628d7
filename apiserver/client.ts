// The client every podnet component uses to talk to the API server: plain REST over node:http
// (a unix socket by default, or a loopback TCP URL), watch streams of JSON lines, and an
// Informer (list + watch cache) that keeps itself in sync the way client-go's reflector does.
import http from "node:http";
import type { KObject, List, Status, WatchEvent } from "./types.ts";
import { objectKey } from "./types.ts";

export type { KObject, List, Status, WatchEvent } from "./types.ts";
export { objectKey } from "./types.ts";

/** An error answer from the API server, carrying its Kubernetes Status. */
export class ApiError extends Error {
  status: number;
  reason: string;
  body: Status;
  constructor(body: Status) {
    super(body.message || `${body.reason} (${body.code})`);
    this.name = "ApiError";
    this.status = body.code;
    this.reason = body.reason;
    this.body = body;
  }
}

export function isApiError(e: unknown, status?: number): e is ApiError {
  return e instanceof ApiError && (status === undefined || e.status === status);
}

export type ResourceKind = "pods" | "services" | "endpoints" | "endpointslices" | "nodes" | "namespaces" | "deployments" | "replicasets" | "networkpolicies";

const GROUP_PREFIX: Record<ResourceKind, string> = {
  pods: "/api/v1",
  services: "/api/v1",
  endpoints: "/api/v1",
  nodes: "/api/v1",
  namespaces: "/api/v1",
  endpointslices: "/apis/discovery.k8s.io/v1",
  deployments: "/apis/apps/v1",
  replicasets: "/apis/apps/v1",
  networkpolicies: "/apis/networking.k8s.io/v1",
};
const CLUSTER_SCOPED = new Set<ResourceKind>(["nodes", "namespaces"]);

/**
 * The REST path of a collection or an object. Namespaced kinds without a namespace give the
 * all-namespaces collection ("/api/v1/pods"). For the cluster-scoped kinds (nodes, namespaces)
 * the object's name may be passed either as `name` or, for convenience, as the second argument.
 */
export function resourcePath(kind: ResourceKind, namespace?: string, name?: string): string {
  const prefix = GROUP_PREFIX[kind];
  if (!prefix) throw new Error(`unknown resource kind "${kind}"`);
  if (CLUSTER_SCOPED.has(kind)) {
    const n = name ?? namespace;
    return n ? `${prefix}/${kind}/${encodeURIComponent(n)}` : `${prefix}/${kind}`;
  }
  let p = namespace ? `${prefix}/namespaces/${encodeURIComponent(namespace)}/${kind}` : `${prefix}/${kind}`;
  if (name) {
    if (!namespace) throw new Error(`resourcePath: ${kind} "${name}" needs a namespace`);
    p += `/${encodeURIComponent(name)}`;
  }
  return p;
}

export interface ApiClientOptions {
  /** Unix socket of the API server. Default: $PODNET_APISERVER_SOCKET, else /var/lib/podnet/$PODNET_CLUSTER/apiserver.sock. */
  socketPath?: string;
  /** http://127.0.0.1:PORT; used instead of the socket when given (or when $PODNET_APISERVER is an http URL). */
  baseUrl?: string;
  userAgent?: string;
  /** Per-request timeout for non-watch requests, in milliseconds (default 30000). */
  timeoutMs?: number;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  /** Ask the server to end the stream after this many seconds (it closes cleanly; done resolves). */
  timeoutSeconds?: number;
}

export interface WatchHandle {
  stop(): void;
  /** Resolves when the stream ends (server closed it, or stop()); rejects with ApiError (410 when too old) or a connection error. */
  done: Promise<void>;
}

export function defaultSocketPath(): string {
  if (process.env.PODNET_APISERVER_SOCKET) return process.env.PODNET_APISERVER_SOCKET;
  const cluster = process.env.PODNET_CLUSTER || "podnet";
  return `/var/lib/podnet/${cluster}/apiserver.sock`;
}

function statusFrom(code: number, text: string): Status {
  try {
    const parsed = JSON.parse(text) as Partial<Status>;
    if (parsed && parsed.kind === "Status") return { ...parsed, code: parsed.code ?? code } as Status;
  } catch {
    /* not JSON: synthesize below */
  }
  return {
    apiVersion: "v1",
    kind: "Status",
    metadata: {},
    status: "Failure",
    message: text.trim() || `HTTP ${code}`,
    reason: code === 404 ? "NotFound" : code === 409 ? "Conflict" : code === 410 ? "Gone" : "Unknown",
    code,
  };
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export class ApiClient {
  private readonly socketPath?: string;
  private readonly host?: string;
  private readonly port?: number;
  private readonly userAgent: string;
  private readonly timeoutMs: number;
  // Keep-alive sockets are unref'd by node when idle, so they never hold a process open.
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(opts: ApiClientOptions = {}) {
    const envUrl = process.env.PODNET_APISERVER?.startsWith("http") ? process.env.PODNET_APISERVER : undefined;
    const baseUrl = opts.baseUrl ?? (opts.socketPath ? undefined : envUrl);
    if (baseUrl) {
      const u = new URL(baseUrl);
      if (u.protocol !== "http:") throw new Error(`API server URL must be http://HOST:PORT, got ${baseUrl}`);
      this.host = u.hostname;
      this.port = Number(u.port || 80);
    } else {
      this.socketPath = opts.socketPath ?? defaultSocketPath();
    }
    this.userAgent = opts.userAgent ?? "podnet";
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Where this client connects, for messages. */
  get endpoint(): string {
    return this.socketPath ? `unix:${this.socketPath}` : `http://${this.host}:${this.port}`;
  }

  private requestOptions(method: string, path: string, headers: Record<string, string>): http.RequestOptions {
    const base: http.RequestOptions = { method, path, headers: { "User-Agent": this.userAgent, Accept: "application/json", ...headers } };
    if (this.socketPath) return { ...base, socketPath: this.socketPath };
    return { ...base, host: this.host, port: this.port };
  }

  /** One request; resolves with the parsed JSON body, rejects with ApiError for error answers. */
  async request<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    try {
      return await this.requestOnce<T>(method, path, body, contentType);
    } catch (e) {
      // A kept-alive connection the server closed meanwhile (it restarted): the request never
      // reached it, so sending it once more on a new connection is safe.
      if ((e as { reusedSocket?: boolean }).reusedSocket) return this.requestOnce<T>(method, path, body, contentType);
      throw e;
    }
  }

  private requestOnce<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {};
    if (payload) {
      headers["Content-Type"] = contentType;
      headers["Content-Length"] = String(payload.length);
    }
    return new Promise<T>((resolve, reject) => {
      const req = http.request({ ...this.requestOptions(method, path, headers), agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const code = res.statusCode ?? 0;
          if (code >= 400) return reject(new ApiError(statusFrom(code, text)));
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch {
            reject(new Error(`API server ${this.endpoint}: bad JSON in answer to ${method} ${path}`));
          }
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`API server ${this.endpoint}: ${method} ${path} timed out`)));
      req.on("error", (e: NodeJS.ErrnoException) => {
        if (req.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE")) Object.assign(e, { reusedSocket: true });
        reject(e);
      });
      req.end(payload);
    });
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  list<T>(path: string, opts: ListOptions = {}): Promise<List<T>> {
    return this.request<List<T>>("GET", path + query({ labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector }));
  }

  create<T>(path: string, obj: T): Promise<T> {
    return this.request<T>("POST", path, obj);
  }

  update<T>(path: string, obj: T): Promise<T> {
    return this.request<T>("PUT", path, obj);
  }

  updateStatus<T>(path: string, obj: T): Promise<T> {
    return this.request<T>("PUT", `${path}/status`, obj);
  }

  /** JSON merge patch by default; `type: "strategic"` merges lists such as containers by name, `"json"` is RFC 6902. */
  patch<T>(path: string, patch: unknown, opts: { subresource?: "status"; type?: "merge" | "strategic" | "json" } = {}): Promise<T> {
    const p = opts.subresource ? `${path}/${opts.subresource}` : path;
    const type = opts.type === "strategic" ? "application/strategic-merge-patch+json" : opts.type === "json" ? "application/json-patch+json" : "application/merge-patch+json";
    return this.request<T>("PATCH", p, patch, type);
  }

  delete<T>(path: string, opts: { gracePeriodSeconds?: number; propagationPolicy?: "Foreground" | "Background" | "Orphan" } = {}): Promise<T | Status> {
    return this.request<T | Status>("DELETE", path + query({ gracePeriodSeconds: opts.gracePeriodSeconds, propagationPolicy: opts.propagationPolicy }));
  }

  /**
   * Streams watch events (one JSON WatchEvent per line) from the collection at `path`.
   * An ERROR event or an error answer ends the stream and rejects `done` with an ApiError.
   */
  watch<T>(path: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): WatchHandle {
    let req: http.ClientRequest | undefined;
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      const q = query({
        watch: "true",
        resourceVersion: opts.resourceVersion,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        timeoutSeconds: opts.timeoutSeconds,
      });
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (err && !stopped) reject(err);
        else resolve();
        req?.destroy();
      };
      // A watch holds its own connection for as long as it lives: never from the shared pool.
      req = http.request({ ...this.requestOptions("GET", path + q, {}), agent: false }, (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 400) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => finish(new ApiError(statusFrom(code, Buffer.concat(chunks).toString("utf8")))));
          res.on("error", finish);
          return;
        }
        res.setEncoding("utf8");
        let buf = "";
        res.on("data", (chunk: string) => {
          buf += chunk;
          let nl: number;
          while (!settled && (nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let ev: WatchEvent<T>;
            try {
              ev = JSON.parse(line) as WatchEvent<T>;
            } catch {
              return finish(new Error(`API server ${this.endpoint}: bad watch event line`));
            }
            if (ev.type === "ERROR") return finish(new ApiError(ev.object as unknown as Status));
            if (ev.type === "BOOKMARK") continue;
            if (stopped) return;
            onEvent(ev);
          }
        });
        res.on("end", () => finish());
        res.on("error", (e) => finish(e));
        res.on("close", () => finish(stopped ? undefined : res.complete ? undefined : new Error(`API server ${this.endpoint}: watch connection lost`)));
      });
      req.on("error", (e) => finish(e));
      req.end();
    });
    return {
      stop: () => {
        stopped = true;
        req?.destroy();
      },
      done,
    };
  }
}

type InformerEvent = "add" | "update" | "delete";
type Handler<T> = (obj: T, old?: T) => void;

/**
 * A list+watch cache of one collection. start() lists, delivers every object as "add" and
 * resolves (synced); a watch from the list's resourceVersion then keeps the cache current.
 * A dropped watch resumes from the last seen resourceVersion; 410 Gone relists and delivers the
 * difference (adds, updates, deletes) so handlers never miss a change. Retries back off.
 */
export class Informer<T extends KObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: Record<InformerEvent, Handler<T>[]> = { add: [], update: [], delete: [] };
  private lastRV = "";
  private running = false;
  private watchHandle?: WatchHandle;
  private backoffMs = 0;
  private retryTimer?: NodeJS.Timeout;
  private wakeRetry?: () => void;
  private _synced = false;
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Number of full lists done (1 after start); tests and metrics read it. */
  relists = 0;

  constructor(
    private readonly client: ApiClient,
    private readonly path: string,
    private readonly opts: ListOptions = {},
  ) {}

  get synced(): boolean {
    return this._synced;
  }

  on(event: InformerEvent, fn: Handler<T>): this {
    this.handlers[event].push(fn);
    return this;
  }

  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      void this.run();
    }
    if (this._synced) return Promise.resolve();
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  stop(): void {
    this.running = false;
    this.watchHandle?.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    for (const w of this.syncWaiters.splice(0)) w.reject(new Error(`informer for ${this.path} stopped before it synced`));
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const fn of this.handlers[event]) {
      try {
        fn(obj, old);
      } catch (e) {
        process.stderr.write(`informer ${this.path}: ${event} handler failed: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  }

  private async sleepBackoff(): Promise<void> {
    this.backoffMs = Math.min(this.backoffMs ? this.backoffMs * 2 : 200, 5000);
    const ms = this.backoffMs * (0.75 + Math.random() * 0.5);
    await new Promise<void>((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(resolve, ms);
    });
    this.wakeRetry = undefined;
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.path, this.opts);
    if (!this.running) return;
    this.relists++;
    const seen = new Set<string>();
    for (const obj of list.items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit("add", obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit("update", obj, old);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit("delete", old);
      }
    }
    this.lastRV = list.metadata.resourceVersion;
    if (!this._synced) {
      this._synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
  }

  private apply(ev: WatchEvent<T>): void {
    const obj = ev.object;
    const key = objectKey(obj);
    if (obj.metadata.resourceVersion) this.lastRV = obj.metadata.resourceVersion;
    const old = this.cache.get(key);
    if (ev.type === "DELETED") {
      this.cache.delete(key);
      this.emit("delete", obj, old);
    } else {
      this.cache.set(key, obj);
      if (old) this.emit("update", obj, old);
      else this.emit("add", obj);
    }
  }

  private async run(): Promise<void> {
    let needList = true;
    while (this.running) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        if (!this.running) break;
        const startedAt = Date.now();
        let sawEvent = false;
        this.watchHandle = this.client.watch<T>(this.path, { ...this.opts, resourceVersion: this.lastRV }, (ev) => {
          this.backoffMs = 0;
          sawEvent = true;
          this.apply(ev);
        });
        await this.watchHandle.done;
        // A clean end (server timeout or shutdown): resume from the last version, pausing
        // first if the stream ended at once so that a closing server is not hammered.
        if (!sawEvent && Date.now() - startedAt < 1000) await this.sleepBackoff();
      } catch (e) {
        if (!this.running) break;
        if (isApiError(e, 410)) {
          needList = true; // our version fell out of the server's window: relist at once
          continue;
        }
        await this.sleepBackoff();
      }
    }
  }
}
