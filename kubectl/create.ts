// `podnet create namespace NAME` and `podnet create -f FILE`: create, failing on what exists
// (AlreadyExists), as kubectl create does.
import { resourcePath } from "../apiserver/client.ts";
import type { Namespace } from "../apiserver/types.ts";
import { formatError, withSource } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain } from "./flags.ts";
import { qualifiedSingular, resolveKind, UsageError } from "./kinds.ts";
import { loadManifests, targetOf } from "./manifests.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  filename: { type: "string", short: "f", multiple: true },
  recursive: { type: "boolean", short: "R" },
} as const;

const HELP = `Usage: podnet create namespace NAME
       podnet create -f FILE|DIR|- [-R] [-n NS]

Creates a namespace, or the objects of YAML/JSON files; an object that already exists is an error
(use apply to update).
${COMMON_HELP}`;

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    const files = (values.filename as string[] | undefined) ?? [];
    if (files.length > 0) {
      if (positionals.length > 0) throw new UsageError(`unexpected arguments with -f: ${positionals.join(" ")}`);
      const manifests = await loadManifests(files, values.recursive === true);
      const conn = connect();
      const errors: string[] = [];
      for (const m of manifests) {
        try {
          const t = targetOf(m, conn, "creating");
          const { resourceVersion: _rv, ...metadata } = t.obj.metadata;
          const made = await conn.api.create<typeof t.obj>(resourcePath(t.kind.resource, t.namespace), { ...t.obj, metadata }).catch((e: unknown) => {
            throw withSource(e, "creating", t.source);
          });
          process.stdout.write(`${qualifiedSingular(t.kind)}/${made.metadata.name} created\n`);
        } catch (e) {
          errors.push(formatError(e, conn.api.endpoint));
        }
      }
      for (const e of errors) process.stderr.write(e + "\n");
      return errors.length ? 1 : 0;
    }
    const [what, name, ...rest] = positionals;
    if (!what) throw new UsageError(`create needs -f FILE, or: podnet create namespace NAME`);
    if (resolveKindOrUndefined(what) !== "namespaces") throw new UsageError(`podnet create makes namespaces (podnet create namespace NAME); for other kinds use -f FILE`);
    if (!name || rest.length > 0) throw new UsageError(`exactly one NAME is required: podnet create namespace NAME`);
    const conn = connect();
    await conn.api.create<Namespace>(resourcePath("namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    process.stdout.write(`namespace/${name} created\n`);
    return 0;
  });
}

function resolveKindOrUndefined(s: string): string | undefined {
  try {
    return resolveKind(s).resource;
  } catch {
    return undefined;
  }
}
