// The kinds podnet serves: their REST names, defaults, validation, field selectors and what the
// server resets on create. The generic machinery that uses these lives in registry.ts.
import { defaultDeployment, defaultEndpoints, defaultEndpointSlice, defaultNamespace, defaultNetworkPolicy, defaultPod, defaultReplicaSet, defaultService } from "./defaults.ts";
import type { FieldError, ResourceRef } from "./errors.ts";
import type { Deployment, Endpoints, EndpointSlice, KObject, Namespace, NetworkPolicy, Node, Pod, ReplicaSet, Service } from "./types.ts";
import {
  dns1035Label,
  dns1123Label,
  dns1123Subdomain,
  validateDeployment,
  validateEndpoints,
  validateEndpointSlice,
  validateNamespace,
  validateNetworkPolicy,
  validateNode,
  validatePod,
  validateReplicaSet,
  validateService,
  type NameCheck,
} from "./validation.ts";

export interface ResourceDef extends ResourceRef {
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  group: string;
  version: string;
  apiVersion: string;
  namespaced: boolean;
  shortNames: string[];
  nameCheck: NameCheck;
  hasStatus: boolean;
  /** Whether spec changes bump metadata.generation. */
  hasSpec: boolean;
  defaults(obj: KObject): void;
  validate(obj: KObject, old?: KObject): FieldError[];
  /** Resets what clients may not set on create (status, mostly). */
  prepareForCreate(obj: KObject): void;
  /** Field selector values; metadata.name and metadata.namespace are always supported. */
  fields: Record<string, (obj: KObject) => string | undefined>;
}

const s = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

function def(d: Omit<ResourceDef, "apiVersion" | "listKind"> & { listKind?: string }): ResourceDef {
  return { ...d, apiVersion: d.group ? `${d.group}/${d.version}` : d.version, listKind: d.listKind ?? `${d.kind}List` };
}

export const RESOURCES: ResourceDef[] = [
  def({
    resource: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    group: "",
    version: "v1",
    namespaced: false,
    shortNames: ["ns"],
    nameCheck: dns1123Label,
    hasStatus: true,
    hasSpec: false,
    defaults: (o) => defaultNamespace(o as Namespace),
    validate: (o) => validateNamespace(o as Namespace),
    prepareForCreate: (o) => {
      (o as Namespace).status = { phase: "Active" };
    },
    fields: { "status.phase": (o) => s((o as Namespace).status?.phase) },
  }),
  def({
    resource: "nodes",
    singular: "node",
    kind: "Node",
    group: "",
    version: "v1",
    namespaced: false,
    shortNames: ["no"],
    nameCheck: dns1123Subdomain,
    hasStatus: true,
    hasSpec: false,
    defaults: (o) => {
      (o as Node).spec ??= {};
    },
    validate: (o, old) => validateNode(o as Node, old as Node | undefined),
    // The kubelet registers its Node with its status, so status is kept on create.
    prepareForCreate: () => {},
    fields: { "spec.unschedulable": (o) => String((o as Node).spec?.unschedulable ?? false) },
  }),
  def({
    resource: "pods",
    singular: "pod",
    kind: "Pod",
    group: "",
    version: "v1",
    namespaced: true,
    shortNames: ["po"],
    nameCheck: dns1123Subdomain,
    hasStatus: true,
    hasSpec: true,
    defaults: (o) => defaultPod(o as Pod),
    validate: (o, old) => validatePod(o as Pod, old as Pod | undefined),
    prepareForCreate: (o) => {
      (o as Pod).status = { phase: "Pending" };
    },
    fields: {
      "spec.nodeName": (o) => s((o as Pod).spec?.nodeName),
      "spec.restartPolicy": (o) => s((o as Pod).spec?.restartPolicy),
      "spec.schedulerName": (o) => s((o as Pod).spec?.schedulerName),
      "spec.serviceAccountName": (o) => s(((o as Pod).spec as unknown as Record<string, unknown> | undefined)?.serviceAccountName),
      "spec.hostNetwork": (o) => String((o as Pod).spec?.hostNetwork ?? false),
      "status.phase": (o) => s((o as Pod).status?.phase),
      "status.podIP": (o) => s((o as Pod).status?.podIP),
      "status.nominatedNodeName": (o) => s(((o as Pod).status as Record<string, unknown> | undefined)?.nominatedNodeName),
    },
  } as Omit<ResourceDef, "apiVersion" | "listKind">),
  def({
    resource: "services",
    singular: "service",
    kind: "Service",
    group: "",
    version: "v1",
    namespaced: true,
    shortNames: ["svc"],
    nameCheck: dns1035Label,
    hasStatus: true,
    hasSpec: false,
    defaults: (o) => defaultService(o as Service),
    validate: (o, old) => validateService(o as Service, old as Service | undefined),
    prepareForCreate: (o) => {
      (o as Service).status = { loadBalancer: {} };
    },
    fields: {
      "spec.clusterIP": (o) => s((o as Service).spec?.clusterIP),
      "spec.type": (o) => s((o as Service).spec?.type),
    },
  }),
  def({
    resource: "endpoints",
    singular: "endpoints",
    kind: "Endpoints",
    group: "",
    version: "v1",
    namespaced: true,
    shortNames: ["ep"],
    nameCheck: dns1123Subdomain,
    hasStatus: false,
    hasSpec: false,
    defaults: (o) => defaultEndpoints(o as Endpoints),
    validate: (o) => validateEndpoints(o as Endpoints),
    prepareForCreate: () => {},
    fields: {},
  }),
  def({
    resource: "endpointslices",
    singular: "endpointslice",
    kind: "EndpointSlice",
    group: "discovery.k8s.io",
    version: "v1",
    namespaced: true,
    shortNames: [],
    nameCheck: dns1123Subdomain,
    hasStatus: false,
    hasSpec: false,
    defaults: (o) => defaultEndpointSlice(o as EndpointSlice),
    validate: (o, old) => validateEndpointSlice(o as EndpointSlice, old as EndpointSlice | undefined),
    prepareForCreate: () => {},
    fields: { addressType: (o) => s((o as EndpointSlice).addressType) },
  }),
  def({
    resource: "deployments",
    singular: "deployment",
    kind: "Deployment",
    group: "apps",
    version: "v1",
    namespaced: true,
    shortNames: ["deploy"],
    nameCheck: dns1123Subdomain,
    hasStatus: true,
    hasSpec: true,
    defaults: (o) => defaultDeployment(o as Deployment),
    validate: (o, old) => validateDeployment(o as Deployment, old as Deployment | undefined),
    prepareForCreate: (o) => {
      (o as Deployment).status = {};
    },
    fields: {},
  }),
  def({
    resource: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    group: "apps",
    version: "v1",
    namespaced: true,
    shortNames: ["rs"],
    nameCheck: dns1123Subdomain,
    hasStatus: true,
    hasSpec: true,
    defaults: (o) => defaultReplicaSet(o as ReplicaSet),
    validate: (o, old) => validateReplicaSet(o as ReplicaSet, old as ReplicaSet | undefined),
    prepareForCreate: (o) => {
      (o as ReplicaSet).status = { replicas: 0 };
    },
    fields: { "status.replicas": (o) => s((o as ReplicaSet).status?.replicas) },
  }),
  def({
    resource: "networkpolicies",
    singular: "networkpolicy",
    kind: "NetworkPolicy",
    group: "networking.k8s.io",
    version: "v1",
    namespaced: true,
    shortNames: ["netpol"],
    nameCheck: dns1123Subdomain,
    hasStatus: false,
    hasSpec: true,
    defaults: (o) => defaultNetworkPolicy(o as NetworkPolicy),
    validate: (o, old) => validateNetworkPolicy(o as NetworkPolicy, old as NetworkPolicy | undefined),
    prepareForCreate: () => {},
    fields: {},
  }),
];

export const RESOURCE_BY_NAME = new Map(RESOURCES.map((r) => [r.resource, r]));

/** The resource served at a group/version/plural, if any. */
export function findResource(group: string, version: string, resource: string): ResourceDef | undefined {
  const r = RESOURCE_BY_NAME.get(resource);
  return r && r.group === group && r.version === version ? r : undefined;
}

export function fieldValue(def: ResourceDef, obj: KObject, field: string): string | undefined {
  if (field === "metadata.name") return obj.metadata.name;
  if (field === "metadata.namespace") return obj.metadata.namespace ?? "";
  return def.fields[field]?.(obj);
}

export function supportsField(def: ResourceDef, field: string): boolean {
  return field === "metadata.name" || field === "metadata.namespace" || field in def.fields;
}
