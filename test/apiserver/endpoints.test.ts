// Core v1 Endpoints: validation and REST, the Endpoints controller (selector Services), the
// `kubernetes` Endpoints, and EndpointSlice mirroring (selector-less Services with hand-made Endpoints).
import test from "ava";
import { resourcePath, type ApiClient } from "../../apiserver/client.ts";
import type { Endpoints, EndpointSlice, Service } from "../../apiserver/types.ts";
import { apiError, eventually, runningPod, setPodStatus, startTestServer } from "./helpers.ts";

const MIRROR = "endpointslicemirroring-controller.k8s.io";
const getEp = (client: ApiClient, name: string, ns = "default") => client.get<Endpoints>(resourcePath("endpoints", ns, name));
const slicesOf = async (client: ApiClient, svc: string, ns = "default") =>
  (await client.list<EndpointSlice>(resourcePath("endpointslices", ns), { labelSelector: `kubernetes.io/service-name=${svc}` })).items;
const mirrorsOf = async (client: ApiClient, svc: string) => (await slicesOf(client, svc)).filter((s) => s.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] === MIRROR);
/** A compact view of subsets: "ip,ip|notready ip|name:port/proto,...". */
const view = (ep: Endpoints) =>
  (ep.subsets ?? []).map((s) =>
    [(s.addresses ?? []).map((a) => a.ip).join(","), (s.notReadyAddresses ?? []).map((a) => a.ip).join(","), (s.ports ?? []).map((p) => `${p.name}:${p.port}/${p.protocol}`).join(",")].join("|"),
  );

test("Endpoints are validated as Kubernetes validates them, with its field paths", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("endpoints", "default");
  const e = await apiError(
    client.create(path, {
      metadata: { name: "bad" },
      subsets: [
        { addresses: [{ ip: "10.0.0.1" }, { ip: "nope" }], notReadyAddresses: [{ ip: "127.0.0.1", hostname: "Bad_Host" }], ports: [{ port: 80 }, { name: "b", port: 70000, protocol: "ICMP" }] },
        { ports: [{ name: "x", port: 1 }] },
        { addresses: [{ ip: "169.254.1.1" }, { ip: "224.0.0.5" }, { ip: "0.0.0.0" }, { ip: "fe80::1" }, { ip: "10.1.1.1", nodeName: "Node_1" }] },
      ],
    }),
    422,
  );
  const causes = (e.body.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`);
  const LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  const SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  t.deepEqual(causes, [
    'subsets[0].addresses[1].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
    `subsets[0].notReadyAddresses[0].hostname: Invalid value: "Bad_Host": ${LABEL}`,
    'subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    "subsets[0].ports[0].name: Required value",
    "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
    'subsets[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
    'subsets[2].addresses[0].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
    'subsets[2].addresses[1].ip: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)',
    'subsets[2].addresses[2].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
    'subsets[2].addresses[3].ip: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
    `subsets[2].addresses[4].nodeName: Invalid value: "Node_1": ${SUBDOMAIN}`,
  ]);
  // Ordinary and IPv4-mapped addresses pass; a mapped loopback does not.
  await client.create(path, { metadata: { name: "ok" }, subsets: [{ addresses: [{ ip: "239.1.1.1" }, { ip: "2001:db8::5" }], ports: [{ port: 1 }] }] });
  const mapped = await apiError(client.create(path, { metadata: { name: "m" }, subsets: [{ addresses: [{ ip: "::ffff:127.0.0.1" }] }] }), 422);
  t.deepEqual(mapped.body.details?.causes?.map((c) => c.field), ["subsets[0].addresses[0].ip"]);
});

test("Endpoints REST: create defaults the protocol, get/list/update/delete, short name in discovery", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const created = await client.create<Endpoints>(resourcePath("endpoints", "default"), {
    metadata: { name: "ext" },
    subsets: [{ addresses: [{ ip: "192.0.2.10" }], ports: [{ port: 80 }] }],
  });
  t.is(created.kind, "Endpoints");
  t.is(created.apiVersion, "v1");
  t.deepEqual(created.subsets, [{ addresses: [{ ip: "192.0.2.10" }], ports: [{ port: 80, protocol: "TCP" }] }]);
  const list = await client.list<Endpoints>(resourcePath("endpoints", "default"));
  t.is(list.kind, "EndpointsList");
  t.deepEqual(list.items.map((e) => e.metadata.name), ["ext"]);
  created.subsets![0]!.addresses!.push({ ip: "192.0.2.11" });
  const updated = await client.update<Endpoints>(resourcePath("endpoints", "default", "ext"), created);
  t.deepEqual(updated.subsets![0]!.addresses!.map((a) => a.ip), ["192.0.2.10", "192.0.2.11"]);
  const disc = await client.get<{ resources: { name: string; kind: string; shortNames?: string[]; singularName: string }[] }>("/api/v1");
  t.like(disc.resources.find((r) => r.name === "endpoints"), { kind: "Endpoints", shortNames: ["ep"], singularName: "endpoints" });
  await client.delete(resourcePath("endpoints", "default", "ext"));
  await apiError(getEp(client, "ext"), 404);
});

test("the Endpoints controller follows the pods: ready, not ready, terminating, gone", async (t) => {
  const { client } = await startTestServer(t);
  await client.create<Service>(resourcePath("services", "default"), {
    metadata: { name: "web", labels: { team: "a" } },
    spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  });
  const empty = await eventually("an empty Endpoints", () => getEp(client, "web").catch(() => undefined));
  t.is(empty.subsets, undefined);
  t.deepEqual(empty.metadata.labels, { team: "a" });
  t.is(empty.metadata.ownerReferences, undefined, "upstream's Endpoints have no owner");

  await runningPod(client, "default", "web-1", { labels: { app: "web" }, node: "n1", ip: "10.244.0.11" });
  await runningPod(client, "default", "web-0", { labels: { app: "web" }, node: "n2", ip: "10.244.1.10" });
  await runningPod(client, "default", "web-2", { labels: { app: "web" }, node: "n1", ip: "10.244.0.12", ready: false });
  const ep = await eventually("3 addresses", async () => {
    const e = await getEp(client, "web");
    return view(e).join() === "10.244.0.11,10.244.1.10|10.244.0.12|http:8080/TCP" && e;
  });
  const a0 = ep.subsets![0]!.addresses![1]!;
  t.is(a0.nodeName, "n2");
  t.like(a0.targetRef, { kind: "Pod", namespace: "default", name: "web-0" });
  t.truthy(a0.targetRef?.uid);

  await setPodStatus(client, "default", "web-2", "10.244.0.12", true);
  await setPodStatus(client, "default", "web-1", "10.244.0.11", false);
  await eventually("readiness swapped", async () => view(await getEp(client, "web")).join() === "10.244.0.12,10.244.1.10|10.244.0.11|http:8080/TCP");

  // A terminating pod is left out at once, even before it is gone.
  await client.delete(resourcePath("pods", "default", "web-0"));
  await eventually("web-0 left out", async () => view(await getEp(client, "web")).join() === "10.244.0.12|10.244.0.11|http:8080/TCP");
  await client.delete(resourcePath("pods", "default", "web-1"), { gracePeriodSeconds: 0 });
  await eventually("web-1 gone", async () => view(await getEp(client, "web")).join() === "10.244.0.12||http:8080/TCP");

  // A deleted Endpoints of a selector Service comes back; the Service's deletion removes it.
  await client.delete(resourcePath("endpoints", "default", "web"));
  await eventually("recreated", async () => view(await getEp(client, "web").catch(() => ({ metadata: {} }) as Endpoints)).join() === "10.244.0.12||http:8080/TCP");
  await client.delete(resourcePath("services", "default", "web"));
  await eventually("removed with its Service", async () => (await getEp(client, "web").catch(() => undefined)) === undefined);
});

test("named ports resolve per pod and subsets are repacked as upstream's RepackSubsets", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), {
    metadata: { name: "named" },
    spec: { selector: { app: "n" }, ports: [{ name: "web", port: 80, targetPort: "http" }, { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 }] },
  });
  await runningPod(client, "default", "a", { labels: { app: "n" }, node: "n1", ip: "10.244.0.2", ports: [{ name: "http", containerPort: 8080 }] });
  await runningPod(client, "default", "b", { labels: { app: "n" }, node: "n1", ip: "10.244.0.3", ports: [{ name: "http", containerPort: 8080 }], ready: false });
  await runningPod(client, "default", "c", { labels: { app: "n" }, node: "n1", ip: "10.244.0.4", ports: [{ name: "http", containerPort: 9090 }] });
  await runningPod(client, "default", "d", { labels: { app: "n" }, node: "n1", ip: "10.244.0.5" }); // no port named http
  const ep = await eventually("4 pods in", async () => {
    const e = await getEp(client, "named");
    return (e.subsets ?? []).some((s) => s.ports?.some((p) => p.port === 9090)) && (e.subsets ?? []).some((s) => s.ports?.length === 1 && s.ports[0]!.port === 5353) && e;
  });
  // Per port, the addresses offering it; ports with the same addresses share a subset.
  t.deepEqual(view(ep), [
    "10.244.0.2,10.244.0.4,10.244.0.5|10.244.0.3|dns:5353/UDP",
    "10.244.0.2|10.244.0.3|web:8080/TCP",
    "10.244.0.4||web:9090/TCP",
  ]);
});

test("publishNotReadyAddresses publishes not-ready and terminating pods as ready; headless Services are labelled", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), {
    metadata: { name: "db" },
    spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: { app: "db" }, ports: [{ port: 5432 }] },
  });
  await runningPod(client, "default", "db-0", { labels: { app: "db" }, node: "n1", ip: "10.244.0.20", ready: false, hostname: "db-0", subdomain: "db" });
  await runningPod(client, "default", "db-1", { labels: { app: "db" }, node: "n1", ip: "10.244.0.21" });
  await client.delete(resourcePath("pods", "default", "db-1"));
  const ep = await eventually("2 ready addresses", async () => {
    const e = await getEp(client, "db");
    return view(e).join() === "10.244.0.20,10.244.0.21||:5432/TCP" && e;
  });
  t.is(ep.subsets![0]!.addresses![0]!.hostname, "db-0");
  t.deepEqual(ep.metadata.labels, { "service.kubernetes.io/headless": "" });
});

test("a selector-less Service's hand-made Endpoints are mirrored into EndpointSlices, kept in sync and removed", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("services", "default"), { metadata: { name: "ext" }, spec: { ports: [{ name: "http", port: 80 }] } });
  const made = await client.create<Endpoints>(resourcePath("endpoints", "default"), {
    metadata: { name: "ext", labels: { team: "b" }, annotations: { note: "by hand", "kubectl.kubernetes.io/last-applied-configuration": "{}" } },
    subsets: [
      { addresses: [{ ip: "192.0.2.10", nodeName: "n1" }], notReadyAddresses: [{ ip: "192.0.2.11" }], ports: [{ name: "http", port: 8080 }] },
      { addresses: [{ ip: "192.0.2.12" }, { ip: "2001:db8::1" }], ports: [{ name: "http", port: 8080 }] },
    ],
  });
  const slices = await eventually("2 mirrors", async () => {
    const s = await mirrorsOf(client, "ext");
    return s.length === 2 && s;
  });
  const v4 = slices.find((s) => s.addressType === "IPv4")!;
  const v6 = slices.find((s) => s.addressType === "IPv6")!;
  t.deepEqual(v4.metadata.labels, { team: "b", "kubernetes.io/service-name": "ext", "endpointslice.kubernetes.io/managed-by": MIRROR });
  t.deepEqual(v4.metadata.annotations, { note: "by hand" });
  t.deepEqual(v4.metadata.ownerReferences, [{ apiVersion: "v1", kind: "Endpoints", name: "ext", uid: made.metadata.uid!, controller: true, blockOwnerDeletion: true }]);
  t.regex(v4.metadata.name!, /^ext-/);
  t.deepEqual(v4.ports, [{ name: "http", port: 8080, protocol: "TCP" }]);
  t.deepEqual(v4.endpoints, [
    { addresses: ["192.0.2.10"], conditions: { ready: true }, nodeName: "n1" },
    { addresses: ["192.0.2.11"], conditions: { ready: false } },
    { addresses: ["192.0.2.12"], conditions: { ready: true } },
  ]);
  t.deepEqual(v6.endpoints, [{ addresses: ["2001:db8::1"], conditions: { ready: true } }]);

  // Updates follow, in place; a new port set makes its own slice.
  const cur = await getEp(client, "ext");
  cur.subsets = [
    { addresses: [{ ip: "192.0.2.13" }], ports: [{ name: "http", port: 8080 }] },
    { addresses: [{ ip: "192.0.2.14" }], ports: [{ name: "http", port: 9090 }] },
  ];
  await client.update(resourcePath("endpoints", "default", "ext"), cur);
  const after = await eventually("mirrors updated", async () => {
    const s = await mirrorsOf(client, "ext");
    const addrs = s.flatMap((x) => x.endpoints.map((e) => `${e.addresses[0]}:${x.ports![0]!.port}`)).sort();
    return addrs.join() === "192.0.2.13:8080,192.0.2.14:9090" && s;
  });
  t.true(after.some((s) => s.metadata.uid === v4.metadata.uid), "the IPv4 slice was updated, not replaced");

  // A mirror edited by someone else is put right.
  const edited = after.find((s) => s.metadata.uid === v4.metadata.uid)!;
  await client.update(resourcePath("endpointslices", "default", edited.metadata.name!), { ...edited, endpoints: [] });
  await eventually("mirror restored", async () => (await mirrorsOf(client, "ext")).some((s) => s.endpoints.length === 1 && s.endpoints[0]!.addresses[0] === "192.0.2.13"));

  // The EndpointSlice controller leaves mirrors alone; deleting the Endpoints removes them.
  await new Promise((r) => setTimeout(r, 200));
  t.is((await mirrorsOf(client, "ext")).length, 2);
  await client.delete(resourcePath("endpoints", "default", "ext"));
  await eventually("mirrors gone with the Endpoints", async () => (await slicesOf(client, "ext")).length === 0);
});

test("mirroring stops when the Service goes or gets a selector, and never touches selector Services or skip-mirror Endpoints", async (t) => {
  const { client } = await startTestServer(t);
  const mk = (name: string, labels?: Record<string, string>) =>
    client.create(resourcePath("endpoints", "default"), { metadata: { name, labels }, subsets: [{ addresses: [{ ip: "192.0.2.20" }], ports: [{ port: 80 }] }] });
  await client.create(resourcePath("services", "default"), { metadata: { name: "a" }, spec: { ports: [{ port: 80 }] } });
  await client.create(resourcePath("services", "default"), { metadata: { name: "b" }, spec: { ports: [{ port: 80 }] } });
  await client.create(resourcePath("services", "default"), { metadata: { name: "skip" }, spec: { ports: [{ port: 80 }] } });
  await mk("a");
  await mk("b");
  await mk("skip", { "endpointslice.kubernetes.io/skip-mirror": "true" });
  await mk("nosvc");
  await eventually("a and b mirrored", async () => (await mirrorsOf(client, "a")).length === 1 && (await mirrorsOf(client, "b")).length === 1);

  // b gets a selector: its mirror goes, and the Endpoints controller takes the Endpoints over.
  const b = await client.get<Service>(resourcePath("services", "default", "b"));
  await client.update(resourcePath("services", "default", "b"), { ...b, spec: { ...b.spec, selector: { app: "b" } } });
  await runningPod(client, "default", "b-0", { labels: { app: "b" }, node: "n1", ip: "10.244.0.30" });
  await eventually("b's Endpoints from its pod, unmirrored", async () => {
    const ep = await getEp(client, "b");
    const slices = await slicesOf(client, "b");
    return view(ep).join() === "10.244.0.30||:80/TCP" && slices.length === 1 && slices[0]!.metadata.labels?.["endpointslice.kubernetes.io/managed-by"] === "endpointslice-controller.k8s.io";
  });

  // a's Service goes: the mirror goes, and so does the Endpoints of its name (as upstream).
  await client.delete(resourcePath("services", "default", "a"));
  await eventually("a's mirror and Endpoints gone", async () => (await slicesOf(client, "a")).length === 0 && (await getEp(client, "a").catch(() => undefined)) === undefined);

  await new Promise((r) => setTimeout(r, 200));
  t.is((await slicesOf(client, "skip")).length, 0, "skip-mirror is honoured");
  t.is((await slicesOf(client, "nosvc")).length, 0, "no Service, no mirror");
  t.truthy(await getEp(client, "nosvc"), "Endpoints without a Service are only cleaned up at start, as upstream");
});

test("the kubernetes Endpoints follows --advertise-address and is not mirrored", async (t) => {
  const ts = await startTestServer(t, { advertiseAddress: "198.18.0.1", advertisePort: 6443 });
  const ep = await eventually("kubernetes Endpoints", () => getEp(ts.client, "kubernetes").catch(() => undefined));
  t.deepEqual(ep.subsets, [{ addresses: [{ ip: "198.18.0.1" }], ports: [{ name: "https", port: 6443, protocol: "TCP" }] }]);
  t.deepEqual(ep.metadata.labels, { "endpointslice.kubernetes.io/skip-mirror": "true" });
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual((await slicesOf(ts.client, "kubernetes")).map((s) => s.metadata.name), ["kubernetes"]);

  await ts.restart({ advertiseAddress: "198.18.0.2", advertisePort: 443 });
  const moved = await getEp(ts.client, "kubernetes");
  t.deepEqual(moved.subsets, [{ addresses: [{ ip: "198.18.0.2" }], ports: [{ name: "https", port: 443, protocol: "TCP" }] }]);
  await ts.restart({ advertiseAddress: undefined });
  await apiError(getEp(ts.client, "kubernetes"), 404);
});
