// Liveness and readiness over HTTP, like CoreDNS's health (/health) and ready (/ready) plugins:
// /health answers 200 while the process serves, /ready 200 once the first sync is done and 503
// before it, so a kubelet probe (or `curl`) can tell a starting server from a working one.
import http from "node:http";

export async function startHealthServer(host: string, port: number, isReady: () => boolean): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, body: string) => {
      res.writeHead(code, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    if (path === "/health") return send(200, "OK\n");
    if (path === "/ready") return isReady() ? send(200, "OK\n") : send(503, "not synced yet\n");
    send(404, "not found: try /health or /ready\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
