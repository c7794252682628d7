// The patch `apply` sends to update an object, computed the way client-side `kubectl apply` does:
// a three-way diff between the configuration last applied (kept in an annotation), the new
// configuration, and the live object. Only fields the user's file sets are compared, so values the
// server filled in (clusterIP, nodePorts, defaults, status) stay; fields removed from the file
// since the last apply are deleted. The patch is a strategic merge patch: lists Kubernetes merges
// by a key (containers by name, ports by port...) are patched item by item.

import { mergeKeyOf } from "../apiserver/patch.ts";

export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Lists merge by Kubernetes' patchMergeKey, the same table the API server's patch uses. */
const mergeKey = (field: string, items: unknown[]) => mergeKeyOf(field, items);

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

const NO_CHANGE = Symbol("no change");

/**
 * The strategic merge patch that turns `live` into what `modified` asks for, deleting what
 * `original` (the last applied configuration) had and `modified` no longer has. Empty when
 * nothing needs to change.
 */
export function threeWayPatch(original: Obj | undefined, modified: Obj, live: Obj): Obj {
  const p = diffObject(original, modified, live);
  return p === NO_CHANGE ? {} : p;
}

function diffObject(original: Obj | undefined, modified: Obj, live: Obj): Obj | typeof NO_CHANGE {
  const patch: Obj = {};
  for (const [k, want] of Object.entries(modified)) {
    const d = diffValue(k, isObject(original) ? original[k] : undefined, want, live[k]);
    if (d !== NO_CHANGE) patch[k] = d;
  }
  if (original) {
    for (const k of Object.keys(original)) {
      if (!(k in modified) && k in live) patch[k] = null;
    }
  }
  return Object.keys(patch).length ? patch : NO_CHANGE;
}

const isEmpty = (v: unknown) => (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

function diffValue(field: string, original: unknown, want: unknown, have: unknown): unknown {
  // An empty map or list in the file (`resources: {}`) is what the server leaves out: no change.
  if (have === undefined) return isEmpty(want) ? NO_CHANGE : want;
  if (isObject(want) && isObject(have)) return diffObject(isObject(original) ? original : undefined, want, have);
  if (Array.isArray(want) && Array.isArray(have)) {
    const key = mergeKey(field, [...want, ...have]);
    if (key) return diffKeyedList(key, Array.isArray(original) ? original : [], want, have);
  }
  return deepEqual(want, have) ? NO_CHANGE : want;
}

function diffKeyedList(key: string, original: unknown[], want: unknown[], have: unknown[]): unknown {
  const find = (list: unknown[], k: unknown) => list.find((x) => isObject(x) && x[key] === k) as Obj | undefined;
  // Items without their key cannot be merged: replace the whole list, as the server would.
  if (!want.every((x) => isObject(x) && key in x)) return deepEqual(want, have) ? NO_CHANGE : want;
  const items: unknown[] = [];
  for (const w of want as Obj[]) {
    const h = find(have, w[key]);
    if (!h) {
      items.push(w);
      continue;
    }
    const d = diffObject(find(original, w[key]), w, h);
    if (d !== NO_CHANGE) items.push({ [key]: w[key], ...d });
  }
  for (const o of original) {
    if (!isObject(o) || !(key in o)) continue;
    if (!find(want, o[key]) && find(have, o[key])) items.push({ [key]: o[key], $patch: "delete" });
  }
  return items.length ? items : NO_CHANGE;
}

/** The configuration as kubectl records it in the annotation: the object without that annotation. */
export function lastAppliedOf(obj: Obj): string {
  const copy = structuredClone(obj) as Obj & { metadata?: Obj & { annotations?: Record<string, string> } };
  if (copy.metadata?.annotations) {
    delete copy.metadata.annotations[LAST_APPLIED];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return JSON.stringify(copy) + "\n";
}
