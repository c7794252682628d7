// `podnet agnhost serve-hostname`: answers every request with the pod's hostname, like agnhost's
// serve-hostname (HTTP by default on 9376; --udp and --tcp for raw sockets).
import { createSocket } from "node:dgram";
import { createServer as createHttp } from "node:http";
import { createServer as createTcp } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: "string", default: "9376" }, http: { type: "boolean" }, tcp: { type: "boolean" }, udp: { type: "boolean" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write("Usage: podnet agnhost serve-hostname [--port 9376] [--http] [--tcp] [--udp]\n\nAnswers with the hostname over HTTP (default), raw TCP and/or UDP on one port.\n");
    return 0;
  }
  const port = Number(values.port);
  const http = values.http || (!values.tcp && !values.udp);
  if (http) createHttp((_req, res) => res.end(hostname())).listen(port);
  else if (values.tcp) createTcp((s) => s.end(hostname())).listen(port);
  if (values.udp) {
    const sock = createSocket("udp4");
    sock.on("message", (_m, r) => sock.send(hostname(), r.port, r.address));
    sock.bind(port);
  }
  process.stdout.write(`serve-hostname: port ${port} (${[http && "http", !http && values.tcp && "tcp", values.udp && "udp"].filter(Boolean).join(", ")})\n`);
  return new Promise<number>(() => undefined);
}
