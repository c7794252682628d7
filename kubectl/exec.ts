// `podnet exec POD [-c C] [-n NS] [-i] -- COMMAND [ARGS...]`: runs a command in a pod's container
// through its node's runtime (CRI ExecSync) and exits with the command's exit code, as kubectl does.
import { runCommand, ShownError } from "./errors.ts";
import { COMMON_HELP, COMMON_OPTIONS, connect, parseDuration, parseFlags, stringFlag, type Connection } from "./flags.ts";
import { findPodContainer, podNameArg } from "./containers.ts";
import { UsageError } from "./kinds.ts";

const OPTIONS = {
  ...COMMON_OPTIONS,
  container: { type: "string", short: "c" },
  stdin: { type: "boolean", short: "i" },
  tty: { type: "boolean", short: "t" },
  timeout: { type: "string" },
  "runtime-endpoint": { type: "string" },
} as const;

const HELP = `Usage: podnet exec POD [-c CONTAINER] [-n NS] [-i] -- COMMAND [ARGS...]

Runs COMMAND in a container of POD (in its namespaces, working directory and environment) and
exits with its exit code. The command runs to completion (CRI ExecSync): its output is shown when
it ends, and with -i it reads all of stdin first. There is no terminal (-t is accepted and ignored).

Options:
  -c, --container NAME     the container (default: the pod's default container, else its first)
  -i, --stdin              pass stdin to the command
  --timeout DURATION       stop the command after this long (e.g. 30s; default: no limit)
  --runtime-endpoint SOCK  the node's runtime socket (default: found from the pod's node in the cluster)
${COMMON_HELP}`;

export interface ExecArgs {
  pod: string;
  command: string[];
  values: Record<string, unknown>;
}

/** Splits `POD [flags] -- COMMAND...`; the command is everything after the first "--". */
export function parseExecArgs(argv: string[]): ExecArgs {
  const dash = argv.indexOf("--");
  const before = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseFlags(before, OPTIONS);
  if (values.help) return { pod: "", command, values };
  if (dash < 0 && positionals.length > 1) throw new UsageError(`exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead`);
  if (positionals.length > 1) throw new UsageError(`exec takes one pod, got: ${positionals.join(" ")}`);
  const pod = podNameArg(positionals[0], "exec");
  if (command.length === 0 || !command[0]) throw new UsageError(`you must specify at least one command for the container: podnet exec ${pod} -- COMMAND [ARGS...]`);
  return { pod, command, values };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export function main(argv: string[]): Promise<number> {
  let conn: Connection | undefined;
  return runCommand(
    async () => {
      const args = parseExecArgs(argv);
      if (args.values.help) {
        process.stdout.write(HELP);
        return 0;
      }
      const timeout = stringFlag(args.values, "timeout");
      const timeoutSeconds = timeout === undefined ? 0 : Math.max(1, Math.ceil(parseDuration(timeout) / 1000));
      conn = connect(args.values);
      const target = await findPodContainer(conn, { pod: args.pod, container: stringFlag(args.values, "container"), runtimeEndpoint: stringFlag(args.values, "runtime-endpoint") }, (line) =>
        process.stderr.write(line + "\n"),
      );
      if (target.pod.status?.phase === "Succeeded" || target.pod.status?.phase === "Failed") {
        throw new ShownError(`error: cannot exec into a container in a completed pod; current phase is ${target.pod.status.phase}`);
      }
      if (target.container.state !== "CONTAINER_RUNNING") {
        throw new ShownError(`error: container "${target.name}" in pod "${args.pod}" is not running (${target.container.state.replace(/^CONTAINER_/, "").toLowerCase()})`);
      }
      const stdin = args.values.stdin === true ? await readStdin() : undefined;
      const r = await target.runtime.execSync({ containerId: target.container.id, cmd: args.command, timeout: timeoutSeconds, ...(stdin !== undefined ? { stdin } : {}) });
      process.stdout.write(r.stdout ?? "");
      process.stderr.write(r.stderr ?? "");
      if (r.exitCode !== 0) {
        process.stderr.write(`command terminated with exit code ${r.exitCode}\n`);
        return r.exitCode;
      }
      return 0;
    },
    () => conn?.api.endpoint,
  );
}
