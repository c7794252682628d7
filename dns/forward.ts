// Forwarding of names outside the cluster zone to upstream servers: over UDP from a fresh socket
// (random source port) with a fresh message ID per attempt, each upstream in turn with a timeout,
// and over TCP when the upstream's UDP answer is truncated and the client asked over TCP.
import dgram from "node:dgram";
import net from "node:net";
import { randomInt } from "node:crypto";
import dnsPacket from "dns-packet";
import type { DecodedPacket, RecordType } from "dns-packet";
import { canonicalIP, ipFamily } from "./names.ts";

export interface Upstream {
  host: string;
  port: number;
}

/** "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address (port 53). */
export function parseUpstream(text: string): Upstream {
  let host = text;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4port = /^([^:]+):(\d+)$/.exec(text);
  if (bracketed) {
    host = bracketed[1];
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (v4port) {
    host = v4port[1];
    port = Number(v4port[2]);
  }
  const ip = canonicalIP(host);
  if (!ip) throw new Error(`upstream "${text}" is not IP[:PORT] or [IPv6]:PORT`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`upstream "${text}": port must be 1-65535`);
  return { host: ip, port };
}

export function formatUpstream(u: Upstream): string {
  return ipFamily(u.host) === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

export interface ForwarderOptions {
  /** How long to wait for one upstream before trying the next (default 2000 ms). */
  timeoutMs?: number;
  /** Forwarded queries in flight at once; more are answered SERVFAIL (each holds a socket). */
  maxInFlight?: number;
}

const TCP_HEADER = 2;

function sameQuestion(query: Buffer, reply: Buffer): boolean {
  try {
    const q = dnsPacket.decode(query).questions?.[0];
    const r = dnsPacket.decode(reply).questions?.[0];
    if (!q || !r) return !q && !r;
    return q.name.toLowerCase() === r.name.toLowerCase() && q.type === r.type && q.class === r.class;
  } catch {
    return false;
  }
}

export class Forwarder {
  readonly upstreams: Upstream[];
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private inFlight = 0;

  constructor(upstreams: Upstream[], opts: ForwarderOptions = {}) {
    this.upstreams = upstreams;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxInFlight = opts.maxInFlight ?? 512;
  }

  /**
   * Sends a client's query (raw bytes) upstream and resolves with the upstream's answer carrying
   * the client's ID, or undefined when no upstream answered.
   */
  async forward(query: Buffer, viaTcp: boolean): Promise<Buffer | undefined> {
    if (query.length < 12 || this.inFlight >= this.maxInFlight) return undefined;
    this.inFlight++;
    try {
      const clientId = query.readUInt16BE(0);
      for (const up of this.upstreams) {
        const id = randomInt(0, 0x10000);
        const msg = Buffer.from(query);
        msg.writeUInt16BE(id, 0);
        let reply = await this.udpExchange(up, msg, id).catch(() => undefined);
        // A truncated answer is what UDP could carry; a TCP client can take the whole one.
        if (reply && viaTcp && (reply.readUInt16BE(2) & dnsPacket.TRUNCATED_RESPONSE) !== 0) {
          reply = (await this.tcpExchange(up, msg, id).catch(() => undefined)) ?? reply;
        }
        if (reply) {
          reply.writeUInt16BE(clientId, 0);
          return reply;
        }
      }
      return undefined;
    } finally {
      this.inFlight--;
    }
  }

  /** Asks the upstreams one question of our own (an ExternalName's target); the decoded answer. */
  async query(name: string, type: string): Promise<DecodedPacket | undefined> {
    const msg = dnsPacket.encode({
      type: "query",
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type: type as RecordType, class: "IN" }],
    });
    const reply = await this.forward(msg, true);
    if (!reply) return undefined;
    try {
      return dnsPacket.decode(reply);
    } catch {
      return undefined;
    }
  }

  private udpExchange(up: Upstream, msg: Buffer, id: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(ipFamily(up.host) === 6 ? "udp6" : "udp4");
      const timer = setTimeout(() => done(new Error("upstream timed out")), this.timeoutMs);
      let finished = false;
      const done = (err?: Error, reply?: Buffer) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        sock.close();
        if (reply) resolve(reply);
        else reject(err);
      };
      sock.on("error", (e) => done(e)); // ICMP port unreachable arrives as ECONNREFUSED
      sock.on("message", (reply) => {
        // Only an answer to this very question counts (anything else may be spoofed or stale).
        if (reply.length < 12 || reply.readUInt16BE(0) !== id || (reply[2] & 0x80) === 0) return;
        if (!sameQuestion(msg, reply)) return;
        done(undefined, reply);
      });
      // A connected socket takes datagrams only from the upstream's address and port.
      sock.connect(up.port, up.host, () => sock.send(msg, (e) => e && done(e)));
    });
  }

  private tcpExchange(up: Upstream, msg: Buffer, id: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: up.host, port: up.port });
      let buf = Buffer.alloc(0);
      let finished = false;
      const done = (err?: Error, reply?: Buffer) => {
        if (finished) return;
        finished = true;
        sock.destroy();
        if (reply) resolve(reply);
        else reject(err);
      };
      sock.setTimeout(this.timeoutMs, () => done(new Error("upstream timed out")));
      sock.on("error", (e) => done(e));
      sock.on("close", () => done(new Error("upstream closed the connection")));
      sock.on("connect", () => {
        const len = Buffer.alloc(TCP_HEADER);
        len.writeUInt16BE(msg.length);
        sock.write(Buffer.concat([len, msg])); // no half-close: some servers drop the answer then
      });
      sock.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < TCP_HEADER) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < TCP_HEADER + len) return;
        const reply = Buffer.from(buf.subarray(TCP_HEADER, TCP_HEADER + len));
        if (reply.length < 12 || reply.readUInt16BE(0) !== id || !sameQuestion(msg, reply)) return done(new Error("upstream answered another question"));
        done(undefined, reply);
      });
    });
  }
}
