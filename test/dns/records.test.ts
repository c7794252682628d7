// Every record kind of the Kubernetes DNS specification, asked over UDP of a server fed with
// synthetic Services, EndpointSlices and Pods; NXDOMAIN versus NODATA; names in any case.
import test from "ava";
import { Resolver as NodeResolver } from "node:dns/promises";
import { addresses, clusterIPService, endpointSlice, externalNameService, headlessService, ofType, pod, startDns, type TestDns } from "./helpers.ts";

const Z = "cluster.local";

/** A server with one of everything in namespace "default" (and a little in "other"). */
async function cluster(t: Parameters<typeof startDns>[0]): Promise<TestDns> {
  const dns = await startDns(t, { ttl: 7 });
  const s = dns.store;
  s.upsertService(clusterIPService("default", "web", ["10.96.0.20"], [{ name: "http", port: 80, protocol: "TCP" }, { port: 8080, protocol: "TCP" }, { name: "dns", port: 53, protocol: "UDP" }]));
  s.upsertService(clusterIPService("default", "dual", ["10.96.0.30", "fd00:96::30"], [{ name: "https", port: 443 }]));
  s.upsertService(headlessService("default", "db", [{ name: "pg", port: 5432, protocol: "TCP" }]));
  s.upsertEndpointSlice(
    endpointSlice(
      "default",
      "db",
      "db-abc",
      [
        { ip: "10.244.1.5", hostname: "db-0" },
        { ip: "10.244.2.6", hostname: "db-1" },
        { ip: "10.244.3.7" }, // no hostname: named after its address
        { ip: "10.244.4.8", hostname: "db-3", ready: false },
      ],
      [{ name: "pg", port: 5432, protocol: "TCP" }],
    ),
  );
  s.upsertEndpointSlice(endpointSlice("default", "db", "db-v6", [{ ip: "fd00:244::5", hostname: "db-0" }], [{ name: "pg", port: 5432, protocol: "TCP" }], "IPv6"));
  s.upsertService(externalNameService("default", "ext", "www.example.com"));
  s.upsertService(externalNameService("default", "alias", `web.default.svc.${Z}`));
  s.upsertPod(pod("default", "p1", ["10.244.1.5"]));
  s.upsertPod(pod("default", "p6", ["fd00:244::9"]));
  s.upsertService(clusterIPService("other", "api", ["10.96.5.5"]));
  return dns;
}

test("ClusterIP Service: A record with the configured TTL, authoritative; AAAA is NODATA with the SOA", async (t) => {
  const dns = await cluster(t);
  const a = await dns.query(`web.default.svc.${Z}`, "A");
  t.is(a.rcode, "NOERROR");
  t.true(a.flag_aa);
  t.deepEqual(addresses(a), ["10.96.0.20"]);
  t.is(a.answers![0].name, `web.default.svc.${Z}`);
  t.is((a.answers![0] as { ttl: number }).ttl, 7);

  const aaaa = await dns.query(`web.default.svc.${Z}`, "AAAA");
  t.is(aaaa.rcode, "NOERROR");
  t.deepEqual(aaaa.answers, []);
  const soa = ofType(aaaa, "SOA", "authorities");
  t.is(soa.length, 1);
  t.is(soa[0].name, Z);
  t.is(soa[0].data.minimum, 7);
});

test("dual-stack ClusterIP Service answers both A and AAAA", async (t) => {
  const dns = await cluster(t);
  t.deepEqual(addresses(await dns.query(`dual.default.svc.${Z}`, "A")), ["10.96.0.30"]);
  t.deepEqual(addresses(await dns.query(`dual.default.svc.${Z}`, "AAAA")), ["fd00:96::30"]);
});

test("SRV for named ports targets the Service name, with its addresses in the additional section", async (t) => {
  const dns = await cluster(t);
  const r = await dns.query(`_http._tcp.web.default.svc.${Z}`, "SRV");
  t.is(r.rcode, "NOERROR");
  const srv = ofType(r, "SRV");
  t.is(srv.length, 1);
  t.is(srv[0].data.port, 80);
  t.is(srv[0].data.target, `web.default.svc.${Z}`);
  t.deepEqual(addresses(r, "additionals"), ["10.96.0.20"]);

  const udp = ofType(await dns.query(`_dns._udp.web.default.svc.${Z}`, "SRV"), "SRV");
  t.deepEqual(udp.map((s) => s.data.port), [53]);

  const dual = await dns.query(`_https._tcp.dual.default.svc.${Z}`, "SRV");
  t.deepEqual(addresses(dual, "additionals"), ["10.96.0.30", "fd00:96::30"]);

  // No SRV for an unnamed port, or for a protocol the port does not use.
  t.is((await dns.query(`_8080._tcp.web.default.svc.${Z}`, "SRV")).rcode, "NXDOMAIN");
  t.is((await dns.query(`_http._udp.web.default.svc.${Z}`, "SRV")).rcode, "NXDOMAIN");
  // _tcp.<svc> holds SRV names below it: it exists, with no data (NODATA, not NXDOMAIN).
  const ent = await dns.query(`_tcp.web.default.svc.${Z}`, "SRV");
  t.is(ent.rcode, "NOERROR");
  t.deepEqual(ent.answers, []);
});

test("headless Service: one A per ready endpoint, hostname records, SRV per endpoint, PTR", async (t) => {
  const dns = await cluster(t);
  const a = await dns.query(`db.default.svc.${Z}`, "A");
  t.is(a.rcode, "NOERROR");
  t.deepEqual(addresses(a), ["10.244.1.5", "10.244.2.6", "10.244.3.7"]); // 10.244.4.8 is not ready
  t.deepEqual(addresses(await dns.query(`db.default.svc.${Z}`, "AAAA")), ["fd00:244::5"]);

  t.deepEqual(addresses(await dns.query(`db-0.db.default.svc.${Z}`, "A")), ["10.244.1.5"]);
  t.deepEqual(addresses(await dns.query(`db-0.db.default.svc.${Z}`, "AAAA")), ["fd00:244::5"]);
  t.deepEqual(addresses(await dns.query(`db-1.db.default.svc.${Z}`, "A")), ["10.244.2.6"]);
  t.deepEqual(addresses(await dns.query(`10-244-3-7.db.default.svc.${Z}`, "A")), ["10.244.3.7"]);
  t.is((await dns.query(`db-3.db.default.svc.${Z}`, "A")).rcode, "NXDOMAIN"); // not ready

  const srv = await dns.query(`_pg._tcp.db.default.svc.${Z}`, "SRV");
  const targets = ofType(srv, "SRV").map((s) => `${s.data.target}:${s.data.port}`).sort();
  t.deepEqual(targets, [`10-244-3-7.db.default.svc.${Z}:5432`, `db-0.db.default.svc.${Z}:5432`, `db-1.db.default.svc.${Z}:5432`]);
  // With names compressed, the three targets and their four addresses fit in 512 bytes (written
  // in full they did not, and the addresses were dropped); with EDNS0 they come along as well.
  t.false(srv.flag_tc);
  t.deepEqual(addresses(srv, "additionals"), ["10.244.1.5", "10.244.2.6", "10.244.3.7", "fd00:244::5"]);
  const big = await dns.query(`_pg._tcp.db.default.svc.${Z}`, "SRV", { edns: 4096 });
  t.is(ofType(big, "SRV").length, 3);
  t.deepEqual(addresses(big, "additionals"), ["10.244.1.5", "10.244.2.6", "10.244.3.7", "fd00:244::5"]);

  const ptr = await dns.query("5.1.244.10.in-addr.arpa", "PTR");
  t.is(ptr.rcode, "NOERROR");
  t.deepEqual(ofType(ptr, "PTR").map((p) => p.data), [`db-0.db.default.svc.${Z}`]);
  t.deepEqual(ofType(await dns.query("7.3.244.10.in-addr.arpa", "PTR"), "PTR").map((p) => p.data), [`10-244-3-7.db.default.svc.${Z}`]);
  const v6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa"; // fd00:244::5
  t.deepEqual(ofType(await dns.query(v6, "PTR"), "PTR").map((p) => p.data), [`db-0.db.default.svc.${Z}`]);
  t.is((await dns.query("8.4.244.10.in-addr.arpa", "PTR")).rcode, "REFUSED"); // not ready: not ours
});

test("headless Service without ready endpoints is NXDOMAIN; publishNotReadyAddresses publishes them all", async (t) => {
  const dns = await cluster(t);
  dns.store.upsertService(headlessService("default", "empty"));
  dns.store.upsertEndpointSlice(endpointSlice("default", "empty", "empty-1", [{ ip: "10.244.9.9", ready: false }]));
  const r = await dns.query(`empty.default.svc.${Z}`, "A");
  t.is(r.rcode, "NXDOMAIN");
  t.is(ofType(r, "SOA", "authorities").length, 1);

  dns.store.upsertService(headlessService("default", "empty", [], { publishNotReadyAddresses: true }));
  t.deepEqual(addresses(await dns.query(`empty.default.svc.${Z}`, "A")), ["10.244.9.9"]);
});

test("ExternalName Service is a CNAME; an in-zone target is followed in the same answer", async (t) => {
  const dns = await cluster(t);
  const r = await dns.query(`ext.default.svc.${Z}`, "A");
  t.is(r.rcode, "NOERROR");
  t.deepEqual(
    r.answers!.map((a) => [a.type, a.name, (a as { data: unknown }).data]),
    [["CNAME", `ext.default.svc.${Z}`, "www.example.com"]],
  );
  const c = await dns.query(`ext.default.svc.${Z}`, "CNAME");
  t.deepEqual(ofType(c, "CNAME").map((a) => a.data), ["www.example.com"]);

  const alias = await dns.query(`alias.default.svc.${Z}`, "A");
  t.deepEqual(
    alias.answers!.map((a) => [a.type, a.name, (a as { data: unknown }).data]),
    [
      ["CNAME", `alias.default.svc.${Z}`, `web.default.svc.${Z}`],
      ["A", `web.default.svc.${Z}`, "10.96.0.20"],
    ],
  );
});

test("pod A/AAAA records a-b-c-d.<ns>.pod.<zone>, verified against the pods of that namespace", async (t) => {
  const dns = await cluster(t);
  t.deepEqual(addresses(await dns.query(`10-244-1-5.default.pod.${Z}`, "A")), ["10.244.1.5"]);
  // IPv6 with dashes, compressed or not.
  t.deepEqual(addresses(await dns.query(`fd00-244--9.default.pod.${Z}`, "AAAA")), ["fd00:244::9"]);
  const long = await dns.query(`fd00-0244-0-0-0-0-0-9.default.pod.${Z}`, "AAAA");
  t.deepEqual(addresses(long), ["fd00:244::9"]);
  t.is(long.answers![0].name, `fd00-0244-0-0-0-0-0-9.default.pod.${Z}`);

  t.is((await dns.query(`10-244-1-5.default.pod.${Z}`, "AAAA")).rcode, "NOERROR"); // exists, no AAAA
  t.deepEqual((await dns.query(`10-244-1-5.default.pod.${Z}`, "AAAA")).answers, []);
  t.is((await dns.query(`10-244-1-5.other.pod.${Z}`, "A")).rcode, "NXDOMAIN"); // no such pod there
  t.is((await dns.query(`10-244-1-99.default.pod.${Z}`, "A")).rcode, "NXDOMAIN");
  t.is((await dns.query(`not-an-ip.default.pod.${Z}`, "A")).rcode, "NXDOMAIN");
});

test("PTR records for IPv4 and IPv6 ClusterIPs", async (t) => {
  const dns = await cluster(t);
  const v4 = await dns.query("20.0.96.10.in-addr.arpa", "PTR");
  t.true(v4.flag_aa);
  t.deepEqual(ofType(v4, "PTR").map((p) => p.data), [`web.default.svc.${Z}`]);
  const nibbles = "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa";
  t.deepEqual(ofType(await dns.query(nibbles, "PTR"), "PTR").map((p) => p.data), [`dual.default.svc.${Z}`]);
  // The reverse name exists; another type is NODATA.
  const other = await dns.query("20.0.96.10.in-addr.arpa", "A");
  t.is(other.rcode, "NOERROR");
  t.deepEqual(other.answers, []);
});

test("dns-version TXT, the zone's SOA and NS", async (t) => {
  const dns = await cluster(t);
  const v = await dns.query(`dns-version.${Z}`, "TXT");
  t.deepEqual(ofType(v, "TXT").map((r) => (r.data as Buffer[]).map(String)), [["1.1.0"]]);
  const soa = await dns.query(Z, "SOA");
  t.is(ofType(soa, "SOA")[0].data.mname, `ns.dns.${Z}`);
  t.deepEqual(ofType(await dns.query(Z, "NS"), "NS").map((r) => r.data), [`ns.dns.${Z}`]);
  // The name server's address is the kube-dns Service's.
  t.is((await dns.query(`ns.dns.${Z}`, "A")).rcode, "NXDOMAIN");
  dns.store.upsertService(clusterIPService("kube-system", "kube-dns", ["10.96.0.10"], [{ name: "dns", port: 53, protocol: "UDP" }]));
  t.deepEqual(addresses(await dns.query(`ns.dns.${Z}`, "A")), ["10.96.0.10"]);
});

test("NXDOMAIN under the zone for names that do not exist, with the SOA; NODATA for names that do", async (t) => {
  const dns = await cluster(t);
  for (const name of [
    `nope.default.svc.${Z}`,
    `web.nosuchns.svc.${Z}`,
    `nosuchns.svc.${Z}`,
    `foo.${Z}`,
    `x.web.default.svc.${Z}`,
    // What a client's search list makes of names that were already complete:
    `web.default.svc.${Z}.default.svc.${Z}`,
    `web.default.svc.${Z}.svc.${Z}`,
    `web.default.svc.${Z}.${Z}`,
    `www.example.com.default.svc.${Z}`,
  ]) {
    const r = await dns.query(name, "A");
    t.is(r.rcode, "NXDOMAIN", name);
    t.true(r.flag_aa, name);
    t.deepEqual(r.answers, [], name);
    t.deepEqual(ofType(r, "SOA", "authorities").map((s) => s.name), [Z], name);
  }
  // Empty non-terminals and names with other types: NOERROR, no answers, SOA.
  for (const [name, type] of [
    [`svc.${Z}`, "A"],
    [`pod.${Z}`, "A"],
    [`default.svc.${Z}`, "A"],
    [`other.svc.${Z}`, "A"],
    [`default.pod.${Z}`, "A"],
    [`web.default.svc.${Z}`, "TXT"],
    [`web.default.svc.${Z}`, "MX"],
    [`dns-version.${Z}`, "A"],
    [Z, "A"],
  ]) {
    const r = await dns.query(name, type);
    t.is(r.rcode, "NOERROR", `${name} ${type}`);
    t.deepEqual(r.answers, [], `${name} ${type}`);
    t.is(ofType(r, "SOA", "authorities").length, 1, `${name} ${type}`);
  }
});

test("names are case-insensitive and answers keep the question's spelling", async (t) => {
  const dns = await cluster(t);
  const r = await dns.query(`WeB.DeFault.SVC.Cluster.Local`, "A");
  t.deepEqual(addresses(r), ["10.96.0.20"]);
  t.is(r.answers![0].name, "WeB.DeFault.SVC.Cluster.Local");
  t.is(r.questions![0].name, "WeB.DeFault.SVC.Cluster.Local");
  t.deepEqual(addresses(await dns.query(`DB-0.DB.default.svc.${Z.toUpperCase()}`, "A")), ["10.244.1.5"]);
  t.deepEqual(ofType(await dns.query(`_HTTP._TCP.web.default.svc.${Z}`, "SRV"), "SRV").length, 1);
  t.deepEqual(ofType(await dns.query("20.0.96.10.IN-ADDR.ARPA", "PTR"), "PTR").length, 1);
  t.deepEqual(addresses(await dns.query(`FD00-244--9.default.POD.${Z}`, "AAAA")), ["fd00:244::9"]);
});

test("ANY returns every record at the name; zone transfers are refused", async (t) => {
  const dns = await cluster(t);
  t.deepEqual(addresses(await dns.query(`dual.default.svc.${Z}`, "ANY")), ["10.96.0.30", "fd00:96::30"]);
  t.is((await dns.query(Z, "AXFR", { tcp: true })).rcode, "REFUSED");
});

test("a server that has not synced yet answers SERVFAIL, never a cacheable NXDOMAIN", async (t) => {
  const dns = await startDns(t, { synced: false });
  t.is((await dns.query(`web.default.svc.${Z}`, "A")).rcode, "SERVFAIL");
  dns.store.upsertService(clusterIPService("default", "web", ["10.96.0.20"]));
  dns.store.synced = true;
  t.deepEqual(addresses(await dns.query(`web.default.svc.${Z}`, "A")), ["10.96.0.20"]);
});

test("another cluster domain is honoured", async (t) => {
  const dns = await startDns(t, { zone: "Corp.Example." });
  dns.store.upsertService(clusterIPService("default", "web", ["10.96.0.20"]));
  t.deepEqual(addresses(await dns.query("web.default.svc.corp.example", "A")), ["10.96.0.20"]);
  t.is((await dns.query(`web.default.svc.${Z}`, "A")).rcode, "REFUSED"); // not ours, no upstream
});

test("node's resolver (c-ares) reads the answers: A, AAAA, SRV, CNAME, PTR, TXT", async (t) => {
  const dns = await cluster(t);
  const r = new NodeResolver({ timeout: 3000, tries: 1 });
  r.setServers([`127.0.0.1:${dns.port}`]);
  t.deepEqual(await r.resolve4(`web.default.svc.${Z}`), ["10.96.0.20"]);
  t.deepEqual(await r.resolve6(`dual.default.svc.${Z}`), ["fd00:96::30"]);
  t.deepEqual((await r.resolve4(`db.default.svc.${Z}`)).sort(), ["10.244.1.5", "10.244.2.6", "10.244.3.7"]);
  const srv = await r.resolveSrv(`_http._tcp.web.default.svc.${Z}`);
  t.deepEqual(srv.map((s) => [s.name, s.port]), [[`web.default.svc.${Z}`, 80]]);
  t.deepEqual(await r.resolveCname(`ext.default.svc.${Z}`), ["www.example.com"]);
  t.deepEqual(await r.reverse("10.96.0.20"), [`web.default.svc.${Z}`]);
  t.deepEqual(await r.resolveTxt(`dns-version.${Z}`), [["1.1.0"]]);
  const missing = await r.resolve4(`nope.default.svc.${Z}`).catch((e: NodeJS.ErrnoException) => e.code);
  t.is(missing, "ENOTFOUND");
  const nodata = await r.resolve6(`web.default.svc.${Z}`).catch((e: NodeJS.ErrnoException) => e.code);
  t.is(nodata, "ENODATA");
});
