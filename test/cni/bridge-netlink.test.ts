// The Bun-compiled bridge sends its per-pod link, address and route changes over rtnetlink
// (cni-plugins/pkg/ipnl.ts); PODNET_NO_FFI=1 makes it run ip(8) for the very same lines. Both
// ways must leave the same kernel state and print the same result, and DEL must undo either.
import test from "ava";
import { call, conf, pod, setup } from "./bridge-fixture.ts";
import { ipJSON, type Netns } from "../helpers/netns.ts";

const MAC = "0a:58:0a:63:00:42";

/** What the kernel holds for a pod: eth0 and its addresses, every route of both families. */
async function podState(p: Netns) {
  const [eth0] = await ipJSON(p, ["-d", "addr", "show", "dev", "eth0"]);
  const routes = [...(await ipJSON(p, ["-4", "route", "show", "table", "all"])), ...(await ipJSON(p, ["-6", "route", "show", "table", "all"]))]
    .filter((r: any) => !String(r.dst).startsWith("fe80") && r.type !== "multicast" && r.table !== "local")
    .map((r: any) => ({ ...r, dev: r.dev }))
    .sort((a: any, b: any) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return {
    mtu: eth0.mtu,
    mac: eth0.address,
    up: eth0.flags.includes("UP"),
    kind: eth0.linkinfo?.info_kind,
    addrs: eth0.addr_info.filter((a: any) => a.scope !== "link").map((a: any) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.scope, nodad: a.nodad ?? false })),
    routes,
  };
}

/** The host end: on the bridge, hairpin as configured, up, same MTU. */
async function hostEnd(node: Netns, name: string, bridge: string) {
  const [l] = await ipJSON(node, ["-d", "link", "show", "dev", name]);
  return { onBridge: l.master === bridge, up: l.flags.includes("UP"), mtu: l.mtu, hairpin: l.linkinfo?.info_slave_data?.hairpin, kind: l.linkinfo?.info_kind };
}

test("bridge ADD over rtnetlink and over ip leave the same pod, host end and result; DEL undoes both", async (t) => {
  const routes = [
    { dst: "10.50.0.0/16" },
    { dst: "10.60.0.0/16", gw: "10.99.0.254", priority: 300, mtu: 1300, advmss: 1200 },
    { dst: "192.168.7.0/24", table: 100 },
    { dst: "fd55::/64" },
  ];
  const state: Record<string, { pod: unknown; host: unknown; result: any }> = {};
  for (const [way, env] of [["netlink", {}], ["ip", { PODNET_NO_FFI: "1" }]] as const) {
    const e = await setup(t);
    const p = await pod(t);
    const c = conf(e, { isGateway: true, isDefaultGateway: true, hairpinMode: true, mtu: 1400 }, ["10.99.0.0/24", "fd99::/64"]);
    c.ipam.routes = routes;
    const add = await call(e, p, c, "ADD", { env, args: `IgnoreUnknown=1;MAC=${MAC}` });
    t.is(add.code, 0, `${way}: ${add.stdout}${add.stderr}`);
    const hostVeth = add.json.interfaces[1].name as string;
    state[way] = { pod: await podState(p), host: await hostEnd(e.node, hostVeth, e.bridge), result: add.json };

    const check = await call(e, p, { ...c, prevResult: add.json }, "CHECK", { env });
    t.is(check.code, 0, `${way} CHECK: ${check.stdout}`);
    const del = await call(e, p, { ...c, prevResult: add.json }, "DEL", { env });
    t.is(del.code, 0, `${way} DEL: ${del.stdout}`);
    t.deepEqual(await ipJSON(p, ["link", "show", "dev", "eth0"]).catch(() => "gone"), "gone", `${way}: pod end removed`);
    t.deepEqual(await ipJSON(e.node, ["link", "show", "dev", hostVeth]).catch(() => "gone"), "gone", `${way}: host end removed`);
  }
  const [nl, ip] = [state.netlink!, state.ip!];
  t.deepEqual(nl.pod, ip.pod);
  t.deepEqual(nl.host, ip.host);
  t.like(nl.host, { onBridge: true, up: true, mtu: 1400, hairpin: true, kind: "veth" });
  const strip = (r: any) => ({ ...r, interfaces: r.interfaces.map((i: any) => ({ name: i.sandbox ? i.name : "host", sandbox: Boolean(i.sandbox) })) });
  t.deepEqual(strip(nl.result), strip(ip.result));
  // The routes really are in the kernel with their options (not just equal between the two ways).
  const r60 = (nl.pod as any).routes.find((r: any) => r.dst === "10.60.0.0/16");
  t.like(r60, { gateway: "10.99.0.254", metric: 300 });
  t.true((nl.pod as any).routes.some((r: any) => r.dst === "192.168.7.0/24" && r.table === "100" && r.gateway === "10.99.0.1"));
  t.true((nl.pod as any).routes.some((r: any) => r.dst === "default" && r.gateway === "10.99.0.1"));
});
