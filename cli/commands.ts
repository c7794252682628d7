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

const cluster = (verb: "upMain" | "downMain" | "statusMain" | "externalMain" | "proxyMain") => async (): Promise<CommandModule> => ({ main: (await import("../cluster/cli.ts"))[verb] });

export const COMMANDS: CommandEntry[] = [
  { name: "demo", group: "Cluster", summary: "The main job: a 3-node cluster, the examples, and the four networking problems checked", load: () => import("../cluster/demo.ts") },
  { name: "up", group: "Cluster", summary: "Create (or repair) an emulated cluster: fabric, nodes, API server, DNS", load: cluster("upMain") },
  { name: "down", group: "Cluster", summary: "Remove a cluster: processes, namespaces, links, nftables tables, state", load: cluster("downMain") },
  { name: "status", group: "Cluster", summary: "Nodes, pod CIDRs, readiness and process health of a cluster", load: cluster("statusMain") },
  { name: "proxy", group: "Cluster", summary: "podnet proxy rules NODE: what kube-proxy programmed on a node", load: cluster("proxyMain") },
  { name: "cloud-lb", group: "Cluster", summary: "The emulated cloud's load balancer: routes eTP=Local LoadBalancer addresses to healthy nodes (run in the fabric netns)", load: () => import("../cluster/cloud-lb.ts") },
  { name: "external", group: "Cluster", summary: "Run a command in the external client netns (outside the cluster, on the fabric)", load: cluster("externalMain") },
  { name: "apply", group: "Workloads", summary: "Create or update objects from YAML/JSON files, like kubectl apply", load: () => import("../kubectl/apply.ts") },
  { name: "get", group: "Workloads", summary: "List objects as tables, YAML, JSON or names (pods, svc, nodes, endpointslices, deploy, rs, ns, netpol)", load: () => import("../kubectl/get.ts") },
  { name: "describe", group: "Workloads", summary: "Show objects in detail: labels, addresses, ports, endpoints, container states", load: () => import("../kubectl/describe.ts") },
  { name: "delete", group: "Workloads", summary: "Delete objects by name, label selector or file, and wait until they are gone", load: () => import("../kubectl/delete.ts") },
  { name: "create", group: "Workloads", summary: "Create a namespace, or objects from files (failing on existing ones)", load: () => import("../kubectl/create.ts") },
  { name: "scale", group: "Workloads", summary: "Set the replicas of a Deployment or ReplicaSet", load: () => import("../kubectl/scale.ts") },
  { name: "exec", group: "Workloads", summary: "Run a command in a pod's container", load: () => import("../kubectl/exec.ts") },
  { name: "logs", group: "Workloads", summary: "Print (or follow) a pod container's logs", load: () => import("../kubectl/logs.ts") },
  { name: "agnhost", group: "Tools", summary: "Test servers like Kubernetes' e2e agnhost image: netexec, serve-hostname", load: () => import("../agnhost/main.ts") },
  { name: "dns", group: "Node components", summary: "Cluster DNS server: answers <zone> names from Services, EndpointSlices and Pods", load: () => import("../dns/main.ts") },
  { name: "kube-proxy", group: "Node components", summary: "Service proxy of one node: programs Services into its netns's nftables (run inside the node netns)", load: () => import("../kube-proxy/main.ts") },
  { name: "apiserver", group: "Node components", summary: "Run the API server (REST, watch, store, scheduler and controllers) on a state directory", load: () => import("../apiserver/main.ts") },
  { name: "bench", group: "Tools", summary: "Benchmarks against the reference: plugins, pods, proxy, dataplane, cluster", load: () => import("../bench/main.ts") },
  { name: "runtime", group: "Node components", summary: "The node's container runtime daemon: pod sandboxes and containers behind a CRI-shaped API", load: () => import("../runtime/cli/runtime.ts") },
  { name: "kubelet", group: "Node components", summary: "The node agent: runs the pods of its node (manifests dir and/or API server) through the runtime and CNI", load: () => import("../kubelet/main.ts") },
  { name: "crictl", group: "Node components", summary: "Inspect and drive a node's runtime like crictl: pods, ps, inspect, exec, logs, stopp, rmp", load: () => import("../runtime/cli/crictl.ts") },
  { name: "plugins", group: "CNI", summary: "List the built CNI plugins (CNI_PATH) and the protocol versions each supports", load: () => import("./plugins.ts") },
  { name: "cni", group: "CNI", summary: "Run network configurations like cnitool (add/check/del/gc/status), and the CNI conformance runner", load: () => import("../runtime/cli/cni.ts") },
];
