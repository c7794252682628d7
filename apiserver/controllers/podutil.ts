// Facts about pods and owners that several controllers need.
import type { KObject, Node, OwnerReference, Pod } from "../types.ts";

export function podReadyCondition(pod: Pod) {
  return pod.status?.conditions?.find((c) => c.type === "Ready");
}

export function isPodReady(pod: Pod): boolean {
  return podReadyCondition(pod)?.status === "True";
}

/** Ready for at least minReadySeconds (Kubernetes' "available"); `now` in ms. */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now = Date.now()): boolean {
  const c = podReadyCondition(pod);
  if (c?.status !== "True") return false;
  if (!minReadySeconds) return true;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
  return since + minReadySeconds * 1000 <= now;
}

/** Milliseconds until a ready pod becomes available, or undefined when it is not ready. */
export function msUntilAvailable(pod: Pod, minReadySeconds: number, now = Date.now()): number | undefined {
  const c = podReadyCondition(pod);
  if (c?.status !== "True") return undefined;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : 0;
  return Math.max(0, since + minReadySeconds * 1000 - now);
}

export function isTerminal(pod: Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** Counts toward a ReplicaSet's replicas: not being deleted and not finished. */
export function isActivePod(pod: Pod): boolean {
  return !pod.metadata.deletionTimestamp && !isTerminal(pod);
}

export function controllerRef(obj: KObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller);
}

export function nodeReady(node: Node): "True" | "False" | "Unknown" {
  return node.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";
}

export function ownerRefTo(obj: KObject, apiVersion: string, kind: string): OwnerReference {
  return { apiVersion, kind, name: obj.metadata.name!, uid: obj.metadata.uid!, controller: true, blockOwnerDeletion: true };
}
