// The runtime's API server: JSON over HTTP on a unix socket in the state directory.
//   POST /runtime.v1.RuntimeService/<Method>   the CRI-shaped calls (../cri/types.ts)
//   POST /podnet.v1/SetPodSandboxNetwork       podnet extension
//   POST /podnet.v1/ContainerLogs              podnet extension, streams text/plain CRI log lines
// Failures answer {code, message} with a gRPC-like code and the matching HTTP status.
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { HTTP_STATUS, PODNET_SERVICE, RUNTIME_SERVICE, type ErrorBody, type StatusResponse, type VersionResponse } from "../cri/types.ts";
import { containerStatus, createContainer, listContainers, removeContainer, reopenContainerLog, startContainer, stopContainer } from "./containers.ts";
import { RuntimeError } from "./errors.ts";
import { execSync } from "./exec.ts";
import { parseLogsRequest, streamLogs } from "./logs.ts";
import type { Runtime } from "./runtime.ts";
import { listPodSandbox, podSandboxStatus, removePodSandbox, runPodSandbox, setPodSandboxNetwork, stopPodSandbox } from "./sandboxes.ts";

export const RUNTIME_VERSION = "0.1.0";
const MAX_BODY = 4 * 1024 * 1024;

type Handler = (rt: Runtime, req: Record<string, unknown>) => unknown;

const RUNTIME_METHODS: Record<string, Handler> = {
  Version: (): VersionResponse => ({ version: "0.1.0", runtimeName: "podnet", runtimeVersion: RUNTIME_VERSION, runtimeApiVersion: "v1" }),
  Status: (rt): StatusResponse => ({
    status: {
      conditions: [
        { type: "RuntimeReady", status: true, reason: "", message: "" },
        // Pod networks are the kubelet's job (CNI); the runtime is ready to hold them.
        { type: "NetworkReady", status: true, reason: "", message: "pod networks are set up by the kubelet through CNI" },
      ],
    },
    info: { stateDir: rt.store.root, netnsPrefix: rt.netnsPrefix, sandboxes: rt.sandboxes.size, containers: rt.containers.size },
  }),
  RunPodSandbox: runPodSandbox,
  StopPodSandbox: stopPodSandbox,
  RemovePodSandbox: removePodSandbox,
  PodSandboxStatus: podSandboxStatus,
  ListPodSandbox: listPodSandbox,
  CreateContainer: createContainer,
  StartContainer: startContainer,
  StopContainer: stopContainer,
  RemoveContainer: removeContainer,
  ContainerStatus: containerStatus,
  ListContainers: listContainers,
  ExecSync: execSync,
  ReopenContainerLog: reopenContainerLog,
};

const PODNET_METHODS: Record<string, Handler> = {
  SetPodSandboxNetwork: setPodSandboxNetwork,
};

function sendJSON(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown, rt: Runtime, what: string): void {
  let body: ErrorBody;
  if (err instanceof RuntimeError) body = { code: err.code, message: err.message };
  else {
    // Not a user's error: logged in full here, one line to the caller.
    rt.log(`${what}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    body = { code: "Internal", message: err instanceof Error ? err.message : String(err) };
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJSON(res, HTTP_STATUS[body.code] ?? 500, body);
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    req.on("data", (c: Buffer) => {
      len += c.length;
      if (len > MAX_BODY) {
        reject(new RuntimeError("ResourceExhausted", `request body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8").trim();
      if (!text) return resolve({});
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (e) {
        return reject(new RuntimeError("InvalidArgument", `request body is not JSON: ${(e as Error).message}`));
      }
      if (typeof body !== "object" || body === null || Array.isArray(body)) return reject(new RuntimeError("InvalidArgument", "request body must be a JSON object"));
      resolve(body as Record<string, unknown>);
    });
    req.on("error", reject);
  });
}

function lookup(methods: Record<string, Handler>, name: string): Handler | undefined {
  return Object.hasOwn(methods, name) ? methods[name] : undefined;
}

async function containerLogs(rt: Runtime, body: Record<string, unknown>, res: ServerResponse): Promise<void> {
  const c = rt.requireContainer("containerId", body.containerId);
  const opts = parseLogsRequest(body);
  const abort = new AbortController();
  res.on("close", () => abort.abort());
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  const write = (text: string) =>
    new Promise<void>((resolve) => {
      if (abort.signal.aborted || res.write(text)) return resolve();
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  await streamLogs(rt, c, opts, write, abort.signal);
  res.end();
}

async function handle(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? "/";
  const what = `${req.method} ${url}`;
  try {
    if (req.method !== "POST") throw new RuntimeError("Unimplemented", `${req.method} not supported: POST ${RUNTIME_SERVICE}<Method>`);
    let handler: Handler | undefined;
    if (url.startsWith(RUNTIME_SERVICE)) handler = lookup(RUNTIME_METHODS, url.slice(RUNTIME_SERVICE.length));
    else if (url.startsWith(PODNET_SERVICE)) {
      const name = url.slice(PODNET_SERVICE.length);
      if (name === "ContainerLogs") return await containerLogs(rt, await readBody(req), res);
      handler = lookup(PODNET_METHODS, name);
    }
    if (!handler) throw new RuntimeError("Unimplemented", `unknown method ${url}`);
    const body = await readBody(req);
    const result = await handler(rt, body);
    sendJSON(res, 200, result ?? {});
  } catch (err) {
    if (err instanceof RuntimeError && err.code !== "NotFound") rt.log(`${what}: ${err.code}: ${err.message}`);
    sendError(res, err, rt, what);
  }
}

/** True when something answers on the socket (another daemon using the same state dir). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

export async function listen(rt: Runtime, socketPath: string): Promise<Server> {
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`socket path ${socketPath} is too long for a unix socket (at most 107 bytes); use a shorter --state-dir`);
  if (existsSync(socketPath)) {
    if (await socketAnswers(socketPath)) throw new Error(`another runtime is already serving ${socketPath}`);
    unlinkSync(socketPath); // left by a daemon that was killed
  }
  const server = createServer((req, res) => void handle(rt, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return server;
}
