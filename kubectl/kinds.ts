// The kinds the CLI knows, and every name a user may type for them (kubectl's plural, singular,
// short names and Kind, in any case). A static table rather than discovery: podnet serves exactly
// these kinds, and a table keeps every command to one request.
import type { ResourceKind } from "../apiserver/client.ts";

export interface KindInfo {
  resource: ResourceKind;
  kind: string;
  singular: string;
  group: string;
  version: string;
  namespaced: boolean;
  shortNames: string[];
}

export const KINDS: KindInfo[] = [
  { resource: "pods", kind: "Pod", singular: "pod", group: "", version: "v1", namespaced: true, shortNames: ["po"] },
  { resource: "services", kind: "Service", singular: "service", group: "", version: "v1", namespaced: true, shortNames: ["svc"] },
  { resource: "nodes", kind: "Node", singular: "node", group: "", version: "v1", namespaced: false, shortNames: ["no"] },
  { resource: "namespaces", kind: "Namespace", singular: "namespace", group: "", version: "v1", namespaced: false, shortNames: ["ns"] },
  { resource: "endpoints", kind: "Endpoints", singular: "endpoints", group: "", version: "v1", namespaced: true, shortNames: ["ep"] },
  { resource: "endpointslices", kind: "EndpointSlice", singular: "endpointslice", group: "discovery.k8s.io", version: "v1", namespaced: true, shortNames: [] },
  { resource: "deployments", kind: "Deployment", singular: "deployment", group: "apps", version: "v1", namespaced: true, shortNames: ["deploy"] },
  { resource: "replicasets", kind: "ReplicaSet", singular: "replicaset", group: "apps", version: "v1", namespaced: true, shortNames: ["rs"] },
  { resource: "networkpolicies", kind: "NetworkPolicy", singular: "networkpolicy", group: "networking.k8s.io", version: "v1", namespaced: true, shortNames: ["netpol"] },
];

export const apiVersionOf = (k: KindInfo): string => (k.group ? `${k.group}/${k.version}` : k.version);

/** "deployment.apps", "pod": how kubectl names a kind in `-o name` and in apply/delete messages. */
export const qualifiedSingular = (k: KindInfo): string => (k.group ? `${k.singular}.${k.group}` : k.singular);

/** "deployments.apps", "pods": the name the API server uses in its messages. */
export const qualifiedResource = (k: KindInfo): string => (k.group ? `${k.resource}.${k.group}` : k.resource);

export class UnknownKindError extends Error {
  constructor(typed: string) {
    super(`the server doesn't have a resource type "${typed}"`);
    this.name = "UnknownKindError";
  }
}

/**
 * The kind a user typed: "po", "pods", "Pod", "deployment.apps", "deployments.v1.apps" and
 * "endpointslices.discovery.k8s.io" all work, as they do with kubectl.
 */
export function resolveKind(typed: string): KindInfo {
  const lower = typed.toLowerCase();
  const dot = lower.indexOf(".");
  const base = dot >= 0 ? lower.slice(0, dot) : lower;
  const rest = dot >= 0 ? lower.slice(dot + 1) : undefined;
  const found = KINDS.find((k) => {
    const names = [k.resource, k.singular, k.kind.toLowerCase(), ...k.shortNames];
    if (!names.includes(base)) return false;
    if (rest === undefined) return true;
    return rest === k.group || rest === `${k.version}.${k.group}` || (k.group === "" && rest === k.version);
  });
  if (!found) throw new UnknownKindError(typed);
  return found;
}

/** The kind of a manifest's object, by apiVersion and kind. */
export function kindOfManifest(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind && apiVersionOf(k) === apiVersion);
}

export interface KindAndNames {
  kind: KindInfo;
  names: string[];
}

/**
 * Splits "pods,svc" into kinds and "pod/web" into kind and name, the way kubectl accepts
 * `get pods,svc` and `get pod/web svc/db`.
 */
export function parseKindArgs(args: string[]): KindAndNames[] {
  if (args.length === 0) return [];
  if (args.every((a) => a.includes("/"))) {
    const out: KindAndNames[] = [];
    for (const a of args) {
      const slash = a.indexOf("/");
      const kind = resolveKind(a.slice(0, slash));
      const name = a.slice(slash + 1);
      if (!name) throw new UsageError(`arguments in resource/name form must have a single resource and name`);
      const entry = out.find((e) => e.kind === kind);
      if (entry) entry.names.push(name);
      else out.push({ kind, names: [name] });
    }
    return out;
  }
  if (args.slice(1).some((a) => a.includes("/"))) throw new UsageError(`there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'podnet get resource/<resource_name>' instead of 'podnet get resource resource/<resource_name>'`);
  const kinds = args[0]!.split(",").filter(Boolean).map(resolveKind);
  const names = args.slice(1);
  if (kinds.length > 1 && names.length > 0) throw new UsageError(`you may only specify a single resource type when naming objects`);
  return kinds.map((kind) => ({ kind, names }));
}

/** A mistake in the command line: shown as "error: ...", exit 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
