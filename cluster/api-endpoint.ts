// The API as pods reach it. The API server listens on a unix socket in the state directory,
// which no pod can connect to; in a real cluster pods reach it through the `kubernetes` Service
// (10.96.0.1:443), whose endpoint is the API server's advertised address, over HTTPS. Here the
// emulated cloud provides that address, as a managed control plane's load balancer does:
// `podnet cloud-lb`, in the fabric netns, terminates TLS on the fabric router's address (port
// 6443) and forwards each connection to the socket. The API server publishes that address in the
// `kubernetes` EndpointSlice (--advertise-address), so kube-proxy sends 10.96.0.1:443 there.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { systemBinary } from "../cni-plugins/pkg/exec.ts";

export const API_ENDPOINT_PORT = 6443;

export interface ServingCert {
  cert: string;
  key: string;
}

/** The names a client may use for the API from inside the cluster. */
export function apiServerNames(domain: string, kubernetesIP: string, advertiseIP: string): string[] {
  return ["kubernetes", "kubernetes.default", "kubernetes.default.svc", `kubernetes.default.svc.${domain}`, "localhost"]
    .map((d) => `DNS:${d}`)
    .concat([`IP:${kubernetesIP}`, `IP:${advertiseIP}`, "IP:127.0.0.1"]);
}

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(systemBinary("openssl"), args, (err, _out, stderr) => (err ? reject(new Error(`openssl ${args[0]}: ${String(stderr).trim() || err.message}`)) : resolve()));
  });
}

/**
 * A self-signed serving certificate for the API (P-256, 10 years) in `dir`, made once per
 * cluster: apiserver.crt and apiserver.key. Returns the paths.
 */
export async function ensureServingCert(dir: string, names: string[]): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "apiserver.crt");
  const key = join(dir, "apiserver.key");
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.new-${process.pid}`);
  try {
    await openssl([
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
      "-subj", "/CN=kube-apiserver", "-addext", `subjectAltName=${names.join(",")}`,
      "-keyout", `${tmp}.key`, "-out", `${tmp}.crt`,
    ]);
    renameSync(`${tmp}.key`, key);
    renameSync(`${tmp}.crt`, cert);
  } finally {
    rmSync(`${tmp}.key`, { force: true });
    rmSync(`${tmp}.crt`, { force: true });
  }
  return { cert, key };
}

/** Where the API server is: a unix socket path, or http://HOST:PORT. */
function connectToApi(api: string): Socket {
  if (!api.startsWith("http://")) return connect(api);
  const u = new URL(api);
  return connect(Number(u.port || 80), u.hostname);
}

/** Serves TLS on host:port and pipes every connection to the API server. */
export function serveApiEndpoint(o: { host: string; port: number; certFile: string; keyFile: string; api: string; log: (m: string) => void }): Promise<Server> {
  const tlsServer = createServer({ cert: readFileSync(o.certFile), key: readFileSync(o.keyFile) }, (client) => {
    const upstream = connectToApi(o.api);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", (e) => {
      o.log(`API endpoint: cannot reach the API server: ${e.message}`);
      close();
    });
    client.pipe(upstream).pipe(client);
  });
  // Handshake failures (a client that does not trust the certificate) are the client's business.
  tlsServer.on("tlsClientError", () => undefined);
  return new Promise((resolve, reject) => {
    tlsServer.once("error", reject);
    tlsServer.listen(o.port, o.host, () => {
      tlsServer.off("error", reject);
      resolve(tlsServer);
    });
  });
}
