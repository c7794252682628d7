// The output formats of `get`: tables (default and -o wide), -o yaml, -o json and -o name.
import { stringify } from "yaml";
import type { KObject } from "../../apiserver/types.ts";
import { apiVersionOf, qualifiedSingular, type KindInfo } from "../kinds.ts";
import { COLUMNS, formatLabels } from "./columns.ts";
import { formatTable, type Row } from "./table.ts";

export type OutputFormat = "table" | "wide" | "yaml" | "json" | "name";

export function parseOutputFormat(o: string | undefined): OutputFormat {
  if (o === undefined || o === "") return "table";
  if (o === "wide" || o === "yaml" || o === "json" || o === "name") return o;
  throw new Error(`unable to match a printer suitable for the output format "${o}", allowed formats are: json,name,wide,yaml`);
}

/** Objects from lists carry no apiVersion/kind in Kubernetes; printed ones always do. */
export function withTypeMeta<T extends KObject>(obj: T, kind: KindInfo): T {
  return { apiVersion: apiVersionOf(kind), kind: kind.kind, ...obj };
}

/** Keys in order, as kubectl prints unstructured objects. */
export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
  );
}

/**
 * YAML as kubectl writes it: sorted keys, lists at their key's indentation, no folding, and
 * strings that YAML 1.1 readers would take for something else (timestamps, yes/no) quoted.
 */
export function toYAML(v: unknown): string {
  return stringify(sortKeys(v), { version: "1.1", indentSeq: false, lineWidth: 0, minContentWidth: 0 });
}

/** Lists in the order Kubernetes' storage gives them: by namespace, then name. */
export function byNamespaceAndName(a: KObject, b: KObject): number {
  const ns = (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "");
  return ns !== 0 ? ns : (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");
}

export function toJSON(v: unknown): string {
  return JSON.stringify(sortKeys(v), null, 4) + "\n";
}

/** kubectl's List wrapper for several objects. */
export function asList(items: KObject[]): Record<string, unknown> {
  return { apiVersion: "v1", items, kind: "List", metadata: { resourceVersion: "" } };
}

export interface TableOptions {
  wide: boolean;
  allNamespaces: boolean;
  /** Prefix names with "kind/" (several kinds in one `get`). */
  kindPrefix: boolean;
  showLabels: boolean;
  noHeaders: boolean;
}

export function tableHeader(kind: KindInfo, o: TableOptions): string[] {
  const cols = COLUMNS[kind.resource];
  const h = [...(o.allNamespaces && kind.namespaced ? ["NAMESPACE"] : []), "NAME", ...cols.header, ...(o.wide ? cols.wideHeader : [])];
  if (o.showLabels) h.push("LABELS");
  return h;
}

export function tableRow(kind: KindInfo, obj: KObject, o: TableOptions, now: number): Row {
  const cols = COLUMNS[kind.resource];
  const name = o.kindPrefix ? `${qualifiedSingular(kind)}/${obj.metadata.name}` : (obj.metadata.name ?? "");
  const row = [...(o.allNamespaces && kind.namespaced ? [obj.metadata.namespace ?? ""] : []), name, ...cols.cells(obj, now), ...(o.wide ? cols.wideCells(obj, now) : [])];
  if (o.showLabels) row.push(formatLabels(obj.metadata.labels));
  return row;
}

export function formatObjectsTable(kind: KindInfo, objs: KObject[], o: TableOptions, now = Date.now()): string {
  return formatTable(o.noHeaders ? undefined : tableHeader(kind, o), objs.map((obj) => tableRow(kind, obj, o, now)));
}

export const nameOf = (kind: KindInfo, obj: KObject): string => `${qualifiedSingular(kind)}/${obj.metadata.name}`;
