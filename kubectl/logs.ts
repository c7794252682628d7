// `podnet logs POD [CONTAINER] [-c C] [-n NS] [-f] [--tail N] [--timestamps] [-p]`: a container's
// output, read from its node's runtime (the CRI log file's records, stdout and stderr interleaved
// as written).
import { parseLogLine } from "../runtime/cri/logformat.ts";
import { runCommand } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, connect, intFlag, parseFlags, stringFlag, type Connection } from "./flags.ts";
import { findPodContainer, podNameArg } from "./containers.ts";
import { UsageError } from "./kinds.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  container: { type: "string", short: "c" },
  follow: { type: "boolean", short: "f" },
  tail: { type: "string" },
  timestamps: { type: "boolean" },
  previous: { type: "boolean", short: "p" },
  "runtime-endpoint": { type: "string" },
} as const;

const HELP = `Usage: podnet logs POD [CONTAINER] [-c CONTAINER] [-n NS] [-f] [--tail N] [--timestamps] [-p]

Prints a container's logs, like kubectl logs.

Options:
  -c, --container NAME     the container (default: the pod's default container, else its first)
  -f, --follow             keep printing new lines until the container exits (or Ctrl-C)
  --tail N                 only the last N lines (default -1: all)
  --timestamps             start each line with its RFC3339 timestamp
  -p, --previous           the logs of the container's previous instance (before its last restart)
  --runtime-endpoint SOCK  the node's runtime socket (default: found from the pod's node in the cluster)
${COMMON_HELP}`;

export interface LogsArgs {
  pod: string;
  container?: string;
  follow: boolean;
  tail: number;
  timestamps: boolean;
  previous: boolean;
  values: Record<string, unknown>;
}

export function parseLogsArgs(argv: string[]): LogsArgs {
  const { values, positionals } = parseFlags(argv, OPTIONS);
  const base = { follow: values.follow === true, timestamps: values.timestamps === true, previous: values.previous === true, values };
  if (values.help) return { pod: "", tail: -1, ...base };
  if (positionals.length > 2) throw new UsageError(`logs takes a pod and optionally a container, got: ${positionals.join(" ")}`);
  const flagContainer = stringFlag(values, "container");
  if (positionals[1] !== undefined && flagContainer !== undefined && positionals[1] !== flagContainer) {
    throw new UsageError(`only one of -c or an inline [CONTAINER] argument is allowed`);
  }
  const tail = intFlag(values, "tail", -1) ?? -1;
  if (base.follow && base.previous) throw new UsageError(`only one of --follow (-f) or --previous (-p) is allowed`);
  return { pod: podNameArg(positionals[0], "logs"), container: positionals[1] ?? flagContainer, tail, ...base };
}

export function main(argv: string[]): Promise<number> {
  let conn: Connection | undefined;
  return runCommand(
    async () => {
      const args = parseLogsArgs(argv);
      if (args.values.help) {
        process.stdout.write(HELP);
        return 0;
      }
      conn = connect(args.values);
      const target = await findPodContainer(conn, { pod: args.pod, container: args.container, runtimeEndpoint: stringFlag(args.values, "runtime-endpoint"), previous: args.previous }, (line) =>
        process.stderr.write(line + "\n"),
      );
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await printLogs(target.runtime.containerLogs({ containerId: target.container.id, follow: args.follow, tail: args.tail }, abort.signal), args.timestamps, (s) => process.stdout.write(s));
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
      return 0;
    },
    () => conn?.api.endpoint,
  );
}

/** Turns CRI log records into the text the container wrote; partial records join the next one. */
export async function printLogs(lines: AsyncIterable<string>, timestamps: boolean, write: (s: string) => void): Promise<void> {
  let partial = "";
  let partialTime = "";
  for await (const line of lines) {
    const r = parseLogLine(line);
    if (!r) {
      write(line + "\n");
      continue;
    }
    if (r.partial) {
      if (!partial) partialTime = r.time;
      partial += r.text;
      continue;
    }
    const time = partial ? partialTime : r.time;
    write(`${timestamps ? `${time} ` : ""}${partial}${r.text}\n`);
    partial = "";
  }
  if (partial) write(`${timestamps ? `${partialTime} ` : ""}${partial}`);
}
