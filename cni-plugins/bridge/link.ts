// Links: the veth pair, the bridge, and batched iproute2 steps that tolerate the failures a
// concurrent ADD can cause ("File exists" for a bridge or address another ADD just made).
import { runAsync } from "../pkg/exec.ts";
import { readText } from "../pkg/fd.ts";
import { CniError, ErrCode } from "../pkg/errors.ts";
import { batchAsync, type LinkInfo } from "../pkg/ip.ts";
import { linksPresent as linksPresentOverNetlink } from "../pkg/ipnl.ts";
import { hexOf, randomBytes, randomHex } from "../pkg/digest.ts";

/** A random locally administered unicast MAC: made here so nothing has to be read back. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return hexOf(b, ":");
}

export const randomVethName = () => `veth${randomHex(4)}`;

/**
 * Which of `names` are links in this process's netns: over rtnetlink, else from /proc (no process
 * start either way; /sys may show another netns).
 */
export function linksPresent(names: string[]): Set<string> {
  const asked = linksPresentOverNetlink(names);
  if (asked) return asked;
  const text = readText("/proc/self/net/dev");
  const all = new Set(text.split("\n").slice(2).map((l) => l.split(":")[0]!.trim()).filter(Boolean));
  return new Set(names.filter((n) => all.has(n)));
}

export interface Step {
  args: (string | number)[];
  /** stderr of this line that lets the batch go on past it. */
  tolerate?: RegExp;
}

export const EXISTS = /File exists/;
export const MISSING = /Cannot find device|does not exist|No such device|Cannot assign requested address|No such file or directory/;

function message(stderr: string): string {
  return stderr.split("\n").filter((l) => l.trim() && !/^Command failed/.test(l)).join("; ").trim() || "failed";
}

/**
 * Runs steps as one `ip -batch` (or `bridge -batch`). A line failing with a tolerated error is
 * skipped and the rest runs as a new batch. With `json`, returns the documents "show" lines print.
 */
export async function runSteps(program: "ip" | "bridge", steps: Step[], opts: { netns?: string; json?: boolean; where: string }): Promise<unknown[]> {
  const docs: unknown[] = [];
  let rest = steps;
  while (rest.length > 0) {
    const lines: (string | number)[][] = [];
    for (const s of rest) lines.push(s.args);
    const r = await batchAsync(program, lines, { netns: opts.netns, json: opts.json, details: opts.json });
    if (opts.json) for (const line of r.stdout.split("\n")) if (line.trim()) docs.push(JSON.parse(line));
    if (r.status === 0) return docs;
    const step = r.failedLine ? rest[r.failedLine - 1] : undefined;
    if (!step) throw new CniError(ErrCode.Kernel, `${program} failed ${opts.where}: ${message(r.stderr)}`);
    if (!step.tolerate?.test(r.stderr)) {
      throw new CniError(ErrCode.Kernel, `${program} ${step.args.join(" ")} failed ${opts.where}: ${message(r.stderr)}`);
    }
    rest = rest.slice(r.failedLine);
  }
  return docs;
}

function netnsFailure(stderr: string, netns: string): CniError | undefined {
  if (!/^nsenter:/m.test(stderr)) return undefined;
  return new CniError(ErrCode.NetnsUnusable, `cannot enter the container's network namespace ${netns}`, message(stderr));
}

export interface VethSpec {
  netns: string;
  ifname: string;
  containerMac: string;
  hostMac: string;
  mtu: number;
}

/**
 * Creates the veth pair, one end in the container's netns. Fails with code 103, having changed
 * nothing, when the container already has `ifname`. Returns the host end's name.
 */
export async function createVeth(v: VethSpec): Promise<string> {
  const mtu = v.mtu ? ["mtu", v.mtu] : [];
  // A netns that iproute2 can name (/run/netns/NAME) gets the container end straight from our
  // netns: one process. Any other path (e.g. /proc/PID/ns/net): made inside it, the host end
  // sent to our netns by pid, through nsenter so that this thread stays home meanwhile.
  const named = NAMED_NETNS.exec(v.netns)?.[1];
  for (let attempt = 0; attempt < 4; attempt++) {
    const host = randomVethName();
    const hostEnd = ["name", host, "address", v.hostMac, ...mtu];
    const containerEnd = ["name", v.ifname, "address", v.containerMac, ...mtu];
    const r = named
      ? await batchAsync("ip", [["link", "add", ...hostEnd, "type", "veth", "peer", ...containerEnd, "netns", named]])
      : await batchAsync("ip", [["link", "add", ...containerEnd, "type", "veth", "peer", ...hostEnd, "netns", process.pid]], { netns: v.netns, nsenter: true });
    if (r.status === 0) return host;
    if (named && /Invalid "netns" value/.test(r.stderr)) throw new CniError(ErrCode.NetnsUnusable, `cannot enter the container's network namespace ${v.netns}`, message(r.stderr));
    const ns = netnsFailure(r.stderr, v.netns);
    if (ns) throw ns;
    if (!EXISTS.test(r.stderr)) throw new CniError(ErrCode.Kernel, `cannot create the veth pair for ${v.ifname}: ${message(r.stderr)}`);
    // Either the container has the name or (rarely) our random host name was taken: find out which.
    const probe = await runAsync("ip", ["link", "show", "dev", v.ifname], { netns: v.netns, allowFail: true });
    if (probe.status === 0) {
      throw new CniError(ErrCode.InterfaceExists, `interface ${v.ifname} already exists in the container's network namespace ${v.netns}`, "choose another CNI_IFNAME, or DEL the attachment that made it first");
    }
  }
  throw new CniError(ErrCode.Kernel, `cannot create the veth pair for ${v.ifname}: no free host-side name found`);
}

/** Netns paths iproute2 can refer to by name. */
const NAMED_NETNS = /^\/(?:var\/)?run\/netns\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/;

/** `ip -j -d addr show` of each named link in our netns (all must exist). */
export async function showLinks(names: string[]): Promise<LinkInfo[]> {
  if (names.length === 0) return [];
  const docs = await runSteps("ip", names.map((n) => ({ args: ["addr", "show", "dev", n] })), { json: true, where: "in the plugin's netns" });
  return docs.map((d) => (d as LinkInfo[])[0]!);
}

/** The container's link `ifname` with details, or undefined when it (or the netns) is gone. */
export async function showContainerLink(netns: string, ifname: string): Promise<LinkInfo | undefined> {
  const r = await batchAsync("ip", [["addr", "show", "dev", ifname]], { netns, json: true, details: true });
  if (r.status === 0) return (JSON.parse(r.stdout.trim().split("\n")[0] ?? "[]") as LinkInfo[])[0];
  if (/^nsenter: cannot open/m.test(r.stderr)) return undefined;
  const ns = netnsFailure(r.stderr, netns);
  if (ns) throw ns;
  if (MISSING.test(r.stderr)) return undefined;
  throw new CniError(ErrCode.Kernel, `cannot read ${ifname} in the container: ${message(r.stderr)}`);
}

export const kindOf = (l: LinkInfo | undefined) => l?.linkinfo?.info_kind;
