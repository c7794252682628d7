// Labels and annotations the kubelet puts on runtime objects and pods, with Kubernetes' names,
// so that crictl-like tools (and `podnet exec/logs`) find a pod's sandbox and containers.
export const POD_NAME_LABEL = "io.kubernetes.pod.name";
export const POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
export const POD_UID_LABEL = "io.kubernetes.pod.uid";
export const CONTAINER_NAME_LABEL = "io.kubernetes.container.name";
/** Marks the sandboxes this kubelet made (others in the runtime are never touched). */
export const MANAGED_BY_LABEL = "podnet.io/managed-by";
export const MANAGED_BY = "kubelet";

export const CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror";
export const CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash";
export const CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source";
export const CONFIG_SEEN_ANNOTATION = "kubernetes.io/config.seen";
