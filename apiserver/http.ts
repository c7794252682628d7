// The HTTP face of the API server: Kubernetes' URL layout, verbs, query parameters, discovery
// documents and Status errors, on top of the registry and the watch hub.
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYAML } from "yaml";
import { errors, StatusError, successStatus } from "./errors.ts";
import type { DeleteOptions, PatchType, Registry } from "./registry.ts";
import { RESOURCES, findResource, type ResourceDef } from "./resources.ts";
import type { StoredObject } from "./storage.ts";
import type { Status } from "./types.ts";
import { errMessage, log } from "./util.ts";
import { eventLine, type WatchHub, type WatchStart } from "./watch.ts";

export const SERVER_VERSION = {
  major: "1",
  minor: "33",
  gitVersion: "v1.33.0-podnet",
  gitCommit: "",
  gitTreeState: "clean",
  buildDate: "",
  goVersion: "",
  compiler: "podnet",
  platform: `linux/${process.arch === "x64" ? "amd64" : process.arch}`,
};

const MAX_BODY = 3 * 1024 * 1024;
/** A watcher this far behind (bytes queued on its socket) is cut off; it resumes from its last version. */
const MAX_WATCH_BACKLOG = 64 * 1024 * 1024;

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function resourceList(group: string, version: string) {
  const resources: unknown[] = [];
  for (const r of RESOURCES.filter((x) => x.group === group && x.version === version)) {
    resources.push({ name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: VERBS, ...(r.shortNames.length ? { shortNames: r.shortNames } : {}) });
    if (r.hasStatus) resources.push({ name: `${r.resource}/status`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: ["get", "patch", "update"] });
    if (r.resource === "pods") resources.push({ name: "pods/binding", singularName: "", namespaced: true, kind: "Binding", verbs: ["create"] });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
}

function apiGroup(name: string) {
  const gv = { groupVersion: `${name}/v1`, version: "v1" };
  return { kind: "APIGroup", apiVersion: "v1", name, versions: [gv], preferredVersion: gv };
}

const GROUPS = ["apps", "discovery.k8s.io", "networking.k8s.io"];

interface Route {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Maps a path to a resource route; undefined when the path is not a resource path. */
export function parseResourcePath(path: string): Route | undefined {
  const segs = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === "api" && segs.length >= 3) {
    group = "";
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === "apis" && segs.length >= 4) {
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else return undefined;
  // namespaces/NS/RESOURCE[/NAME[/SUB]] for namespaced kinds
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const def = findResource(group, version, rest[2]);
    if (!def || !def.namespaced) {
      // namespaces/NAME/status and namespaces/NAME/finalize address the Namespace itself
      if (group === "" && rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize")) {
        return { def: findResource("", "v1", "namespaces")!, name: rest[1], subresource: rest[2] };
      }
      return undefined;
    }
    if (rest.length > 5) return undefined;
    return { def, namespace: rest[1], name: rest[3], subresource: rest[4] };
  }
  const def = findResource(group, version, rest[0]);
  if (!def || rest.length > 3) return undefined;
  if (def.namespaced && rest.length > 1) return undefined; // namespaced objects live under namespaces/NS/
  return { def, name: rest[1], subresource: rest[2] };
}

export interface HttpContext {
  registry: Registry;
  hub: WatchHub;
  verbose: boolean;
  /** Watches to end when the server stops. */
  openResponses: Set<ServerResponse>;
}

function sendJSON(res: ServerResponse, code: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: ServerResponse, st: Status): void {
  sendJSON(res, st.code, st);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(errors.tooLarge(`the request body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function parseBody(req: IncomingMessage): Promise<unknown> {
  const buf = await readBody(req);
  const type = (req.headers["content-type"] ?? "application/json").split(";")[0].trim().toLowerCase();
  const text = buf.toString("utf8");
  if (!text.trim()) throw errors.badRequest("the request needs a body");
  try {
    if (type.includes("yaml")) return parseYAML(text);
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the body of the request could not be decoded: ${errMessage(e)}`);
  }
}

function listBody(def: ResourceDef, items: StoredObject[], rv: number): string {
  // The stored JSON is reused as is: no re-serialization of every object per list.
  return `{"kind":"${def.listKind}","apiVersion":"${def.apiVersion}","metadata":{"resourceVersion":"${rv}"},"items":[${items.map((s) => s.json).join(",")}]}`;
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (!/^-?\d+$/.test(v)) throw errors.badRequest(`invalid ${name} "${v}": must be an integer`);
  return Number(v);
}

function deleteOptions(q: URLSearchParams, body: unknown): DeleteOptions {
  const opts: DeleteOptions = {};
  if (body && typeof body === "object") {
    const b = body as { gracePeriodSeconds?: number; preconditions?: DeleteOptions["preconditions"]; propagationPolicy?: DeleteOptions["propagationPolicy"]; orphanDependents?: boolean };
    if (b.gracePeriodSeconds !== undefined) opts.gracePeriodSeconds = b.gracePeriodSeconds;
    if (b.preconditions) opts.preconditions = b.preconditions;
    if (b.propagationPolicy) opts.propagationPolicy = b.propagationPolicy;
    if (b.orphanDependents === true) opts.propagationPolicy = "Orphan";
  }
  const g = intParam(q, "gracePeriodSeconds");
  if (g !== undefined) opts.gracePeriodSeconds = g;
  const p = q.get("propagationPolicy");
  if (p) {
    if (!["Foreground", "Background", "Orphan"].includes(p)) throw errors.badRequest(`invalid propagationPolicy "${p}"`);
    opts.propagationPolicy = p as DeleteOptions["propagationPolicy"];
  }
  return opts;
}

function patchType(req: IncomingMessage): PatchType {
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/merge-patch+json") return "merge";
  if (type === "application/strategic-merge-patch+json") return "strategic";
  if (type === "application/json-patch+json") return "json";
  throw errors.unsupportedMediaType(type || "none");
}

export function makeHandler(ctx: HttpContext) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now();
    handle(ctx, req, res)
      .catch((e: unknown) => {
        if (e instanceof StatusError) {
          if (!res.headersSent) sendStatus(res, e.status);
          else res.end();
          return;
        }
        log(`internal error on ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        if (!res.headersSent) sendStatus(res, errors.internal(errMessage(e)).status);
        else res.end();
      })
      .finally(() => {
        if (ctx.verbose) log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms ${req.headers["user-agent"] ?? ""}`);
      });
  };
}

async function handle(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://apiserver");
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const q = url.searchParams;
  const method = req.method ?? "GET";

  if (method === "GET") {
    switch (path) {
      case "/healthz":
      case "/livez":
      case "/readyz":
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.end("ok");
        return;
      case "/version":
        return sendJSON(res, 200, SERVER_VERSION);
      case "/api":
        return sendJSON(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
      case "/api/v1":
        return sendJSON(res, 200, resourceList("", "v1"));
      case "/apis":
        return sendJSON(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: GROUPS.map(apiGroup) });
    }
    for (const g of GROUPS) {
      if (path === `/apis/${g}`) return sendJSON(res, 200, apiGroup(g));
      if (path === `/apis/${g}/v1`) return sendJSON(res, 200, resourceList(g, "v1"));
    }
  }

  const route = parseResourcePath(path);
  if (!route) throw errors.pathNotFound();
  const { def, namespace, name, subresource } = route;
  const reg = ctx.registry;

  if (subresource && !(subresource === "status" && def.hasStatus) && !(subresource === "binding" && def.resource === "pods") && !(subresource === "finalize" && def.resource === "namespaces"))
    throw errors.pathNotFound();

  if (!name) {
    // Collection
    if (method === "GET") {
      const sel = reg.parseSelectors(def.resource, q.get("labelSelector") ?? undefined, q.get("fieldSelector") ?? undefined);
      const watch = q.get("watch");
      if (watch === "true" || watch === "1") return startWatch(ctx, req, res, def, namespace, sel, q);
      const items = reg.list(def.resource, namespace, sel);
      return sendJSON(res, 200, listBody(def, items, reg.revision()));
    }
    if (method === "POST") {
      const body = await parseBody(req);
      const created = reg.create(def.resource, namespace, body);
      return sendJSON(res, 201, created.json);
    }
    if (method === "DELETE") {
      const body = await readBody(req).then((b) => (b.length ? JSON.parse(b.toString("utf8")) : undefined)).catch(() => undefined);
      const sel = reg.parseSelectors(def.resource, q.get("labelSelector") ?? undefined, q.get("fieldSelector") ?? undefined);
      const opts = deleteOptions(q, body);
      const items = reg.list(def.resource, namespace, sel);
      const out: StoredObject[] = [];
      for (const s of items) {
        try {
          out.push(reg.delete(def.resource, s.obj.metadata.namespace, s.obj.metadata.name!, opts));
        } catch (e) {
          if (!(e instanceof StatusError && e.code === 404)) throw e;
        }
      }
      return sendJSON(res, 200, listBody(def, out, reg.revision()));
    }
    throw errors.methodNotAllowed();
  }

  if (subresource === "binding") {
    if (method !== "POST") throw errors.methodNotAllowed();
    const body = (await parseBody(req)) as { target?: { name?: string; kind?: string }; metadata?: { uid?: string } };
    const target = body?.target?.name;
    if (!target) throw errors.invalid({ resource: "bindings", group: "", kind: "Binding" }, name, [{ reason: "FieldValueRequired", field: "target.name", message: "Required value" }]);
    reg.bind(namespace!, name, target, body.metadata?.uid);
    return sendJSON(res, 201, successStatus({ resource: "pods", group: "", kind: "Pod" }, name));
  }

  const sub = subresource === "status" ? "status" : undefined;
  switch (method) {
    case "GET":
      return sendJSON(res, 200, reg.get(def.resource, namespace, name).json);
    case "PUT": {
      const body = await parseBody(req);
      if (subresource === "finalize") {
        // Namespace finalize: clients drop spec.finalizers; removal happens once the namespace is empty.
        return sendJSON(res, 200, reg.update(def.resource, namespace, name, body).json);
      }
      return sendJSON(res, 200, reg.update(def.resource, namespace, name, body, { subresource: sub }).json);
    }
    case "PATCH": {
      const type = patchType(req);
      const body = await parseBody(req);
      return sendJSON(res, 200, reg.patch(def.resource, namespace, name, body, type, { subresource: sub }).json);
    }
    case "DELETE": {
      if (sub) throw errors.methodNotAllowed();
      const raw = await readBody(req);
      let body: unknown;
      if (raw.length) {
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch {
          throw errors.badRequest("the body of a DELETE must be DeleteOptions in JSON");
        }
      }
      const out = reg.delete(def.resource, namespace, name, deleteOptions(q, body));
      return sendJSON(res, 200, out.json);
    }
    default:
      throw errors.methodNotAllowed();
  }
}

function startWatch(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, def: ResourceDef, namespace: string | undefined, sel: ReturnType<Registry["parseSelectors"]>, q: URLSearchParams): void {
  const rv = q.get("resourceVersion") ?? undefined;
  if (rv && !/^\d+$/.test(rv)) throw errors.badRequest(`invalid resourceVersion "${rv}": must be a number`);
  const timeout = intParam(q, "timeoutSeconds");
  res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache" });
  res.flushHeaders();
  ctx.openResponses.add(res);
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let started: WatchStart | undefined;
  const finish = () => {
    if (ended) return;
    ended = true;
    ctx.openResponses.delete(res);
    if (timer) clearTimeout(timer);
    if (started?.ok) started.stop();
    res.end();
  };
  started = ctx.hub.start(def.resource, namespace, sel, rv, {
    write: (line) => {
      if (ended) return true;
      res.write(line);
      return res.writableLength < MAX_WATCH_BACKLOG;
    },
    end: () => finish(),
  });
  if (!started.ok) {
    // Like Kubernetes: the watch opens, then an ERROR event says the version is gone.
    const st = started.tooLarge
      ? errors.expired(`too large resource version: ${rv}, current: ${ctx.registry.revision()}`).status
      : errors.expired(`too old resource version: ${rv} (${started.oldest})`).status;
    res.write(`{"type":"ERROR","object":${JSON.stringify(st)}}\n`);
    finish();
    return;
  }
  if (timeout && timeout > 0) timer = setTimeout(finish, timeout * 1000);
  req.on("close", finish);
  res.on("close", finish);
}

export { eventLine };
