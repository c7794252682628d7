// Finding a pod's container for `exec` and `logs`: the pod from the API server, its node from
// spec.nodeName, the node's runtime socket from the cluster layout, then the pod's sandbox and the
// container in that runtime (CRI calls: ListPodSandbox by the kubelet's pod labels, ListContainers
// by sandbox).
import { resourcePath } from "../apiserver/client.ts";
import type { Pod } from "../apiserver/types.ts";
import { CONFIG_MIRROR_ANNOTATION, POD_NAME_LABEL, POD_NAMESPACE_LABEL } from "../kubelet/labels.ts";
import { RuntimeClient } from "../runtime/cri/client.ts";
import type { Container, PodSandbox } from "../runtime/cri/types.ts";
import { ShownError } from "./errors.ts";
import type { Connection } from "./flags.ts";
import { UsageError } from "./kinds.ts";

export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

/** "web-1", "pod/web-1" and "po/web-1" name a pod; other kinds are not supported here. */
export function podNameArg(arg: string | undefined, verb: string): string {
  if (!arg) throw new UsageError(`${verb} requires a pod name: podnet ${verb} POD ${verb === "exec" ? "-- COMMAND [ARGS...]" : ""}`.trimEnd());
  const slash = arg.indexOf("/");
  if (slash < 0) return arg;
  const kind = arg.slice(0, slash).toLowerCase();
  if (!["pod", "pods", "po"].includes(kind)) throw new UsageError(`${verb} works on pods; "${arg}" is not one (use pod/NAME or NAME)`);
  return arg.slice(slash + 1);
}

/**
 * The container a command means: -c NAME, else the pod's default-container annotation, else its
 * first container; with several to choose from, kubectl says which it took on stderr.
 */
export function chooseContainer(pod: Pod, requested: string | undefined): { name: string; notice?: string } {
  const names = pod.spec.containers.map((c) => c.name);
  const all = [...names, ...(pod.spec.initContainers ?? []).map((c) => c.name)];
  if (requested !== undefined) {
    if (!all.includes(requested)) throw new ShownError(`error: container ${requested} is not valid for pod ${pod.metadata.name}`);
    return { name: requested };
  }
  const annotated = pod.metadata.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && all.includes(annotated)) return { name: annotated };
  const first = names[0];
  if (!first) throw new ShownError(`error: pod ${pod.metadata.name} has no containers`);
  return { name: first, notice: names.length > 1 ? `Defaulted container "${first}" out of: ${names.join(", ")}` : undefined };
}

/** The runtime socket of the pod's node: --runtime-endpoint, else the cluster layout's. */
export function runtimeFor(conn: Connection, pod: Pod, runtimeEndpoint: string | undefined): RuntimeClient {
  if (runtimeEndpoint) return new RuntimeClient(runtimeEndpoint);
  const node = pod.spec.nodeName;
  if (!node) throw new ShownError(`error: pod ${pod.metadata.name} is not scheduled to a node yet (status: ${pod.status?.phase ?? "Pending"})`);
  if (!conn.cluster) throw new ShownError(`error: cannot find node ${node}'s container runtime: no cluster layout to look it up in (pass --name CLUSTER, or --runtime-endpoint SOCKET)`);
  const n = conn.cluster.layout.nodes.find((x) => x.name === node);
  if (!n) throw new ShownError(`error: node ${node} is not a node of cluster "${conn.cluster.cfg.name}"`);
  return new RuntimeClient(n.runtimeSocket);
}

/** The pod's sandbox in its node's runtime: of this pod incarnation (its uid), the ready one, else the newest. */
export async function findSandbox(rt: RuntimeClient, pod: Pod): Promise<PodSandbox | undefined> {
  const name = pod.metadata.name!;
  const namespace = pod.metadata.namespace ?? "default";
  let items = (await rt.listPodSandbox({ filter: { labelSelector: { [POD_NAME_LABEL]: name, [POD_NAMESPACE_LABEL]: namespace } } })).items ?? [];
  // Sandboxes made without the kubelet's labels still carry CRI metadata naming the pod.
  if (items.length === 0) items = ((await rt.listPodSandbox({})).items ?? []).filter((s) => s.metadata.name === name && s.metadata.namespace === namespace);
  // A mirror pod (of a static pod) has its own uid, not the sandbox's: match it by name only.
  const mirror = pod.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION] !== undefined;
  const mine = items.filter((s) => mirror || !pod.metadata.uid || !s.metadata.uid || s.metadata.uid === pod.metadata.uid);
  const rank = (s: PodSandbox) => (s.state === "SANDBOX_READY" ? 1 : 0);
  return mine.sort((a, b) => rank(b) - rank(a) || Number(BigInt(b.createdAt || "0") - BigInt(a.createdAt || "0")))[0];
}

/** Every attempt of one container in a sandbox, newest first. */
export async function containerAttempts(rt: RuntimeClient, sandbox: PodSandbox, name: string): Promise<Container[]> {
  const list = (await rt.listContainers({ filter: { podSandboxId: sandbox.id } })).containers ?? [];
  return list
    .filter((c) => c.metadata.name === name)
    .sort((a, b) => (b.metadata.attempt ?? 0) - (a.metadata.attempt ?? 0) || Number(BigInt(b.createdAt || "0") - BigInt(a.createdAt || "0")));
}

export interface PodContainer {
  pod: Pod;
  runtime: RuntimeClient;
  container: Container;
  name: string;
}

export interface ContainerQuery {
  pod: string;
  container?: string;
  runtimeEndpoint?: string;
  /** The attempt before the current one (logs --previous). */
  previous?: boolean;
}

/** The pod, its node's runtime and the container a command is about. */
export async function findPodContainer(conn: Connection, q: ContainerQuery, notice: (line: string) => void): Promise<PodContainer> {
  const pod = await conn.api.get<Pod>(resourcePath("pods", conn.namespace, q.pod));
  const chosen = chooseContainer(pod, q.container);
  if (chosen.notice) notice(chosen.notice);
  const runtime = runtimeFor(conn, pod, q.runtimeEndpoint);
  const sandbox = await findSandbox(runtime, pod);
  const waiting = () => new ShownError(`Error from server (BadRequest): container "${chosen.name}" in pod "${q.pod}" is waiting to start: ${waitingReason(pod, chosen.name)}`);
  if (!sandbox) throw waiting();
  const attempts = await containerAttempts(runtime, sandbox, chosen.name);
  if (q.previous) {
    const prev = attempts[1];
    if (!prev) throw new ShownError(`Error from server (BadRequest): previous terminated container "${chosen.name}" in pod "${q.pod}" not found`);
    return { pod, runtime, container: prev, name: chosen.name };
  }
  if (!attempts[0]) throw waiting();
  return { pod, runtime, container: attempts[0], name: chosen.name };
}

function waitingReason(pod: Pod, container: string): string {
  const st = pod.status?.containerStatuses?.find((c) => c.name === container);
  return st?.state.waiting?.reason ?? "ContainerCreating";
}
