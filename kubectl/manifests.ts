// Reading `-f FILE|DIR|-`: YAML or JSON, several documents separated by `---`, `kind: List`
// expanded, directories read in name order (recursively with -R) like kubectl does.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KObject } from "../apiserver/types.ts";
import { ShownError } from "./errors.ts";
import { apiVersionOf, KINDS, kindOfManifest, UsageError, type KindInfo } from "./kinds.ts";

export interface Manifest {
  obj: KObject & Record<string, unknown>;
  /** The file it came from ("STDIN" for -), for messages. */
  source: string;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;

function filesOf(path: string, recursive: boolean): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`the path "${path}" does not exist`);
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) {
      if (recursive) out.push(...filesOf(full, true));
    } else if (MANIFEST_EXT.test(entry.name)) out.push(full);
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses one file's text into objects, expanding Lists. */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  const docs = parseAllDocuments(text);
  // parseAllDocuments answers a lone EmptyStream for an empty file.
  if (!Array.isArray(docs)) return out;
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      const err = doc.errors[0]!;
      const line = err.linePos?.[0]?.line;
      const what = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      throw new ShownError(`error: error parsing ${source}: error converting YAML to JSON: yaml: ${line ? `line ${line}: ` : ""}${what}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    expand(value, source, out);
  }
  return out;
}

function expand(value: unknown, source: string, out: Manifest[]): void {
  if (!isObject(value)) throw new ShownError(`error: error validating "${source}": error validating data: the document is not an object`);
  const missing = [value.apiVersion ? "" : "apiVersion not set", value.kind ? "" : "kind not set"].filter(Boolean);
  if (missing.length > 0) throw new ShownError(`error: error validating "${source}": error validating data: [${missing.join(", ")}]`);
  if (typeof value.kind === "string" && value.kind.endsWith("List") && Array.isArray(value.items)) {
    for (const item of value.items) expand(item, source, out);
    return;
  }
  const obj = stripNulls(value) as Manifest["obj"];
  obj.metadata = isObject(obj.metadata) ? obj.metadata : {};
  out.push({ obj, source });
}

/** YAML's `key:` with no value is null; Kubernetes treats that as absent, and a patch would read it as "delete". */
export function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = stripNulls(x);
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Every object of every -f argument, in order. */
export async function loadManifests(paths: string[], recursive = false): Promise<Manifest[]> {
  if (paths.length === 0) throw new UsageError(`must specify -f FILE, DIR or - (stdin)`);
  const out: Manifest[] = [];
  for (const p of paths) {
    if (p === "-") {
      out.push(...parseManifests(await readStdin(), "STDIN"));
      continue;
    }
    const files = filesOf(p, recursive);
    if (files.length === 0) throw new ShownError(`error: no objects passed: no .yaml, .yml or .json files in ${p}`);
    for (const f of files) out.push(...parseManifests(readFileSync(f, "utf8"), f));
  }
  return out;
}

export interface Target {
  kind: KindInfo;
  name: string;
  /** undefined for cluster-scoped kinds. */
  namespace?: string;
  /** The object with its namespace settled (set for namespaced kinds, removed for the others). */
  obj: Manifest["obj"];
  source: string;
}

/**
 * Which object a manifest addresses: its kind must be one podnet serves, and its namespace is the
 * manifest's, else -n's, else "default"; a manifest namespace that contradicts -n is an error, as
 * with kubectl.
 */
export function targetOf(m: Manifest, defaults: { namespace: string; namespaceGiven: boolean }, verb: string): Target {
  const { apiVersion, kind: kindName } = m.obj;
  const kind = kindOfManifest(apiVersion, kindName);
  const name = m.obj.metadata.name;
  if (!kind) {
    const [group, version] = String(apiVersion).includes("/") ? String(apiVersion).split("/") : ["", String(apiVersion)];
    const known = KINDS.find((k) => k.kind === kindName);
    const hint = known ? ` (podnet serves ${kindName} as ${apiVersionOf(known)})` : "";
    throw new ShownError(`error: resource mapping not found for name: "${name ?? ""}" namespace: "${m.obj.metadata.namespace ?? ""}" from "${m.source}": no matches for kind "${String(kindName)}" in version "${group ? `${group}/${version}` : version}"${hint}`);
  }
  if (!name) {
    if (m.obj.metadata.generateName && verb !== "creating") throw new ShownError(`error: from ${m.source}: cannot use generate name with ${verb === "deleting" ? "delete" : "apply"}`);
    if (!m.obj.metadata.generateName) throw new ShownError(`error: error when ${verb} "${m.source}": resource name may not be empty`);
  }
  const obj = structuredClone(m.obj);
  let namespace: string | undefined;
  if (kind.namespaced) {
    const own = obj.metadata.namespace;
    if (own && defaults.namespaceGiven && own !== defaults.namespace) {
      throw new ShownError(`error: the namespace from the provided object "${own}" does not match the namespace "${defaults.namespace}". You must pass '--namespace=${own}' to perform this operation.`);
    }
    namespace = own || defaults.namespace;
    obj.metadata.namespace = namespace;
  } else delete obj.metadata.namespace;
  return { kind, name: name ?? "", namespace, obj, source: m.source };
}
