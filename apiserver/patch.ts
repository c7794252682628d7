// Patches: JSON merge patch (RFC 7386), strategic merge patch (a merge patch where the lists
// Kubernetes marks with a merge key, such as containers by name, are merged item by item) and
// JSON patch (RFC 6902).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge recursively, null deletes a key, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    // Strategic-merge directives have no meaning in a merge patch; ignore rather than store them.
    if (k.startsWith("$")) continue;
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * The merge keys of the lists podnet's kinds have, by field name (Kubernetes' patchMergeKey).
 * Lists not named here are replaced whole, as in a merge patch.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  imagePullSecrets: "name",
  conditions: "type",
  ownerReferences: "uid",
  taints: "key",
  hostAliases: "ip",
  containerStatuses: "name",
  initContainerStatuses: "name",
};
/** "ports" lists merge by containerPort in containers and by port in Services. */
const portKey = (items: unknown[]): string | undefined => {
  const first = items.find(isObject) as Record<string, unknown> | undefined;
  if (!first) return undefined;
  if ("containerPort" in first) return "containerPort";
  if ("port" in first) return "port";
  return undefined;
};

/** The merge key of list `field` (whose items are `items`), or undefined for a list replaced whole. */
export function mergeKeyOf(field: string, ...items: unknown[][]): string | undefined {
  if (MERGE_KEYS[field]) return MERGE_KEYS[field];
  if (field !== "ports") return undefined;
  for (const list of items) {
    const k = portKey(list);
    if (k) return k;
  }
  return undefined;
}

/** Strategic merge patch for the lists above; `$patch: delete|replace` and `$retainKeys` directives are honoured. */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _ignored, ...rest } = patch;
    return strategicMergePatch({}, rest);
  }
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    if (k.startsWith("$setElementOrder/") || k.startsWith("$deleteFromPrimitiveList/")) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v) && Array.isArray(cur)) {
      const key = mergeKeyOf(k, v, cur);
      if (key) {
        out[k] = mergeList(cur, v, key);
        continue;
      }
    }
    out[k] = strategicMergePatch(cur, v);
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}

function mergeList(cur: unknown[], patch: unknown[], key: string): unknown[] {
  const out = [...cur];
  for (const item of patch) {
    if (!isObject(item) || !(key in item)) {
      out.push(structuredClone(item));
      continue;
    }
    const i = out.findIndex((o) => isObject(o) && o[key] === item[key]);
    if (item.$patch === "delete") {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = strategicMergePatch(out[i], item);
    else out.push(strategicMergePatch({}, item));
  }
  return out;
}

export class PatchError extends Error {}

function decodePointer(ptr: string): string[] {
  if (ptr === "") return [];
  if (!ptr.startsWith("/")) throw new PatchError(`invalid JSON pointer "${ptr}"`);
  return ptr
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: Json, path: string[]): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isObject(cur)) cur = (cur as Record<string, Json>)[seg];
    else throw new PatchError(`path segment "${seg}" not found`);
    if (cur === undefined) throw new PatchError(`path segment "${seg}" not found`);
  }
  return { parent: cur, key: path[path.length - 1] };
}

function getAt(doc: Json, path: string[]): Json {
  let cur: Json | undefined = doc;
  for (const seg of path) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isObject(cur)) cur = (cur as Record<string, Json>)[seg];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`path "/${path.join("/")}" not found`);
  }
  return cur;
}

function arrayIndex(arr: Json[], key: string, forAdd: boolean): number {
  if (forAdd && key === "-") return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw new PatchError(`invalid array index "${key}"`);
  const i = Number(key);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`array index ${i} out of bounds`);
  return i;
}

function addAt(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
  else if (isObject(parent)) (parent as Record<string, Json>)[key] = value;
  else throw new PatchError(`cannot add at "/${path.join("/")}"`);
  return doc;
}

function removeAt(doc: Json, path: string[]): Json {
  if (path.length === 0) throw new PatchError("cannot remove the whole document");
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
  else if (isObject(parent) && key in parent) delete (parent as Record<string, Json>)[key];
  else throw new PatchError(`path "/${path.join("/")}" not found`);
  return doc;
}

/** RFC 6902 JSON patch. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError("a JSON patch must be an array of operations");
  let doc = structuredClone(target) as Json;
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") throw new PatchError("each JSON patch operation needs op and path");
    const path = decodePointer(raw.path);
    switch (raw.op) {
      case "add":
        doc = addAt(doc, path, structuredClone(raw.value) as Json);
        break;
      case "remove":
        doc = removeAt(doc, path);
        break;
      case "replace":
        getAt(doc, path);
        doc = path.length === 0 ? (structuredClone(raw.value) as Json) : addAt(removeAt(doc, path), path, structuredClone(raw.value) as Json);
        break;
      case "move": {
        if (typeof raw.from !== "string") throw new PatchError("move needs from");
        const from = decodePointer(raw.from);
        const v = getAt(doc, from);
        doc = addAt(removeAt(doc, from), path, v);
        break;
      }
      case "copy": {
        if (typeof raw.from !== "string") throw new PatchError("copy needs from");
        doc = addAt(doc, path, structuredClone(getAt(doc, decodePointer(raw.from))));
        break;
      }
      case "test":
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value)) throw new PatchError(`test failed at "${raw.path}"`);
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${raw.op}"`);
    }
  }
  return doc;
}
