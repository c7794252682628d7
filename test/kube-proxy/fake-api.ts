// A minimal Kubernetes-shaped API server for kube-proxy tests: list and watch of Services,
// EndpointSlices and Nodes over a unix socket, in the format apiserver/client.ts speaks. Tests
// change objects through it and can hold back a list (to test "no rules before synced").
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EndpointSlice, KObject, Node, Service } from "../../apiserver/types.ts";

type Kind = "services" | "endpointslices" | "nodes";
const PATHS: Record<string, Kind> = {
  "/api/v1/services": "services",
  "/apis/discovery.k8s.io/v1/endpointslices": "endpointslices",
  "/api/v1/nodes": "nodes",
};

interface Event {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KObject;
}

export class FakeApiServer {
  readonly dir = mkdtempSync(join(tmpdir(), "kp-api-"));
  readonly socketPath = join(this.dir, "api.sock");
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private rv = 1;
  private readonly objects: Record<Kind, Map<string, KObject>> = { services: new Map(), endpointslices: new Map(), nodes: new Map() };
  private readonly history: Record<Kind, Event[]> = { services: [], endpointslices: [], nodes: [] };
  private readonly watchers: Record<Kind, Set<http.ServerResponse>> = { services: new Set(), endpointslices: new Set(), nodes: new Set() };
  private readonly holds = new Map<Kind, Promise<void>>();
  private readonly releases = new Map<Kind, () => void>();
  /** Number of list requests served, per kind. */
  readonly lists: Record<Kind, number> = { services: 0, endpointslices: 0, nodes: 0 };

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(this.socketPath, resolve));
  }

  async close(): Promise<void> {
    for (const r of this.releases.values()) r();
    for (const set of Object.values(this.watchers)) for (const w of set) w.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** List requests of `kind` wait until release(kind). */
  hold(kind: Kind): void {
    this.holds.set(kind, new Promise<void>((r) => this.releases.set(kind, r)));
  }

  release(kind: Kind): void {
    this.releases.get(kind)?.();
    this.releases.delete(kind);
    this.holds.delete(kind);
  }

  private key(o: KObject): string {
    return `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  }

  private emit(kind: Kind, type: Event["type"], obj: KObject): void {
    const ev: Event = { rv: this.rv, type, object: obj };
    this.history[kind].push(ev);
    for (const w of this.watchers[kind]) w.write(JSON.stringify({ type, object: obj }) + "\n");
  }

  apply(kind: Kind, obj: Service | EndpointSlice | Node): void {
    const o = structuredClone(obj) as KObject;
    this.rv++;
    o.metadata.resourceVersion = String(this.rv);
    const k = this.key(o);
    const existed = this.objects[kind].has(k);
    this.objects[kind].set(k, o);
    this.emit(kind, existed ? "MODIFIED" : "ADDED", o);
  }

  remove(kind: Kind, namespace: string | undefined, name: string): void {
    const k = `${namespace ?? ""}/${name}`;
    const o = this.objects[kind].get(k);
    if (!o) return;
    this.objects[kind].delete(k);
    this.rv++;
    const gone = structuredClone(o);
    gone.metadata.resourceVersion = String(this.rv);
    this.emit(kind, "DELETED", gone);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const nodeMatch = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && nodeMatch) {
      const n = this.objects.nodes.get(`/${decodeURIComponent(nodeMatch[1]!)}`);
      if (!n) return this.status(res, 404, "NotFound", `nodes "${nodeMatch[1]}" not found`);
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(n));
      return;
    }
    const kind = PATHS[url.pathname];
    if (req.method !== "GET" || !kind) return this.status(res, 404, "NotFound", `no route for ${req.method} ${url.pathname}`);
    if (url.searchParams.get("watch") === "true") {
      const from = Number(url.searchParams.get("resourceVersion") ?? "0");
      res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      for (const ev of this.history[kind]) if (ev.rv > from) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + "\n");
      this.watchers[kind].add(res);
      res.on("close", () => this.watchers[kind].delete(res));
      return;
    }
    const hold = this.holds.get(kind);
    if (hold) await hold;
    this.lists[kind]++;
    const list = { apiVersion: "v1", kind: "List", metadata: { resourceVersion: String(this.rv) }, items: [...this.objects[kind].values()] };
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(list));
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "Content-Type": "application/json" }).end(JSON.stringify({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message, reason, code }));
  }
}
