// Command-line handling shared by the verbs: kubectl's flag habits (flags anywhere, `--flag=value`,
// `--wait=false`), the flags every verb takes (--name, --server, -n, -A), and the API client they pick.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ApiClient } from "../apiserver/client.ts";
import { resolveCluster, type ClusterContext } from "../cluster/context.ts";
import { runCommand } from "./errors.ts";
import { UsageError } from "./kinds.ts";

export const COMMON_OPTIONS = {
  name: { type: "string" },
  server: { type: "string", short: "s" },
  namespace: { type: "string", short: "n" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const COMMON_HELP = `
Connection:
  --name NAME              the cluster (default $PODNET_CLUSTER, else "podnet")
  -s, --server ADDRESS     talk to this API server instead: a unix socket path or http://HOST:PORT
  -n, --namespace NS       the namespace (default "default")
`;

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * node:util parseArgs with kubectl's habits: booleans also take "=true"/"=false", and an unknown
 * flag or a missing value is a UsageError (shown as "error: ...").
 */
export function parseFlags<O extends Options>(argv: string[], options: O) {
  const booleans = new Set(Object.entries(options).filter(([, o]) => o.type === "boolean").map(([k]) => k));
  const args: string[] = [];
  const negated: string[] = [];
  for (const a of argv) {
    // pflag reads "-o=yaml" as "-o yaml"; node's parseArgs would keep the "=".
    const short = /^-([a-zA-Z])=(.*)$/s.exec(a);
    if (short) {
      args.push(`-${short[1]}`, short[2]!);
      continue;
    }
    const m = /^--([^=]+)=(true|false)$/.exec(a);
    if (m && booleans.has(m[1]!)) {
      if (m[2] === "true") args.push(`--${m[1]}`);
      else negated.push(m[1]!);
      continue;
    }
    args.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(flagProblem(e instanceof Error ? e.message : String(e)));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  for (const k of negated) values[k] = false;
  return { values, positionals: parsed.positionals };
}

/** parseArgs' messages in kubectl's words. */
function flagProblem(msg: string): string {
  const unknown = /^Unknown option '([^']+)'/.exec(msg);
  if (unknown) return `unknown flag: ${unknown[1]}`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(msg);
  if (missing) return `flag needs an argument: ${missing[1]}`;
  return msg.replace(/\. To specify a positional argument.*$/s, "");
}

export function stringFlag(values: Record<string, unknown>, key: string): string | undefined {
  const v = values[key];
  return typeof v === "string" ? v : undefined;
}

/** An integer flag (e.g. --replicas, --tail); undefined when absent. */
export function intFlag(values: Record<string, unknown>, key: string, min = Number.MIN_SAFE_INTEGER): number | undefined {
  const v = stringFlag(values, key);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`invalid argument "${v}" for "--${key}" flag: must be an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ""}`);
  return Number(v);
}

/** "30s", "2m", "1h", "500ms", or a bare number of seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new UsageError(`invalid duration "${s}": use a number with a unit such as 30s, 2m or 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000);
}

export interface Connection {
  api: ApiClient;
  /** The cluster, when the command found one by name (exec and logs need its layout). */
  cluster?: ClusterContext;
  namespace: string;
  /** The namespace came from -n (not the default). */
  namespaceGiven: boolean;
}

/** The API client from --server ADDRESS, else $PODNET_APISERVER[_SOCKET], else the cluster named by --name / $PODNET_CLUSTER. */
export function connect(values: Record<string, unknown>): Connection {
  const server = stringFlag(values, "server");
  const name = stringFlag(values, "name");
  const ns = stringFlag(values, "namespace");
  if (ns !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) throw new UsageError(`invalid namespace "${ns}": a lowercase RFC 1123 label is required`);
  const namespace = ns ?? "default";
  const common = { namespace, namespaceGiven: ns !== undefined };
  // With an explicit API server, a cluster's layout is only looked up when one is named.
  const named = name !== undefined || process.env.PODNET_CLUSTER !== undefined;
  if (server !== undefined) return { api: clientFor(server), cluster: named ? tryCluster(name) : undefined, ...common };
  if (name === undefined && (process.env.PODNET_APISERVER || process.env.PODNET_APISERVER_SOCKET)) {
    return { api: new ApiClient({ userAgent: "podnet-cli" }), cluster: named ? tryCluster(undefined) : undefined, ...common };
  }
  const cluster = resolveCluster(name);
  return { api: cluster.api, cluster, ...common };
}

function clientFor(server: string): ApiClient {
  if (/^https?:\/\//.test(server)) return new ApiClient({ baseUrl: server, userAgent: "podnet-cli" });
  const path = server.startsWith("unix://") ? server.slice("unix://".length) : server.startsWith("unix:") ? server.slice("unix:".length) : server;
  if (!path) throw new UsageError(`--server wants a unix socket path or http://HOST:PORT`);
  return new ApiClient({ socketPath: path, userAgent: "podnet-cli" });
}

/** The cluster's layout when there is one; --server alone does not need it. */
function tryCluster(name: string | undefined): ClusterContext | undefined {
  try {
    return resolveCluster(name);
  } catch {
    return undefined;
  }
}

/**
 * The frame of every verb: flags parsed, --help answered, and errors shown the kubectl way, naming
 * the API server once `connect()` has picked one (it picks it once, from the flags).
 */
export function verbMain<O extends Options>(
  argv: string[],
  options: O,
  help: string,
  body: (flags: ReturnType<typeof parseFlags<O>>, connect: () => Connection) => Promise<number>,
): Promise<number> {
  let conn: Connection | undefined;
  return runCommand(
    async () => {
      const flags = parseFlags(argv, options);
      if (flags.values.help) {
        process.stdout.write(help);
        return 0;
      }
      return body(flags, () => (conn ??= connect(flags.values)));
    },
    () => conn?.api.endpoint,
  );
}
