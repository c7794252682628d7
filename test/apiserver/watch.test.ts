// Watches and the Informer: event order and types, resuming from a resourceVersion, selector
// transitions, 410 Gone for a version that left the window, and informers that resume or relist.
import test from "ava";
import { Informer, resourcePath, type ApiClient } from "../../apiserver/client.ts";
import { Registry } from "../../apiserver/registry.ts";
import { DEFAULTS } from "../../apiserver/server.ts";
import { SqliteStorage } from "../../apiserver/storage.ts";
import type { Pod, Service, WatchEvent } from "../../apiserver/types.ts";
import { apiError, eventually, startTestServer } from "./helpers.ts";

const podSpec = { containers: [{ name: "app", image: "podnet/agnhost" }] };

function collect<T>(client: ApiClient, path: string, opts: Parameters<ApiClient["watch"]>[1]) {
  const events: WatchEvent<T>[] = [];
  const w = client.watch<T>(path, opts, (ev) => events.push(ev));
  return { events, w };
}

test("a watch streams ADDED, MODIFIED and DELETED in order from a resourceVersion", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const list = await client.list<Service>(resourcePath("services", "default"));
  const { events, w } = collect<Service>(client, resourcePath("services", "default"), { resourceVersion: list.metadata.resourceVersion });
  t.teardown(() => w.stop());
  const path = resourcePath("services", "default");
  const created = await client.create<Service>(path, { metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } });
  const patched = await client.patch<Service>(`${path}/web`, { metadata: { labels: { a: "b" } } });
  await client.delete(`${path}/web`);
  await eventually("3 events", () => events.length >= 3);
  t.deepEqual(
    events.map((e) => e.type),
    ["ADDED", "MODIFIED", "DELETED"],
  );
  t.is(events[0].object.metadata.resourceVersion, created.metadata.resourceVersion);
  t.is(events[1].object.metadata.resourceVersion, patched.metadata.resourceVersion);
  t.true(Number(events[2].object.metadata.resourceVersion) > Number(patched.metadata.resourceVersion));
  t.is(events[2].object.metadata.labels?.a, "b", "DELETED carries the last state");
  w.stop();
  await w.done;
});

test("a watch without a resourceVersion starts with the current objects; one from an old version replays", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default");
  const a = await client.create<Pod>(path, { metadata: { name: "a" }, spec: podSpec });
  await client.create<Pod>(path, { metadata: { name: "b" }, spec: podSpec });
  await client.delete(`${path}/b`);
  const fresh = collect<Pod>(client, path, {});
  t.teardown(() => fresh.w.stop());
  await eventually("initial ADDED", () => fresh.events.length >= 1);
  t.deepEqual(fresh.events.map((e) => [e.type, e.object.metadata.name]), [["ADDED", "a"]]);
  // From a's version: b's creation and deletion are replayed.
  const replay = collect<Pod>(client, path, { resourceVersion: a.metadata.resourceVersion });
  t.teardown(() => replay.w.stop());
  await eventually("replayed events", () => replay.events.length >= 2);
  t.deepEqual(replay.events.map((e) => [e.type, e.object.metadata.name]), [["ADDED", "b"], ["DELETED", "b"]]);
});

test("watch selectors: an object entering the selection is ADDED, leaving it is DELETED", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default");
  const rv = (await client.list(path)).metadata.resourceVersion;
  const byLabel = collect<Pod>(client, resourcePath("pods"), { resourceVersion: rv, labelSelector: "app=web" });
  const byNode = collect<Pod>(client, resourcePath("pods"), { resourceVersion: rv, fieldSelector: "spec.nodeName=node-1" });
  t.teardown(() => {
    byLabel.w.stop();
    byNode.w.stop();
  });
  await client.create(path, { metadata: { name: "p", labels: { app: "web" } }, spec: podSpec });
  await client.create(path, { metadata: { name: "other" }, spec: podSpec });
  await client.patch(`${path}/p`, { metadata: { labels: { app: "db" } } });
  await client.patch(`${path}/p`, { metadata: { labels: { app: "web" } } });
  // Binding to a node: a kubelet watching its node's pods sees the pod appear.
  await client.patch(`${path}/p`, { spec: { nodeName: "node-1" } });
  await client.delete(`${path}/p`, { gracePeriodSeconds: 0 });
  await eventually("label events", () => byLabel.events.length >= 5);
  t.deepEqual(byLabel.events.map((e) => e.type), ["ADDED", "DELETED", "ADDED", "MODIFIED", "DELETED"]);
  await eventually("node events", () => byNode.events.length >= 2);
  t.deepEqual(byNode.events.map((e) => [e.type, e.object.spec.nodeName]), [["ADDED", "node-1"], ["DELETED", "node-1"]]);
  t.false([...byLabel.events, ...byNode.events].some((e) => e.object.metadata.name === "other"));
});

test("a watch from a version older than the window fails with 410 Gone (reason Expired)", async (t) => {
  const { client } = await startTestServer(t, { controllers: false, watchWindow: 5 });
  const path = resourcePath("services", "default");
  const first = await client.create<Service>(path, { metadata: { name: "s0" }, spec: { ports: [{ port: 80 }] } });
  for (let i = 1; i <= 8; i++) await client.create(path, { metadata: { name: `s${i}` }, spec: { ports: [{ port: 80 }] } });
  const { w, events } = collect<Service>(client, path, { resourceVersion: first.metadata.resourceVersion });
  const e = await apiError(w.done, 410);
  t.is(e.reason, "Expired");
  t.regex(e.message, /too old resource version/);
  t.is(events.length, 0);
  // A version this server never reached (another incarnation of the cluster) also needs a relist.
  const future = client.watch(path, { resourceVersion: "999999" }, () => {});
  t.regex((await apiError(future.done, 410)).message, /too large resource version/);
  // A bad version is a 400.
  const bad = client.watch(path, { resourceVersion: "abc" }, () => {});
  t.is((await apiError(bad.done, 400)).reason, "BadRequest");
});

test("an Informer syncs, follows changes, and relists after 410 Gone", async (t) => {
  const ts = await startTestServer(t, { controllers: false, watchWindow: 5 });
  const path = resourcePath("services", "default");
  await ts.client.create(path, { metadata: { name: "keep" }, spec: { ports: [{ port: 80 }] } });
  await ts.client.create(path, { metadata: { name: "drop" }, spec: { ports: [{ port: 80 }] } });
  const inf = new Informer<Service>(ts.client, resourcePath("services"));
  const seen: string[] = [];
  inf.on("add", (o) => seen.push(`add ${o.metadata.name}`));
  inf.on("update", (o, old) => seen.push(`update ${o.metadata.name} ${old?.metadata.labels?.v ?? "-"}->${o.metadata.labels?.v}`));
  inf.on("delete", (o) => seen.push(`delete ${o.metadata.name}`));
  t.teardown(() => inf.stop());
  await inf.start();
  t.true(inf.synced);
  t.deepEqual(inf.list().map((s) => s.metadata.name).sort(), ["drop", "keep", "kubernetes"]);
  await ts.client.patch(`${path}/keep`, { metadata: { labels: { v: "1" } } });
  await eventually("update seen", () => inf.get("default/keep")?.metadata.labels?.v === "1");
  t.is(inf.relists, 1);

  // The server goes away; while it is down its store moves on by more than the watch window.
  await ts.stop();
  const storage = new SqliteStorage(ts.stateDir);
  const reg = new Registry(storage, DEFAULTS);
  reg.delete("services", "default", "drop");
  for (let i = 0; i < 6; i++) reg.create("services", "default", { metadata: { name: `new${i}` }, spec: { ports: [{ port: 80 }] } });
  reg.patch("services", "default", "keep", { metadata: { labels: { v: "2" } } }, "merge");
  storage.close();
  await ts.restart();

  // The informer's resume fails with 410, so it relists and delivers the difference.
  await eventually("relisted", () => inf.relists >= 2 && inf.get("default/new5"));
  t.is(inf.get("default/drop"), undefined);
  t.is(inf.get("default/keep")?.metadata.labels?.v, "2");
  t.true(seen.includes("delete drop"));
  t.true(seen.includes("update keep 1->2"));
  t.true(seen.includes("add new0"));
  // And it keeps watching on the new server.
  await ts.client.create(path, { metadata: { name: "after" }, spec: { ports: [{ port: 80 }] } });
  await eventually("event after relist", () => inf.get("default/after"));
});

test("an Informer resumes its watch after the connection drops, without relisting", async (t) => {
  const ts = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default");
  const inf = new Informer<Pod>(ts.client, resourcePath("pods"), { fieldSelector: "spec.nodeName=n1" });
  t.teardown(() => inf.stop());
  await inf.start();
  t.deepEqual(inf.list(), []);
  await ts.client.create(path, { metadata: { name: "a" }, spec: { ...podSpec, nodeName: "n1" } });
  await eventually("a", () => inf.get("default/a"));
  await ts.restart();
  await ts.client.create(path, { metadata: { name: "b" }, spec: { ...podSpec, nodeName: "n1" } });
  await ts.client.create(path, { metadata: { name: "c" }, spec: { ...podSpec, nodeName: "n2" } });
  await eventually("b after the restart", () => inf.get("default/b"));
  t.is(inf.get("default/c"), undefined);
  t.is(inf.relists, 1, "resumed from its resourceVersion");
});

test("Informer.start waits for a server that is not up yet", async (t) => {
  const ts = await startTestServer(t, { controllers: false });
  await ts.stop();
  const inf = new Informer<Service>(ts.client, resourcePath("services"));
  t.teardown(() => inf.stop());
  const started = inf.start();
  await new Promise((r) => setTimeout(r, 300));
  t.false(inf.synced);
  await ts.restart();
  await started;
  t.true(inf.synced);
  t.truthy(inf.get("default/kubernetes"));
});
