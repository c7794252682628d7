// REST semantics of the API server: create/get/list/update/patch/delete for every kind,
// conflicts, status subresources, selectors, discovery, graceful pod deletion and cascades.
import test from "ava";
import http from "node:http";
import { ApiClient, resourcePath } from "../../apiserver/client.ts";
import type { Deployment, EndpointSlice, List, Namespace, Node, Pod, ReplicaSet, Service, Status } from "../../apiserver/types.ts";
import { apiError, createReadyNode, eventually, startTestServer } from "./helpers.ts";

const podSpec = { containers: [{ name: "app", image: "podnet/agnhost" }] };

test("namespaces default and kube-system and the kubernetes Service exist at start", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const ns = await client.list<Namespace>(resourcePath("namespaces"));
  t.deepEqual(ns.items.map((n) => n.metadata.name).sort(), ["default", "kube-system"]);
  t.is(ns.items[0].status?.phase, "Active");
  const k = await client.get<Service>(resourcePath("services", "default", "kubernetes"));
  t.is(k.spec.clusterIP, "10.96.0.1");
  t.deepEqual(k.spec.ports?.[0], { name: "https", port: 443, protocol: "TCP", targetPort: 6443 });
});

test("the kubernetes Service's EndpointSlice follows --advertise-address and --advertise-port", async (t) => {
  const ts = await startTestServer(t, { controllers: false, advertiseAddress: "198.18.0.1" });
  const slice = () => ts.client.get<EndpointSlice>(resourcePath("endpointslices", "default", "kubernetes"));
  const first = await slice();
  t.deepEqual(first.metadata.labels, { "kubernetes.io/service-name": "kubernetes" });
  t.is(first.addressType, "IPv4");
  t.deepEqual(first.endpoints, [{ addresses: ["198.18.0.1"], conditions: { ready: true } }]);
  t.deepEqual(first.ports, [{ name: "https", port: 6443, protocol: "TCP" }]);
  await ts.restart({ advertiseAddress: "198.18.0.9", advertisePort: 8443 });
  const moved = await slice();
  t.deepEqual(moved.endpoints[0]!.addresses, ["198.18.0.9"]);
  t.is(moved.ports![0]!.port, 8443);
  t.is(moved.metadata.uid, first.metadata.uid, "updated in place");
  // addressType is immutable: another family replaces the slice.
  await ts.restart({ advertiseAddress: "fd00::1" });
  const v6 = await slice();
  t.is(v6.addressType, "IPv6");
  t.deepEqual(v6.endpoints[0]!.addresses, ["fd00::1"]);
  // Without an address there is nothing to reach: the slice goes.
  await ts.restart({ advertiseAddress: undefined });
  await t.throwsAsync(slice(), { message: /not found/ });
});

test("every namespace carries the label kubernetes.io/metadata.name with its name, as in Kubernetes", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const label = (n: Namespace) => n.metadata.labels?.["kubernetes.io/metadata.name"];
  const start = await client.list<Namespace>(resourcePath("namespaces"));
  t.deepEqual(start.items.map(label).sort(), ["default", "kube-system"]);
  const created = await client.create<Namespace>(resourcePath("namespaces"), { metadata: { name: "team-b", labels: { team: "b" } } } as Namespace);
  t.deepEqual(created.metadata.labels, { team: "b", "kubernetes.io/metadata.name": "team-b" });
  // A client cannot take it away or point it elsewhere: every update sets it again.
  created.metadata.labels = { "kubernetes.io/metadata.name": "other" };
  const updated = await client.update<Namespace>(resourcePath("namespaces", undefined, "team-b"), created);
  t.is(label(updated), "team-b");
});

test("create, get, list, update, patch and delete work for every kind", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const cases: { path: string; obj: Record<string, unknown>; change: (o: any) => void; check: (o: any) => boolean; patch: unknown; patched: (o: any) => boolean }[] = [
    {
      path: resourcePath("namespaces"),
      obj: { metadata: { name: "team-a" } },
      change: (o) => (o.metadata.labels = { team: "a" }),
      check: (o) => o.metadata.labels.team === "a",
      patch: { metadata: { annotations: { note: "x" } } },
      patched: (o) => o.metadata.annotations.note === "x",
    },
    {
      path: resourcePath("nodes"),
      obj: { metadata: { name: "node-a" } },
      change: (o) => (o.metadata.labels = { zone: "z1" }),
      check: (o) => o.metadata.labels.zone === "z1",
      patch: { spec: { unschedulable: true } },
      patched: (o) => o.spec.unschedulable === true,
    },
    {
      path: resourcePath("pods", "default"),
      obj: { metadata: { name: "pod-a" }, spec: podSpec },
      change: (o) => (o.metadata.labels = { app: "a" }),
      check: (o) => o.metadata.labels.app === "a",
      patch: { spec: { activeDeadlineSeconds: 600 }, metadata: { annotations: { a: "b" } } },
      patched: (o) => o.spec.activeDeadlineSeconds === 600 && o.metadata.annotations.a === "b",
    },
    {
      path: resourcePath("services", "default"),
      obj: { metadata: { name: "svc-a" }, spec: { selector: { app: "a" }, ports: [{ port: 80 }] } },
      change: (o) => (o.spec.selector = { app: "b" }),
      check: (o) => o.spec.selector.app === "b",
      patch: { spec: { sessionAffinity: "ClientIP" } },
      patched: (o) => o.spec.sessionAffinity === "ClientIP" && o.spec.sessionAffinityConfig.clientIP.timeoutSeconds === 10800,
    },
    {
      path: resourcePath("endpointslices", "default"),
      obj: { metadata: { name: "slice-a" }, addressType: "IPv4", endpoints: [{ addresses: ["10.244.0.9"] }], ports: [{ port: 80 }] },
      change: (o) => (o.endpoints[0].conditions = { ready: true }),
      check: (o) => o.endpoints[0].conditions.ready === true,
      patch: { ports: [{ name: "http", port: 8080 }] },
      patched: (o) => o.ports[0].port === 8080 && o.ports[0].protocol === "TCP",
    },
    {
      path: resourcePath("deployments", "default"),
      obj: { metadata: { name: "dep-a" }, spec: { selector: { matchLabels: { app: "a" } }, template: { metadata: { labels: { app: "a" } }, spec: podSpec } } },
      change: (o) => (o.spec.replicas = 3),
      check: (o) => o.spec.replicas === 3 && o.metadata.generation === 2,
      patch: { spec: { paused: true } },
      patched: (o) => o.spec.paused === true && o.metadata.generation === 3,
    },
    {
      path: resourcePath("replicasets", "default"),
      obj: { metadata: { name: "rs-a" }, spec: { replicas: 0, selector: { matchLabels: { app: "r" } }, template: { metadata: { labels: { app: "r" } }, spec: podSpec } } },
      change: (o) => (o.spec.minReadySeconds = 5),
      check: (o) => o.spec.minReadySeconds === 5,
      patch: { metadata: { labels: { tier: "x" } } },
      patched: (o) => o.metadata.labels.tier === "x",
    },
    {
      path: resourcePath("networkpolicies", "default"),
      obj: { metadata: { name: "np-a" }, spec: { podSelector: { matchLabels: { app: "a" } } } },
      change: (o) => (o.spec.ingress = [{ ports: [{ port: 80 }] }]),
      check: (o) => o.spec.ingress[0].ports[0].protocol === "TCP" && o.metadata.generation === 2,
      patch: { spec: { egress: [{}], policyTypes: ["Ingress", "Egress"] } },
      patched: (o) => o.spec.policyTypes.length === 2 && o.metadata.generation === 3,
    },
  ];
  for (const c of cases) {
    const name = (c.obj.metadata as { name: string }).name;
    const created = await client.create<any>(c.path, c.obj);
    t.truthy(created.metadata.uid, `${c.path}: uid`);
    t.truthy(created.metadata.creationTimestamp, `${c.path}: creationTimestamp`);
    t.regex(created.metadata.resourceVersion, /^\d+$/);
    const objPath = `${c.path}/${name}`;
    const got = await client.get<any>(objPath);
    t.is(got.metadata.uid, created.metadata.uid);
    t.truthy(got.kind && got.apiVersion, `${c.path}: kind and apiVersion`);
    const list = await client.list<any>(c.path);
    t.true(list.items.some((i) => i.metadata.name === name), `${c.path}: listed`);
    t.true(Number(list.metadata.resourceVersion) >= Number(created.metadata.resourceVersion));
    c.change(got);
    const updated = await client.update<any>(objPath, got);
    t.true(c.check(updated), `${c.path}: update applied`);
    t.true(Number(updated.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
    const patched = await client.patch<any>(objPath, c.patch);
    t.true(c.patched(patched), `${c.path}: patch applied`);
    await client.delete(objPath);
    if (!c.path.endsWith("/namespaces")) {
      const e = await apiError(client.get(objPath), 404);
      t.is(e.reason, "NotFound");
    }
  }
  // A namespace is deleted in two steps: Terminating, then gone once empty.
  const ns = await client.get<Namespace>(resourcePath("namespaces", undefined, "team-a")).catch(() => undefined);
  if (ns) t.is(ns.status?.phase, "Terminating");
});

test("an update with a stale resourceVersion is refused with 409 Conflict", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("services", "default");
  const svc = await client.create<Service>(path, { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
  const first = structuredClone(svc);
  first.metadata.labels = { v: "1" };
  await client.update(`${path}/web`, first);
  const stale = structuredClone(svc);
  stale.metadata.labels = { v: "2" };
  const e = await apiError(client.update(`${path}/web`, stale), 409);
  t.is(e.reason, "Conflict");
  t.is(e.message, 'Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again');
  // The same precondition in a merge patch.
  await apiError(client.patch(`${path}/web`, { metadata: { resourceVersion: svc.metadata.resourceVersion, labels: { v: "3" } } }), 409);
  // A create of an existing name is a 409 AlreadyExists.
  const dup = await apiError(client.create(path, { metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } }), 409);
  t.is(dup.reason, "AlreadyExists");
  // An unconditional update (no resourceVersion) goes through.
  const latest = await client.get<Service>(`${path}/web`);
  delete latest.metadata.resourceVersion;
  latest.metadata.labels = { v: "4" };
  t.is((await client.update<Service>(`${path}/web`, latest)).metadata.labels?.v, "4");
});

test("status subresources: the main resource ignores status, /status ignores the rest", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default", "p");
  const pod = await client.create<Pod>(resourcePath("pods", "default"), { metadata: { name: "p" }, spec: podSpec, status: { phase: "Running" } });
  t.is(pod.status?.phase, "Pending", "status is reset on create");
  const withStatus = { ...pod, status: { phase: "Running" as const, podIP: "10.244.1.5" }, metadata: { ...pod.metadata, labels: { a: "b" } } };
  const st = await client.updateStatus<Pod>(path, withStatus);
  t.is(st.status?.phase, "Running");
  t.is(st.status?.podIP, "10.244.1.5");
  t.is(st.metadata.labels, undefined, "a status update does not change labels");
  const main = await client.update<Pod>(path, { ...st, status: { phase: "Failed" } });
  t.is(main.status?.phase, "Running", "the main resource does not change status");
  const patched = await client.patch<Pod>(path, { status: { podIP: "10.244.1.6" } }, { subresource: "status" });
  t.is(patched.status?.podIP, "10.244.1.6");
  t.is(patched.status?.phase, "Running");
  // A change-free write does not make a new version.
  const again = await client.patch<Pod>(path, { status: { podIP: "10.244.1.6" } }, { subresource: "status" });
  t.is(again.metadata.resourceVersion, patched.metadata.resourceVersion);
});

test("patch types: merge, strategic merge (lists merged by key) and JSON patch; others are refused", async (t) => {
  const { client, server } = await startTestServer(t, { controllers: false });
  await client.create(resourcePath("services", "default"), { metadata: { name: "s", labels: { a: "1", b: "2" } }, spec: { selector: { app: "s" }, ports: [{ port: 80 }] } });
  const path = resourcePath("services", "default", "s");
  const merged = await client.patch<Service>(path, { metadata: { labels: { a: null, c: "3" } } });
  t.deepEqual(merged.metadata.labels, { b: "2", c: "3" });
  // `kubectl set image` style: a strategic patch of one container keeps the others' fields.
  await client.create(resourcePath("pods", "default"), { metadata: { name: "two" }, spec: { containers: [{ name: "a", image: "img:1", command: ["sleep", "9"] }, { name: "b", image: "img:1" }] } });
  const si = await client.patch<Pod>(resourcePath("pods", "default", "two"), { spec: { containers: [{ name: "a", image: "img:2" }] } }, { type: "strategic" });
  t.deepEqual(si.spec.containers.map((c) => [c.name, c.image, c.command]), [["a", "img:2", ["sleep", "9"]], ["b", "img:1", undefined]]);
  const raw = (type: string, body: unknown) =>
    new Promise<{ code: number; body: any }>((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request({ socketPath: server.socketPath, path, method: "PATCH", headers: { "Content-Type": type, "Content-Length": Buffer.byteLength(data) } }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ code: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on("error", reject);
      req.end(data);
    });
  // Strategic merge: ports merge by port number instead of replacing the list.
  const sm = await raw("application/strategic-merge-patch+json", { spec: { ports: [{ port: 80, targetPort: 8080 }] } });
  t.is(sm.code, 200);
  t.deepEqual(sm.body.spec.ports, [{ port: 80, protocol: "TCP", targetPort: 8080 }]);
  const mp = await client.patch<Service>(path, { spec: { ports: [{ port: 81 }] } });
  t.deepEqual(mp.spec.ports, [{ port: 81, protocol: "TCP", targetPort: 81 }], "a merge patch replaces the list");
  const jp = await raw("application/json-patch+json", [{ op: "replace", path: "/spec/ports/0/port", value: 82 }, { op: "add", path: "/metadata/labels/d", value: "4" }]);
  t.is(jp.code, 200);
  t.is(jp.body.spec.ports[0].port, 82);
  t.is(jp.body.metadata.labels.d, "4");
  const bad = await raw("application/apply-patch+yaml", {});
  t.is(bad.code, 415);
  t.is(bad.body.kind, "Status");
});

test("label selectors (=, ==, !=, in, notin, exists, !key) and field selectors filter lists", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const mk = (name: string, labels: Record<string, string>, nodeName?: string) => client.create(resourcePath("pods", "default"), { metadata: { name, labels }, spec: { ...podSpec, nodeName } });
  await mk("a", { app: "web", tier: "front" }, "n1");
  await mk("b", { app: "web", tier: "back" }, "n2");
  await mk("c", { app: "db" });
  await mk("d", { app: "cache", canary: "true" });
  const names = async (labelSelector?: string, fieldSelector?: string) =>
    (await client.list<Pod>(resourcePath("pods", "default"), { labelSelector, fieldSelector })).items.map((p) => p.metadata.name).sort();
  t.deepEqual(await names("app=web"), ["a", "b"]);
  t.deepEqual(await names("app==web,tier=back"), ["b"]);
  t.deepEqual(await names("app!=web"), ["c", "d"]);
  t.deepEqual(await names("app in (db, cache)"), ["c", "d"]);
  t.deepEqual(await names("app notin (web)"), ["c", "d"]);
  t.deepEqual(await names("canary"), ["d"]);
  t.deepEqual(await names("!tier"), ["c", "d"]);
  t.deepEqual(await names("tier!=front"), ["b", "c", "d"], "!= also matches pods without the label");
  t.deepEqual(await names(undefined, "spec.nodeName=n1"), ["a"]);
  t.deepEqual(await names(undefined, "spec.nodeName="), ["c", "d"]);
  t.deepEqual(await names(undefined, "metadata.name!=a,status.phase=Pending"), ["b", "c", "d"]);
  t.deepEqual(await names("app=web", "spec.nodeName!=n1"), ["b"]);
  const all = await client.list<Pod>(resourcePath("pods"), { fieldSelector: "metadata.namespace=default" });
  t.is(all.items.length, 4);
  const bad = await apiError(client.list(resourcePath("pods"), { labelSelector: "app in web" }), 400);
  t.is(bad.reason, "BadRequest");
  const badField = await apiError(client.list(resourcePath("pods"), { fieldSelector: "spec.image=x" }), 400);
  t.regex(badField.message, /field label not supported: spec\.image/);
});

test("objects in a missing namespace are refused with 404 like Kubernetes", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const e = await apiError(client.create(resourcePath("pods", "nope"), { metadata: { name: "p" }, spec: podSpec }), 404);
  t.is(e.message, 'namespaces "nope" not found');
  t.is(e.reason, "NotFound");
  const g = await apiError(client.get(resourcePath("services", "default", "missing")), 404);
  t.is(g.message, 'services "missing" not found');
  t.deepEqual((await client.list(resourcePath("pods", "nope"))).items, []);
});

test("generateName gives unique names with a 5 character suffix", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const names = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const p = await client.create<Pod>(resourcePath("pods", "default"), { metadata: { generateName: "web-" }, spec: podSpec });
    t.regex(p.metadata.name!, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    names.add(p.metadata.name!);
  }
  t.is(names.size, 20);
});

test("pods are deleted gracefully: deletionTimestamp first, gone when the kubelet confirms", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default");
  await client.create(path, { metadata: { name: "bound" }, spec: { ...podSpec, nodeName: "n1", terminationGracePeriodSeconds: 45 } });
  await client.create(path, { metadata: { name: "unbound" }, spec: podSpec });
  const before = Date.now();
  const terminating = (await client.delete<Pod>(`${path}/bound`)) as Pod;
  t.is(terminating.metadata.deletionGracePeriodSeconds, 45);
  const ts = Date.parse(terminating.metadata.deletionTimestamp!);
  t.true(ts >= Math.floor(before / 1000) * 1000 + 44_000, "deletionTimestamp is now + grace period");
  t.is((await client.get<Pod>(`${path}/bound`)).metadata.deletionGracePeriodSeconds, 45, "still there while terminating");
  // A second delete with a shorter grace period shortens it.
  const shorter = (await client.delete<Pod>(`${path}/bound`, { gracePeriodSeconds: 5 })) as Pod;
  t.is(shorter.metadata.deletionGracePeriodSeconds, 5);
  // The kubelet confirms with gracePeriodSeconds=0.
  await client.delete(`${path}/bound`, { gracePeriodSeconds: 0 });
  await apiError(client.get(`${path}/bound`), 404);
  // Nothing runs an unscheduled pod: it goes at once.
  const gone = (await client.delete<Pod>(`${path}/unbound`)) as Pod;
  t.is(gone.metadata.name, "unbound");
  await apiError(client.get(`${path}/unbound`), 404);
  await apiError(client.delete(`${path}/unbound`), 404);
});

test("delete preconditions are checked", async (t) => {
  const { client, server } = await startTestServer(t, { controllers: false });
  await client.create(resourcePath("services", "default"), { metadata: { name: "s" }, spec: { ports: [{ port: 80 }] } });
  const res = await new Promise<{ code: number; body: Status }>((resolve, reject) => {
    const data = JSON.stringify({ kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: "00000000-0000-0000-0000-000000000000" } });
    const req = http.request({ socketPath: server.socketPath, path: resourcePath("services", "default", "s"), method: "DELETE", headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } }, (r) => {
      let text = "";
      r.on("data", (c) => (text += c));
      r.on("end", () => resolve({ code: r.statusCode!, body: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(data);
  });
  t.is(res.code, 409);
  t.regex(res.body.message, /Precondition failed: UID in precondition/);
  t.truthy(await client.get(resourcePath("services", "default", "s")));
});

test("deleting a Deployment cascades to its ReplicaSets and pods; deleting a namespace empties it first", async (t) => {
  const { client } = await startTestServer(t);
  await createReadyNode(client, "n1");
  await client.create(resourcePath("namespaces"), { metadata: { name: "shop" } });
  await client.create(resourcePath("deployments", "shop"), {
    metadata: { name: "web" },
    spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: podSpec } },
  });
  await client.create(resourcePath("services", "shop"), { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
  await eventually("2 pods", async () => (await client.list<Pod>(resourcePath("pods", "shop"))).items.length === 2);
  await eventually("a slice", async () => (await client.list<EndpointSlice>(resourcePath("endpointslices", "shop"))).items.length === 1);
  await client.delete(resourcePath("deployments", "shop", "web"));
  await eventually("ReplicaSets gone", async () => (await client.list<ReplicaSet>(resourcePath("replicasets", "shop"))).items.length === 0);
  // Bound pods are deleted gracefully: they are terminating (the kubelet would confirm).
  await eventually("pods terminating", async () => (await client.list<Pod>(resourcePath("pods", "shop"))).items.every((p) => p.metadata.deletionTimestamp));
  // Now the namespace: everything in it goes, pods once confirmed, then the namespace itself.
  const ns = (await client.delete<Namespace>(resourcePath("namespaces", undefined, "shop"))) as Namespace;
  t.is(ns.status?.phase, "Terminating");
  const refused = await apiError(client.create(resourcePath("pods", "shop"), { metadata: { name: "late" }, spec: podSpec }), 403);
  t.regex(refused.message, /because it is being terminated/);
  await eventually("service gone", async () => (await client.list(resourcePath("services", "shop"))).items.length === 0);
  for (const p of (await client.list<Pod>(resourcePath("pods", "shop"))).items) await client.delete(resourcePath("pods", "shop", p.metadata.name), { gracePeriodSeconds: 0 });
  await eventually("namespace gone", async () => {
    await apiError(client.get(resourcePath("namespaces", undefined, "shop")), 404);
    return true;
  });
  const protectedNs = await apiError(client.delete(resourcePath("namespaces", undefined, "default")), 403);
  t.regex(protectedNs.message, /may not be deleted/);
});

test("deleting a Service removes its EndpointSlices (ownerReferences)", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
  await eventually("placeholder slice", async () => (await client.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=web" })).items.length === 1);
  await client.delete(resourcePath("services", "default", "web"));
  await eventually("slices gone", async () => (await client.list<EndpointSlice>(resourcePath("endpointslices", "default"))).items.length === 0);
  t.is((await client.list<EndpointSlice>(resourcePath("endpointslices", "default"))).items.length, 0);
});

test("discovery, /healthz and /version answer like Kubernetes", async (t) => {
  const { client } = await startTestServer(t, { controllers: false, listen: "127.0.0.1:0" });
  const api = await client.get<{ versions: string[] }>("/api");
  t.deepEqual(api.versions, ["v1"]);
  const v1 = await client.get<{ resources: { name: string; kind: string; namespaced: boolean; shortNames?: string[] }[] }>("/api/v1");
  const pods = v1.resources.find((r) => r.name === "pods")!;
  t.is(pods.kind, "Pod");
  t.true(pods.namespaced);
  t.deepEqual(pods.shortNames, ["po"]);
  t.truthy(v1.resources.find((r) => r.name === "pods/status"));
  t.false(v1.resources.find((r) => r.name === "nodes")!.namespaced);
  const groups = await client.get<{ groups: { name: string }[] }>("/apis");
  t.deepEqual(groups.groups.map((g) => g.name).sort(), ["apps", "discovery.k8s.io", "networking.k8s.io"]);
  const apps = await client.get<{ resources: { name: string }[] }>("/apis/apps/v1");
  t.truthy(apps.resources.find((r) => r.name === "deployments"));
  t.truthy((await client.get<{ resources: { name: string }[] }>("/apis/discovery.k8s.io/v1")).resources.find((r) => r.name === "endpointslices"));
  t.is((await client.get<{ major: string }>("/version")).major, "1");
  const missing = await apiError(client.get("/api/v1/widgets"), 404);
  t.is(missing.reason, "NotFound");
});

test("the loopback TCP listener serves the same API", async (t) => {
  const ts = await startTestServer(t, { controllers: false, listen: "127.0.0.1:0" });
  t.regex(ts.server.url!, /^http:\/\/127\.0\.0\.1:\d+$/);
  const tcp = new ApiClient({ baseUrl: ts.server.url });
  await tcp.create(resourcePath("nodes"), { metadata: { name: "n1" } });
  const nodes = await ts.client.list<Node>(resourcePath("nodes"));
  t.deepEqual(nodes.items.map((n) => n.metadata.name), ["n1"]);
  const h = await fetch(`${ts.server.url}/healthz`);
  t.is(await h.text(), "ok");
  const list = (await (await fetch(`${ts.server.url}/apis/apps/v1/deployments`)).json()) as List<Deployment>;
  t.is(list.kind, "DeploymentList");
});
