// RuntimeClient: typed calls to a podnet runtime daemon over its unix socket, for the kubelet
// and crictl. Every method sends one JSON request and returns the parsed response; a failed call
// throws RuntimeApiError carrying the daemon's gRPC-like code.
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { IncomingMessage } from "node:http";
import {
  PODNET_SERVICE,
  RUNTIME_SERVICE,
  SOCKET_NAME,
  type ContainerLogsRequest,
  type ContainerStatusRequest,
  type ContainerStatusResponse,
  type CreateContainerRequest,
  type CreateContainerResponse,
  type Empty,
  type ErrorCode,
  type ExecSyncRequest,
  type ExecSyncResponse,
  type ListContainersRequest,
  type ListContainersResponse,
  type ListPodSandboxRequest,
  type ListPodSandboxResponse,
  type PodSandboxStatusRequest,
  type PodSandboxStatusResponse,
  type RemoveContainerRequest,
  type RemovePodSandboxRequest,
  type ReopenContainerLogRequest,
  type RunPodSandboxRequest,
  type RunPodSandboxResponse,
  type SetPodSandboxNetworkRequest,
  type StartContainerRequest,
  type StatusRequest,
  type StatusResponse,
  type StopContainerRequest,
  type StopPodSandboxRequest,
  type VersionRequest,
  type VersionResponse,
} from "./types.ts";

export class RuntimeApiError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  constructor(code: ErrorCode, message: string, httpStatus: number) {
    super(message);
    this.name = "RuntimeApiError";
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/** The socket path from "unix:///path", a bare path, or a runtime state directory. */
export function socketPathOf(endpoint: string): string {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length);
  if (endpoint.includes("://")) throw new Error(`unsupported runtime endpoint ${endpoint}: only unix:///path is`);
  return endpoint;
}

export function socketInStateDir(stateDir: string): string {
  return join(stateDir, SOCKET_NAME);
}

export class RuntimeClient {
  readonly socketPath: string;

  /** `endpoint`: "unix:///path/runtime.sock" or the socket's path. */
  constructor(endpoint: string) {
    this.socketPath = socketPathOf(endpoint);
  }

  static forStateDir(stateDir: string): RuntimeClient {
    return new RuntimeClient(socketInStateDir(stateDir));
  }

  version(req: VersionRequest = {}): Promise<VersionResponse> {
    return this.call("Version", req);
  }
  status(req: StatusRequest = {}): Promise<StatusResponse> {
    return this.call("Status", req);
  }
  runPodSandbox(req: RunPodSandboxRequest): Promise<RunPodSandboxResponse> {
    return this.call("RunPodSandbox", req);
  }
  stopPodSandbox(req: StopPodSandboxRequest): Promise<Empty> {
    return this.call("StopPodSandbox", req);
  }
  removePodSandbox(req: RemovePodSandboxRequest): Promise<Empty> {
    return this.call("RemovePodSandbox", req);
  }
  podSandboxStatus(req: PodSandboxStatusRequest): Promise<PodSandboxStatusResponse> {
    return this.call("PodSandboxStatus", req);
  }
  listPodSandbox(req: ListPodSandboxRequest = {}): Promise<ListPodSandboxResponse> {
    return this.call("ListPodSandbox", req);
  }
  createContainer(req: CreateContainerRequest): Promise<CreateContainerResponse> {
    return this.call("CreateContainer", req);
  }
  startContainer(req: StartContainerRequest): Promise<Empty> {
    return this.call("StartContainer", req);
  }
  stopContainer(req: StopContainerRequest): Promise<Empty> {
    return this.call("StopContainer", req);
  }
  removeContainer(req: RemoveContainerRequest): Promise<Empty> {
    return this.call("RemoveContainer", req);
  }
  containerStatus(req: ContainerStatusRequest): Promise<ContainerStatusResponse> {
    return this.call("ContainerStatus", req);
  }
  listContainers(req: ListContainersRequest = {}): Promise<ListContainersResponse> {
    return this.call("ListContainers", req);
  }
  execSync(req: ExecSyncRequest): Promise<ExecSyncResponse> {
    return this.call("ExecSync", req);
  }
  reopenContainerLog(req: ReopenContainerLogRequest): Promise<Empty> {
    return this.call("ReopenContainerLog", req);
  }
  /** podnet extension: record the pod's IPs after the CNI ADD (also writes the pod's /etc/hosts). */
  setPodSandboxNetwork(req: SetPodSandboxNetworkRequest): Promise<Empty> {
    return this.call("SetPodSandboxNetwork", req, PODNET_SERVICE);
  }

  /**
   * podnet extension: the container's log as CRI log lines (see ../cri/logformat.ts), one string
   * per line. With follow it ends once the container has exited; pass a signal to stop earlier.
   */
  async *containerLogs(req: ContainerLogsRequest, signal?: AbortSignal): AsyncGenerator<string> {
    const res = await this.post(PODNET_SERVICE + "ContainerLogs", req, signal);
    if (res.statusCode !== 200) throw await errorOf(res);
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) yield line;
    } finally {
      lines.close();
      res.destroy();
    }
  }

  /** Any method by name, for callers that build requests themselves. */
  async call<T>(method: string, body: unknown, service = RUNTIME_SERVICE): Promise<T> {
    const res = await this.post(service + method, body);
    if (res.statusCode !== 200) throw await errorOf(res);
    const text = await readAll(res);
    return (text ? JSON.parse(text) : {}) as T;
  }

  private post(path: string, body: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    const data = JSON.stringify(body ?? {});
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, path, method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) }, signal },
        resolve,
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
          reject(new RuntimeApiError("Unavailable", `runtime not reachable at ${this.socketPath}: ${err.code === "ENOENT" ? "no socket" : "connection refused"} (is \`podnet runtime\` running?)`, 503));
        } else reject(err);
      });
      req.end(data);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

async function errorOf(res: IncomingMessage): Promise<RuntimeApiError> {
  const status = res.statusCode ?? 500;
  const text = await readAll(res);
  try {
    const body = JSON.parse(text) as { code?: ErrorCode; message?: string };
    if (body.code && typeof body.message === "string") return new RuntimeApiError(body.code, body.message, status);
  } catch {
    /* not JSON: fall through */
  }
  return new RuntimeApiError("Unknown", `HTTP ${status}: ${text.slice(0, 200)}`, status);
}
