// The generic REST semantics over storage: create (generateName, uid, defaults, validation,
// allocation), get, list with selectors, update with resourceVersion preconditions, status
// subresources, patches, and deletion (graceful for pods, finalizers, namespaces). The HTTP
// layer and the in-process controllers both go through it, so they see the same rules.
import { randomUUID } from "node:crypto";
import { isIPv6 } from "node:net";
import { AllocationError, Allocators, type Allocation, type AllocationConfig } from "./allocation.ts";
import { errors, StatusError, type FieldError } from "./errors.ts";
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from "./patch.ts";
import { RESOURCE_BY_NAME, fieldValue, supportsField, type ResourceDef } from "./resources.ts";
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, SelectorError, type FieldRequirement, type LabelRequirement } from "./selectors.ts";
import { StorageError, type Storage, type StoredObject } from "./storage.ts";
import type { Endpoints, EndpointSlice, KObject, Namespace, Node, Pod, Service } from "./types.ts";
import { deepEqual, nowRFC3339, randomSuffix } from "./util.ts";
import { validateObjectMeta } from "./validation.ts";

export interface Selectors {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
}

export type PatchType = "merge" | "strategic" | "json";

const PROTECTED_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const META_ORDER = ["name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers"];

/** Puts keys in Kubernetes' order (apiVersion, kind, metadata, spec..., status) so output reads as users expect. */
function ordered<T extends KObject>(obj: T): T {
  const m = obj.metadata as Record<string, unknown>;
  const meta: Record<string, unknown> = {};
  for (const k of META_ORDER) if (m[k] !== undefined) meta[k] = m[k];
  for (const k of Object.keys(m)) if (!(k in meta) && m[k] !== undefined) meta[k] = m[k];
  const out: Record<string, unknown> = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: meta };
  const o = obj as unknown as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in out) && k !== "status" && o[k] !== undefined) out[k] = o[k];
  if (o.status !== undefined) out.status = o.status;
  return out as unknown as T;
}

export class Registry {
  readonly allocators: Allocators;
  /** Who asked for an orphaning delete: the garbage collector reads and clears this. */
  readonly orphanRequests = new Set<string>();

  constructor(
    readonly storage: Storage,
    cfg: AllocationConfig,
  ) {
    this.allocators = new Allocators(cfg);
    for (const s of storage.list("services")) this.allocators.restoreService(s.obj as Service);
    for (const s of storage.list("nodes")) this.allocators.restoreNode(s.obj as Node);
  }

  def(resource: string): ResourceDef {
    const d = RESOURCE_BY_NAME.get(resource);
    if (!d) throw errors.pathNotFound();
    return d;
  }

  revision(): number {
    return this.storage.revision();
  }

  // ---- reads ----

  tryGet<T extends KObject = KObject>(resource: string, namespace: string | undefined, name: string): StoredObject<T> | undefined {
    return this.storage.get(resource, namespace ?? "", name) as StoredObject<T> | undefined;
  }

  get<T extends KObject = KObject>(resource: string, namespace: string | undefined, name: string): StoredObject<T> {
    const s = this.tryGet<T>(resource, namespace, name);
    if (!s) throw errors.notFound(this.def(resource), name);
    return s;
  }

  parseSelectors(resource: string, labelSelector?: string, fieldSelector?: string): Selectors {
    const d = this.def(resource);
    try {
      const labels = labelSelector ? parseLabelSelector(labelSelector) : [];
      const fields = fieldSelector ? parseFieldSelector(fieldSelector) : [];
      for (const f of fields) if (!supportsField(d, f.field)) throw errors.badRequest(`field label not supported: ${f.field}`);
      return { labels, fields };
    } catch (e) {
      if (e instanceof SelectorError) throw errors.badRequest(e.message);
      throw e;
    }
  }

  matches(resource: string, obj: KObject, sel: Selectors): boolean {
    if (sel.labels.length && !matchLabels(sel.labels, obj.metadata.labels)) return false;
    if (sel.fields.length) {
      const d = this.def(resource);
      if (!matchFields(sel.fields, (f) => fieldValue(d, obj, f))) return false;
    }
    return true;
  }

  list<T extends KObject = KObject>(resource: string, namespace?: string, sel?: Selectors): StoredObject<T>[] {
    const all = this.storage.list(resource, namespace) as StoredObject<T>[];
    if (!sel || (sel.labels.length === 0 && sel.fields.length === 0)) return all;
    return all.filter((s) => this.matches(resource, s.obj, sel));
  }

  // ---- writes ----

  private invalid(d: ResourceDef, name: string, causes: FieldError[]): StatusError {
    return errors.invalid(d, name, causes);
  }

  private checkNamespace(d: ResourceDef, ns: string, name: string): void {
    const n = this.tryGet<Namespace>("namespaces", undefined, ns);
    if (!n) throw errors.namespaceNotFound(ns);
    if (n.obj.metadata.deletionTimestamp)
      throw errors.forbidden(d, name, `unable to create new content in namespace ${ns} because it is being terminated`);
  }

  private allocate(d: ResourceDef, obj: KObject, old?: KObject): Allocation {
    try {
      if (d.resource === "services") return this.allocators.allocateService(obj as Service, old as Service | undefined);
      if (d.resource === "nodes") return this.allocators.allocateNode(obj as Node, old as Node | undefined);
    } catch (e) {
      if (e instanceof AllocationError) throw this.invalid(d, obj.metadata.name ?? "", e.causes);
      throw e;
    }
    return { rollback: () => {}, commit: () => {} };
  }

  private release(d: ResourceDef, obj: KObject): void {
    if (d.resource === "services") this.allocators.releaseService(obj as Service);
    if (d.resource === "nodes") this.allocators.releaseNode(obj as Node);
  }

  private checkBody(d: ResourceDef, body: unknown): KObject {
    if (!isObj(body)) throw errors.badRequest(`the body of the request must be a JSON object describing a ${d.kind}`);
    const obj = body as unknown as KObject;
    if (obj.kind !== undefined && obj.kind !== d.kind)
      throw errors.badRequest(`${String(obj.kind)} in version "${String(obj.apiVersion ?? "")}" cannot be handled as a ${d.kind}: the kind does not match the URL`);
    if (obj.apiVersion !== undefined && obj.apiVersion !== d.apiVersion)
      throw errors.badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${d.apiVersion})`);
    if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
    if (!isObj(obj.metadata)) throw errors.badRequest("metadata must be an object");
    return obj;
  }

  /** Creates an object; `body` becomes the registry's (it is modified). */
  create<T extends KObject = KObject>(resource: string, namespace: string | undefined, body: unknown): StoredObject<T> {
    const d = this.def(resource);
    const obj = this.checkBody(d, body);
    const m = obj.metadata;
    if (d.namespaced) {
      if (m.namespace && namespace && m.namespace !== namespace)
        throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
      m.namespace = namespace ?? m.namespace;
      if (!m.namespace) throw errors.badRequest("a namespace is required to create this object");
    } else if (m.namespace) {
      delete m.namespace;
    }
    obj.apiVersion = d.apiVersion;
    obj.kind = d.kind;
    if (!m.name && typeof m.generateName === "string" && m.generateName) {
      const base = m.generateName.length > 58 ? m.generateName.slice(0, 58) : m.generateName;
      for (let i = 0; i < 8 && !m.name; i++) {
        const candidate = base + randomSuffix(5);
        if (!this.tryGet(resource, m.namespace, candidate)) m.name = candidate;
      }
    }
    if (d.namespaced && m.namespace) this.checkNamespace(d, m.namespace, m.name ?? m.generateName ?? "");
    m.uid = randomUUID();
    m.creationTimestamp = nowRFC3339();
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (d.hasSpec) m.generation = 1;
    else delete m.generation;
    d.prepareForCreate(obj);
    d.defaults(obj);
    const causes: FieldError[] = [];
    validateObjectMeta(obj, { nameCheck: d.nameCheck, namespaced: d.namespaced }, causes);
    causes.push(...d.validate(obj));
    if (causes.length) throw this.invalid(d, m.name ?? m.generateName ?? "", causes);
    if (this.tryGet(resource, m.namespace, m.name!)) throw errors.alreadyExists(d, m.name!);
    const alloc = this.allocate(d, obj);
    try {
      const stored = this.storage.create(resource, ordered(obj));
      alloc.commit();
      return stored as StoredObject<T>;
    } catch (e) {
      alloc.rollback();
      throw this.storageError(d, m.name!, e);
    }
  }

  private storageError(d: ResourceDef, name: string, e: unknown): unknown {
    if (e instanceof StorageError) {
      if (e.code === "NotFound") return errors.notFound(d, name);
      if (e.code === "AlreadyExists") return errors.alreadyExists(d, name);
      return errors.conflict(d, name);
    }
    return e;
  }

  /**
   * Replaces an object (PUT). With subresource "status" only the status is taken from `body`;
   * otherwise everything but the status (for kinds that have one).
   */
  update<T extends KObject = KObject>(resource: string, namespace: string | undefined, name: string, body: unknown, opts: { subresource?: "status" } = {}): StoredObject<T> {
    const d = this.def(resource);
    if (opts.subresource === "status" && !d.hasStatus) throw errors.pathNotFound();
    // A copy: the body may share parts with the stored object (patches do), which must never change.
    const incoming = structuredClone(this.checkBody(d, body));
    const cur = this.get(resource, namespace, name);
    const im = incoming.metadata;
    if (im.name !== undefined && im.name !== name)
      throw errors.badRequest(`the name of the object (${String(im.name)}) does not match the name on the URL (${name})`);
    if (d.namespaced && im.namespace !== undefined && im.namespace !== namespace)
      throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
    if (im.resourceVersion !== undefined && im.resourceVersion !== "" && String(im.resourceVersion) !== String(cur.rv))
      throw errors.conflict(d, name);
    if (im.uid && im.uid !== cur.obj.metadata.uid) throw errors.conflict(d, name, `Precondition failed: UID in precondition: ${im.uid}, UID in object meta: ${cur.obj.metadata.uid}`);

    let next: KObject;
    if (opts.subresource === "status") {
      next = structuredClone(cur.obj);
      (next as unknown as Record<string, unknown>).status = structuredClone((incoming as unknown as Record<string, unknown>).status);
    } else {
      next = incoming;
      const cm = cur.obj.metadata;
      next.metadata = {
        ...im,
        name: cm.name,
        namespace: cm.namespace,
        uid: cm.uid,
        creationTimestamp: cm.creationTimestamp,
        deletionTimestamp: cm.deletionTimestamp,
        deletionGracePeriodSeconds: cm.deletionGracePeriodSeconds,
        generation: cm.generation,
      };
      if (!d.namespaced) delete next.metadata.namespace;
      if (d.hasStatus) (next as unknown as Record<string, unknown>).status = structuredClone((cur.obj as unknown as Record<string, unknown>).status);
    }
    for (const k of ["deletionTimestamp", "deletionGracePeriodSeconds", "generation"] as const) if (next.metadata[k] === undefined) delete next.metadata[k];
    next.apiVersion = d.apiVersion;
    next.kind = d.kind;
    return this.commitUpdate(d, cur, next) as StoredObject<T>;
  }

  /** Validates, allocates and stores `next` in place of `cur`; a change-free update writes nothing. */
  private commitUpdate(d: ResourceDef, cur: StoredObject, next: KObject): StoredObject {
    const name = cur.obj.metadata.name!;
    if (d.resource === "services") this.allocators.carryOverService(next as Service, cur.obj as Service);
    d.defaults(next);
    if (d.hasSpec) {
      const spec = (o: KObject) => {
        const sp = (o as unknown as { spec?: Record<string, unknown> }).spec;
        // Binding a pod to a node is not a change of what the user asked for.
        if (d.resource === "pods" && sp && !(cur.obj as Pod).spec?.nodeName) return { ...sp, nodeName: undefined };
        return sp;
      };
      const specChanged = !deepEqual(spec(next), spec(cur.obj));
      next.metadata.generation = (cur.obj.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    }
    const causes: FieldError[] = [];
    validateObjectMeta(next, { nameCheck: d.nameCheck, namespaced: d.namespaced }, causes);
    causes.push(...d.validate(next, cur.obj));
    if (causes.length) throw this.invalid(d, name, causes);
    next.metadata.resourceVersion = cur.obj.metadata.resourceVersion;
    // Finalizers removed from an object being deleted: it goes now.
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers?.length) && cur.obj.metadata.finalizers?.length && d.resource !== "pods") {
      return this.remove(d, cur);
    }
    const alloc = this.allocate(d, next, cur.obj);
    if (deepEqual(next, cur.obj)) {
      alloc.rollback();
      return cur;
    }
    try {
      const stored = this.storage.update(d.resource, ordered(next), cur.rv);
      alloc.commit();
      if (d.resource === "services" && (cur.obj as Service).status?.loadBalancer?.ingress?.length && !(next as Service).status?.loadBalancer?.ingress?.length)
        this.retryPendingLoadBalancers();
      return stored;
    } catch (e) {
      alloc.rollback();
      throw this.storageError(d, name, e);
    }
  }

  /** Applies a patch (merge or JSON patch) to the current object and stores it as an update. */
  patch<T extends KObject = KObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, type: PatchType, opts: { subresource?: "status" } = {}): StoredObject<T> {
    const d = this.def(resource);
    if (opts.subresource === "status" && !d.hasStatus) throw errors.pathNotFound();
    const cur = this.get(resource, namespace, name);
    let patched: unknown;
    try {
      if (type === "merge") {
        if (!isObj(patch)) throw errors.badRequest("a merge patch must be a JSON object");
        patched = mergePatch(cur.obj, patch);
      } else if (type === "strategic") {
        if (!isObj(patch)) throw errors.badRequest("a strategic merge patch must be a JSON object");
        patched = strategicMergePatch(cur.obj, patch);
      } else patched = jsonPatch(cur.obj, patch);
    } catch (e) {
      if (e instanceof PatchError) throw errors.badRequest(`the server rejected our request due to an error in our request: ${e.message}`);
      throw e;
    }
    if (!isObj(patched)) throw errors.badRequest("the patch did not produce an object");
    const pm = (patched as { metadata?: unknown }).metadata;
    // A resourceVersion in the patch is a precondition; otherwise the patch applies to the current version.
    if (!isObj(pm)) (patched as { metadata: object }).metadata = { ...cur.obj.metadata };
    return this.update<T>(resource, namespace, name, patched, opts);
  }

  /** Deletes, or starts deleting (graceful pods, finalizers, namespaces). Returns the object's last state. */
  delete<T extends KObject = KObject>(resource: string, namespace: string | undefined, name: string, opts: DeleteOptions = {}): StoredObject<T> {
    const d = this.def(resource);
    const cur = this.get(resource, namespace, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== cur.obj.metadata.uid)
      throw errors.conflict(d, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.obj.metadata.uid}`);
    if (pre?.resourceVersion && pre.resourceVersion !== String(cur.rv))
      throw errors.conflict(d, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in meta: ${cur.rv}`);
    if (opts.gracePeriodSeconds !== undefined && (!Number.isInteger(opts.gracePeriodSeconds) || opts.gracePeriodSeconds < 0))
      throw errors.badRequest(`invalid gracePeriodSeconds ${opts.gracePeriodSeconds}: must be a non-negative integer`);
    if (opts.propagationPolicy === "Orphan") this.orphanRequests.add(cur.obj.metadata.uid!);

    if (d.resource === "namespaces") return this.deleteNamespace(d, cur) as StoredObject<T>;
    if (d.resource === "pods") return this.deletePod(d, cur as StoredObject<Pod>, opts) as StoredObject<T>;
    if (cur.obj.metadata.finalizers?.length) {
      if (cur.obj.metadata.deletionTimestamp) return cur as StoredObject<T>;
      const next = structuredClone(cur.obj);
      next.metadata.deletionTimestamp = nowRFC3339();
      next.metadata.deletionGracePeriodSeconds = 0;
      return this.storage.update(resource, next, cur.rv) as StoredObject<T>;
    }
    return this.remove(d, cur) as StoredObject<T>;
  }

  private remove(d: ResourceDef, cur: StoredObject): StoredObject {
    const m = cur.obj.metadata;
    try {
      const gone = this.storage.delete(d.resource, m.namespace ?? "", m.name!, cur.rv);
      this.release(d, cur.obj);
      if (d.resource === "services" && (cur.obj as Service).status?.loadBalancer?.ingress?.length) this.retryPendingLoadBalancers();
      return gone;
    } catch (e) {
      throw this.storageError(d, m.name!, e);
    }
  }

  private deletePod(d: ResourceDef, cur: StoredObject<Pod>, opts: DeleteOptions): StoredObject {
    const pod = cur.obj;
    let grace = opts.gracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    // Nothing runs an unscheduled or finished pod, so nobody would confirm: it goes at once.
    const phase = pod.status?.phase;
    if (!pod.spec?.nodeName || phase === "Succeeded" || phase === "Failed") grace = 0;
    if (grace === 0) {
      if (pod.metadata.finalizers?.length) {
        if (pod.metadata.deletionTimestamp && pod.metadata.deletionGracePeriodSeconds === 0) return cur;
        const next = structuredClone(pod);
        next.metadata.deletionTimestamp = nowRFC3339();
        next.metadata.deletionGracePeriodSeconds = 0;
        return this.storage.update(d.resource, next, cur.rv);
      }
      return this.remove(d, cur);
    }
    const already = pod.metadata.deletionGracePeriodSeconds;
    if (pod.metadata.deletionTimestamp && already !== undefined && already <= grace) return cur;
    const next = structuredClone(pod);
    next.metadata.deletionTimestamp = nowRFC3339(grace);
    next.metadata.deletionGracePeriodSeconds = grace;
    return this.storage.update(d.resource, next, cur.rv);
  }

  private deleteNamespace(d: ResourceDef, cur: StoredObject): StoredObject {
    const name = cur.obj.metadata.name!;
    if (PROTECTED_NAMESPACES.has(name)) throw errors.forbidden(d, name, "this namespace may not be deleted");
    if (cur.obj.metadata.deletionTimestamp) return cur;
    const next = structuredClone(cur.obj) as Namespace;
    next.metadata.deletionTimestamp = nowRFC3339();
    next.metadata.deletionGracePeriodSeconds = 0;
    next.status = { ...(next.status ?? {}), phase: "Terminating" };
    return this.storage.update(d.resource, next, cur.rv);
  }

  /**
   * Binds a pod to a node (the scheduler's write, and the pods/binding subresource): sets
   * spec.nodeName and the PodScheduled condition in one write.
   */
  bind(namespace: string, name: string, nodeName: string, expectedUID?: string): StoredObject<Pod> {
    const d = this.def("pods");
    const cur = this.get<Pod>("pods", namespace, name);
    if (expectedUID && cur.obj.metadata.uid !== expectedUID) throw errors.conflict(d, name, "the pod was replaced");
    if (cur.obj.spec.nodeName) throw errors.conflict(d, name, `pod ${name} is already assigned to node "${cur.obj.spec.nodeName}"`);
    if (cur.obj.metadata.deletionTimestamp) throw errors.conflict(d, name, "the pod is being deleted");
    const next = structuredClone(cur.obj);
    next.spec.nodeName = nodeName;
    next.status ??= {};
    const now = nowRFC3339();
    const conds = (next.status.conditions ?? []).filter((c) => c.type !== "PodScheduled");
    conds.push({ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: now });
    next.status.conditions = conds;
    return this.commitUpdate(d, cur, next) as StoredObject<Pod>;
  }

  /** Gives pool addresses to LoadBalancer Services that are waiting for one (after one was freed). */
  retryPendingLoadBalancers(): void {
    if (!this.allocators.lbPool) return;
    const d = this.def("services");
    for (const s of this.storage.list("services") as StoredObject<Service>[]) {
      const spec = s.obj.spec;
      if (spec.type !== "LoadBalancer" || spec.loadBalancerClass || s.obj.status?.loadBalancer?.ingress?.length) continue;
      try {
        this.commitUpdate(d, s, structuredClone(s.obj));
      } catch {
        return; // pool still full
      }
    }
  }

  /** Final removal of a namespace whose content is gone (the namespace controller calls it). */
  finalizeNamespace(name: string): void {
    const cur = this.tryGet("namespaces", undefined, name);
    if (cur?.obj.metadata.deletionTimestamp) this.remove(this.def("namespaces"), cur);
  }

  /**
   * The `kubernetes` Service's EndpointSlice: the address and port where clients in the cluster
   * reach the API (kube-apiserver keeps it from its --advertise-address and port). Without an
   * address there is no endpoint, and a slice left from an earlier start is removed.
   */
  reconcileKubernetesEndpoints(address: string | undefined, port: number): void {
    const https = { name: "https", port, protocol: "TCP" as const };
    // kube-apiserver keeps the Endpoints next to the slice, labelled skip-mirror so that the
    // mirroring controller leaves it to the slice.
    const endpoints: Endpoints | undefined = address
      ? {
          apiVersion: "v1",
          kind: "Endpoints",
          metadata: { name: "kubernetes", namespace: "default", labels: { "endpointslice.kubernetes.io/skip-mirror": "true" } },
          subsets: [{ addresses: [{ ip: address }], ports: [https] }],
        }
      : undefined;
    this.keepDefaultObject("endpoints", endpoints, (cur, want) => !deepEqual(cur.subsets, want.subsets) || !deepEqual(cur.metadata.labels, want.metadata.labels));
    const slice: EndpointSlice | undefined = address
      ? {
          apiVersion: "discovery.k8s.io/v1",
          kind: "EndpointSlice",
          metadata: { name: "kubernetes", namespace: "default", labels: { "kubernetes.io/service-name": "kubernetes" } },
          addressType: isIPv6(address) ? "IPv6" : "IPv4",
          endpoints: [{ addresses: [address], conditions: { ready: true } }],
          ports: [https],
        }
      : undefined;
    this.keepDefaultObject(
      "endpointslices",
      slice,
      (cur, want) => !deepEqual([cur.endpoints, cur.ports, cur.metadata.labels], [want.endpoints, want.ports, want.metadata.labels]),
      // addressType is immutable: another family means another slice.
      (cur, want) => cur.addressType !== want.addressType,
    );
  }

  /**
   * Keeps default/kubernetes of `resource` equal to `want`: created, updated when `differs`,
   * deleted and created again when `replace` says an immutable field changed, deleted when
   * `want` is undefined.
   */
  private keepDefaultObject<T extends KObject>(resource: string, want: T | undefined, differs: (cur: T, want: T) => boolean, replace?: (cur: T, want: T) => boolean): void {
    const cur = this.tryGet<T>(resource, "default", "kubernetes")?.obj;
    if (cur && (!want || replace?.(cur, want))) this.delete(resource, "default", "kubernetes");
    if (!want) return;
    if (!cur || replace?.(cur, want)) this.create(resource, "default", want);
    else if (differs(cur, want)) this.update(resource, "default", "kubernetes", { ...want, metadata: { ...want.metadata, resourceVersion: cur.metadata.resourceVersion } });
  }

  /** Ensures the namespaces and the `kubernetes` Service every cluster has. */
  bootstrap(): void {
    for (const ns of ["default", "kube-system"]) {
      if (!this.tryGet("namespaces", undefined, ns)) this.create("namespaces", undefined, { metadata: { name: ns } });
    }
    if (!this.tryGet("services", "default", "kubernetes")) {
      const ip = this.allocators.kubernetesIP;
      const taken = this.list<Service>("services").find((s) => s.obj.spec.clusterIP === ip);
      this.create("services", "default", {
        metadata: { name: "kubernetes", labels: { component: "apiserver", provider: "kubernetes" } },
        spec: {
          type: "ClusterIP",
          // If a user's Service somehow holds the address, let the allocator pick another rather than fail to start.
          ...(taken ? {} : { clusterIP: ip }),
          ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: 6443 }],
          sessionAffinity: "None",
        },
      });
    }
  }
}
