// HTTP health checks, as kube-proxy serves them:
// - one server per Service with externalTrafficPolicy Local on its healthCheckNodePort, so a
//   load balancer only sends traffic to nodes that have local endpoints (200) and not to the
//   others (503);
// - the proxy's own /healthz (and /livez) on --healthz-bind-address.
import http from "node:http";

export interface ServiceHealth {
  namespace: string;
  name: string;
  localEndpoints: number;
}

export class ServiceHealthServers {
  private readonly servers = new Map<number, { server: http.Server; state: ServiceHealth }>();

  constructor(
    private readonly host?: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  /** Makes the set of servers match `want` (port -> state); new ports start listening. */
  async update(want: Map<number, ServiceHealth>): Promise<void> {
    for (const [port, entry] of this.servers) {
      if (!want.has(port)) {
        this.servers.delete(port);
        await new Promise<void>((r) => entry.server.close(() => r()));
      }
    }
    for (const [port, state] of want) {
      const existing = this.servers.get(port);
      if (existing) {
        existing.state = state;
        continue;
      }
      const entry = { server: http.createServer(), state };
      entry.server.on("request", (_req, res) => {
        const s = entry.state;
        const body = JSON.stringify({ service: { namespace: s.namespace, name: s.name }, localEndpoints: s.localEndpoints, serviceProxyHealthy: true });
        res.writeHead(s.localEndpoints > 0 ? 200 : 503, { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff" });
        res.end(body + "\n");
      });
      this.servers.set(port, entry);
      await new Promise<void>((resolve) => {
        entry.server.once("error", (e) => {
          this.log(`health check server for ${state.namespace}/${state.name} on port ${port}: ${e.message}`);
          this.servers.delete(port);
          resolve();
        });
        entry.server.listen({ port, host: this.host }, () => resolve());
      });
    }
  }

  ports(): number[] {
    return [...this.servers.keys()];
  }

  async close(): Promise<void> {
    await this.update(new Map());
  }
}

/** Parses "HOST:PORT" / "[V6]:PORT" bind addresses; "" or "0" disables. */
export function parseBindAddress(s: string): { host: string; port: number } | undefined {
  if (!s || s === "0") return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m) throw new Error(`bad bind address ${JSON.stringify(s)}: want HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bad bind address ${JSON.stringify(s)}: port out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}
