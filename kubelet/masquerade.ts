// Masquerade of pod traffic leaving the cluster, like Kubernetes' ip-masq-agent: one nftables
// table of the kubelet's own in the node netns, rewritten whole in one atomic transaction.
// Traffic from this node's podCIDR to anything outside the cluster CIDR (multicast aside) takes
// the node's address; pod-to-pod traffic, on this node or another, keeps its source.
import { sysOk } from "./sys.ts";

export const MASQ_TABLE = "podnet-kubelet";

export function masqueradeRuleset(podCIDR: string, clusterCIDR: string): string {
  return [
    // "add" then "delete" makes the delete succeed whether or not the table exists: the whole
    // script is one transaction, so the table is replaced, never missing.
    `add table ip ${MASQ_TABLE}`,
    `delete table ip ${MASQ_TABLE}`,
    `table ip ${MASQ_TABLE} {`,
    `  comment "pod traffic leaving the cluster CIDR takes the node's address (podnet kubelet)"`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${podCIDR} ip daddr != ${clusterCIDR} ip daddr != 224.0.0.0/4 masquerade`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

export async function ensureMasquerade(podCIDR: string, clusterCIDR: string): Promise<void> {
  await sysOk("nft", ["-f", "-"], masqueradeRuleset(podCIDR, clusterCIDR));
}
