// The kubelet's read-only status endpoint on a unix socket (<state-dir>/kubelet.sock):
//   GET /healthz  "ok" (503 with the reason while the kubelet is not ready)
//   GET /pods     a PodList of the pods the kubelet runs, with their current status
// It is how standalone nodes are observed (there is no API server to read status from).
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import type { Pod } from "../apiserver/types.ts";

export interface StatusSource {
  pods(): Pod[];
  health(): { ok: boolean; message: string };
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function serveStatus(socketPath: string, src: StatusSource): Promise<Server> {
  if (existsSync(socketPath)) {
    if (await answers(socketPath)) throw new Error(`another kubelet is serving ${socketPath}`);
    unlinkSync(socketPath); // left by a kubelet that was killed
  }
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown, type = "application/json") => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      res.writeHead(code, { "content-type": type, "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    const url = new URL(req.url ?? "/", "http://kubelet");
    if (req.method !== "GET") return send(405, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "MethodNotAllowed", code: 405, message: "the kubelet status endpoint is read-only" });
    if (url.pathname === "/healthz") {
      const h = src.health();
      return send(h.ok ? 200 : 503, h.ok ? "ok" : h.message, "text/plain");
    }
    if (url.pathname === "/pods") return send(200, { kind: "PodList", apiVersion: "v1", metadata: {}, items: src.pods() });
    send(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `no such endpoint ${url.pathname}: try /healthz or /pods` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return server;
}
