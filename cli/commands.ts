// The podnet subcommands. Each one lives with the concern it belongs to and is loaded only
// when it is run, so `podnet --help` and quick commands stay fast.
export interface CommandModule {
  main(argv: string[]): Promise<number>;
}

export interface CommandEntry {
  name: string;
  summary: string;
  /** Shown under a heading in --help. */
  group: "Cluster" | "Workloads" | "Node components" | "CNI" | "Tools";
  load: () => Promise<CommandModule>;
}


export const COMMANDS: CommandEntry[] = [
  { name: "agnhost", group: "Tools", summary: "Test servers like Kubernetes' e2e agnhost image: netexec, serve-hostname", load: () => import("../agnhost/main.ts") },
  { name: "dns", group: "Node components", summary: "Cluster DNS server: answers <zone> names from Services, EndpointSlices and Pods", load: () => import("../dns/main.ts") },
  { name: "kube-proxy", group: "Node components", summary: "Service proxy of one node: programs Services into its netns's nftables (run inside the node netns)", load: () => import("../kube-proxy/main.ts") },
  { name: "apiserver", group: "Node components", summary: "Run the API server (REST, watch, store, scheduler and controllers) on a state directory", load: () => import("../apiserver/main.ts") },
  { name: "runtime", group: "Node components", summary: "The node's container runtime daemon: pod sandboxes and containers behind a CRI-shaped API", load: () => import("../runtime/cli/runtime.ts") },
  { name: "kubelet", group: "Node components", summary: "The node agent: runs the pods of its node (manifests dir and/or API server) through the runtime and CNI", load: () => import("../kubelet/main.ts") },
  { name: "crictl", group: "Node components", summary: "Inspect and drive a node's runtime like crictl: pods, ps, inspect, exec, logs, stopp, rmp", load: () => import("../runtime/cli/crictl.ts") },
  { name: "cni", group: "CNI", summary: "Run network configurations like cnitool (add/check/del/gc/status), and the CNI conformance runner", load: () => import("../runtime/cli/cni.ts") },
];
