// `podnet apply -f FILE|DIR|-`: creates what does not exist, patches what does (see
// apply-patch.ts), and says so per object: "service/web created|configured|unchanged".
import { isApiError, resourcePath } from "../apiserver/client.ts";
import type { KObject } from "../apiserver/types.ts";
import { LAST_APPLIED, lastAppliedOf, threeWayPatch } from "./apply-patch.ts";
import { formatError, withSource } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain, type Connection } from "./flags.ts";
import { qualifiedSingular, UsageError } from "./kinds.ts";
import { loadManifests, targetOf, type Target } from "./manifests.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  filename: { type: "string", short: "f", multiple: true },
  recursive: { type: "boolean", short: "R" },
} as const;

const HELP = `Usage: podnet apply -f FILE|DIR|- [-f ...] [-R] [-n NS]

Creates or updates objects from YAML or JSON files like kubectl apply: several documents
separated by "---" and "kind: List" are read; a directory gives its .yaml, .yml and .json files.
An existing object is patched with the fields the file sets (values the server filled in, such as
clusterIP and nodePorts, are kept); fields removed from the file since the last apply are removed.

Options:
  -f, --filename PATH      a file, a directory, or - for stdin (repeatable)
  -R, --recursive          read directories recursively
${COMMON_HELP}`;

/** Fields the server owns: a file saved from `get -o yaml` may carry them. */
const SERVER_METADATA = ["uid", "creationTimestamp", "generation", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"];

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(" ")} (apply reads objects from -f)`);
    const manifests = await loadManifests((values.filename as string[] | undefined) ?? [], values.recursive === true);
    const conn = connect();
    const errors: string[] = [];
    for (const m of manifests) {
      try {
        const target = targetOf(m, conn, "applying");
        process.stdout.write(`${qualifiedSingular(target.kind)}/${target.name} ${await applyOne(conn, target)}\n`);
      } catch (e) {
        errors.push(formatError(e, conn.api.endpoint));
      }
    }
    for (const e of errors) process.stderr.write(e + "\n");
    return errors.length ? 1 : 0;
  });
}

type Obj = Record<string, unknown> & KObject;

async function applyOne(conn: Connection, t: Target): Promise<"created" | "configured" | "unchanged"> {
  const obj = t.obj as Obj;
  for (const k of SERVER_METADATA) delete (obj.metadata as Record<string, unknown>)[k];
  // The annotation records the configuration as given (with its namespace), for the next apply.
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [LAST_APPLIED]: lastAppliedOf(obj) };
  const path = resourcePath(t.kind.resource, t.namespace, t.name);
  let live: Obj;
  try {
    live = await conn.api.get<Obj>(path);
  } catch (e) {
    if (!isApiError(e, 404)) throw withSource(e, "retrieving current configuration of", t.source);
    const { resourceVersion: _rv, ...metadata } = obj.metadata;
    try {
      await conn.api.create(resourcePath(t.kind.resource, t.namespace), { ...obj, metadata });
    } catch (err) {
      throw withSource(err, "creating", t.source);
    }
    return "created";
  }
  const recorded = live.metadata.annotations?.[LAST_APPLIED];
  let original: Record<string, unknown> | undefined;
  if (recorded) {
    try {
      original = JSON.parse(recorded) as Record<string, unknown>;
    } catch {
      original = undefined;
    }
  } else {
    process.stderr.write(
      `Warning: resource ${t.kind.resource}/${t.name} is missing the ${LAST_APPLIED} annotation which is required by podnet apply. podnet apply should only be used on resources created declaratively by podnet apply. The missing annotation will be patched automatically.\n`,
    );
  }
  // Status is the server's (and the controllers'); a file that carries it changes nothing there.
  const { status: _status, ...wanted } = obj;
  const { status: _liveStatus, ...liveSpec } = live;
  const patch = threeWayPatch(original, wanted, liveSpec);
  if (Object.keys(patch).length === 0) return "unchanged";
  try {
    await conn.api.patch(path, patch, { type: "strategic" });
  } catch (err) {
    throw withSource(err, "patching", t.source);
  }
  return "configured";
}
