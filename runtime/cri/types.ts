// The runtime API, shaped like CRI's runtime.v1.RuntimeService as protobuf JSON renders it:
// camelCase field names, enums as their names, int64 values (nanosecond timestamps) as
// decimal strings. It travels as JSON over HTTP on the runtime's unix socket:
//   POST /runtime.v1.RuntimeService/<Method>   body: the request, answer: the response
//   POST /podnet.v1/<Method>                   podnet extensions (SetPodSandboxNetwork, ContainerLogs)
// Where podnet deviates from CRI it says so next to the field.

/** int64 on the wire: a decimal string (as protobuf JSON writes it); numbers are accepted too. */
export type Int64 = string;

export interface KeyValue {
  key: string;
  value: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface DNSConfig {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface PortMapping {
  protocol?: Protocol;
  containerPort?: number;
  hostPort?: number;
  hostIp?: string;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  /** The pod's hostname (UTS namespace); defaults to metadata.name cut to 63 characters. */
  hostname?: string;
  /** Directory for the containers' log files; the runtime's own under its state dir when absent. */
  logDirectory?: string;
  dnsConfig?: DNSConfig;
  /** Recorded only: port mappings are the CNI portmap plugin's job, driven by the kubelet. */
  portMappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: Record<string, unknown>;
}

export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface PodIP {
  ip: string;
}

export interface PodSandboxNetworkStatus {
  ip: string;
  additionalIps: PodIP[];
}

export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";

export interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  targetId?: string;
  /** podnet: the sandbox's network namespace (a bind mount made by `ip netns add`); CNI_NETNS for the kubelet. "" with network NODE. */
  netnsPath: string;
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: Int64;
  network: PodSandboxNetworkStatus;
  linux: { namespaces: { options: NamespaceOption } };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

/** podnet: verbose details as a JSON object (CRI has a map of JSON strings here). */
export interface PodSandboxInfo {
  /** The holder process (the pause container's role); 0 once stopped. */
  pid: number;
  netnsName: string;
  netnsPath: string;
  hostname: string;
  hostsPath: string;
  resolvConfPath: string;
  logDirectory: string;
  config: PodSandboxConfig;
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: Int64;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

export interface PodSandboxFilter {
  /** An id or a unique prefix of one. */
  id?: string;
  state?: { state: PodSandboxState };
  labelSelector?: Record<string, string>;
}

export interface ContainerMetadata {
  name: string;
  attempt?: number;
}

export interface ImageSpec {
  image: string;
  annotations?: Record<string, string>;
}

export interface Mount {
  containerPath?: string;
  hostPath?: string;
  readonly?: boolean;
}

export interface ContainerConfig {
  metadata: ContainerMetadata;
  /** Recorded, never pulled: containers run on the host's filesystem. */
  image?: ImageSpec;
  /** The entrypoint; with no image there is nothing to default it from, so command or args is required. */
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: KeyValue[];
  /** Not supported: containers see the host filesystem (plus the pod's /etc/hosts and /etc/resolv.conf). */
  mounts?: Mount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Relative to the sandbox's logDirectory. */
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?: Record<string, unknown>;
}

export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: ContainerMetadata;
  image: ImageSpec;
  imageRef: string;
  state: ContainerState;
  createdAt: Int64;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ContainerStatus {
  id: string;
  metadata: ContainerMetadata;
  state: ContainerState;
  createdAt: Int64;
  /** "0" until started. */
  startedAt: Int64;
  /** "0" until exited. */
  finishedAt: Int64;
  exitCode: number;
  image: ImageSpec;
  imageRef: string;
  /** "Completed", "Error", "Unknown" (monitor lost) once exited. */
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: Mount[];
  logPath: string;
}

/** podnet: verbose details as a JSON object. */
export interface ContainerInfo {
  /** The container's main process; 0 when not running. */
  pid: number;
  podSandboxId: string;
  command: string[];
  args: string[];
  workingDir: string;
  envs: KeyValue[];
  config: ContainerConfig;
}

export interface ContainerFilter {
  /** An id or a unique prefix of one. */
  id?: string;
  state?: { state: ContainerState };
  podSandboxId?: string;
  labelSelector?: Record<string, string>;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

// Requests and responses, one pair per method.

export interface VersionRequest {
  version?: string;
}
export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface StatusRequest {
  verbose?: boolean;
}
export interface StatusResponse {
  status: { conditions: RuntimeCondition[] };
  info?: Record<string, unknown>;
}

export interface RunPodSandboxRequest {
  config: PodSandboxConfig;
  runtimeHandler?: string;
}
export interface RunPodSandboxResponse {
  podSandboxId: string;
  /** podnet: the same as PodSandboxStatus' status.linux.namespaces.options.netnsPath. */
  netnsPath: string;
}

export interface PodSandboxIdRequest {
  /** A full id, or (except for RunPodSandbox's callers) a unique prefix of one. */
  podSandboxId: string;
}
export type StopPodSandboxRequest = PodSandboxIdRequest;
export type RemovePodSandboxRequest = PodSandboxIdRequest;
export type Empty = Record<string, never>;

export interface PodSandboxStatusRequest extends PodSandboxIdRequest {
  verbose?: boolean;
}
export interface PodSandboxStatusResponse {
  status: PodSandboxStatus;
  info?: PodSandboxInfo;
}

export interface ListPodSandboxRequest {
  filter?: PodSandboxFilter;
}
export interface ListPodSandboxResponse {
  items: PodSandbox[];
}

export interface CreateContainerRequest {
  podSandboxId: string;
  config: ContainerConfig;
  sandboxConfig?: PodSandboxConfig;
}
export interface CreateContainerResponse {
  containerId: string;
}

export interface ContainerIdRequest {
  containerId: string;
}
export type StartContainerRequest = ContainerIdRequest;
export type RemoveContainerRequest = ContainerIdRequest;
export type ReopenContainerLogRequest = ContainerIdRequest;

export interface StopContainerRequest extends ContainerIdRequest {
  /** Seconds between SIGTERM and SIGKILL; 0 kills at once. */
  timeout?: Int64 | number;
}

export interface ContainerStatusRequest extends ContainerIdRequest {
  verbose?: boolean;
}
export interface ContainerStatusResponse {
  status: ContainerStatus;
  info?: ContainerInfo;
}

export interface ListContainersRequest {
  filter?: ContainerFilter;
}
export interface ListContainersResponse {
  containers: Container[];
}

export interface ExecSyncRequest {
  containerId: string;
  cmd: string[];
  /** Seconds; 0 or absent waits for ever. */
  timeout?: Int64 | number;
  /** podnet: text written to the command's stdin (then closed). */
  stdin?: string;
}
export interface ExecSyncResponse {
  /** UTF-8 text (CRI's bytes). */
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** podnet: recorded after the CNI ADD; shown in PodSandboxStatus and written to the pod's /etc/hosts. */
export interface SetPodSandboxNetworkRequest {
  podSandboxId: string;
  /** The pod's IPs, the first one primary; an empty list clears them. */
  ips: string[];
  /** Extra /etc/hosts entries, as in a Pod's spec.hostAliases. */
  hostAliases?: { ip: string; hostnames: string[] }[];
}

/**
 * podnet: streams the container's log as CRI log lines ("<RFC3339Nano> <stdout|stderr> <F|P> <text>"),
 * one per line, as text/plain. With follow, the stream ends once the container has exited.
 */
export interface ContainerLogsRequest {
  containerId: string;
  follow?: boolean;
  /** Only the last N lines; absent or negative for all. */
  tail?: number;
}

/** Error body of every failed call, with a gRPC-like code. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

export type ErrorCode =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "FailedPrecondition"
  | "DeadlineExceeded"
  | "ResourceExhausted"
  | "Unimplemented"
  | "Unavailable"
  | "Internal"
  | "Unknown";

/** The HTTP status that goes with each code (as grpc-gateway maps them). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  InvalidArgument: 400,
  FailedPrecondition: 400,
  NotFound: 404,
  AlreadyExists: 409,
  ResourceExhausted: 429,
  Internal: 500,
  Unknown: 500,
  Unimplemented: 501,
  Unavailable: 503,
  DeadlineExceeded: 504,
};

export const RUNTIME_SERVICE = "/runtime.v1.RuntimeService/";
export const PODNET_SERVICE = "/podnet.v1/";

/** Socket file name inside the runtime's state directory. */
export const SOCKET_NAME = "runtime.sock";
