// Answers follow add/update/delete events: Services changing type, endpoints becoming ready or
// going away, pods finishing, objects arriving in any order, many Services at once.
import test from "ava";
import { addresses, clusterIPService, endpointSlice, externalNameService, headlessService, ofType, pod, startDns } from "./helpers.ts";

const Z = "cluster.local";

test("an ExternalName Service changed to ClusterIP answers A instead of CNAME, and back", async (t) => {
  const dns = await startDns(t);
  dns.store.upsertService(externalNameService("default", "svc", "db.example.org"));
  const before = await dns.query(`svc.default.svc.${Z}`, "A");
  t.deepEqual(ofType(before, "CNAME").map((r) => r.data), ["db.example.org"]);
  t.deepEqual(addresses(before), []);

  dns.store.upsertService(clusterIPService("default", "svc", ["10.96.7.7"], [{ name: "http", port: 80 }]));
  const after = await dns.query(`svc.default.svc.${Z}`, "A");
  t.deepEqual(ofType(after, "CNAME"), []);
  t.deepEqual(addresses(after), ["10.96.7.7"]);
  t.is((await dns.query(`svc.default.svc.${Z}`, "CNAME")).answers!.length, 0);
  t.deepEqual(ofType(await dns.query("7.7.96.10.in-addr.arpa", "PTR"), "PTR").map((r) => r.data), [`svc.default.svc.${Z}`]);

  dns.store.upsertService(externalNameService("default", "svc", "other.example.org"));
  t.deepEqual(ofType(await dns.query(`svc.default.svc.${Z}`, "A"), "CNAME").map((r) => r.data), ["other.example.org"]);
  t.is((await dns.query(`_http._tcp.svc.default.svc.${Z}`, "SRV")).rcode, "NXDOMAIN");
  // The old ClusterIP's reverse name is no longer ours (and with no upstream, refused).
  t.is((await dns.query("7.7.96.10.in-addr.arpa", "PTR")).rcode, "REFUSED");
});

test("headless Service follows endpoint readiness", async (t) => {
  const dns = await startDns(t);
  const name = `hl.default.svc.${Z}`;
  dns.store.upsertService(headlessService("default", "hl", [{ name: "http", port: 80 }]));
  const ports = [{ name: "http", port: 8080, protocol: "TCP" as const }];
  dns.store.upsertEndpointSlice(endpointSlice("default", "hl", "hl-1", [{ ip: "10.244.0.2", hostname: "a", ready: false }, { ip: "10.244.0.3", hostname: "b", ready: false }], ports));
  t.is((await dns.query(name, "A")).rcode, "NXDOMAIN");
  t.is((await dns.query(`a.${name}`, "A")).rcode, "NXDOMAIN");

  dns.store.upsertEndpointSlice(endpointSlice("default", "hl", "hl-1", [{ ip: "10.244.0.2", hostname: "a", ready: true }, { ip: "10.244.0.3", hostname: "b", ready: false }], ports));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.0.2"]);
  t.deepEqual(addresses(await dns.query(`a.${name}`, "A")), ["10.244.0.2"]);
  t.is((await dns.query(`b.${name}`, "A")).rcode, "NXDOMAIN");
  // The SRV port is the endpoint's (the Service's targetPort).
  t.deepEqual(ofType(await dns.query(`_http._tcp.${name}`, "SRV"), "SRV").map((r) => `${r.data.target}:${r.data.port}`), [`a.${name}:8080`]);

  dns.store.upsertEndpointSlice(endpointSlice("default", "hl", "hl-1", [{ ip: "10.244.0.2", hostname: "a", ready: true }, { ip: "10.244.0.3", hostname: "b", ready: true }], ports));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.0.2", "10.244.0.3"]);
  t.is(ofType(await dns.query(`_http._tcp.${name}`, "SRV"), "SRV").length, 2);
  t.deepEqual(ofType(await dns.query("3.0.244.10.in-addr.arpa", "PTR"), "PTR").map((r) => r.data), [`b.${name}`]);

  dns.store.upsertEndpointSlice(endpointSlice("default", "hl", "hl-1", [{ ip: "10.244.0.2", hostname: "a", ready: false }, { ip: "10.244.0.3", hostname: "b", ready: true }], ports));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.0.3"]);
  t.is((await dns.query(`a.${name}`, "A")).rcode, "NXDOMAIN");
  t.is((await dns.query("2.0.244.10.in-addr.arpa", "PTR")).rcode, "REFUSED");
});

test("endpoints removed from a slice, then the slice deleted, then the Service deleted", async (t) => {
  const dns = await startDns(t);
  const name = `hl.ns1.svc.${Z}`;
  dns.store.upsertService(headlessService("ns1", "hl"));
  dns.store.upsertEndpointSlice(endpointSlice("ns1", "hl", "hl-a", [{ ip: "10.244.1.2" }, { ip: "10.244.1.3" }]));
  dns.store.upsertEndpointSlice(endpointSlice("ns1", "hl", "hl-b", [{ ip: "10.244.2.2" }]));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.1.2", "10.244.1.3", "10.244.2.2"]);

  dns.store.upsertEndpointSlice(endpointSlice("ns1", "hl", "hl-a", [{ ip: "10.244.1.3" }]));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.1.3", "10.244.2.2"]);
  t.is((await dns.query(`10-244-1-2.${name}`, "A")).rcode, "NXDOMAIN");

  dns.store.deleteEndpointSlice(endpointSlice("ns1", "hl", "hl-b", []));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.1.3"]);

  dns.store.deleteEndpointSlice(endpointSlice("ns1", "hl", "hl-a", []));
  t.is((await dns.query(name, "A")).rcode, "NXDOMAIN");

  dns.store.upsertService(clusterIPService("ns1", "web", ["10.96.1.1"]));
  t.is((await dns.query(`ns1.svc.${Z}`, "A")).rcode, "NOERROR");
  dns.store.deleteService(clusterIPService("ns1", "web", ["10.96.1.1"]));
  dns.store.deleteService(headlessService("ns1", "hl"));
  t.is((await dns.query(`web.ns1.svc.${Z}`, "A")).rcode, "NXDOMAIN");
  // With nothing left in it, the namespace's name is gone too.
  t.is((await dns.query(`ns1.svc.${Z}`, "A")).rcode, "NXDOMAIN");
  t.deepEqual(dns.store.stats(), { names: 0, services: 0, endpointSlices: 0, pods: 0 });
});

test("a slice that arrives before its Service is used when the Service comes", async (t) => {
  const dns = await startDns(t);
  dns.store.upsertEndpointSlice(endpointSlice("default", "late", "late-1", [{ ip: "10.244.5.5", hostname: "x" }]));
  t.is((await dns.query(`late.default.svc.${Z}`, "A")).rcode, "NXDOMAIN");
  dns.store.upsertService(headlessService("default", "late"));
  t.deepEqual(addresses(await dns.query(`x.late.default.svc.${Z}`, "A")), ["10.244.5.5"]);
  // A slice re-labelled to another Service leaves the first one.
  const moved = endpointSlice("default", "other", "late-1", [{ ip: "10.244.5.5", hostname: "x" }]);
  dns.store.upsertEndpointSlice(moved);
  t.is((await dns.query(`late.default.svc.${Z}`, "A")).rcode, "NXDOMAIN");
});

test("pod records follow pods: new IPs, finished pods, deletion", async (t) => {
  const dns = await startDns(t);
  const name = `10-244-3-3.team.pod.${Z}`;
  dns.store.upsertPod(pod("team", "p", []));
  t.is((await dns.query(name, "A")).rcode, "NXDOMAIN");
  dns.store.upsertPod(pod("team", "p", ["10.244.3.3", "fd00::3:3"]));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.3.3"]);
  t.deepEqual(addresses(await dns.query(`fd00--3-3.team.pod.${Z}`, "AAAA")), ["fd00::3:3"]);
  dns.store.upsertPod(pod("team", "p", ["10.244.3.3"], "Succeeded"));
  t.is((await dns.query(name, "A")).rcode, "NXDOMAIN");
  dns.store.upsertPod(pod("team", "q", ["10.244.3.3"]));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.3.3"]);
  // Two pods with one address (host-network pods share their node's): one record, not two.
  dns.store.upsertPod(pod("team", "r", ["10.244.3.3"]));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.3.3"]);
  dns.store.deletePod(pod("team", "q", []));
  t.deepEqual(addresses(await dns.query(name, "A")), ["10.244.3.3"]);
  dns.store.deletePod(pod("team", "r", []));
  t.is((await dns.query(name, "A")).rcode, "NXDOMAIN");
});

test("the SOA serial moves when records change and not when nothing changed", async (t) => {
  const dns = await startDns(t);
  const serial = async () => ofType(await dns.query(Z, "SOA"), "SOA")[0].data.serial as number;
  const s0 = await serial();
  const svc = clusterIPService("default", "web", ["10.96.0.20"]);
  dns.store.upsertService(svc);
  const s1 = await serial();
  t.not(s1, s0);
  dns.store.upsertService({ ...svc, metadata: { ...svc.metadata, resourceVersion: "999" } }); // same records
  t.is(await serial(), s1);
});

test("thousands of Services: each answers its own records; an update replaces only that Service's", async (t) => {
  const dns = await startDns(t);
  const N = 5000;
  for (let i = 0; i < N; i++) {
    dns.store.upsertService(clusterIPService(`ns${i % 50}`, `svc${i}`, [`10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`], [{ name: "http", port: 80 }]));
  }
  // A, PTR and SRV per Service.
  t.is(dns.store.stats().names, 3 * N);
  for (const i of [0, 1234, 4999]) {
    t.deepEqual(addresses(await dns.query(`svc${i}.ns${i % 50}.svc.${Z}`, "A")), [`10.96.${(i >> 8) & 255}.${i & 255}`]);
  }
  dns.store.upsertService(clusterIPService("ns34", "svc1234", ["10.100.0.1"], [{ name: "http", port: 80 }]));
  t.deepEqual(addresses(await dns.query(`svc1234.ns34.svc.${Z}`, "A")), ["10.100.0.1"]);
  t.is((await dns.query("210.4.96.10.in-addr.arpa", "PTR")).rcode, "REFUSED"); // old ClusterIP 10.96.4.210
  t.is(dns.store.stats().names, 3 * N);
  t.deepEqual(addresses(await dns.query(`svc1235.ns35.svc.${Z}`, "A")), ["10.96.4.211"]);
});
