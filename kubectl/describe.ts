// `podnet describe KIND [NAME...] [-l SELECTOR] [-A|-n NS]`: a readable page per object.
import { isApiError, resourcePath } from "../apiserver/client.ts";
import type { Deployment, Endpoints, EndpointSlice, KObject, Namespace, NetworkPolicy, Node, Pod, ReplicaSet, Service } from "../apiserver/types.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain, stringFlag, type Connection } from "./flags.ts";
import { KIND_LIST } from "./get.ts";
import { parseKindArgs, UsageError, type KindInfo } from "./kinds.ts";
import { byNamespaceAndName } from "./printers/output.ts";
import { describeDeployment, describeEndpoints, describeEndpointSlice, describeNamespace, describeNetworkPolicy, describeNode, describePod, describeReplicaSet, describeService } from "./printers/describe.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  selector: { type: "string", short: "l" },
  "all-namespaces": { type: "boolean", short: "A" },
} as const;

const HELP = `Usage: podnet describe KIND [NAME_PREFIX...] [-l SELECTOR] [-A | -n NS]

Shows objects in detail, like kubectl describe: labels, addresses, ports, container states, and
what an object is connected to (a Service's endpoints, a Node's pods, a Deployment's ReplicaSets).
Without a name, every object of the kind (matching -l); a name that is not found exactly
describes the objects whose names start with it.
Kinds: ${KIND_LIST}.

Options:
  -l, --selector SEL       label selector
  -A, --all-namespaces     every namespace
${COMMON_HELP}`;

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    if (positionals.length === 0) throw new UsageError(`you must specify the type of resource to describe; one of: ${KIND_LIST}`);
    const groups = parseKindArgs(positionals);
    const allNamespaces = values["all-namespaces"] === true;
    const conn = connect();
    const pages: string[] = [];
    for (const g of groups) {
      const ns = g.kind.namespaced && !allNamespaces ? conn.namespace : undefined;
      const objs: KObject[] = [];
      if (g.names.length === 0) {
        objs.push(...(await conn.api.list<KObject>(resourcePath(g.kind.resource, ns), { labelSelector: stringFlag(values, "selector") })).items.sort(byNamespaceAndName));
      } else {
        for (const name of g.names) objs.push(...(await byNameOrPrefix(conn, g.kind, ns, name)));
      }
      for (const o of objs) pages.push(await describeOne(conn, g.kind, o));
    }
    if (pages.length === 0) {
      process.stderr.write(groups.some((g) => g.kind.namespaced) && !allNamespaces ? `No resources found in ${conn.namespace} namespace.\n` : "No resources found\n");
      return 0;
    }
    process.stdout.write(pages.join("\n\n"));
    return 0;
  });
}

/** kubectl describe falls back to a name prefix when the exact name is not there. */
async function byNameOrPrefix(conn: Connection, kind: KindInfo, ns: string | undefined, name: string): Promise<KObject[]> {
  try {
    return [await conn.api.get<KObject>(resourcePath(kind.resource, ns, name))];
  } catch (e) {
    if (!isApiError(e, 404)) throw e;
    const matches = (await conn.api.list<KObject>(resourcePath(kind.resource, ns))).items.filter((o) => o.metadata.name?.startsWith(name)).sort(byNamespaceAndName);
    if (matches.length === 0) throw e;
    return matches;
  }
}

async function describeOne(conn: Connection, kind: KindInfo, o: KObject): Promise<string> {
  const ns = o.metadata.namespace;
  switch (kind.resource) {
    case "pods":
      return describePod(o as Pod);
    case "services": {
      const slices = await conn.api.list<EndpointSlice>(resourcePath("endpointslices", ns), { labelSelector: `kubernetes.io/service-name=${o.metadata.name}` });
      return describeService(o as Service, slices.items);
    }
    case "nodes": {
      const pods = await conn.api.list<Pod>(resourcePath("pods"), { fieldSelector: `spec.nodeName=${o.metadata.name}` });
      return describeNode(o as Node, pods.items);
    }
    case "endpoints":
      return describeEndpoints(o as Endpoints);
    case "endpointslices":
      return describeEndpointSlice(o as EndpointSlice);
    case "deployments":
      return describeDeployment(o as Deployment, (await conn.api.list<ReplicaSet>(resourcePath("replicasets", ns))).items);
    case "replicasets":
      return describeReplicaSet(o as ReplicaSet, (await conn.api.list<Pod>(resourcePath("pods", ns))).items);
    case "namespaces":
      return describeNamespace(o as Namespace);
    case "networkpolicies":
      return describeNetworkPolicy(o as NetworkPolicy);
  }
}
