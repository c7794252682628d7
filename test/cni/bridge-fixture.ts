// Shared pieces of the bridge tests: a node netns with a private bridge name and IPAM store,
// plugin calls the way a runtime makes them, kernel-state readers and real traffic.
import type { ExecutionContext } from "ava";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { callPlugin, OUR_BIN, REF_BIN, type PluginCall, type PluginOutput } from "../helpers/cni.ts";
import { createNetns, inNetns, ipJSON, uniqueName, type Netns } from "../helpers/netns.ts";

export const OURS = join(OUR_BIN, "bridge");
export const REF = join(REF_BIN, "bridge");
export const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/** Where IPAM is found: ours once built (the main tests must use it), else the reference's. */
export const IPAM_PATH = existsSync(join(OUR_BIN, "host-local")) ? OUR_BIN : REF_BIN;

export interface Env {
  node: Netns;
  dataDir: string;
  bridge: string;
  net: string;
}

export async function setup(t: ExecutionContext): Promise<Env> {
  const node = await createNetns(t, "brn");
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-br-" });
  t.teardown(() => tmp.cleanup());
  return { node, dataDir: tmp.path, bridge: uniqueName("pbr"), net: uniqueName("brnet") };
}

export const pod = (t: ExecutionContext) => createNetns(t, "brp");

/** A bridge config with host-local IPAM on `subnets` (one range set each). */
export function conf(e: Env, extra: Record<string, unknown> = {}, subnets: string[] = ["10.99.0.0/24"], version = "1.1.0"): Record<string, any> {
  return {
    cniVersion: version,
    name: e.net,
    type: "bridge",
    bridge: e.bridge,
    ...extra,
    ipam: { type: "host-local", dataDir: e.dataDir, ranges: subnets.map((subnet) => [{ subnet }]) },
  };
}

export interface Call {
  containerID?: string;
  ifname?: string;
  plugin?: string;
  path?: string;
  args?: string;
  env?: PluginCall["env"];
  netns?: string;
}

export function call(e: Env, p: Netns, config: unknown, command: PluginCall["command"], c: Call = {}): Promise<PluginOutput> {
  return callPlugin(e.node, c.plugin ?? OURS, config, {
    command,
    containerID: c.containerID ?? "c1",
    netns: c.netns ?? p.path,
    ifname: c.ifname ?? "eth0",
    path: c.path ?? IPAM_PATH,
    args: c.args,
    env: c.env,
  });
}

export const withPrev = (config: Record<string, unknown>, result: unknown) => ({ ...config, prevResult: result });

export async function links(ns: Netns): Promise<any[]> {
  return ipJSON(ns, ["-d", "addr", "show"]);
}

export async function link(ns: Netns, name: string): Promise<any | undefined> {
  return (await links(ns)).find((l) => l.ifname === name);
}

export const addrsOf = (l: any): string[] => (l?.addr_info ?? []).filter((a: any) => a.scope !== "link").map((a: any) => `${a.local}/${a.prefixlen}`);

export async function routes(ns: Netns): Promise<any[]> {
  return ipJSON(ns, ["route", "show", "table", "all"]);
}

/** Reservation files of the network in the IPAM store (not the lock or last_reserved_ip.N). */
export function reservations(e: Env): string[] {
  const dir = join(e.dataDir, e.net);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== "lock" && !n.startsWith("last_reserved_ip.")).sort();
}

export interface NftRule {
  family: string;
  table: string;
  chain: string;
  comment?: string;
  expr: any[];
}

/** Every rule of our tables in the node netns. */
export async function ourRules(node: Netns): Promise<NftRule[]> {
  const r = await inNetns(node, NFT, ["-j", "list", "ruleset"]);
  const doc = JSON.parse(String(r.stdout) || "{}");
  return (doc.nftables ?? []).map((o: any) => o.rule).filter((x: any) => x && x.table === "podnet-bridge");
}

/** The rules that belong to an attachment (the base chain's own rules aside). */
export async function taggedRules(node: Netns): Promise<NftRule[]> {
  return (await ourRules(node)).filter((r) => r.comment);
}

/** Masquerade rules by source address and comment. */
export async function masqRules(node: Netns): Promise<{ saddr: string; comment: string }[]> {
  return (await ourRules(node))
    .filter((r) => r.chain === "masq")
    .map((r) => ({ saddr: r.expr.find((x) => x.match?.left?.payload?.field === "saddr")?.match.right, comment: r.comment ?? "" }));
}

/** The system nft: under npx, PATH starts with node_modules/.bin, which has an unrelated "nft". */
export const NFT = "/usr/sbin/nft";

export const ipOf = (cidr: string) => cidr.split("/")[0]!;

export async function ping(ns: Netns, ip: string): Promise<boolean> {
  const r = await inNetns(ns, "ping", ["-c", "1", "-W", "2", ip], { reject: false });
  return r.exitCode === 0;
}

/**
 * An HTTP server in `ns` answering each request with the client's address as it sees it;
 * killed when the test ends.
 */
export async function startWhoAmI(t: ExecutionContext, ns: Netns, host: string, port = 8080): Promise<void> {
  const code = `require("http").createServer((q, s) => s.end(q.socket.remoteAddress.replace(/^::ffff:/, ""))).listen(${port}, ${JSON.stringify(host)}, () => console.log("ready"));`;
  const proc = inNetns(ns, process.execPath, ["-e", code], { reject: false, buffer: false });
  t.teardown(() => {
    proc.kill("SIGKILL");
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server on ${host}:${port} did not start`)), 15000);
    proc.stdout!.on("data", (d: Buffer) => {
      if (String(d).includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.then(() => reject(new Error(`server on ${host}:${port} exited`)));
  });
}

/** What the WhoAmI server at `host` says about a client in `ns`; undefined when unreachable. */
export async function whoAmI(ns: Netns, host: string, port = 8080, extra: string[] = []): Promise<string | undefined> {
  const url = host.includes(":") ? `http://[${host}]:${port}/` : `http://${host}:${port}/`;
  const r = await inNetns(ns, "curl", ["-s", "-g", "--max-time", "5", ...extra, url], { reject: false });
  return r.exitCode === 0 ? String(r.stdout) : undefined;
}
