// ClusterIP Services through `podnet kube-proxy` in a node netns, with real traffic from a pod:
// TCP, UDP and SCTP, load balancing, several ports with named target ports, and Services that
// must get no rules at all (headless, ExternalName).
import test from "ava";
import type { EndpointSlice } from "../../apiserver/types.ts";
import { execa } from "execa";
import { proxyRulesReport } from "../../kube-proxy/rules-report.ts";
import { Cluster, OTHER_NODE, nsexec, servedPort, service, slice, who, type Pod } from "./harness.ts";

const c = new Cluster();
let a: Pod, b: Pod, remote: Pod, client: Pod;

test.before(async () => {
  await c.setup();
  await c.enableIPv6();
  a = await c.addPod("pod-a", 1, { ipv6: true });
  b = await c.addPod("pod-b", 2, { ipv6: true });
  remote = await c.addPod("pod-c", 3, { nodeName: OTHER_NODE });
  client = await c.addPod("client", 4, { ipv6: true });
  c.startProxy();
});

test.after.always(async () => {
  await c.destroy();
});

test.serial("ClusterIP answers over TCP and UDP and spreads connections over the endpoints", async (t) => {
  c.applyService(service({ name: "web", clusterIP: "10.96.0.20", ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "dns", port: 53, targetPort: 8080, protocol: "UDP" }] }));
  c.applySlice(slice("web", "web-1", [{ pod: a }, { pod: b }, { pod: remote }], [{ name: "http", port: 8080 }, { name: "dns", port: 8080, protocol: "UDP" }]));
  await c.synced();
  const tcp = who(await c.tcp(client.ns, "10.96.0.20", 80, { count: 30 }));
  t.deepEqual(tcp.filter((w) => !["pod-a", "pod-b", "pod-c"].includes(w)), [], `only endpoints answer: ${tcp.join(",")}`);
  t.true(new Set(tcp).size >= 2, `several endpoints answered: ${tcp.join(",")}`);
  const udp = who(await c.udp(client.ns, "10.96.0.20", 53, { count: 20 }));
  t.deepEqual(udp.filter((w) => !["pod-a", "pod-b", "pod-c"].includes(w)), [], `only endpoints answer over UDP: ${udp.join(",")}`);
  t.true(new Set(udp).size >= 2, `several endpoints answered over UDP: ${udp.join(",")}`);
  // The lookup is one map element per Service port, not a rule per Service.
  const map = await c.nft(["list", "map", "ip", "kube-proxy", "service-ips"]);
  t.regex(map, /10\.96\.0\.20 \. tcp \. 80 : goto lb-tcp-3/);
  t.regex(map, /10\.96\.0\.20 \. udp \. 53 : goto lb-udp-3/);
});

test.serial("several ports per Service, named target ports resolved per endpoint", async (t) => {
  c.applyService(service({ name: "multi", clusterIP: "10.96.0.21", ports: [{ name: "web", port: 80, targetPort: "web" }, { name: "admin", port: 81, targetPort: 9090 }] }));
  // The named port "web" is 8080 on pod-a and 9090 on pod-b: two slices, as the controller groups them.
  c.applySlice(slice("multi", "multi-a", [{ pod: a }], [{ name: "web", port: 8080 }, { name: "admin", port: 9090 }]));
  c.applySlice(slice("multi", "multi-b", [{ pod: b }], [{ name: "web", port: 9090 }, { name: "admin", port: 9090 }]));
  await c.synced();
  const web = await c.tcp(client.ns, "10.96.0.21", 80, { count: 24 });
  const pairs = new Set(web.map((r, i) => `${who([r])[0]}:${servedPort(web)[i]}`));
  t.deepEqual([...pairs].sort(), ["pod-a:8080", "pod-b:9090"], "each endpoint is reached on its own target port");
  const admin = await c.tcp(client.ns, "10.96.0.21", 81, { count: 12 });
  t.deepEqual([...new Set(servedPort(admin))], [9090]);
  t.true(new Set(who(admin)).size === 2);
});

test.serial("SCTP ClusterIP: the rule is programmed and an SCTP INIT is DNATed to the endpoint", async (t) => {
  c.applyService(service({ name: "sctp", clusterIP: "10.96.0.22", ports: [{ name: "assoc", port: 7777, targetPort: 7778, protocol: "SCTP" }] }));
  c.applySlice(slice("sctp", "sctp-1", [{ pod: a }], [{ name: "assoc", port: 7778, protocol: "SCTP" }]));
  await c.synced();
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "service-ips"]), /10\.96\.0\.22 \. sctp \. 7777 : goto lb-sctp-1/);
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "endpoints-sctp"]), /10\.96\.0\.22 \. 7777 \. 0 : 10\.244\.1\.11 \. 7778/);
  // This kernel has no SCTP sockets (socket(..., IPPROTO_SCTP) fails with EPROTONOSUPPORT), so
  // no SCTP client or server can run. Netfilter still tracks and NATs SCTP, so the traffic is
  // checked with raw sockets: the client sends a valid INIT to the ClusterIP, and a raw socket in
  // the endpoint pod sees it arrive rewritten to the pod's address and target port.
  const receiver = execa("nsenter", [`--net=${a.ns.path}`, "--", "python3", "-c", SCTP_RECEIVER, "40001"], { reject: false });
  t.teardown(() => {
    receiver.kill("SIGKILL");
  });
  await new Promise<void>((resolve) => receiver.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve()));
  await nsexec(client.ns, "python3", ["-c", SCTP_SENDER, "10.96.0.22", "7777", "40001"]);
  const r = await receiver;
  t.regex(String(r.stdout), new RegExp(`^got ${client.ip.replace(/\./g, "\\.")} 10\\.244\\.1\\.11 40001 7778$`, "m"), `receiver saw: ${r.stdout} ${r.stderr}`);
});

test.serial("headless and ExternalName Services get no rules", async (t) => {
  c.applyService(service({ name: "headless", clusterIP: "None", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  c.applySlice(slice("headless", "headless-1", [{ pod: a }], [{ name: "http", port: 8080 }]));
  c.applyService({ apiVersion: "v1", kind: "Service", metadata: { name: "extname", namespace: "default" }, spec: { type: "ExternalName", externalName: "example.invalid", ports: [{ port: 80 }] } });
  // A Service that does get rules, applied last: once it is programmed, the others were seen.
  c.applyService(service({ name: "marker", clusterIP: "10.96.0.23", ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  await c.synced();
  const table = await c.nft(["list", "table", "ip", "kube-proxy"]);
  t.regex(table, /10\.96\.0\.23/);
  t.notRegex(table, /headless|extname/);
  const services = String((await nsexec(c.node, "curl", ["-s", "http://127.0.0.1:10249/services"])).stdout);
  t.regex(services, /default\/marker\//);
  t.notRegex(services, /headless|extname/);
});

const SCTP_RECEIVER = `
import socket, struct, sys
want = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
s.settimeout(15)
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(65535)
    ihl = (data[0] & 15) * 4
    sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
    if sport == want:
        print("got", socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), sport, dport, flush=True)
        break
`;

const SCTP_SENDER = `
import socket, struct, sys, time
def crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
dst, dport, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
init = struct.pack("!BBHIIHHI", 1, 0, 20, 0x1234ABCD, 65535, 4, 4, 1)
hdr = struct.pack("!HHI", sport, dport, 0)
pkt = hdr + struct.pack("<I", crc32c(hdr + b"\\0\\0\\0\\0" + init)) + init
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
for _ in range(3):
    s.sendto(pkt, (dst, 0))
    time.sleep(0.2)
`;

test.serial("the rules report lists each destination with its endpoints, read back from the kernel", async (t) => {
  const report = await proxyRulesReport(c.node.path);
  const line = report.split("\n").find((l) => l.startsWith("10.96.0.20 tcp/80 -> "));
  t.truthy(line, report.slice(0, 2000));
  t.deepEqual(line!.replace("10.96.0.20 tcp/80 -> ", "").split(", ").sort(), ["10.244.1.11:8080", "10.244.1.12:8080", "10.244.1.13:8080"]);
  t.regex(report, /^10\.96\.0\.22 sctp\/7777 -> 10\.244\.1\.11:7778$/m);
  t.regex(report, /^# nft list table ip kube-proxy\ntable ip kube-proxy \{/m);
  t.regex(report, /# nft list table ip6 kube-proxy/);
});

test.serial("an invalid address in a Service is skipped with a log line; the rest keeps working", async (t) => {
  c.applyService(service({ name: "bad", clusterIP: "10.96.0.25", ports: [{ name: "http", port: 80, targetPort: 8080 }], extra: { externalIPs: ["1.2.3.4 } ; flush ruleset ; {"] } }));
  c.applySlice(slice("bad", "bad-1", [{ pod: a }], [{ name: "http", port: 8080 }]));
  c.applyService(service({ name: "badcidr", clusterIP: "10.96.0.26", ports: [{ name: "http", port: 80, targetPort: 8080 }], extra: { loadBalancerSourceRanges: ["10.0.0.0/99"] } }));
  await c.synced();
  t.regex(c.proxyLog, /service default\/bad: externalIP "1\.2\.3\.4 \} ; flush ruleset ; \{" is not an IP address; ignored/);
  t.regex(c.proxyLog, /service default\/badcidr: loadBalancerSourceRanges entry "10\.0\.0\.0\/99" is not a CIDR; ignored/);
  t.notRegex(c.proxyLog, /sync failed/);
  t.deepEqual(who(await c.tcp(client.ns, "10.96.0.25", 80)), ["pod-a"], "the valid part of the Service is served");
  t.regex(await c.nft(["list", "map", "ip", "kube-proxy", "no-endpoint-services"]), /10\.96\.0\.26 \. tcp \. 80 : goto reject-chain/, "the Service with a bad range is still programmed");
  t.deepEqual(who(await c.tcp(client.ns, "10.96.0.20", 80, { count: 6 })).filter((w) => w.startsWith("error")), [], "other Services are untouched");
});

test.serial("dual-stack Service: the ip6 table serves the IPv6 ClusterIP from IPv6 slices", async (t) => {
  c.applyService(
    service({
      name: "dual",
      clusterIP: "10.96.0.27",
      ports: [{ name: "http", port: 80, targetPort: 8080 }, { name: "dns", port: 53, targetPort: 8080, protocol: "UDP" }],
      extra: { clusterIPs: ["10.96.0.27", "fd00:96::27"], ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack" },
    }),
  );
  c.applySlice(slice("dual", "dual-v4", [{ pod: a }], [{ name: "http", port: 8080 }, { name: "dns", port: 8080, protocol: "UDP" }]));
  const v6: EndpointSlice = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "dual-v6", namespace: "default", labels: { "kubernetes.io/service-name": "dual" } },
    addressType: "IPv6",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }, { name: "dns", port: 8080, protocol: "UDP" }],
    endpoints: [a, b].map((p) => ({ addresses: [p.ip6!], nodeName: p.nodeName, conditions: { ready: true } })),
  };
  c.applySlice(v6);
  await c.synced();
  t.regex(await c.nft(["list", "map", "ip6", "kube-proxy", "service-ips"]), /fd00:96::27 \. tcp \. 80 : goto lb-tcp-2/);
  const r = await c.tcp(client.ns, "fd00:96::27", 80, { count: 12 });
  t.deepEqual([...new Set(who(r))].sort(), ["pod-a", "pod-b"]);
  t.deepEqual([...new Set(r.map((x) => x.reply!.split(" ")[1]!.replace(/:\d+$/, "")))], [client.ip6!], "pods keep their own address");
  t.deepEqual([...new Set(who(await c.udp(client.ns, "fd00:96::27", 53, { count: 6 })))].filter((w) => !["pod-a", "pod-b"].includes(w)), []);
  t.deepEqual(who(await c.tcp(client.ns, "10.96.0.27", 80)), ["pod-a"], "the IPv4 side works alongside");
});
