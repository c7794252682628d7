// Name compression of encoded messages (dns/compress.ts): every message decodes (with
// dns-packet's decoder, which follows pointers) to exactly what the uncompressed one decodes to,
// is shorter whenever a name repeats, points only backwards into names written in full, and
// leaves SRV targets whole (RFC 2782).
import test from "ava";
import dnsPacket from "dns-packet";
import type { Packet } from "dns-packet";
import { compressNames, CompressError } from "../../dns/compress.ts";

const Z = "cluster.local";
const SVC = `web.shop.svc.${Z}`;

const PACKETS: Record<string, Packet> = {
  "A records of a headless Service": {
    type: "response",
    id: 7,
    flags: dnsPacket.AUTHORITATIVE_ANSWER,
    questions: [{ name: SVC, type: "A", class: "IN" }],
    answers: Array.from({ length: 10 }, (_, i) => ({ name: SVC, type: "A" as const, class: "IN" as const, ttl: 5, data: `10.244.1.${i + 2}` })),
  },
  "CNAME, then the target's address": {
    type: "response",
    id: 8,
    questions: [{ name: `ext.shop.svc.${Z}`, type: "A", class: "IN" }],
    answers: [
      { name: `ext.shop.svc.${Z}`, type: "CNAME", class: "IN", ttl: 5, data: `web.shop.svc.${Z}` },
      { name: SVC, type: "A", class: "IN", ttl: 5, data: "10.96.0.12" },
    ],
  },
  "NXDOMAIN with the zone's SOA": {
    type: "response",
    id: 9,
    flags: 3,
    questions: [{ name: `nope.shop.svc.${Z}`, type: "A", class: "IN" }],
    authorities: [{ name: Z, type: "SOA", class: "IN", ttl: 5, data: { mname: `ns.dns.${Z}`, rname: `hostmaster.${Z}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } }],
  },
  "SRV with addresses in the additional section, and EDNS0": {
    type: "response",
    id: 10,
    questions: [{ name: `_pg._tcp.db.default.svc.${Z}`, type: "SRV", class: "IN" }],
    answers: ["db-0", "db-1"].map((h) => ({ name: `_pg._tcp.db.default.svc.${Z}`, type: "SRV" as const, class: "IN" as const, ttl: 5, data: { priority: 0, weight: 50, port: 5432, target: `${h}.db.default.svc.${Z}` } })),
    additionals: [
      { name: `db-0.db.default.svc.${Z}`, type: "A", class: "IN", ttl: 5, data: "10.244.1.5" },
      { name: `db-1.db.default.svc.${Z}`, type: "AAAA", class: "IN", ttl: 5, data: "fd00:244::6" },
      { name: ".", type: "OPT", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
    ],
  },
  "PTR and MX": {
    type: "response",
    id: 11,
    questions: [{ name: "5.1.244.10.in-addr.arpa", type: "PTR", class: "IN" }],
    answers: [
      { name: "5.1.244.10.in-addr.arpa", type: "PTR", class: "IN", ttl: 5, data: `db-0.db.default.svc.${Z}` },
      { name: `mail.default.svc.${Z}`, type: "MX", class: "IN", ttl: 5, data: { preference: 10, exchange: `db-0.db.default.svc.${Z}` } },
      { name: `Web.Shop.svc.${Z}`, type: "TXT", class: "IN", ttl: 5, data: ["a.b", "c"] },
    ],
  },
  "a question alone": { type: "query", id: 12, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: "example.com", type: "AAAA", class: "IN" }] },
};

/** Offsets of every pointer in the message's names, checked to point backwards at a label. */
function pointersOf(msg: Uint8Array): { at: number; to: number }[] {
  const out: { at: number; to: number }[] = [];
  for (let i = 12; i + 1 < msg.length; i++) {
    if ((msg[i]! & 0xc0) === 0xc0) {
      const to = ((msg[i]! & 0x3f) << 8) | msg[i + 1]!;
      if (to < i && to >= 12) out.push({ at: i, to });
    }
  }
  return out;
}

for (const [what, packet] of Object.entries(PACKETS)) {
  test(`compressed, it decodes as before: ${what}`, (t) => {
    const full = dnsPacket.encode(packet);
    const small = compressNames(full);
    t.deepEqual(dnsPacket.decode(Buffer.from(small)), dnsPacket.decode(full));
    t.true(small.length <= full.length);
    if (what !== "a question alone") t.true(small.length < full.length, `${small.length} < ${full.length}`);
  });
}

test("ten A records of one name: the name is written once, then a two-byte pointer per record", (t) => {
  const full = dnsPacket.encode(PACKETS["A records of a headless Service"]!);
  const small = compressNames(full);
  // Header, the question in full (name, type, class), then 10 x (pointer 2 + fixed 10 + address 4).
  t.is(small.length, 12 + (SVC.length + 2) + 4 + 10 * 16);
  for (const p of pointersOf(small)) t.is(p.to, 12, "every answer points at the question's name");
});

test("SRV targets stay whole; names in SOA, CNAME, PTR and MX RDATA are compressed", (t) => {
  const srv = compressNames(dnsPacket.encode(PACKETS["SRV with addresses in the additional section, and EDNS0"]!));
  const text = Buffer.from(srv).toString("latin1");
  for (const h of ["db-0", "db-1"]) t.true(text.includes(`\x04${h}\x02db\x07default\x03svc\x07cluster\x05local\x00`), `${h}'s target in full`);
  const soa = dnsPacket.encode(PACKETS["NXDOMAIN with the zone's SOA"]!);
  t.true(compressNames(soa).length <= soa.length - (Z.length + 1) * 2, "mname and rname point at the zone");
});

test("a name in a different letter case is not taken for the same", (t) => {
  const p: Packet = { type: "response", id: 1, questions: [{ name: "WEB.shop", type: "A", class: "IN" }], answers: [{ name: "web.shop", type: "A", class: "IN", ttl: 5, data: "10.0.0.1" }] };
  const small = compressNames(dnsPacket.encode(p));
  const back = dnsPacket.decode(Buffer.from(small));
  t.is(back.questions![0]!.name, "WEB.shop");
  t.is(back.answers![0]!.name, "web.shop");
});

test("random names and records survive compression", (t) => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const label = () => Array.from({ length: 1 + rnd(12) }, () => "abcxyz-09"[rnd(9)]).join("").replace(/^-+|-+$/g, "") || "a";
  const name = () => Array.from({ length: 1 + rnd(4) }, label).join(".") + (rnd(2) ? `.${Z}` : "");
  for (let i = 0; i < 300; i++) {
    const answers = Array.from({ length: rnd(8) }, () => {
      switch (rnd(4)) {
        case 0:
          return { name: name(), type: "A" as const, class: "IN" as const, ttl: 5, data: `10.0.${rnd(255)}.${rnd(255)}` };
        case 1:
          return { name: name(), type: "CNAME" as const, class: "IN" as const, ttl: 5, data: name() };
        case 2:
          return { name: name(), type: "SRV" as const, class: "IN" as const, ttl: 5, data: { priority: 0, weight: 1, port: rnd(65535), target: name() } };
        default:
          return { name: name(), type: "PTR" as const, class: "IN" as const, ttl: 5, data: name() };
      }
    });
    const full = dnsPacket.encode({ type: "response", id: i, questions: [{ name: name(), type: "A", class: "IN" }], answers });
    t.deepEqual(dnsPacket.decode(Buffer.from(compressNames(full))), dnsPacket.decode(full));
  }
});

test("a message that is not what dns-packet writes is refused, not misread", (t) => {
  t.throws(() => compressNames(new Uint8Array(5)), { instanceOf: CompressError });
  const full = dnsPacket.encode(PACKETS["CNAME, then the target's address"]!);
  t.throws(() => compressNames(full.subarray(0, full.length - 3)), { instanceOf: CompressError });
  t.throws(() => compressNames(compressNames(full)), { instanceOf: CompressError }, "compressed already");
});
