// `podnet crictl`: a crictl-like command line on a podnet runtime's API: tables like crictl's,
// `-o json` for machines, id prefixes accepted wherever an id is.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { RuntimeApiError, RuntimeClient, socketInStateDir } from "../cri/client.ts";
import { parseLogLine } from "../cri/logformat.ts";
import type { ContainerState, PodSandboxState } from "../cri/types.ts";

const USAGE = `Usage: podnet crictl (--state-dir DIR | -r unix:///PATH) COMMAND [options]

Commands:
  pods [--name RE] [--namespace NS] [--state ready|notready] [--label K=V]... [--id ID] [-q] [-o json|table] [--no-trunc]
  ps [-a] [--name RE] [--state created|running|exited] [--pod ID] [--label K=V]... [--id ID] [-q] [-o json|table] [--no-trunc]
  inspectp ID...           a pod sandbox's status, as JSON
  inspect ID...            a container's status, as JSON
  exec [-i] [--timeout S] ID [--] CMD [ARG...]
                           run a command in a running container; its exit code is ours
                           (-i sends our stdin, read to its end, to the command)
  logs [-f] [--tail N] [-t] ID
                           a container's log (-f follows until it exits, -t shows timestamps)
  stopp ID...              stop pod sandboxes
  rmp [-f] [-a] ID...      remove pod sandboxes (-f stops running ones first, -a all)
  stop [-t S] ID...        stop containers (S seconds of grace, default 10)
  rm [-f] ID...            remove containers (-f also running ones)
  version                  the runtime's name and version

The runtime endpoint is --runtime-endpoint/-r, else DIR/runtime.sock from --state-dir, else
$CONTAINER_RUNTIME_ENDPOINT.
`;

class UsageError extends Error {}

// ---- output helpers -------------------------------------------------------------------------

/** Columns like crictl's tabwriter: at least 20 wide, 3 spaces of padding. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(20, ...[h, ...rows.map((r) => r[i] ?? "")].map((c) => c.length + 3)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** "2 minutes ago", as Docker's and crictl's HumanDuration. */
export function ago(createdAtNs: string, now = Date.now()): string {
  const secs = Math.max(0, (now - Number(BigInt(createdAtNs) / 1_000_000n)) / 1000);
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  let text: string;
  if (secs < 1) text = "Less than a second";
  else if (secs < 60) text = plural(Math.floor(secs), "second");
  else if (secs < 60 * 60) text = Math.floor(secs / 60) === 1 ? "About a minute" : plural(Math.floor(secs / 60), "minute");
  else if (secs < 48 * 3600) text = Math.round(secs / 3600) === 1 ? "About an hour" : plural(Math.round(secs / 3600), "hour");
  else if (secs < 14 * 86400) text = plural(Math.floor(secs / 86400), "day");
  else if (secs < 90 * 86400) text = plural(Math.floor(secs / (7 * 86400)), "week");
  else if (secs < 2 * 365 * 86400) text = plural(Math.floor(secs / (30 * 86400)), "month");
  else text = plural(Math.floor(secs / (365 * 86400)), "year");
  return `${text} ago`;
}

const podState = (s: PodSandboxState) => (s === "SANDBOX_READY" ? "Ready" : "NotReady");
const ctrState = (s: ContainerState) => ({ CONTAINER_CREATED: "Created", CONTAINER_RUNNING: "Running", CONTAINER_EXITED: "Exited", CONTAINER_UNKNOWN: "Unknown" })[s] ?? s;
const trunc = (id: string, noTrunc: boolean) => (noTrunc ? id : id.slice(0, 13));

function printJSON(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + "\n");
}

function labelsOf(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf("=");
    if (i <= 0) throw new UsageError(`--label ${l}: expected KEY=VALUE`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

function outputFormat(o: string | undefined): "json" | "table" {
  if (o === undefined || o === "table") return "table";
  if (o === "json") return "json";
  throw new UsageError(`-o ${o}: expected json or table`);
}

function parse(argv: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function needIds(ids: string[], what: string): void {
  if (!ids.length) throw new UsageError(`give at least one ${what} id`);
}

// ---- commands ----------------------------------------------------------------------------

async function pods(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    name: { type: "string" },
    namespace: { type: "string" },
    state: { type: "string", short: "s" },
    label: { type: "string", multiple: true },
    id: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    output: { type: "string", short: "o" },
    "no-trunc": { type: "boolean" },
  });
  const format = outputFormat(v.output as string | undefined);
  const state = v.state ? ({ ready: "SANDBOX_READY", notready: "SANDBOX_NOTREADY" } as const)[(v.state as string).toLowerCase()] : undefined;
  if (v.state && !state) throw new UsageError(`--state ${v.state}: expected ready or notready`);
  const res = await rt.listPodSandbox({ filter: { id: v.id as string | undefined, state: state ? { state } : undefined, labelSelector: labelsOf(v.label as string[] | undefined) } });
  const name = v.name ? new RegExp(v.name as string) : undefined;
  const items = res.items.filter((p) => (!name || name.test(p.metadata.name)) && (!v.namespace || p.metadata.namespace === v.namespace)).reverse();
  if (v.quiet) {
    for (const p of items) process.stdout.write(p.id + "\n");
  } else if (format === "json") printJSON({ items });
  else {
    const rows = items.map((p) => [trunc(p.id, !!v["no-trunc"]), ago(p.createdAt), podState(p.state), p.metadata.name, p.metadata.namespace, String(p.metadata.attempt ?? 0)]);
    process.stdout.write(table(["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"], rows));
  }
  return 0;
}

async function ps(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    all: { type: "boolean", short: "a" },
    name: { type: "string" },
    state: { type: "string", short: "s" },
    pod: { type: "string", short: "p" },
    label: { type: "string", multiple: true },
    id: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    output: { type: "string", short: "o" },
    "no-trunc": { type: "boolean" },
  });
  const format = outputFormat(v.output as string | undefined);
  const states: Record<string, ContainerState> = { created: "CONTAINER_CREATED", running: "CONTAINER_RUNNING", exited: "CONTAINER_EXITED", unknown: "CONTAINER_UNKNOWN" };
  const state = v.state ? states[(v.state as string).toLowerCase()] : v.all ? undefined : "CONTAINER_RUNNING";
  if (v.state && !state) throw new UsageError(`--state ${v.state}: expected created, running, exited or unknown`);
  const res = await rt.listContainers({ filter: { id: v.id as string | undefined, podSandboxId: v.pod as string | undefined, state: state ? { state } : undefined, labelSelector: labelsOf(v.label as string[] | undefined) } });
  const name = v.name ? new RegExp(v.name as string) : undefined;
  const containers = res.containers.filter((c) => !name || name.test(c.metadata.name)).reverse();
  if (v.quiet) {
    for (const c of containers) process.stdout.write(c.id + "\n");
  } else if (format === "json") printJSON({ containers });
  else {
    const podNames = new Map((await rt.listPodSandbox()).items.map((p) => [p.id, p.metadata.name]));
    const noTrunc = !!v["no-trunc"];
    const rows = containers.map((c) => [trunc(c.id, noTrunc), c.image.image || "<none>", ago(c.createdAt), ctrState(c.state), c.metadata.name, String(c.metadata.attempt ?? 0), trunc(c.podSandboxId, noTrunc), podNames.get(c.podSandboxId) ?? ""]);
    process.stdout.write(table(["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"], rows));
  }
  return 0;
}

async function inspectp(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals: ids } = parse(argv, { output: { type: "string", short: "o" } });
  if (v.output && v.output !== "json") throw new UsageError("inspectp prints JSON only (-o json)");
  needIds(ids, "pod sandbox");
  for (const id of ids) printJSON(await rt.podSandboxStatus({ podSandboxId: id, verbose: true }));
  return 0;
}

async function inspect(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals: ids } = parse(argv, { output: { type: "string", short: "o" } });
  if (v.output && v.output !== "json") throw new UsageError("inspect prints JSON only (-o json)");
  needIds(ids, "container");
  for (const id of ids) printJSON(await rt.containerStatus({ containerId: id, verbose: true }));
  return 0;
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on("data", (c: Buffer) => chunks.push(c));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

async function exec(rt: RuntimeClient, argv: string[]): Promise<number> {
  // Options stop at the container id: everything after it is the command, flags included.
  let interactive = false;
  let timeout = 0;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-i" || a === "--interactive") interactive = true;
    else if (a === "-t" || a === "--tty") throw new UsageError("exec: no terminals here (-t is not supported)");
    else if (a === "--timeout") timeout = Number(argv[++i]);
    else if (a.startsWith("--timeout=")) timeout = Number(a.slice(10));
    else if (a.startsWith("-")) throw new UsageError(`exec: unknown option ${a}`);
    else break;
  }
  if (!Number.isInteger(timeout) || timeout < 0) throw new UsageError("exec: --timeout takes whole seconds");
  const id = argv[i];
  let cmd = argv.slice(i + 1);
  if (cmd[0] === "--") cmd = cmd.slice(1);
  if (!id || !cmd.length) throw new UsageError("exec: give a container id and a command");
  const stdin = interactive ? await readStdin() : undefined;
  const r = await rt.execSync({ containerId: id, cmd, timeout, stdin });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.exitCode;
}

async function logs(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals: ids } = parse(argv, { follow: { type: "boolean", short: "f" }, tail: { type: "string" }, timestamps: { type: "boolean", short: "t" } });
  if (ids.length !== 1) throw new UsageError("logs: give one container id");
  const tail = v.tail === undefined ? -1 : Number(v.tail);
  if (!Number.isInteger(tail)) throw new UsageError("logs: --tail takes a number of lines");
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  const atLineStart = { stdout: true, stderr: true };
  try {
    for await (const line of rt.containerLogs({ containerId: ids[0]!, follow: !!v.follow, tail }, ac.signal)) {
      const rec = parseLogLine(line);
      if (!rec) {
        process.stdout.write(line + "\n");
        continue;
      }
      const out = rec.stream === "stderr" ? process.stderr : process.stdout;
      const prefix = v.timestamps && atLineStart[rec.stream] ? `${rec.time} ` : "";
      out.write(prefix + rec.text + (rec.partial ? "" : "\n"));
      atLineStart[rec.stream] = !rec.partial;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  }
  return 0;
}

async function stopp(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { positionals: ids } = parse(argv, {});
  needIds(ids, "pod sandbox");
  for (const id of ids) {
    const full = (await rt.podSandboxStatus({ podSandboxId: id })).status.id;
    await rt.stopPodSandbox({ podSandboxId: full });
    process.stdout.write(`Stopped sandbox ${full}\n`);
  }
  return 0;
}

async function rmp(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv, { force: { type: "boolean", short: "f" }, all: { type: "boolean", short: "a" } });
  const ids = v.all ? (await rt.listPodSandbox()).items.map((p) => p.id) : positionals;
  if (!v.all) needIds(ids, "pod sandbox");
  let failed = 0;
  for (const id of ids) {
    const st = (await rt.podSandboxStatus({ podSandboxId: id })).status;
    if (st.state === "SANDBOX_READY" && !v.force) {
      process.stderr.write(`pod sandbox ${st.id} is running, stop it first or use -f\n`);
      failed++;
      continue;
    }
    await rt.removePodSandbox({ podSandboxId: st.id });
    process.stdout.write(`Removed sandbox ${st.id}\n`);
  }
  return failed ? 1 : 0;
}

async function stop(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals: ids } = parse(argv, { timeout: { type: "string", short: "t" } });
  needIds(ids, "container");
  const timeout = v.timeout === undefined ? 10 : Number(v.timeout);
  if (!Number.isInteger(timeout) || timeout < 0) throw new UsageError("stop: --timeout takes whole seconds");
  for (const id of ids) {
    const full = (await rt.containerStatus({ containerId: id })).status.id;
    await rt.stopContainer({ containerId: full, timeout });
    process.stdout.write(full + "\n");
  }
  return 0;
}

async function rm(rt: RuntimeClient, argv: string[]): Promise<number> {
  const { values: v, positionals: ids } = parse(argv, { force: { type: "boolean", short: "f" } });
  needIds(ids, "container");
  let failed = 0;
  for (const id of ids) {
    const st = (await rt.containerStatus({ containerId: id })).status;
    if (st.state === "CONTAINER_RUNNING" && !v.force) {
      process.stderr.write(`container ${st.id} is running, stop it first or use -f\n`);
      failed++;
      continue;
    }
    await rt.removeContainer({ containerId: st.id });
    process.stdout.write(st.id + "\n");
  }
  return failed ? 1 : 0;
}

async function version(rt: RuntimeClient): Promise<number> {
  const v = await rt.version();
  process.stdout.write(`Version:  ${v.version}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}\n`);
  return 0;
}

const COMMANDS: Record<string, (rt: RuntimeClient, argv: string[]) => Promise<number>> = { pods, ps, inspectp, inspect, exec, logs, stopp, rmp, stop, rm, version };

export async function main(argv: string[]): Promise<number> {
  // Global options come before the command.
  let endpoint = process.env.CONTAINER_RUNTIME_ENDPOINT;
  let i = 0;
  try {
    for (; i < argv.length; i++) {
      const a = argv[i]!;
      const value = () => {
        const eq = a.indexOf("=");
        if (eq > 0) return a.slice(eq + 1);
        const v = argv[++i];
        if (v === undefined) throw new UsageError(`${a} needs a value`);
        return v;
      };
      if (a === "--state-dir" || a.startsWith("--state-dir=")) endpoint = socketInStateDir(value());
      else if (a === "-r" || a === "--runtime-endpoint" || a.startsWith("--runtime-endpoint=")) endpoint = value();
      else if (a === "-h" || a === "--help") {
        process.stdout.write(USAGE);
        return 0;
      } else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
      else break;
    }
    const name = argv[i];
    if (!name || name === "help") {
      process.stdout.write(USAGE);
      return name ? 0 : 2;
    }
    const cmd = COMMANDS[name];
    if (!cmd || !Object.hasOwn(COMMANDS, name)) throw new UsageError(`unknown command "${name}"`);
    if (!endpoint) throw new UsageError("no runtime endpoint: give --state-dir DIR or --runtime-endpoint unix:///PATH");
    return await cmd(new RuntimeClient(endpoint), argv.slice(i + 1));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`podnet crictl: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof RuntimeApiError) {
      process.stderr.write(`podnet crictl: ${e.code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
