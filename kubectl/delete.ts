// `podnet delete KIND NAME... | KIND -l SEL | KIND --all | -f FILE [--grace-period N] [--wait]`
// Deletes, then (like kubectl, unless --wait=false) waits until the objects are gone: a pod goes
// once its kubelet has stopped it, after at most its grace period.
import { isApiError, resourcePath, type ApiClient } from "../apiserver/client.ts";
import type { KObject } from "../apiserver/types.ts";
import { formatError, ShownError, withSource } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, verbMain, intFlag, parseDuration, stringFlag } from "./flags.ts";
import { KIND_LIST } from "./get.ts";
import { parseKindArgs, qualifiedSingular, UsageError, type KindInfo } from "./kinds.ts";
import { loadManifests, targetOf } from "./manifests.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  filename: { type: "string", short: "f", multiple: true },
  recursive: { type: "boolean", short: "R" },
  selector: { type: "string", short: "l" },
  all: { type: "boolean" },
  "all-namespaces": { type: "boolean", short: "A" },
  "grace-period": { type: "string" },
  force: { type: "boolean" },
  now: { type: "boolean" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
  cascade: { type: "string" },
  "ignore-not-found": { type: "boolean" },
} as const;

const HELP = `Usage: podnet delete KIND NAME... | KIND -l SELECTOR | KIND --all | -f FILE|DIR|-  [options]

Deletes objects like kubectl delete, then waits until they are gone (pods go once their kubelet
has stopped their containers). Kinds: ${KIND_LIST}.

Options:
  -f, --filename PATH      delete the objects a file, directory or stdin (-) describes
  -l, --selector SEL       delete the objects of KIND whose labels match
  --all                    delete every object of KIND in the namespace
  -A, --all-namespaces     with -l or --all: in every namespace
  --grace-period N         seconds a pod gets to stop (default: its terminationGracePeriodSeconds);
                           0 needs --force and removes the pod at once
  --force                  with --grace-period=0: do not wait for the kubelet to confirm
  --now                    the same as --grace-period=1
  --wait[=false]           wait until the objects are gone (default true)
  --timeout DURATION       give up waiting after this long (e.g. 30s, 2m; default: no limit)
  --cascade MODE           background (default), foreground or orphan: what happens to dependents
  --ignore-not-found       no error for objects that do not exist
${COMMON_HELP}`;

interface Victim {
  kind: KindInfo;
  name: string;
  namespace?: string;
  source?: string;
  /** Known after the delete: a new object under the same name is not the one waited for. */
  uid?: string;
}

export function main(argv: string[]): Promise<number> {
  return verbMain(argv, OPTIONS, HELP, async ({ values, positionals }, connect) => {
    const files = (values.filename as string[] | undefined) ?? [];
    let grace = intFlag(values, "grace-period", -1);
    const force = values.force === true;
    if (grace === -1) grace = undefined;
    if (values.now === true) grace = 1;
    if (force && grace === undefined) grace = 0;
    if (grace === 0 && !force) {
      // kubectl turns 0 into 1 without --force: the kubelet still gets to stop the pod.
      grace = 1;
    }
    if (force && grace === 0) process.stderr.write("warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.\n");
    const cascade = stringFlag(values, "cascade");
    const propagationPolicy = cascade === undefined || cascade === "background" || cascade === "true" ? "Background" : cascade === "foreground" ? "Foreground" : cascade === "orphan" || cascade === "false" ? "Orphan" : undefined;
    if (!propagationPolicy) throw new UsageError(`invalid cascade value (${cascade}). Must be "background", "foreground", or "orphan"`);
    const timeout = stringFlag(values, "timeout");
    const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout);
    const wait = values.wait !== false && !(force && grace === 0);
    const ignoreNotFound = values["ignore-not-found"] === true;
    const selector = stringFlag(values, "selector");
    const all = values.all === true;

    if (files.length > 0 && positionals.length > 0) throw new UsageError(`when -f is given, KIND and NAME are not`);
    if (files.length === 0 && positionals.length === 0) throw new UsageError(`you must provide one or more resources by argument or filename; kinds: ${KIND_LIST}`);
    const manifests = files.length ? await loadManifests(files, values.recursive === true) : [];
    const conn = connect();
    const c = conn;
    const errors: string[] = [];
    const victims: Victim[] = [];
    for (const m of manifests) {
      try {
        const t = targetOf(m, c, "deleting");
        victims.push({ kind: t.kind, name: t.name, namespace: t.namespace, source: t.source });
      } catch (e) {
        errors.push(formatError(e));
      }
    }
    for (const g of files.length ? [] : parseKindArgs(positionals)) {
      const ns = g.kind.namespaced ? c.namespace : undefined;
      if (g.names.length > 0) {
        if (selector || all) throw new UsageError(`name cannot be provided when a selector or --all is specified`);
        for (const name of g.names) victims.push({ kind: g.kind, name, namespace: ns });
        continue;
      }
      if (!selector && !all) throw new UsageError(`resource(s) were provided, but no name was specified; give NAME, -l SELECTOR or --all`);
      const path = resourcePath(g.kind.resource, values["all-namespaces"] === true ? undefined : ns);
      const list = await c.api.list<KObject>(path, { labelSelector: selector });
      for (const o of list.items) victims.push({ kind: g.kind, name: o.metadata.name!, namespace: g.kind.namespaced ? o.metadata.namespace : undefined });
    }
    if (victims.length === 0 && errors.length === 0 && files.length === 0) {
      process.stderr.write(positionals.length && parseKindArgs(positionals).some((g) => g.kind.namespaced) && values["all-namespaces"] !== true ? `No resources found in ${c.namespace} namespace.\n` : "No resources found\n");
    }
    const deleted: Victim[] = [];
    for (const v of victims) {
      try {
        const answer = await c.api.delete<KObject>(resourcePath(v.kind.resource, v.namespace, v.name), { gracePeriodSeconds: grace, propagationPolicy });
        const uid = (answer as KObject).metadata?.uid ?? (answer as { details?: { uid?: string } }).details?.uid;
        deleted.push({ ...v, uid });
        process.stdout.write(`${qualifiedSingular(v.kind)} "${v.name}" ${force && grace === 0 ? "force deleted" : "deleted"}\n`);
      } catch (e) {
        if (ignoreNotFound && isApiError(e, 404)) continue;
        errors.push(formatError(withSource(e, "deleting", v.source), c.api.endpoint));
      }
    }
    if (wait) {
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      for (const v of deleted) {
        if (!(await waitGone(c.api, resourcePath(v.kind.resource, v.namespace, v.name), v.uid, deadline))) {
          errors.push(`error: timed out waiting for the condition on ${v.kind.resource}/${v.name}`);
        }
      }
    }
    for (const e of errors) process.stderr.write(e + "\n");
    return errors.length ? 1 : 0;
  });
}

/** Polls until the object is gone; false when the deadline passes first. */
async function waitGone(api: ApiClient, path: string, uid: string | undefined, deadline: number | undefined): Promise<boolean> {
  for (;;) {
    try {
      const o = await api.get<KObject>(path);
      if (uid && o.metadata.uid !== uid) return true;
    } catch (e) {
      if (isApiError(e, 404)) return true;
      if (!isApiError(e)) throw new ShownError(formatError(e, api.endpoint));
      throw e;
    }
    if (deadline !== undefined && Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}
