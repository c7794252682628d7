// Names outside the cluster zone: forwarded to upstream servers the test runs (dns-packet servers
// on loopback), SERVFAIL when none answers, REFUSED when there is none; ExternalName targets
// completed upstream.
import test from "ava";
import dgram from "node:dgram";
import { Resolver as NodeResolver } from "node:dns/promises";
import { addresses, clusterIPService, externalNameService, ofType, startDns, startFakeUpstream } from "./helpers.ts";
import { parseUpstream } from "../../dns/forward.ts";

const Z = "cluster.local";

test("names outside the zone are forwarded; the answer comes back with the client's ID", async (t) => {
  const up = await startFakeUpstream(t, (q) =>
    q.name.toLowerCase() === "www.example.com" ? { answers: [{ name: q.name, type: "A", ttl: 300, data: "192.0.2.10" }] } : { rcode: 3 },
  );
  const dns = await startDns(t, { upstreams: [up] });
  dns.store.upsertService(clusterIPService("default", "web", ["10.96.0.20"]));
  const r = await dns.query("www.example.com", "A", { id: 31337 });
  t.is(r.id, 31337);
  t.is(r.rcode, "NOERROR");
  t.true(r.flag_ra);
  t.deepEqual(addresses(r), ["192.0.2.10"]);
  t.deepEqual(up.asked, [{ name: "www.example.com", type: "A", tcp: false }]);

  t.is((await dns.query("nothing.example.com", "A")).rcode, "NXDOMAIN"); // upstream's own NXDOMAIN
  // The cluster zone is never forwarded, not even its NXDOMAINs.
  t.is((await dns.query(`nope.default.svc.${Z}`, "A")).rcode, "NXDOMAIN");
  t.deepEqual(addresses(await dns.query(`web.default.svc.${Z}`, "A")), ["10.96.0.20"]);
  t.is(up.asked.length, 2);

  const node = new NodeResolver({ timeout: 3000, tries: 1 });
  node.setServers([`127.0.0.1:${dns.port}`]);
  t.deepEqual(await node.resolve4("www.example.com"), ["192.0.2.10"]);
});

test("a dead upstream is skipped for the next one; with none answering the client gets SERVFAIL", async (t) => {
  // An upstream that never answers: a socket that reads and keeps quiet.
  const silent = dgram.createSocket("udp4");
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
  t.teardown(() => silent.close());
  let silentGot = 0;
  silent.on("message", () => silentGot++);
  const good = await startFakeUpstream(t, (q) => ({ answers: [{ name: q.name, type: "A", ttl: 60, data: "198.51.100.7" }] }));

  const dns = await startDns(t, { upstreams: [{ host: "127.0.0.1", port: silent.address().port }, good], upstreamTimeoutMs: 300 });
  t.deepEqual(addresses(await dns.query("example.net", "A")), ["198.51.100.7"]);
  t.is(silentGot, 1);

  const alone = await startDns(t, { upstreams: [{ host: "127.0.0.1", port: silent.address().port }], upstreamTimeoutMs: 300 });
  const r = await alone.query("example.net", "A");
  t.is(r.rcode, "SERVFAIL");
  t.is(r.questions![0].name, "example.net");
});

test("without upstreams other names are REFUSED, recursion not offered", async (t) => {
  const dns = await startDns(t);
  for (const name of ["www.example.com", ".", "1.2.0.192.in-addr.arpa", "kubernetes.default.svc"]) {
    const r = await dns.query(name, "A");
    t.is(r.rcode, "REFUSED", name);
    t.false(r.flag_ra, name);
    t.deepEqual(r.answers, [], name);
  }
});

test("unknown reverse names go upstream; reverse names of the cluster are answered here", async (t) => {
  const up = await startFakeUpstream(t, (q) => ({ answers: [{ name: q.name, type: "PTR", ttl: 60, data: "host.example.com" }] }));
  const dns = await startDns(t, { upstreams: [up] });
  dns.store.upsertService(clusterIPService("default", "web", ["10.96.0.20"]));
  t.deepEqual(ofType(await dns.query("10.2.0.192.in-addr.arpa", "PTR"), "PTR").map((r) => r.data), ["host.example.com"]);
  t.deepEqual(ofType(await dns.query("20.0.96.10.in-addr.arpa", "PTR"), "PTR").map((r) => r.data), [`web.default.svc.${Z}`]);
  t.deepEqual(up.asked.map((a) => a.name), ["10.2.0.192.in-addr.arpa"]);
});

test("an ExternalName's target is completed upstream: CNAME then the target's addresses", async (t) => {
  const up = await startFakeUpstream(t, (q) => {
    if (q.name === "www.example.com" && q.type === "A") return { answers: [{ name: q.name, type: "A", ttl: 300, data: "192.0.2.53" }] };
    if (q.name === "www.example.com") return {}; // NODATA for other types
    return { rcode: 3 };
  });
  const dns = await startDns(t, { upstreams: [up] });
  dns.store.upsertService(externalNameService("default", "ext", "www.example.com"));
  dns.store.upsertService(externalNameService("default", "gone", "missing.example.com"));

  const r = await dns.query(`ext.default.svc.${Z}`, "A");
  t.is(r.rcode, "NOERROR");
  t.deepEqual(
    r.answers!.map((a) => [a.type, a.name, (a as { data: unknown }).data]),
    [
      ["CNAME", `ext.default.svc.${Z}`, "www.example.com"],
      ["A", "www.example.com", "192.0.2.53"],
    ],
  );
  const six = await dns.query(`ext.default.svc.${Z}`, "AAAA");
  t.deepEqual(six.answers!.map((a) => a.type), ["CNAME"]);

  // The chain ends in a name that does not exist: NXDOMAIN, with the CNAME (RFC 6604).
  const gone = await dns.query(`gone.default.svc.${Z}`, "A");
  t.is(gone.rcode, "NXDOMAIN");
  t.deepEqual(gone.answers!.map((a) => a.type), ["CNAME"]);

  const node = new NodeResolver({ timeout: 3000, tries: 1 });
  node.setServers([`127.0.0.1:${dns.port}`]);
  t.deepEqual(await node.resolve4(`ext.default.svc.${Z}`), ["192.0.2.53"]);
});

test("a truncated upstream answer: UDP clients get TC, TCP clients get the whole answer fetched over TCP", async (t) => {
  const many = Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`);
  const up = await startFakeUpstream(t, (q) => ({ truncate: true, answers: many.map((ip) => ({ name: q.name, type: "A" as const, ttl: 60, data: ip })) }));
  const dns = await startDns(t, { upstreams: [up] });
  const udp = await dns.query("many.example.com", "A");
  t.true(udp.flag_tc);
  const tcp = await dns.query("many.example.com", "A", { tcp: true });
  t.false(tcp.flag_tc);
  t.deepEqual(addresses(tcp), [...many].sort());
  t.deepEqual(up.asked.map((a) => a.tcp), [false, false, true]);
});

test("upstream addresses: IP, IP:PORT, [IPv6]:PORT, bare IPv6; bad ones are refused clearly", (t) => {
  t.deepEqual(parseUpstream("192.0.2.1"), { host: "192.0.2.1", port: 53 });
  t.deepEqual(parseUpstream("192.0.2.1:5353"), { host: "192.0.2.1", port: 5353 });
  t.deepEqual(parseUpstream("[2001:DB8::1]:54"), { host: "2001:db8::1", port: 54 });
  t.deepEqual(parseUpstream("2001:db8::1"), { host: "2001:db8::1", port: 53 });
  t.throws(() => parseUpstream("dns.example.com"), { message: /not IP\[:PORT\]/ });
  t.throws(() => parseUpstream("192.0.2.1:70000"), { message: /port must be 1-65535/ });
});
