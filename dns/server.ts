// The DNS server: UDP and TCP (RFC 7766 framing, several queries per connection) on one port,
// EDNS0 (the OPT record echoed, the client's UDP size honoured, BADVERS for unknown versions),
// names compressed (compress.ts), truncation with the TC bit when a UDP answer does not fit, so
// the client retries over TCP, and a clean answer (FORMERR, NOTIMP, REFUSED, SERVFAIL) or
// silence for every malformed or unwanted message: nothing a client sends can crash it. Names
// of the cluster zone are answered by the Resolver; other names go to the Forwarder, or are
// REFUSED when there is none.
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, OptAnswer, Packet, Question } from "dns-packet";
import { compressNames } from "./compress.ts";
import type { Forwarder } from "./forward.ts";
import { ipFamily } from "./names.ts";
import { Resolver, type Rcode } from "./resolver.ts";
import type { RecordStore } from "./store.ts";

export interface DnsServerOptions {
  store: RecordStore;
  /** Address to listen on (default 0.0.0.0; "::" listens on both families). */
  host?: string;
  /** Port for both UDP and TCP (default 53; 0 picks a free port, the same for both). */
  port?: number;
  /** TTL of every answer, in seconds (default 5, as CoreDNS's kubernetes plugin). */
  ttl?: number;
  /** Where names outside the cluster zone go; without one they are REFUSED. */
  forwarder?: Forwarder;
  /** Where problems are reported (default stderr). */
  log?: (line: string) => void;
}

const RCODES: Record<Rcode | "BADVERS", number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 };
const HEADER = 12;
const MIN_UDP = 512;
/** The UDP payload size this server advertises (the DNS flag day 2020 value). */
const OUR_UDP_SIZE = 1232;
const TCP_IDLE_MS = 10_000;
const TCP_MAX_PENDING = 64;
const TCP_MAX_CONNECTIONS = 1024;
const QR = 0x8000;

interface Edns {
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

/** What a query asked for, as far as the answer needs it. */
interface Request {
  id: number;
  opcode: number;
  rd: boolean;
  question?: Question;
  edns?: Edns;
}

export class DnsServer {
  readonly resolver: Resolver;
  private readonly opts: Required<Omit<DnsServerOptions, "forwarder">> & { forwarder?: Forwarder };
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly conns = new Set<net.Socket>();
  private boundPort = 0;
  private closing = false;

  constructor(opts: DnsServerOptions) {
    const ttl = opts.ttl ?? 5;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2147483647) throw new Error(`ttl must be a whole number of seconds, got ${ttl}`);
    this.opts = {
      store: opts.store,
      host: opts.host ?? "0.0.0.0",
      port: opts.port ?? 53,
      ttl,
      forwarder: opts.forwarder,
      log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
    };
    this.resolver = new Resolver(opts.store, ttl);
  }

  /** The port both sockets listen on (after start()). */
  get port(): number {
    return this.boundPort;
  }

  get host(): string {
    return this.opts.host;
  }

  async start(): Promise<void> {
    if (!ipFamily(this.opts.host)) throw new Error(`listen address "${this.opts.host}" is not an IP address`);
    // With port 0 the kernel picks the UDP port; TCP then needs the same one, which another
    // process may hold, so a few picks are tried.
    const attempts = this.opts.port === 0 ? 10 : 1;
    for (let i = 1; ; i++) {
      const udp = await this.bindUdp(this.opts.port);
      const port = udp.address().port;
      try {
        this.tcp = await this.listenTcp(port);
        this.udp = udp;
        this.boundPort = port;
        return;
      } catch (e) {
        udp.close();
        if (i >= attempts || (e as NodeJS.ErrnoException).code !== "EADDRINUSE") throw e;
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  /** One message in, the answer out (undefined: send nothing). Never throws. */
  async handle(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    try {
      return await this.answer(msg, transport);
    } catch (e) {
      this.opts.log(`dns: failed to answer a query: ${e instanceof Error ? e.message : String(e)}`);
      if (msg.length < HEADER) return undefined;
      return this.encode(this.reply({ id: msg.readUInt16BE(0), opcode: 0, rd: false }, "SERVFAIL"), transport, undefined);
    }
  }

  private async answer(msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    // Too short to answer, or itself an answer (answering answers could loop two servers).
    if (msg.length < HEADER || (msg.readUInt16BE(2) & QR) !== 0) return undefined;
    const flags = msg.readUInt16BE(2);
    const req: Request = { id: msg.readUInt16BE(0), opcode: (flags >> 11) & 0xf, rd: (flags & dnsPacket.RECURSION_DESIRED) !== 0 };
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return this.encode(this.reply(req, "FORMERR"), transport, undefined);
    }
    if (req.opcode !== 0) return this.encode(this.reply(req, "NOTIMP"), transport, undefined);
    const opts = (query.additionals ?? []).filter((a): a is OptAnswer => a.type === "OPT");
    if (query.questions?.length !== 1 || opts.length > 1 || (opts[0] && opts[0].name !== ".")) {
      return this.encode(this.reply(req, "FORMERR"), transport, undefined);
    }
    const q = query.questions[0];
    if (opts[0]) req.edns = { udpSize: Math.max(MIN_UDP, opts[0].udpPayloadSize), version: opts[0].ednsVersion, dnssecOk: opts[0].flag_do };
    if (req.edns && req.edns.version > 0) return this.encode(this.reply(req, "BADVERS"), transport, req.edns);
    // A class the codec could not name cannot be echoed faithfully: answer without a question.
    if (String(q.class).startsWith("UNKNOWN")) return this.encode(this.reply(req, "NOTIMP"), transport, req.edns);
    if (!wellFormedName(q.name)) return this.encode(this.reply(req, "FORMERR"), transport, req.edns);
    req.question = { name: q.name, type: q.type, class: q.class };
    if (q.class !== "IN" && q.class !== "ANY") return this.encode(this.reply(req, "REFUSED"), transport, req.edns);

    if (this.resolver.isLocal(q.name)) return this.encode(await this.answerLocal(req, q), transport, req.edns);
    const forwarder = this.opts.forwarder;
    if (!forwarder || forwarder.upstreams.length === 0) return this.encode(this.reply(req, "REFUSED"), transport, req.edns);
    const upstream = await forwarder.forward(msg, transport === "tcp");
    if (!upstream) return this.encode(this.reply(req, "SERVFAIL"), transport, req.edns);
    if (transport === "udp" && upstream.length > limitFor(req.edns)) {
      return this.encode({ ...this.reply(req, "NOERROR"), flags: this.flags(req, "NOERROR", false) | dnsPacket.TRUNCATED_RESPONSE }, transport, req.edns);
    }
    return upstream;
  }

  private async answerLocal(req: Request, q: Question): Promise<Packet> {
    const ans = this.resolver.answer(q.name, q.type);
    let rcode = ans.rcode;
    if (ans.external && this.opts.forwarder && this.opts.forwarder.upstreams.length > 0) {
      // An ExternalName's CNAME leaves the zone: complete the chain upstream, as the spec's
      // example answer does. Without an answer the client still has the CNAME to follow.
      const up = await this.opts.forwarder.query(ans.external.name, ans.external.type);
      const upRcode = up ? (up.flags ?? 0) & 0xf : -1;
      if (up && (upRcode === RCODES.NOERROR || upRcode === RCODES.NXDOMAIN)) {
        ans.answers.push(...(up.answers ?? []));
        if (upRcode === RCODES.NXDOMAIN) rcode = "NXDOMAIN";
      }
    }
    return {
      ...this.reply(req, rcode, true),
      answers: ans.answers,
      authorities: ans.authorities,
      additionals: ans.additionals,
    };
  }

  private flags(req: Request, rcode: Rcode | "BADVERS", authoritative: boolean): number {
    let f = (req.opcode << 11) | (RCODES[rcode] & 0xf);
    if (req.rd) f |= dnsPacket.RECURSION_DESIRED;
    if (authoritative) f |= dnsPacket.AUTHORITATIVE_ANSWER;
    if (this.opts.forwarder && this.opts.forwarder.upstreams.length > 0) f |= dnsPacket.RECURSION_AVAILABLE;
    return f;
  }

  private reply(req: Request, rcode: Rcode | "BADVERS", authoritative = false): Packet & { rcodeHigh?: number } {
    return {
      type: "response",
      id: req.id,
      flags: this.flags(req, rcode, authoritative),
      questions: req.question ? [req.question] : [],
      answers: [],
      authorities: [],
      additionals: [],
      rcodeHigh: RCODES[rcode] >> 4,
    };
  }

  /** The message with its names compressed (compress.ts); as encoded, should that refuse it. */
  private compressed(msg: Buffer): Buffer {
    try {
      const c = compressNames(msg);
      return Buffer.from(c.buffer, c.byteOffset, c.length);
    } catch (e) {
      this.opts.log(`dns: answering with uncompressed names: ${e instanceof Error ? e.message : String(e)}`);
      return msg;
    }
  }

  /**
   * Encodes an answer for its transport. UDP answers larger than the client takes lose their
   * additional records first, then everything but the question, with TC set (RFC 2181 9).
   */
  private encode(p: Packet & { rcodeHigh?: number }, transport: "udp" | "tcp", edns: Edns | undefined): Buffer {
    const { rcodeHigh = 0, ...packet } = p;
    const opt: OptAnswer[] = edns
      ? [{ name: ".", type: "OPT", udpPayloadSize: OUR_UDP_SIZE, extendedRcode: rcodeHigh, ednsVersion: 0, flags: edns.dnssecOk ? dnsPacket.DNSSEC_OK : 0, flag_do: edns.dnssecOk, options: [] }]
      : [];
    const limit = transport === "udp" ? limitFor(edns) : 0xffff;
    const build = (answers: Answer[], authorities: Answer[], additionals: Answer[], tc: boolean) =>
      this.compressed(
        dnsPacket.encode({
          ...packet,
          flags: (packet.flags ?? 0) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0),
          answers,
          authorities,
          additionals: [...additionals, ...opt],
        }),
      );
    let out = build(packet.answers ?? [], packet.authorities ?? [], packet.additionals ?? [], false);
    if (out.length <= limit) return out;
    out = build(packet.answers ?? [], packet.authorities ?? [], [], false);
    if (out.length <= limit) return out;
    return build([], [], [], true);
  }

  // ---- sockets ----

  private bindUdp(port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(ipFamily(this.opts.host) === 6 ? "udp6" : "udp4");
      sock.once("error", reject);
      sock.bind(port, this.opts.host, () => {
        sock.off("error", reject);
        sock.on("error", (e) => this.opts.log(`dns: udp: ${e.message}`));
        sock.on("message", (msg, rinfo) => {
          void this.handle(msg, "udp").then((out) => {
            if (!out || this.closing) return; // closed while this query was being answered
            try {
              sock.send(out, rinfo.port, rinfo.address, (e) => e && this.opts.log(`dns: udp send to ${rinfo.address}: ${e.message}`));
            } catch (e) {
              this.opts.log(`dns: udp send to ${rinfo.address}: ${(e as Error).message}`);
            }
          });
        });
        resolve(sock);
      });
    });
  }

  private listenTcp(port: number): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      // Half-open: a client may send its queries and shut its side before the answers are out.
      const server = net.createServer({ allowHalfOpen: true }, (sock) => this.serveConnection(sock));
      server.maxConnections = TCP_MAX_CONNECTIONS; // beyond it the kernel's accept is closed at once
      server.once("error", reject);
      server.listen({ port, host: this.opts.host, exclusive: true }, () => {
        server.off("error", reject);
        server.on("error", (e) => this.opts.log(`dns: tcp: ${e.message}`));
        resolve(server);
      });
    });
  }

  private serveConnection(sock: net.Socket): void {
    this.conns.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    let pending = 0;
    let clientDone = false;
    const finishIfIdle = () => {
      if (clientDone && pending === 0) sock.end();
    };
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("error", () => sock.destroy());
    sock.on("close", () => this.conns.delete(sock));
    sock.on("end", () => {
      clientDone = true;
      finishIfIdle();
    });
    sock.on("data", (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len < HEADER) return sock.destroy(); // no DNS message is that short: not a DNS client
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        pending++;
        if (pending >= TCP_MAX_PENDING) sock.pause();
        void this.handle(msg, "tcp").then((out) => {
          pending--;
          if (out && !sock.destroyed) {
            const head = Buffer.alloc(2);
            head.writeUInt16BE(out.length);
            sock.write(Buffer.concat([head, out]));
          }
          if (pending < TCP_MAX_PENDING && sock.isPaused()) sock.resume();
          finishIfIdle();
        });
      }
    });
  }
}

/** The largest UDP answer a client takes: 512 bytes, or its EDNS0 payload size. */
function limitFor(edns: Edns | undefined): number {
  return edns ? Math.max(MIN_UDP, edns.udpSize) : MIN_UDP;
}

/** A question name that encodes back to what was sent: labels of 1-63 bytes, 255 bytes in all. */
function wellFormedName(name: string): boolean {
  if (name === "." || name === "") return true;
  const labels = name.replace(/\.$/, "").split(".");
  let total = 1;
  for (const l of labels) {
    const len = Buffer.byteLength(l);
    if (len < 1 || len > 63) return false;
    total += len + 1;
  }
  return total <= 255;
}
