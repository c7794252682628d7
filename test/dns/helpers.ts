// Shared pieces of the cluster DNS tests: an in-process server fed with synthetic objects,
// dns-packet clients over UDP and TCP, a fake upstream server, and object builders.
import type { ExecutionContext } from "ava";
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import type { Answer, DecodedPacket, Question, RecordType } from "dns-packet";
import type { EndpointSlice, Pod, Service, ServicePort } from "../../apiserver/types.ts";
import { Forwarder, type Upstream } from "../../dns/forward.ts";
import { DnsServer } from "../../dns/server.ts";
import { RecordStore } from "../../dns/store.ts";

export type Reply = DecodedPacket & { rcode: string; opcode: string };

export interface QueryOptions {
  tcp?: boolean;
  /** EDNS0 UDP payload size to advertise; omitted: no OPT record. */
  edns?: number;
  ednsVersion?: number;
  dnssecOk?: boolean;
  id?: number;
  rd?: boolean;
  klass?: Question["class"];
}

export function buildQuery(name: string, type: string, o: QueryOptions = {}): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: o.id ?? Math.floor(Math.random() * 0xffff),
    flags: o.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as RecordType, class: o.klass ?? "IN" }],
    additionals:
      o.edns === undefined
        ? []
        : [{ name: ".", type: "OPT", udpPayloadSize: o.edns, extendedRcode: 0, ednsVersion: o.ednsVersion ?? 0, flags: o.dnssecOk ? dnsPacket.DNSSEC_OK : 0, flag_do: !!o.dnssecOk, options: [] }],
  });
}

/** Sends raw bytes over UDP and resolves with the first datagram back (rejects after 5 s). */
export function udpExchange(port: number, msg: Buffer, host = "127.0.0.1"): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error("no UDP answer within 5 s"));
    }, 5000);
    sock.on("message", (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.send(msg, port, host);
  });
}

/** Sends several framed messages on one TCP connection; resolves with the framed answers. */
export function tcpExchange(port: number, msgs: Buffer[], want = msgs.length, host = "127.0.0.1"): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`only ${out.length} of ${want} TCP answers within 5 s`));
    }, 5000);
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on("connect", () => {
      for (const m of msgs) {
        const head = Buffer.alloc(2);
        head.writeUInt16BE(m.length);
        sock.write(Buffer.concat([head, m]));
      }
    });
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= want) sock.end();
    });
  });
}

export function decodeReply(buf: Buffer): Reply {
  return dnsPacket.decode(buf) as Reply;
}

export interface TestDns {
  store: RecordStore;
  server: DnsServer;
  port: number;
  query(name: string, type: string, o?: QueryOptions): Promise<Reply>;
}

export interface TestDnsOptions {
  zone?: string;
  ttl?: number;
  upstreams?: Upstream[];
  upstreamTimeoutMs?: number;
  synced?: boolean;
}

/** The DNS server in this process on 127.0.0.1 (random port), stopped when the test ends. */
export async function startDns(t: ExecutionContext, o: TestDnsOptions = {}): Promise<TestDns> {
  const store = new RecordStore(o.zone ?? "cluster.local");
  store.synced = o.synced ?? true;
  const forwarder = o.upstreams ? new Forwarder(o.upstreams, { timeoutMs: o.upstreamTimeoutMs ?? 1000 }) : undefined;
  const logs: string[] = [];
  const server = new DnsServer({ store, host: "127.0.0.1", port: 0, ttl: o.ttl, forwarder, log: (l) => logs.push(l) });
  await server.start();
  t.teardown(() => server.close());
  const port = server.port;
  return {
    store,
    server,
    port,
    async query(name, type, qo = {}) {
      const msg = buildQuery(name, type, qo);
      const raw = qo.tcp ? (await tcpExchange(port, [msg]))[0] : await udpExchange(port, msg);
      if (!raw) throw new Error("no answer");
      const reply = decodeReply(raw);
      if (reply.id !== msg.readUInt16BE(0)) throw new Error(`answer has ID ${reply.id}, query had ${msg.readUInt16BE(0)}`);
      return reply;
    },
  };
}

// ---- answers, briefly ----

export function addresses(r: Reply, section: "answers" | "additionals" = "answers"): string[] {
  return (r[section] ?? []).filter((a) => a.type === "A" || a.type === "AAAA").map((a) => (a as { data: string }).data).sort();
}

/** A decoded record, loosely typed: the tests look at the data of many kinds. */
export type Rec = { name: string; type: string; ttl?: number; data: any };

export function ofType(r: Reply, type: string, section: "answers" | "additionals" | "authorities" = "answers"): Rec[] {
  return (r[section] ?? []).filter((a) => a.type === type) as unknown as Rec[];
}

// ---- synthetic Kubernetes objects ----

let rv = 1;
const nextRV = () => String(rv++);

export function clusterIPService(ns: string, name: string, ips: string[], ports: ServicePort[] = []): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: ns, name, resourceVersion: nextRV() },
    spec: { type: "ClusterIP", clusterIP: ips[0], clusterIPs: ips, ports, ipFamilies: ips.map((ip) => (ip.includes(":") ? "IPv6" : "IPv4")) },
  };
}

export function headlessService(ns: string, name: string, ports: ServicePort[] = [], extra: Partial<Service["spec"]> = {}): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace: ns, name, resourceVersion: nextRV() },
    spec: { type: "ClusterIP", clusterIP: "None", clusterIPs: ["None"], ports, ...extra },
  };
}

export function externalNameService(ns: string, name: string, externalName: string): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { namespace: ns, name, resourceVersion: nextRV() }, spec: { type: "ExternalName", externalName } };
}

export interface TestEndpoint {
  ip: string | string[];
  ready?: boolean;
  hostname?: string;
}

export function endpointSlice(ns: string, svc: string, sliceName: string, eps: TestEndpoint[], ports: EndpointSlice["ports"] = [], addressType: "IPv4" | "IPv6" = "IPv4"): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { namespace: ns, name: sliceName, resourceVersion: nextRV(), labels: { "kubernetes.io/service-name": svc, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" } },
    addressType,
    endpoints: eps.map((e) => ({
      addresses: Array.isArray(e.ip) ? e.ip : [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      ...(e.hostname ? { hostname: e.hostname } : {}),
    })),
    ports,
  };
}

export function pod(ns: string, name: string, ips: string[], phase: "Running" | "Succeeded" | "Pending" = "Running"): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: ns, name, resourceVersion: nextRV() },
    spec: { containers: [{ name: "c", image: "x" }] },
    status: { phase, podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
  };
}

// ---- a fake upstream DNS server (UDP and TCP), answering from a function ----

export interface FakeUpstream extends Upstream {
  /** Every question it was asked, with the transport. */
  asked: { name: string; type: string; tcp: boolean }[];
}

export type UpstreamAnswer = (q: Question, tcp: boolean) => { rcode?: number; answers?: Answer[]; truncate?: boolean } | "ignore";

export async function startFakeUpstream(t: ExecutionContext, answer: UpstreamAnswer): Promise<FakeUpstream> {
  const asked: FakeUpstream["asked"] = [];
  const respond = (msg: Buffer, tcp: boolean): Buffer | undefined => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0];
    asked.push({ name: question.name, type: question.type, tcp });
    const a = answer(question, tcp);
    if (a === "ignore") return undefined;
    const tc = a.truncate && !tcp;
    return dnsPacket.encode({
      type: "response",
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE | (q.flags! & dnsPacket.RECURSION_DESIRED) | (a.rcode ?? 0) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0),
      questions: q.questions,
      answers: tc ? [] : (a.answers ?? []),
    });
  };
  const onUdp = (udp: dgram.Socket) =>
    udp.on("message", (msg, rinfo) => {
      const out = respond(msg, false);
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
  const onTcp = (sock: net.Socket) => {
    let buf = Buffer.alloc(0);
    sock.on("error", () => sock.destroy());
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const out = respond(buf.subarray(2, 2 + buf.readUInt16BE(0)), true);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (out) {
          const head = Buffer.alloc(2);
          head.writeUInt16BE(out.length);
          sock.write(Buffer.concat([head, out]));
        }
      }
    });
  };
  // UDP and TCP on one port: the kernel picks the UDP one, TCP may find it taken and retry.
  let udp: dgram.Socket | undefined;
  let tcp: net.Server | undefined;
  for (let attempt = 0; !tcp; attempt++) {
    const u = dgram.createSocket("udp4");
    await new Promise<void>((r) => u.bind(0, "127.0.0.1", () => r()));
    const server = net.createServer(onTcp);
    const ok = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(u.address().port, "127.0.0.1", () => resolve(true));
    });
    if (ok) [udp, tcp] = [onUdp(u), server];
    else if (attempt >= 10) throw new Error("no free port for the fake upstream");
    else u.close();
  }
  const port = udp!.address().port;
  t.teardown(async () => {
    udp!.close();
    await new Promise<void>((r) => tcp!.close(() => r()));
  });
  return { host: "127.0.0.1", port, asked };
}
