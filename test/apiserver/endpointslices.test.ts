// The EndpointSlice controller: slices follow the pods a Service selects.
import test from "ava";
import { resourcePath, type ApiClient } from "../../apiserver/client.ts";
import type { Endpoint, EndpointSlice, Pod, Service } from "../../apiserver/types.ts";
import { eventually, runningPod, setPodStatus, startTestServer } from "./helpers.ts";

// This controller's slices only: once a selector is removed, the Endpoints it leaves are mirrored (as upstream).
const slicesOf = async (client: ApiClient, svc: string, ns = "default") =>
  (await client.list<EndpointSlice>(resourcePath("endpointslices", ns), { labelSelector: `kubernetes.io/service-name=${svc},endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io` })).items;
const endpointsOf = async (client: ApiClient, svc: string) => (await slicesOf(client, svc)).flatMap((s) => s.endpoints);
const byName = (eps: Endpoint[]) => Object.fromEntries(eps.map((e) => [e.targetRef!.name, e]));

test("slices list ready pods and follow readiness, graceful deletion and removal, in place", async (t) => {
  const { client } = await startTestServer(t);
  const svc = await client.create<Service>(resourcePath("services", "default"), {
    metadata: { name: "web", labels: { team: "a" } },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  });
  for (let i = 0; i < 3; i++) await runningPod(client, "default", `web-${i}`, { labels: { app: "web" }, node: "n1", ip: `10.244.0.${10 + i}` });
  await runningPod(client, "default", "other", { labels: { app: "db" }, node: "n1", ip: "10.244.0.99" });
  const [slice] = await eventually("3 endpoints", async () => {
    const s = await slicesOf(client, "web");
    return s.length === 1 && s[0].endpoints.length === 3 && s;
  });
  t.regex(slice.metadata.name!, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  t.is(slice.addressType, "IPv4");
  t.deepEqual(slice.metadata.labels, { team: "a", "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" });
  t.deepEqual(slice.metadata.ownerReferences, [{ apiVersion: "v1", kind: "Service", name: "web", uid: svc.metadata.uid!, controller: true, blockOwnerDeletion: true }]);
  t.deepEqual(slice.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  const e0 = byName(slice.endpoints)["web-0"];
  t.deepEqual(e0.addresses, ["10.244.0.10"]);
  t.deepEqual(e0.conditions, { ready: true, serving: true, terminating: false });
  t.is(e0.nodeName, "n1");
  t.is(e0.targetRef?.kind, "Pod");
  t.truthy(e0.targetRef?.uid);

  // Readiness flips.
  await setPodStatus(client, "default", "web-1", "10.244.0.11", false);
  await eventually("web-1 not ready", async () => {
    const e = byName(await endpointsOf(client, "web"))["web-1"];
    return e && !e.conditions.ready && !e.conditions.serving && !e.conditions.terminating;
  });
  await setPodStatus(client, "default", "web-1", "10.244.0.11", true);
  await eventually("web-1 ready again", async () => byName(await endpointsOf(client, "web"))["web-1"]?.conditions.ready === true);

  // Graceful deletion: terminating, still serving, not ready; then gone once confirmed.
  await client.delete(resourcePath("pods", "default", "web-2"));
  const term = await eventually("web-2 terminating", async () => {
    const e = byName(await endpointsOf(client, "web"))["web-2"];
    return e?.conditions.terminating && e;
  });
  t.deepEqual(term.conditions, { ready: false, serving: true, terminating: true });
  await client.delete(resourcePath("pods", "default", "web-2"), { gracePeriodSeconds: 0 });
  await eventually("web-2 gone", async () => !byName(await endpointsOf(client, "web"))["web-2"]);

  // All along, the same slice object was updated rather than replaced.
  const after = await slicesOf(client, "web");
  t.is(after.length, 1);
  t.is(after[0].metadata.uid, slice.metadata.uid);
  t.deepEqual(after[0].endpoints.map((e) => e.targetRef!.name).sort(), ["web-0", "web-1"]);

  // A pod whose labels stop matching leaves the slice.
  await client.patch(resourcePath("pods", "default", "web-0"), { metadata: { labels: { app: "old" } } });
  await eventually("web-0 gone", async () => !byName(await endpointsOf(client, "web"))["web-0"]);
});

test("more than 100 endpoints make a second slice; none has more than 100", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), { metadata: { name: "big" }, spec: { selector: { app: "big" }, ports: [{ port: 80 }] } });
  for (let i = 0; i < 130; i++) await runningPod(client, "default", `big-${i}`, { labels: { app: "big" }, node: "n1", ip: `10.244.${Math.floor(i / 200)}.${(i % 200) + 2}` });
  const slices = await eventually("130 endpoints", async () => {
    const s = await slicesOf(client, "big");
    return s.reduce((n, x) => n + x.endpoints.length, 0) === 130 && s;
  });
  t.is(slices.length, 2);
  t.deepEqual(slices.map((s) => s.endpoints.length).sort((a, b) => a - b), [30, 100]);
  const addrs = slices.flatMap((s) => s.endpoints.map((e) => e.addresses[0]));
  t.is(new Set(addrs).size, 130, "each pod once");
  // Scaling down keeps the remaining endpoints where they are.
  for (let i = 0; i < 40; i++) await client.delete(resourcePath("pods", "default", `big-${i}`), { gracePeriodSeconds: 0 });
  const after = await eventually("90 endpoints", async () => {
    const s = await slicesOf(client, "big");
    return s.reduce((n, x) => n + x.endpoints.length, 0) === 90 && s;
  });
  t.true(after.every((s) => s.endpoints.length <= 100));
  t.true(after.every((s) => slices.some((old) => old.metadata.uid === s.metadata.uid)), "no slice was recreated");
});

test("named target ports are resolved per pod: different numbers, different slices", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), {
    metadata: { name: "named" },
    spec: { selector: { app: "n" }, ports: [{ name: "web", port: 80, targetPort: "http" }, { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 }] },
  });
  await runningPod(client, "default", "a", { labels: { app: "n" }, node: "n1", ip: "10.244.0.2", ports: [{ name: "http", containerPort: 8080 }] });
  await runningPod(client, "default", "b", { labels: { app: "n" }, node: "n1", ip: "10.244.0.3", ports: [{ name: "http", containerPort: 8080 }] });
  await runningPod(client, "default", "c", { labels: { app: "n" }, node: "n1", ip: "10.244.0.4", ports: [{ name: "http", containerPort: 9090 }] });
  await runningPod(client, "default", "d", { labels: { app: "n" }, node: "n1", ip: "10.244.0.5" }); // no port named http
  const slices = await eventually("4 endpoints", async () => {
    const s = await slicesOf(client, "named");
    return s.reduce((n, x) => n + x.endpoints.length, 0) === 4 && s;
  });
  const view = Object.fromEntries(slices.map((s) => [JSON.stringify(s.ports), s.endpoints.map((e) => e.targetRef!.name).sort()]));
  t.deepEqual(view, {
    [JSON.stringify([{ name: "dns", port: 5353, protocol: "UDP" }, { name: "web", port: 8080, protocol: "TCP" }])]: ["a", "b"],
    [JSON.stringify([{ name: "dns", port: 5353, protocol: "UDP" }, { name: "web", port: 9090, protocol: "TCP" }])]: ["c"],
    [JSON.stringify([{ name: "dns", port: 5353, protocol: "UDP" }])]: ["d"],
  });
});

test("publishNotReadyAddresses marks every endpoint ready; headless Services get slices with hostnames", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), {
    metadata: { name: "db" },
    spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: { app: "db" }, ports: [{ port: 5432 }] },
  });
  await runningPod(client, "default", "db-0", { labels: { app: "db" }, node: "n1", ip: "10.244.0.20", ready: false, hostname: "db-0", subdomain: "db" });
  await runningPod(client, "default", "db-1", { labels: { app: "db" }, node: "n2", ip: "10.244.1.20", ready: true, hostname: "db-1", subdomain: "elsewhere" });
  const [slice] = await eventually("2 endpoints", async () => {
    const s = await slicesOf(client, "db");
    return s.length === 1 && s[0].endpoints.length === 2 && s;
  });
  t.is(slice.metadata.labels?.["service.kubernetes.io/headless"], "");
  const eps = byName(slice.endpoints);
  t.deepEqual(eps["db-0"].conditions, { ready: true, serving: false, terminating: false });
  t.is(eps["db-0"].hostname, "db-0");
  t.is(eps["db-1"].hostname, undefined, "the hostname is published only when the subdomain is this Service");
  t.is(eps["db-1"].nodeName, "n2");
});

test("a Service without selector gets no slices; one with no pods gets an empty placeholder; a selector change moves endpoints", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), { metadata: { name: "manual" }, spec: { ports: [{ port: 80 }] } });
  await client.create(resourcePath("services", "default"), { metadata: { name: "empty" }, spec: { selector: { app: "nobody" }, ports: [{ port: 80 }] } });
  const [placeholder] = await eventually("placeholder", async () => {
    const s = await slicesOf(client, "empty");
    return s.length === 1 && s;
  });
  t.deepEqual(placeholder.endpoints, []);
  t.deepEqual(await slicesOf(client, "manual"), []);
  // The selector now matches a pod: the placeholder becomes its slice.
  await runningPod(client, "default", "p", { labels: { app: "somebody" }, node: "n1", ip: "10.244.0.7" });
  await client.patch(resourcePath("services", "default", "empty"), { spec: { selector: { app: "somebody" } } });
  const [filled] = await eventually("endpoint after selector change", async () => {
    const s = await slicesOf(client, "empty");
    return s.length === 1 && s[0].endpoints.length === 1 && s;
  });
  t.is(filled.metadata.uid, placeholder.metadata.uid);
  t.deepEqual(filled.ports, [{ name: "", port: 80, protocol: "TCP" }]);
  // Removing the selector removes the controller's slices.
  await client.patch(resourcePath("services", "default", "empty"), { spec: { selector: null } });
  await eventually("slices gone", async () => (await slicesOf(client, "empty")).length === 0);
  // A slice a user deletes is put back.
  await client.patch(resourcePath("services", "default", "empty"), { spec: { selector: { app: "somebody" } } });
  const [back] = await eventually("slice back", async () => {
    const s = await slicesOf(client, "empty");
    return s.length === 1 && s[0].endpoints.length === 1 && s;
  });
  await client.delete(resourcePath("endpointslices", "default", back.metadata.name));
  await eventually("slice recreated", async () => {
    const s = await slicesOf(client, "empty");
    return s.length === 1 && s[0].metadata.uid !== back.metadata.uid && s[0].endpoints.length === 1;
  });
  // Pods without an IP, or finished, are not endpoints.
  await client.create<Pod>(resourcePath("pods", "default"), { metadata: { name: "noip", labels: { app: "somebody" } }, spec: { nodeName: "n1", containers: [{ name: "c", image: "x" }] } });
  await runningPod(client, "default", "done", { labels: { app: "somebody" }, node: "n1", ip: "10.244.0.8" });
  await client.patch(resourcePath("pods", "default", "done"), { status: { phase: "Succeeded" } }, { subresource: "status" });
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual((await endpointsOf(client, "empty")).map((e) => e.targetRef!.name), ["p"]);
});
