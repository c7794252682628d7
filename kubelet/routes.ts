// host-gw: in the node's own netns, a route for every other node's podCIDR via that node's
// InternalIP, kept in step with the Node objects. The routes carry a protocol number of their own
// (ROUTE_PROTO), so the kubelet finds exactly the routes it made, replaces or removes only those,
// and never touches a route someone else made for the same destination.
import type { Node } from "../apiserver/types.ts";
import { errMsg, type Logger } from "./log.ts";
import { cidrString, isIPv4, parseCIDR } from "./netutil.ts";
import { sys, sysOk } from "./sys.ts";

/** rtnetlink protocol number marking the kubelet's host-gw routes (unassigned, unnamed by iproute2). */
export const ROUTE_PROTO = "151";

interface RouteJSON {
  dst: string;
  gateway?: string;
  protocol?: string | number;
}

/** Desired routes: other nodes' podCIDR -> their InternalIP. */
export function desiredRoutes(nodes: Node[], self: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    if (n.metadata.name === self) continue;
    const cidr = n.spec?.podCIDR ? parseCIDR(n.spec.podCIDR) : undefined;
    const ip = n.status?.addresses?.find((a) => a.type === "InternalIP" && isIPv4(a.address))?.address;
    if (!cidr || !ip) continue;
    out.set(cidrString(cidr), ip);
  }
  return out;
}

export class HostGwRoutes {
  private pending = false;
  private running?: Promise<void>;
  private readonly problems = new Map<string, string>();

  constructor(
    private readonly self: string,
    private readonly nodes: () => Node[],
    private readonly log: Logger,
  ) {}

  /** Coalesces bursts of Node events into one sync. */
  kick(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = this.sync()
      .catch((e) => this.log.warn(`host-gw routes: ${errMsg(e)}`))
      .finally(() => {
        this.running = undefined;
        if (this.pending) {
          this.pending = false;
          this.kick();
        }
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async list(mineOnly: boolean): Promise<RouteJSON[]> {
    const out = await sysOk("ip", ["-j", "-4", "route", "show", "table", "main", ...(mineOnly ? ["proto", ROUTE_PROTO] : [])]);
    return JSON.parse(out || "[]") as RouteJSON[];
  }

  async sync(): Promise<void> {
    const want = desiredRoutes(this.nodes(), this.self);
    const norm = (d: string) => (d === "default" ? "0.0.0.0/0" : d.includes("/") ? d : `${d}/32`);
    // Filtered by protocol in the kernel query, so a name iproute2 may give the number does not matter.
    const mine = new Map((await this.list(true)).map((r) => [norm(r.dst), r.gateway ?? ""]));
    const others = new Set((await this.list(false)).map((r) => norm(r.dst)).filter((d) => !mine.has(d)));
    for (const [dst, via] of want) {
      if (mine.get(dst) === via) continue;
      if (!mine.has(dst) && others.has(dst)) {
        this.note(dst, `a route for ${dst} that the kubelet did not make exists; leaving it alone`);
        continue;
      }
      const r = await sys("ip", ["route", "replace", dst, "via", via, "proto", ROUTE_PROTO]);
      if (r.code !== 0) this.note(dst, `cannot route ${dst} via ${via}: ${r.stderr.trim()}`);
      else {
        this.problems.delete(dst);
        this.log.info(`host-gw: ${dst} via ${via}`);
      }
    }
    for (const dst of mine.keys()) {
      if (want.has(dst)) continue;
      const r = await sys("ip", ["route", "del", dst, "proto", ROUTE_PROTO]);
      if (r.code !== 0 && !/No such process/.test(r.stderr)) this.note(dst, `cannot remove the route for ${dst}: ${r.stderr.trim()}`);
      else this.log.info(`host-gw: removed ${dst}`);
    }
  }

  private note(key: string, msg: string): void {
    if (this.problems.get(key) === msg) return;
    this.problems.set(key, msg);
    this.log.warn(`host-gw: ${msg}`);
  }
}
