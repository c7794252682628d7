// The wire: TCP framing and pipelining, truncation and the retry over TCP, EDNS0, and malformed
// or unwanted messages, none of which may stop the server from answering the next client.
import test from "ava";
import { Resolver as NodeResolver } from "node:dns/promises";
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import { addresses, buildQuery, clusterIPService, decodeReply, endpointSlice, headlessService, ofType, startDns, tcpExchange, udpExchange, type TestDns } from "./helpers.ts";

const Z = "cluster.local";
const BIG = `big.default.svc.${Z}`;
const BIG_IPS = Array.from({ length: 60 }, (_, i) => `10.244.${i >> 8}.${(i & 255) + 1}`).sort();

async function withBigService(t: Parameters<typeof startDns>[0]): Promise<TestDns> {
  const dns = await startDns(t);
  dns.store.upsertService(clusterIPService("default", "web", ["10.96.0.20"]));
  dns.store.upsertService(headlessService("default", "big"));
  dns.store.upsertEndpointSlice(endpointSlice("default", "big", "big-1", BIG_IPS.map((ip) => ({ ip }))));
  return dns;
}

/** Sends raw datagrams from one socket, then a good query; resolves with every datagram received until its answer. */
function udpSequence(port: number, bad: Buffer[], good: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket("udp4");
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no answer to the good query; got ${got.length} datagrams`));
    }, 5000);
    sock.on("message", (m) => {
      got.push(m);
      if (m.length >= 2 && m.readUInt16BE(0) === good.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.close();
        resolve(got);
      }
    });
    sock.bind(0, "127.0.0.1", () => {
      for (const b of bad) sock.send(b, port, "127.0.0.1");
      sock.send(good, port, "127.0.0.1");
    });
  });
}

test("TCP: the same answers, several pipelined queries on one connection", async (t) => {
  const dns = await withBigService(t);
  const r = await dns.query(`web.default.svc.${Z}`, "A", { tcp: true });
  t.deepEqual(addresses(r), ["10.96.0.20"]);
  const q1 = buildQuery(`web.default.svc.${Z}`, "A", { id: 101 });
  const q2 = buildQuery(`nope.default.svc.${Z}`, "A", { id: 102 });
  const q3 = buildQuery(BIG, "A", { id: 103 });
  const answers = (await tcpExchange(dns.port, [q1, q2, q3])).map(decodeReply);
  const byId = new Map(answers.map((a) => [a.id, a]));
  t.deepEqual([...byId.keys()].sort(), [101, 102, 103]);
  t.deepEqual(addresses(byId.get(101)!), ["10.96.0.20"]);
  t.is(byId.get(102)!.rcode, "NXDOMAIN");
  t.deepEqual(addresses(byId.get(103)!), BIG_IPS);
});

test("TCP: a query split across segments is reassembled", async (t) => {
  const dns = await withBigService(t);
  const q = buildQuery(`web.default.svc.${Z}`, "A", { id: 7 });
  const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const sock = net.connect({ port: dns.port, host: "127.0.0.1" }, async () => {
      for (const byte of framed) {
        sock.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
    });
    let buf = Buffer.alloc(0);
    sock.on("error", reject);
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.destroy();
        resolve(buf.subarray(2));
      }
    });
  });
  t.deepEqual(addresses(decodeReply(reply)), ["10.96.0.20"]);
});

test("a UDP answer larger than 512 bytes is truncated (TC) and comes whole over TCP", async (t) => {
  const dns = await withBigService(t);
  const udp = await dns.query(BIG, "A");
  t.true(udp.flag_tc);
  t.is(udp.rcode, "NOERROR");
  t.deepEqual(udp.answers, []);
  t.is(udp.questions![0].name, BIG);

  const tcp = await dns.query(BIG, "A", { tcp: true });
  t.false(tcp.flag_tc);
  t.deepEqual(addresses(tcp), BIG_IPS);
});

test("EDNS0: a larger UDP size takes the whole answer; OPT is echoed; a too small size still means 512", async (t) => {
  const dns = await withBigService(t);
  const r = await dns.query(BIG, "A", { edns: 4096 });
  t.false(r.flag_tc);
  t.deepEqual(addresses(r), BIG_IPS);
  const opt = r.additionals!.filter((a) => a.type === "OPT");
  t.is(opt.length, 1);
  t.is((opt[0] as dnsPacket.OptAnswer).ednsVersion, 0);
  t.is((opt[0] as dnsPacket.OptAnswer).udpPayloadSize, 1232);

  const small = await dns.query(BIG, "A", { edns: 1000 });
  t.true(small.flag_tc);
  t.is(small.additionals!.filter((a) => a.type === "OPT").length, 1); // OPT survives truncation

  const tiny = await dns.query(`web.default.svc.${Z}`, "A", { edns: 100 });
  t.deepEqual(addresses(tiny), ["10.96.0.20"]);
  const none = await dns.query(`web.default.svc.${Z}`, "A");
  t.deepEqual(none.additionals, []); // no OPT in the query, none in the answer
});

test("EDNS0: an unknown version gets BADVERS; the DO bit is echoed", async (t) => {
  const dns = await withBigService(t);
  const bad = await dns.query(`web.default.svc.${Z}`, "A", { edns: 1232, ednsVersion: 1 });
  const opt = bad.additionals!.find((a) => a.type === "OPT") as dnsPacket.OptAnswer;
  t.is(opt.extendedRcode, 1); // BADVERS = 16: upper bits 1, header rcode 0
  t.is(bad.rcode, "NOERROR");
  t.deepEqual(bad.answers, []);
  const dok = await dns.query(`web.default.svc.${Z}`, "A", { edns: 1232, dnssecOk: true });
  t.true((dok.additionals!.find((a) => a.type === "OPT") as dnsPacket.OptAnswer).flag_do);
});

test("node's resolver retries a truncated answer over TCP by itself", async (t) => {
  const dns = await withBigService(t);
  const r = new NodeResolver({ timeout: 3000, tries: 1 });
  r.setServers([`127.0.0.1:${dns.port}`]);
  t.deepEqual((await r.resolve4(BIG)).sort(), BIG_IPS);
});

test("malformed UDP messages get FORMERR or nothing, and the next query is answered", async (t) => {
  const dns = await withBigService(t);
  const good = buildQuery(`web.default.svc.${Z}`, "A", { id: 4242 });
  const header = (id: number, flags: number, qd: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(id, 0);
    b.writeUInt16BE(flags, 2);
    b.writeUInt16BE(qd, 4);
    return b;
  };
  const cases: { what: string; msg: Buffer; rcode?: string }[] = [
    { what: "5 bytes", msg: Buffer.from([1, 2, 3, 4, 5]) },
    { what: "an answer, not a query", msg: dnsPacket.encode({ type: "response", id: 11, questions: [{ name: `web.default.svc.${Z}`, type: "A" }] }) },
    { what: "question count 1, no question", msg: header(12, 0x0100, 1), rcode: "FORMERR" },
    { what: "no question", msg: header(13, 0x0100, 0), rcode: "FORMERR" },
    { what: "two questions", msg: dnsPacket.encode({ type: "query", id: 14, questions: [{ name: "a.cluster.local", type: "A" }, { name: "b.cluster.local", type: "A" }] }), rcode: "FORMERR" },
    { what: "a 64-byte label", msg: Buffer.concat([header(15, 0, 1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), rcode: "FORMERR" },
    { what: "a compression pointer loop", msg: Buffer.concat([header(16, 0, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), rcode: "FORMERR" },
    { what: "a truncated question", msg: Buffer.concat([header(17, 0, 1), Buffer.from([3, 0x77, 0x65])]), rcode: "FORMERR" },
    { what: "opcode NOTIFY", msg: Buffer.concat([header(18, 4 << 11, 1), Buffer.from([0, 0, 6, 0, 1])]), rcode: "NOTIMP" },
    { what: "two OPT records", msg: Buffer.concat([header(19, 0, 1), Buffer.from([0, 0, 1, 0, 1])]), rcode: "FORMERR" },
  ];
  // Two OPT records: fix up that case's additional count and append them.
  const opt = Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
  const twoOpt = cases.find((c) => c.what === "two OPT records")!;
  twoOpt.msg.writeUInt16BE(2, 10);
  twoOpt.msg = Buffer.concat([twoOpt.msg, opt, opt]);

  const got = await udpSequence(dns.port, cases.map((c) => c.msg), good);
  const replies = got.map(decodeReply);
  const byId = new Map(replies.map((r) => [r.id, r]));
  t.deepEqual(addresses(byId.get(4242)!), ["10.96.0.20"]);
  for (const c of cases) {
    const id = c.msg.length >= 2 ? c.msg.readUInt16BE(0) : -1;
    if (c.rcode) {
      t.is(byId.get(id)?.rcode, c.rcode, c.what);
      t.true(byId.get(id)?.flag_qr, c.what);
    } else {
      t.false(byId.has(id), `${c.what}: no answer`);
    }
  }
  t.is(replies.length, cases.filter((c) => c.rcode).length + 1);
});

test("classes other than IN are refused; a class the codec cannot name is NOTIMP", async (t) => {
  const dns = await withBigService(t);
  t.is((await dns.query("version.bind", "TXT", { klass: "CH" })).rcode, "REFUSED");
  t.is((await dns.query(`web.default.svc.${Z}`, "A", { klass: "CH" })).rcode, "REFUSED");
  const q = buildQuery(`web.default.svc.${Z}`, "A", { id: 77 });
  q.writeUInt16BE(7, q.length - 2); // class 7
  const r = decodeReply(await udpExchange(dns.port, q));
  t.is(r.rcode, "NOTIMP");
  t.is(r.id, 77);
});

test("random garbage never stops the server", async (t) => {
  const dns = await withBigService(t);
  const sock = dgram.createSocket("udp4");
  t.teardown(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const valid = buildQuery(`web.default.svc.${Z}`, "SRV", { edns: 1232 });
  // Batches small enough for the socket buffer, each followed by a query that must be answered.
  for (let batch = 0; batch < 40; batch++) {
    for (let i = 0; i < 50; i++) {
      // Half pure noise, half a real query with a few bytes flipped (past the header's QR bit).
      const msg = i % 2 ? Buffer.from(Array.from({ length: rand() % 80 }, () => rand() & 255)) : Buffer.from(valid);
      if (i % 2 === 0) for (let k = 0; k < 3; k++) msg[3 + (rand() % (msg.length - 3))] = rand() & 255;
      if (msg.length > 2) msg[2] &= 0x7f; // keep it a query so that it is parsed
      sock.send(msg, dns.port, "127.0.0.1");
    }
    t.deepEqual(addresses(await dns.query(`web.default.svc.${Z}`, "A")), ["10.96.0.20"], `after batch ${batch}`);
  }
  t.deepEqual(addresses(await dns.query(`web.default.svc.${Z}`, "A", { tcp: true })), ["10.96.0.20"]);
});

test("malformed TCP: garbage in a frame gets FORMERR; a frame too short to be DNS closes the connection", async (t) => {
  const dns = await withBigService(t);
  const garbage = Buffer.concat([Buffer.from([0, 99, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([0xc0, 0xff, 1, 2])]);
  const [formerr] = await tcpExchange(dns.port, [garbage]);
  t.is(decodeReply(formerr).rcode, "FORMERR");
  t.is(decodeReply(formerr).id, 99);

  const closed = await tcpExchange(dns.port, [Buffer.from([1, 2, 3])], 1);
  t.deepEqual(closed, []); // closed without an answer

  // A client that half-closes right after its query still gets the answer.
  const q = buildQuery(`web.default.svc.${Z}`, "A", { id: 5 });
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const sock = net.connect({ port: dns.port, host: "127.0.0.1", allowHalfOpen: true }, () => {
      sock.end(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]));
    });
    let buf = Buffer.alloc(0);
    sock.on("data", (c: Buffer) => (buf = Buffer.concat([buf, c])));
    sock.on("error", reject);
    sock.on("close", () => resolve(buf.subarray(2)));
  });
  t.deepEqual(addresses(decodeReply(reply)), ["10.96.0.20"]);
  t.deepEqual(ofType(await dns.query(`web.default.svc.${Z}`, "A", { tcp: true }), "A").length, 1);
});
