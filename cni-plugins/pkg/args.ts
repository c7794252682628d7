// CNI_ARGS: "K=V;K=V". Keys a plugin does not know are an error unless IgnoreUnknown is true,
// as the reference plugins behave; the Kubernetes keys the kubelet always sends are known.
import { invalidEnv } from "./errors.ts";

export const KUBERNETES_ARGS = ["K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"] as const;

export type CniArgs = Map<string, string>;

function parseBool(key: string, v: string): boolean {
  const l = v.toLowerCase();
  if (l === "1" || l === "true") return true;
  if (l === "0" || l === "false") return false;
  throw invalidEnv(`ARGS: ${key} must be a boolean (CNI_ARGS)`, `got ${JSON.stringify(v)}; use 1, true, 0 or false`);
}

/** Parses CNI_ARGS, checking every key against `known` (plus IgnoreUnknown and the Kubernetes keys). */
export function parseCniArgs(raw: string, known: readonly string[]): CniArgs {
  const out: CniArgs = new Map();
  if (raw === "") return out;
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw invalidEnv(`ARGS: invalid pair ${JSON.stringify(pair)} (CNI_ARGS)`, "CNI_ARGS must be K=V pairs separated by ';'");
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignore = out.has("IgnoreUnknown") ? parseBool("IgnoreUnknown", out.get("IgnoreUnknown")!) : false;
  if (!ignore) {
    const allowed = new Set<string>(["IgnoreUnknown", ...KUBERNETES_ARGS, ...known]);
    const unknown: string[] = [];
    for (const k of out.keys()) if (!allowed.has(k)) unknown.push(k);
    if (unknown.length) throw invalidEnv(`ARGS: unknown args [${unknown.join(" ")}] (CNI_ARGS)`, "add IgnoreUnknown=1 to CNI_ARGS to let the plugin skip keys it does not know");
  }
  return out;
}

/** Builds a CNI_ARGS string from pairs, in order. */
export function formatCniArgs(pairs: Iterable<[string, string]>): string {
  return [...pairs].map(([k, v]) => `${k}=${v}`).join(";");
}
