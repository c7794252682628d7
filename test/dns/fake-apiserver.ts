// A minimal stand-in for the API server's list and watch of Services, EndpointSlices and Pods,
// on a unix socket, so that the `podnet dns` daemon can be run as a process and fed objects
// without a cluster. It speaks what apiserver/client.ts's Informer expects: a List with a
// resourceVersion, then a watch stream of JSON lines from that version on.
import http from "node:http";
import type { KObject, WatchEvent } from "../../apiserver/types.ts";

type Collection = "services" | "endpointslices" | "pods";
const PATHS: Record<string, Collection> = {
  "/api/v1/services": "services",
  "/apis/discovery.k8s.io/v1/endpointslices": "endpointslices",
  "/api/v1/pods": "pods",
};
const KIND: Record<Collection, string> = { services: "ServiceList", endpointslices: "EndpointSliceList", pods: "PodList" };

interface Logged {
  rv: number;
  coll: Collection;
  ev: WatchEvent<KObject>;
}

export class FakeApiServer {
  private rv = 1;
  private readonly objects: Record<Collection, Map<string, KObject>> = { services: new Map(), endpointslices: new Map(), pods: new Map() };
  private readonly log: Logged[] = [];
  private readonly watchers = new Set<{ coll: Collection; res: http.ServerResponse }>();
  private readonly server = http.createServer((req, res) => this.serve(req, res));

  async listen(socketPath: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(socketPath, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(coll: Collection, obj: KObject): void {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    const type = this.objects[coll].has(key) ? "MODIFIED" : "ADDED";
    this.objects[coll].set(key, stored);
    this.emit(coll, { type, object: stored });
  }

  remove(coll: Collection, obj: KObject): void {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const old = this.objects[coll].get(key);
    if (!old) return;
    this.objects[coll].delete(key);
    this.emit(coll, { type: "DELETED", object: { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } } });
  }

  private emit(coll: Collection, ev: WatchEvent<KObject>): void {
    this.log.push({ rv: this.rv, coll, ev });
    for (const w of this.watchers) if (w.coll === coll) w.res.write(JSON.stringify(ev) + "\n");
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fake");
    const coll = PATHS[url.pathname];
    if (req.method !== "GET" || !coll) {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message: "not found", reason: "NotFound", code: 404 }));
      return;
    }
    if (url.searchParams.get("watch") !== "true") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ apiVersion: "v1", kind: KIND[coll], metadata: { resourceVersion: String(this.rv) }, items: [...this.objects[coll].values()] }));
      return;
    }
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    res.writeHead(200, { "Content-Type": "application/json" });
    for (const l of this.log) if (l.coll === coll && l.rv > from) res.write(JSON.stringify(l.ev) + "\n");
    const w = { coll, res };
    this.watchers.add(w);
    res.on("close", () => this.watchers.delete(w));
  }
}
