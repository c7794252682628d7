// `podnet get KIND [NAME...] [-l SELECTOR] [-o wide|yaml|json|name] [-A|-n NS] [-w]`
import { isApiError, resourcePath, type ApiClient, type WatchEvent } from "../apiserver/client.ts";
import type { KObject } from "../apiserver/types.ts";
import { formatError } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain, stringFlag, type Connection } from "./flags.ts";
import { KINDS, parseKindArgs, resolveKind, UsageError, type KindAndNames, type KindInfo } from "./kinds.ts";
import { asList, byNamespaceAndName, formatObjectsTable, nameOf, parseOutputFormat, tableHeader, tableRow, toJSON, toYAML, withTypeMeta, type OutputFormat, type TableOptions } from "./printers/output.ts";
import { columnWidths, formatTable } from "./printers/table.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  selector: { type: "string", short: "l" },
  "field-selector": { type: "string" },
  output: { type: "string", short: "o" },
  "all-namespaces": { type: "boolean", short: "A" },
  watch: { type: "boolean", short: "w" },
  "watch-only": { type: "boolean" },
  "show-labels": { type: "boolean" },
  "no-headers": { type: "boolean" },
  "ignore-not-found": { type: "boolean" },
} as const;

export const KIND_LIST = KINDS.map((k) => (k.shortNames.length ? `${k.resource} (${k.shortNames.join(", ")})` : k.resource)).join(", ");

const HELP = `Usage: podnet get KIND[,KIND...] [NAME...] [-l SELECTOR] [-o wide|yaml|json|name] [-A | -n NS] [-w]

Lists objects, or shows the named ones, like kubectl get.
Kinds: ${KIND_LIST}, or "all" (pods, services, deployments, replicasets).
"KIND/NAME" arguments work too (podnet get svc/web pod/web-1).

Options:
  -l, --selector SEL       label selector (app=web, tier in (a,b), !gone)
  --field-selector SEL     field selector (spec.nodeName=node-1, status.phase!=Running)
  -o, --output FORMAT      wide, yaml, json or name
  -A, --all-namespaces     every namespace
  -w, --watch              after listing, print every change until interrupted
  --watch-only             print changes only
  --show-labels            add a LABELS column
  --no-headers             leave out the header line
  --ignore-not-found       no error for named objects that do not exist
${COMMON_HELP}`;

const ALL_KINDS = ["pods", "services", "deployments", "replicasets"];

interface GetRequest {
  groups: KindAndNames[];
  format: OutputFormat;
  table: TableOptions;
  labelSelector?: string;
  fieldSelector?: string;
  ignoreNotFound: boolean;
}

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    if (positionals.length === 0) throw new UsageError(`you must specify the type of resource to get; one of: ${KIND_LIST}`);
    const all = positionals[0]!.toLowerCase() === "all";
    const groups = all ? ALL_KINDS.map((r) => ({ kind: resolveKind(r), names: positionals.slice(1) })) : parseKindArgs(positionals);
    const allNamespaces = values["all-namespaces"] === true;
    if (allNamespaces && groups.some((g) => g.names.length > 0)) throw new UsageError(`a resource cannot be retrieved by name across all namespaces`);
    const format = parseOutputFormat(stringFlag(values, "output"));
    const watch = values.watch === true || values["watch-only"] === true;
    if (watch && groups.length > 1) throw new UsageError(`you may only specify a single resource type with --watch`);
    const conn = connect();
    const req: GetRequest = {
      groups,
      format,
      table: {
        wide: format === "wide",
        allNamespaces,
        kindPrefix: groups.length > 1 || positionals.some((p) => p.includes("/")),
        showLabels: values["show-labels"] === true,
        noHeaders: values["no-headers"] === true,
      },
      labelSelector: stringFlag(values, "selector"),
      fieldSelector: stringFlag(values, "field-selector"),
      ignoreNotFound: values["ignore-not-found"] === true,
    };
    if (watch) return watchKind(conn, req, values["watch-only"] === true);
    return get(conn, req);
  });
}

interface Fetched {
  kind: KindInfo;
  objs: KObject[];
  named: boolean;
  resourceVersion?: string;
}

async function fetchGroup(conn: Connection, req: GetRequest, g: KindAndNames, errors: string[]): Promise<Fetched> {
  const ns = g.kind.namespaced ? conn.namespace : undefined;
  if (g.names.length > 0) {
    const objs: KObject[] = [];
    for (const name of g.names) {
      try {
        objs.push(withTypeMeta(await conn.api.get<KObject>(resourcePath(g.kind.resource, ns, name)), g.kind));
      } catch (e) {
        if (req.ignoreNotFound && isApiError(e, 404)) continue;
        errors.push(formatError(e, conn.api.endpoint));
      }
    }
    return { kind: g.kind, objs, named: true };
  }
  const path = resourcePath(g.kind.resource, req.table.allNamespaces ? undefined : ns);
  const list = await conn.api.list<KObject>(path, { labelSelector: req.labelSelector, fieldSelector: req.fieldSelector });
  const objs = list.items.map((o) => withTypeMeta(o, g.kind)).sort(byNamespaceAndName);
  return { kind: g.kind, objs, named: false, resourceVersion: list.metadata.resourceVersion };
}

function noResources(conn: Connection, req: GetRequest): string {
  const namespaced = req.groups.some((g) => g.kind.namespaced);
  return namespaced && !req.table.allNamespaces ? `No resources found in ${conn.namespace} namespace.\n` : "No resources found\n";
}

async function get(conn: Connection, req: GetRequest): Promise<number> {
  const errors: string[] = [];
  const fetched: Fetched[] = [];
  for (const g of req.groups) fetched.push(await fetchGroup(conn, req, g, errors));
  const objs = fetched.flatMap((f) => f.objs);
  const anyNamed = fetched.some((f) => f.named);
  let out = "";
  if (req.format === "yaml" || req.format === "json") {
    const single = anyNamed && req.groups.length === 1 && req.groups[0]!.names.length === 1 && objs.length === 1;
    if (single || objs.length > 0 || !anyNamed) {
      const doc = single ? objs[0] : asList(objs);
      out = req.format === "yaml" ? toYAML(doc) : toJSON(doc);
    }
  } else if (req.format === "name") {
    out = fetched.flatMap((f) => f.objs.map((o) => nameOf(f.kind, o) + "\n")).join("");
  } else {
    out = fetched
      .filter((f) => f.objs.length > 0)
      .map((f) => formatObjectsTable(f.kind, f.objs, req.table))
      .join("\n");
  }
  process.stdout.write(out);
  if (objs.length === 0 && !anyNamed && (req.format === "table" || req.format === "wide" || req.format === "name")) process.stderr.write(noResources(conn, req));
  for (const e of errors) process.stderr.write(e + "\n");
  return errors.length > 0 ? 1 : 0;
}

/** Lists (unless --watch-only), then prints every change until interrupted or the server ends the stream. */
async function watchKind(conn: Connection, req: GetRequest, watchOnly: boolean): Promise<number> {
  const g = req.groups[0]!;
  const fieldSelector = [req.fieldSelector, ...(g.names.length === 1 ? [`metadata.name=${g.names[0]}`] : [])].filter(Boolean).join(",");
  if (g.names.length > 1) throw new UsageError(`watch is only supported on individual resources and resource collections, but ${g.names.length} resources were found`);
  const ns = g.kind.namespaced && !req.table.allNamespaces ? conn.namespace : undefined;
  const path = resourcePath(g.kind.resource, ns);
  const list = await conn.api.list<KObject>(path, { labelSelector: req.labelSelector, fieldSelector: fieldSelector || undefined });
  const header = tableHeader(g.kind, req.table);
  let widths: number[] | undefined;
  let printedHeader = req.table.noHeaders;
  let docs = 0;
  const print = (objs: KObject[]) => {
    if (objs.length === 0) return;
    if (req.format === "yaml" || req.format === "json") {
      for (const o of objs) {
        process.stdout.write(req.format === "yaml" ? (docs++ > 0 ? "---\n" : "") + toYAML(o) : toJSON(o));
      }
      return;
    }
    if (req.format === "name") {
      for (const o of objs) process.stdout.write(nameOf(g.kind, o) + "\n");
      return;
    }
    const now = Date.now();
    const rows = objs.map((o) => tableRow(g.kind, o, req.table, now));
    // Keep the columns of the first table so that later lines line up under its header.
    const fresh = columnWidths(printedHeader ? rows : [header, ...rows]);
    widths = widths ? widths.map((w, i) => Math.max(w, fresh[i] ?? 0)) : fresh;
    process.stdout.write(formatTable(printedHeader ? undefined : header, rows, widths));
    printedHeader = true;
  };
  if (!watchOnly) {
    const items = list.items.map((o) => withTypeMeta(o, g.kind)).sort(byNamespaceAndName);
    if (items.length === 0 && (req.format === "table" || req.format === "wide")) process.stderr.write(noResources(conn, req));
    print(items);
  }
  return followChanges(conn.api, path, { labelSelector: req.labelSelector, fieldSelector: fieldSelector || undefined }, list.metadata.resourceVersion, (ev) => print([withTypeMeta(ev.object, g.kind)]));
}

async function followChanges(api: ApiClient, path: string, sel: { labelSelector?: string; fieldSelector?: string }, fromVersion: string, onEvent: (ev: WatchEvent<KObject>) => void): Promise<number> {
  let rv = fromVersion;
  let stop: (() => void) | undefined;
  const interrupted = new Promise<void>((resolve) => {
    const onSignal = () => {
      stop?.();
      resolve();
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  let done = false;
  void interrupted.then(() => (done = true));
  while (!done) {
    const startedAt = Date.now();
    const handle = api.watch<KObject>(path, { ...sel, resourceVersion: rv }, (ev) => {
      if (ev.object.metadata.resourceVersion) rv = ev.object.metadata.resourceVersion;
      onEvent(ev);
    });
    stop = handle.stop;
    // The server ends watches now and then; carry on from the last version seen, as kubectl
    // does, pausing when a stream ended at once so that a closing server is not hammered.
    await Promise.race([handle.done, interrupted]);
    if (!done && Date.now() - startedAt < 1000) await Promise.race([new Promise((r) => setTimeout(r, 1000)), interrupted]);
  }
  return 0;
}
