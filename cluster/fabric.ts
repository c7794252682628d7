// The underlay: a fabric netns holding bridge fabric0 (the cluster's "switch" and router), one
// netns per node with eth0 on that bridge, and an external client netns that is not a node.
// The fabric routes the LoadBalancer pool to the nodes (ECMP), as a cloud load balancer would.
import type { ClusterLayout, NodeLayout } from "./layout.ts";
import { listNetns, sh } from "./sh.ts";

const BRIDGE = "fabric0";

async function ensureNetns(name: string): Promise<boolean> {
  if ((await listNetns()).includes(name)) return false;
  await sh("ip", ["netns", "add", name]);
  await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
  return true;
}

async function linkExists(netns: string, link: string): Promise<boolean> {
  const out = await sh("ip", ["-n", netns, "-j", "link", "show"]);
  return (JSON.parse(out || "[]") as { ifname: string }[]).some((l) => l.ifname === link);
}

/** Plugs `host` (a netns) into the fabric as `ifname` with `addr`; idempotent. */
async function plug(l: ClusterLayout, host: string, port: string, addr: string): Promise<void> {
  const f = l.fabricNetns;
  if (!(await linkExists(host, "eth0"))) {
    if (await linkExists(f, port)) await sh("ip", ["-n", f, "link", "del", port]);
    await sh("ip", ["-n", f, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host]);
    await sh("ip", ["-n", f, "link", "set", port, "master", BRIDGE, "up"]);
    await sh("ip", ["-n", host, "addr", "add", `${addr}/${l.prefixLen}`, "dev", "eth0"]);
    await sh("ip", ["-n", host, "link", "set", "eth0", "up"]);
  }
  await sh("ip", ["-n", host, "route", "replace", "default", "via", l.routerIP, "dev", "eth0"]);
}

export async function createFabric(l: ClusterLayout): Promise<void> {
  const f = l.fabricNetns;
  await ensureNetns(f);
  if (!(await linkExists(f, BRIDGE))) {
    await sh("ip", ["-n", f, "link", "add", BRIDGE, "type", "bridge"]);
    await sh("ip", ["-n", f, "addr", "add", `${l.routerIP}/${l.prefixLen}`, "dev", BRIDGE]);
    await sh("ip", ["-n", f, "link", "set", BRIDGE, "up"]);
  }
  // The fabric routes (LoadBalancer pool) and hashes flows over nodes by L4 ports.
  // No ICMP redirects: the router and the nodes share one subnet, so it would otherwise tell the
  // external client to send LoadBalancer traffic straight to the first node it picked, and the
  // client would keep that one node for every later flow (no ECMP; eTP=Local broken elsewhere).
  await sh("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv4.conf.all.send_redirects=0", `net.ipv4.conf.${BRIDGE}.send_redirects=0`], { netns: f });
  await ensureNetns(l.externalNetns);
  await plug(l, l.externalNetns, "ext", l.externalIP);
}

export async function createNodeNetwork(l: ClusterLayout, n: NodeLayout): Promise<void> {
  await ensureNetns(n.netns);
  await plug(l, n.netns, n.fabricPort, n.underlayIP);
  // Nodes route pod traffic; bridged pod traffic also passes the IP hooks (kube-proxy needs that).
  // No ICMP redirects either: a NodePort connection DNATed to a pod on another node leaves by the
  // eth0 it came in on, and the (useless) redirect to the client resets the kernel's per-host ICMP
  // rate limit, which then swallows the port-unreachable of a Service without endpoints.
  await sh("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0"], { netns: n.netns });
}

/** The LoadBalancer pool is reachable through every node (ECMP), like a cloud LB in front of NodePorts. */
export async function routeLoadBalancerPool(l: ClusterLayout): Promise<void> {
  const hops = l.nodes.flatMap((n) => ["nexthop", "via", n.underlayIP, "dev", BRIDGE]);
  await sh("ip", ["-n", l.fabricNetns, "route", "replace", l.cfg.lbPool, ...hops]);
}
