// Node-side helpers that need no nftables: route_localnet on the interface toward the pod and
// removal of stale UDP conntrack entries. Both run in the netns the plugin runs in (the node).
import { runAsync } from "../pkg/exec.ts";
import { readText, writeText } from "../pkg/fd.ts";
import type { PortMapping } from "./config.ts";

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

/** /proc/net/route stores addresses as host-order (little-endian) hex of the network bytes. */
function procHexToInt(h: string): number {
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0;
}

const popcount = (n: number) => n.toString(2).replace(/0/g, "").length;

/**
 * The interface the main routing table sends `ip` out of (longest prefix, then lowest metric).
 * Read from /proc rather than `ip route get` to spare a process start on every ADD.
 */
export function routeInterfaceV4(ip: string, routeTable = "/proc/net/route"): string | undefined {
  let text: string;
  try {
    text = readText(routeTable);
  } catch {
    return undefined;
  }
  const target = ipv4ToInt(ip);
  let best: { iface: string; bits: number; metric: number } | undefined;
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dst, , flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    if ((parseInt(flags, 16) & 0x1) === 0) continue; // RTF_UP
    const m = procHexToInt(mask);
    if (((target & m) >>> 0) !== procHexToInt(dst)) continue;
    const cand = { iface, bits: popcount(m), metric: Number(metric) };
    if (!best || cand.bits > best.bits || (cand.bits === best.bits && cand.metric < best.metric)) best = cand;
  }
  return best?.iface;
}

/**
 * Lets 127.0.0.0/8-sourced packets leave through `iface` (they are masqueraded on the way out),
 * which is what makes a host port reachable as localhost:PORT on the node.
 */
export function enableRouteLocalnet(iface: string): void {
  if (iface.includes("/") || iface === "." || iface === "..") return;
  const path = `/proc/sys/net/ipv4/conf/${iface}/route_localnet`;
  if (readText(path).trim() === "1") return;
  writeText(path, "1");
}

export function routeLocalnetEnabled(iface: string): boolean {
  try {
    return readText(`/proc/sys/net/ipv4/conf/${iface}/route_localnet`).trim() === "1";
  } catch {
    return false;
  }
}

// Above this many tracked connections, reading /proc/net/nf_conntrack costs more than letting
// conntrack(8) filter them.
const PROC_SCAN_LIMIT = 4096;

/**
 * Whether the netns may hold UDP conntrack entries for these ports: answered from
 * /proc/net/nf_conntrack when the table is small (no process start), else "maybe".
 */
export function mayHaveUdpEntries(ports: Set<number>, procDir = "/proc/net"): boolean {
  try {
    const stat = readText(`${procDir}/stat/nf_conntrack`).split("\n")[1] ?? "";
    const entries = parseInt(stat.trim().split(/\s+/)[0] ?? "", 16);
    if (!Number.isFinite(entries) || entries > PROC_SCAN_LIMIT) return true;
    // "ipv4 2 udp 17 29 src=... dst=... sport=N dport=N ...": the first dport is the original one.
    for (const line of readText(`${procDir}/nf_conntrack`).split("\n")) {
      const m = /^ipv[46]\s+\d+\s+udp\s+17\s+\d+\s+src=\S+\s+dst=\S+\s+sport=\d+\s+dport=(\d+)/.exec(line);
      if (m && ports.has(Number(m[1]))) return true;
    }
    return false;
  } catch {
    return true; // no procfs view of conntrack: ask conntrack(8)
  }
}

/**
 * Deletes UDP conntrack entries for the new host ports, in one `conntrack -R -` batch: a client
 * that was already sending to the port (e.g. before the pod existed) keeps an un-NATed entry
 * that would otherwise black-hole its traffic for as long as it keeps sending. Best effort, as
 * with the reference plugin: a missing conntrack tool or a failure only costs that cleanup.
 */
export async function deleteStaleUdpEntries(mappings: PortMapping[], families: (4 | 6)[]): Promise<void> {
  const ports = new Set(mappings.filter((m) => m.protocol === "udp").map((m) => m.hostPort));
  if (ports.size === 0 || families.length === 0 || !mayHaveUdpEntries(ports)) return;
  const lines = families.flatMap((f) => [...ports].map((p) => `-D -f ipv${f} -p udp --orig-port-dst ${p}`));
  await runAsync("conntrack", ["-R", "-"], { input: lines.join("\n") + "\n", allowFail: true });
}
