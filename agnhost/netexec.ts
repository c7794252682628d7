// `podnet agnhost netexec`: the test server of Kubernetes' e2e agnhost image, as far as the
// networking tests use it. HTTP on --http-port, UDP on --udp-port (and SCTP is not offered).
//   GET /hostname            the pod's hostname
//   GET /clientip            the client's address as "ip:port", as the server sees it
//   GET /echo?msg=X          X
//   GET /dial?host=&port=&request=&protocol=http|udp&tries=N
//                            asks another server N times; JSON {"responses":[...],"errors":[...]}
//   GET /healthz             200
//   GET /exit?code=N         exits with code N (for restart tests)
// UDP: "hostname" -> hostname, "echo X" -> X, "clientip" -> "ip:port".
import { createSocket } from "node:dgram";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { hostname } from "node:os";
import { parseArgs } from "node:util";

const DIAL_TIMEOUT_MS = 2000;

function httpGet(host: string, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: "GET", timeout: DIAL_TIMEOUT_MS, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(body.trim()));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${DIAL_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function udpAsk(host: string, port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(host.includes(":") ? "udp6" : "udp4");
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`timeout after ${DIAL_TIMEOUT_MS} ms`));
    }, DIAL_TIMEOUT_MS);
    sock.on("message", (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m.toString().trim());
    });
    sock.on("error", (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.send(msg, port, host);
  });
}

async function dial(q: URLSearchParams): Promise<{ responses: string[]; errors: string[] }> {
  const host = q.get("host") ?? "";
  const port = Number(q.get("port"));
  const requestText = q.get("request") ?? "hostname";
  const protocol = q.get("protocol") ?? "http";
  const tries = Math.min(Math.max(Number(q.get("tries") ?? "1") || 1, 1), 100);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error("dial needs host and a port between 1 and 65535");
  if (protocol !== "http" && protocol !== "udp") throw new Error(`unsupported protocol ${protocol}: use http or udp`);
  const responses: string[] = [], errors: string[] = [];
  for (let i = 0; i < tries; i++) {
    try {
      const path = requestText.startsWith("/") ? requestText : `/${requestText}`;
      responses.push(protocol === "http" ? await httpGet(host, port, path) : await udpAsk(host, port, requestText));
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return { responses, errors };
}

function remote(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? "";
  const ip = a.startsWith("::ffff:") ? a.slice(7) : a;
  return ip.includes(":") ? `[${ip}]:${req.socket.remotePort}` : `${ip}:${req.socket.remotePort}`;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  const send = (code: number, body: string, type = "text/plain") => {
    res.writeHead(code, { "Content-Type": type });
    res.end(body);
  };
  switch (url.pathname) {
    case "/":
    case "/hostname":
      return send(200, hostname());
    case "/clientip":
      return send(200, remote(req));
    case "/echo":
      return send(200, url.searchParams.get("msg") ?? "");
    case "/healthz":
      return send(200, "ok");
    case "/dial":
      try {
        return send(200, JSON.stringify(await dial(url.searchParams)), "application/json");
      } catch (e) {
        return send(400, (e as Error).message);
      }
    case "/exit": {
      const code = Number(url.searchParams.get("code") ?? "0");
      send(200, "");
      setTimeout(() => process.exit(Number.isInteger(code) ? code : 0), 10);
      return;
    }
    default:
      return send(404, `unknown path ${url.pathname}`);
  }
}

function udpServer(port: number, family: "udp4" | "udp6"): void {
  const sock = createSocket({ type: family, ipv6Only: family === "udp6" });
  sock.on("message", (m, rinfo) => {
    const text = m.toString().trim();
    let answer: string;
    if (text === "hostname") answer = hostname();
    else if (text.startsWith("echo ")) answer = text.slice(5);
    else if (text === "clientip") answer = rinfo.family === "IPv6" ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`;
    else answer = `unknown request ${JSON.stringify(text)}`;
    sock.send(answer, rinfo.port, rinfo.address);
  });
  sock.on("error", (e) => {
    // A netns without IPv6 cannot bind udp6; IPv4 keeps working.
    if (family === "udp6") sock.close();
    else throw e;
  });
  sock.bind(port);
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "http-port": { type: "string", default: "8080" }, "udp-port": { type: "string", default: "8081" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write("Usage: podnet agnhost netexec [--http-port 8080] [--udp-port 8081]\n\nServes /hostname, /clientip, /echo?msg=, /dial?host=&port=&request=&protocol=http|udp&tries=, /healthz, /exit?code=\nand answers UDP \"hostname\", \"echo X\" and \"clientip\". A --udp-port of 0 turns UDP off.\n");
    return 0;
  }
  const httpPort = Number(values["http-port"]);
  const udpPort = Number(values["udp-port"]);
  createServer((req, res) => void handle(req, res)).listen(httpPort);
  if (udpPort > 0) {
    udpServer(udpPort, "udp4");
    udpServer(udpPort, "udp6");
  }
  process.stdout.write(`netexec: http on ${httpPort}${udpPort > 0 ? `, udp on ${udpPort}` : ""}, hostname ${hostname()}\n`);
  return new Promise<number>(() => undefined); // serves until killed
}
