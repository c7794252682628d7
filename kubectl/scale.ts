// `podnet scale deploy NAME --replicas N` (also rs, and KIND/NAME): sets spec.replicas.
import { resourcePath } from "../apiserver/client.ts";
import type { KObject } from "../apiserver/types.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain, intFlag } from "./flags.ts";
import { parseKindArgs, qualifiedSingular, UsageError } from "./kinds.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  replicas: { type: "string" },
  "current-replicas": { type: "string" },
} as const;

const HELP = `Usage: podnet scale deployment|replicaset NAME... --replicas N [--current-replicas M] [-n NS]

Sets the number of replicas, like kubectl scale. With --current-replicas, only when the object
has that many now.
${COMMON_HELP}`;

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    const replicas = intFlag(values, "replicas", 0);
    if (replicas === undefined) throw new UsageError(`required flag(s) "replicas" not set`);
    const current = intFlag(values, "current-replicas", -1);
    const groups = parseKindArgs(positionals);
    if (groups.length === 0 || groups.every((g) => g.names.length === 0)) throw new UsageError(`you must specify the deployment or replicaset to scale: podnet scale deploy NAME --replicas N`);
    for (const g of groups) {
      if (g.kind.resource !== "deployments" && g.kind.resource !== "replicasets") throw new UsageError(`cannot scale ${g.kind.resource}: only deployments and replicasets have replicas`);
    }
    const conn = connect();
    for (const g of groups) {
      for (const name of g.names) {
        const path = resourcePath(g.kind.resource, conn.namespace, name);
        const obj = await conn.api.get<KObject & { spec: { replicas?: number } }>(path);
        if (current !== undefined && current >= 0 && (obj.spec.replicas ?? 1) !== current) {
          throw new Error(`Expected replicas to be ${current}, was ${obj.spec.replicas ?? 1}`);
        }
        // With --current-replicas the resourceVersion makes this a compare-and-swap with what was
        // checked; without it, status updates by the controllers must not make it conflict.
        const precondition = current !== undefined && current >= 0 ? { metadata: { resourceVersion: obj.metadata.resourceVersion } } : {};
        await conn.api.patch(path, { ...precondition, spec: { replicas } });
        process.stdout.write(`${qualifiedSingular(g.kind)}/${name} scaled\n`);
      }
    }
    return 0;
  });
}
