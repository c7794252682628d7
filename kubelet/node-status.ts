// The kubelet's Node: registered at start (labels kubernetes.io/hostname and os, addresses
// InternalIP and Hostname, pods capacity), its podCIDR read back from the API server (which
// allocates it on create), and a heartbeat: the Ready condition's lastHeartbeatTime, posted every
// --node-status-update-frequency, which the node lifecycle controller watches.
import { ApiClient, isApiError, resourcePath } from "../apiserver/client.ts";
import type { Node, NodeCondition } from "../apiserver/types.ts";
import { errMsg, type Logger } from "./log.ts";
import { nowTime } from "./status.ts";

export interface NodeFacts {
  name: string;
  nodeIP: string;
  maxPods: number;
}

export interface Readiness {
  ready: boolean;
  reason: string;
  message: string;
}

function conditions(r: Readiness, previous: NodeCondition[] | undefined): NodeCondition[] {
  const now = nowTime();
  const make = (type: NodeCondition["type"], status: NodeCondition["status"], reason: string, message: string): NodeCondition => {
    const old = previous?.find((c) => c.type === type);
    return { type, status, lastHeartbeatTime: now, lastTransitionTime: old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now, reason, message };
  };
  return [
    make("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    make("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    make("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    make("Ready", r.ready ? "True" : "False", r.reason, r.message),
  ];
}

export class NodeStatusManager {
  private timer?: NodeJS.Timeout;
  private last?: Node;
  private stopped = false;
  private lastError = "";

  constructor(
    private readonly api: ApiClient,
    private readonly facts: NodeFacts,
    private readonly log: Logger,
    private readonly readiness: () => Readiness,
  ) {}

  private path(): string {
    return resourcePath("nodes", this.facts.name);
  }

  private statusBody(previous: NodeCondition[] | undefined): NonNullable<Node["status"]> {
    const pods = String(this.facts.maxPods);
    return {
      conditions: conditions(this.readiness(), previous),
      addresses: [
        { type: "InternalIP", address: this.facts.nodeIP },
        { type: "Hostname", address: this.facts.name },
      ],
      capacity: { pods, cpu: "2", memory: "8Gi" },
      allocatable: { pods, cpu: "2", memory: "8Gi" },
      nodeInfo: { kubeletVersion: "v1.31.0-podnet", kubeProxyVersion: "v1.31.0-podnet", containerRuntimeVersion: "podnet://0.1.0", operatingSystem: "linux", architecture: process.arch === "x64" ? "amd64" : process.arch, osImage: "podnet emulated node", kernelVersion: "", machineID: "", systemUUID: "", bootID: "" },
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    };
  }

  /** Creates the Node or updates the existing one; resolves with it (podCIDR allocated). Retries until it works. */
  async register(): Promise<Node> {
    const labels = { "kubernetes.io/hostname": this.facts.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": process.arch === "x64" ? "amd64" : process.arch };
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      if (this.stopped) throw new Error("stopped");
      try {
        let node: Node;
        try {
          node = await this.api.create<Node>(resourcePath("nodes"), { apiVersion: "v1", kind: "Node", metadata: { name: this.facts.name, labels }, spec: {}, status: this.statusBody(undefined) });
          this.log.info(`registered node ${this.facts.name} (podCIDR ${node.spec?.podCIDR ?? "none yet"})`);
        } catch (e) {
          if (!isApiError(e, 409)) throw e;
          const cur = await this.api.get<Node>(this.path());
          node = await this.api.patch<Node>(this.path(), { metadata: { labels: { ...(cur.metadata.labels ?? {}), ...labels } } });
          this.log.info(`node ${this.facts.name} already registered (podCIDR ${node.spec?.podCIDR ?? "none"})`);
        }
        this.last = node;
        return node;
      } catch (e) {
        this.note(`cannot register node ${this.facts.name} with ${this.api.endpoint}: ${errMsg(e)}`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Waits until the Node has a podCIDR (allocation may lag a moment). */
  async podCIDR(): Promise<string> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const cidr = this.last?.spec?.podCIDR;
      if (cidr) return cidr;
      if (this.stopped) throw new Error("stopped");
      await new Promise((r) => setTimeout(r, delay));
      try {
        this.last = await this.api.get<Node>(this.path());
      } catch (e) {
        this.note(`cannot read node ${this.facts.name}: ${errMsg(e)}`);
      }
      if (!this.last?.spec?.podCIDR) this.note(`node ${this.facts.name} has no spec.podCIDR yet; waiting for the API server to allocate one (or pass --pod-cidr)`);
    }
  }

  start(periodMs: number): void {
    const tick = async () => {
      await this.heartbeat();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), periodMs);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Posts the node's status now (also when readiness changes). */
  async heartbeat(): Promise<void> {
    try {
      const status = this.statusBody(this.last?.status?.conditions);
      try {
        this.last = await this.api.patch<Node>(this.path(), { status }, { subresource: "status" });
      } catch (e) {
        if (!isApiError(e, 404)) throw e;
        // Deleted by someone: register again, as the kubelet does.
        this.log.warn(`node ${this.facts.name} was deleted; registering it again`);
        await this.register();
      }
      this.lastError = "";
    } catch (e) {
      this.note(`node status update failed: ${errMsg(e)}`);
    }
  }

  private note(msg: string): void {
    if (msg === this.lastError) return;
    this.lastError = msg;
    this.log.warn(msg);
  }
}
