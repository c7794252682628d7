// Runs system programs with argument arrays (never a shell), optionally inside a netns via nsenter.
import { CniError, ErrCode } from "./errors.ts";
import { pathExists } from "./fd.ts";
import { enterNetns, NetnsError } from "./setns.ts";

// node:child_process is loaded on first use, not at start: a plugin call that starts no process
// (most loopback and bridge calls) saves its load time.
const childProcess = () => process.getBuiltinModule("node:child_process");

const SYSTEM_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"];
const resolved = new Map<string, string>();

/**
 * The system's copy of a program (ip, nft, nsenter, ...) by absolute path. A plugin cannot
 * trust the caller's PATH: under npm scripts it starts with node_modules/.bin, where "nft" is an
 * unrelated npm tool, and runtimes pass whatever PATH they have.
 */
export function systemBinary(name: string): string {
  let p = resolved.get(name);
  if (!p) {
    p = name.includes("/") ? name : (SYSTEM_DIRS.map((d) => `${d}/${name}`).find((f) => pathExists(f)) ?? name);
    resolved.set(name, p);
  }
  return p;
}

function argvFor(cmd: string, args: string[], netns?: string): string[] {
  return netns ? [systemBinary("nsenter"), `--net=${netns}`, "--", systemBinary(cmd), ...args] : [systemBinary(cmd), ...args];
}

/**
 * Starts a process in `netns` (or here). With setns(2) available the child is started from
 * inside the netns directly; otherwise through nsenter, one process start more.
 */
function startIn<T>(netns: string | undefined, cmd: string, args: string[], start: (argv: string[]) => T, viaNsenter = false): T {
  const leave = netns && !viaNsenter ? enterNetns(netns) : undefined;
  if (!leave) return start(argvFor(cmd, args, netns));
  try {
    return start([systemBinary(cmd), ...args]);
  } finally {
    leave();
  }
}

export interface RunOptions {
  /** Path of a network namespace to run in (e.g. CNI_NETNS); the current one when absent. */
  netns?: string;
  input?: string;
  /** Return the failed result instead of throwing. */
  allowFail?: boolean;
  /**
   * Enter `netns` through nsenter even when setns(2) is available: for commands that name this
   * process's own netns (`netns <our pid>`), which must not be read while this thread is elsewhere.
   */
  nsenter?: boolean;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends CniError {
  readonly argv: string[];
  readonly stderr: string;
  readonly status: number;
  constructor(argv: string[], status: number, stderr: string) {
    super(ErrCode.Kernel, `${argv[0]} failed: ${stderr.trim() || `exit status ${status}`}`, argv.join(" "));
    this.argv = argv;
    this.stderr = stderr;
    this.status = status;
  }
}

/** A netns that cannot be entered fails like nsenter does: exit status 1 and its message. */
function netnsFailure(e: unknown, cmd: string, args: string[], opts: RunOptions): RunResult {
  if (!(e instanceof NetnsError)) throw e;
  const res = { status: 1, stdout: "", stderr: e.stderr + "\n" };
  if (!opts.allowFail) throw new CommandError([cmd, ...args], res.status, res.stderr);
  return res;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  try {
    return runSync(cmd, args, opts);
  } catch (e) {
    return netnsFailure(e, cmd, args, opts);
  }
}

function runSync(cmd: string, args: string[], opts: RunOptions): RunResult {
  const r = startIn(opts.netns, cmd, args, (argv) =>
    childProcess().spawnSync(argv[0]!, argv.slice(1), {
      input: opts.input ?? "",
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      maxBuffer: 256 * 1024 * 1024,
    }),
    opts.nsenter,
  );
  if (r.error) {
    if (opts.allowFail) return { status: -1, stdout: "", stderr: String(r.error.message) };
    throw new CniError(ErrCode.Internal, `cannot run ${cmd}: ${r.error.message}`);
  }
  const res = { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  if (res.status !== 0 && !opts.allowFail) throw new CommandError([cmd, ...args], res.status, res.stderr);
  return res;
}

/**
 * Like run(), without blocking: plugins start independent commands (one in the container's
 * netns, one in their own) at the same time, since each process start costs milliseconds.
 */
export async function runAsync(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    return await (BUN?.spawn ? runBun(BUN, cmd, args, opts) : runNode(cmd, args, opts));
  } catch (e) {
    return netnsFailure(e, cmd, args, opts);
  }
}

function runNode(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = startIn(opts.netns, cmd, args, (argv) => childProcess().spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] }), opts.nsenter);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => undefined); // a command that exits without reading its stdin
    child.on("error", (e) => {
      if (opts.allowFail) resolve({ status: -1, stdout: "", stderr: e.message });
      else reject(new CniError(ErrCode.Internal, `cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code) => {
      const res = { status: code ?? -1, stdout, stderr };
      if (res.status !== 0 && !opts.allowFail) reject(new CommandError([cmd, ...args], res.status, res.stderr));
      else resolve(res);
    });
    child.stdin.end(opts.input ?? "");
  });
}

// In the Bun-compiled plugins, Bun's own spawn starts a process in about half the time
// node:child_process takes there (~1.5 ms against ~3 ms), and ADD starts several.
interface BunSubprocess {
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
}
interface BunRuntime {
  spawn(argv: string[], opts: { stdin: Uint8Array | "ignore"; stdout: "pipe"; stderr: "pipe" }): BunSubprocess;
}
const BUN = (globalThis as { Bun?: BunRuntime }).Bun;

async function runBun(bun: BunRuntime, cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  let child: BunSubprocess;
  try {
    child = startIn(opts.netns, cmd, args, (argv) => bun.spawn(argv, { stdin: opts.input ? Buffer.from(opts.input) : "ignore", stdout: "pipe", stderr: "pipe" }), opts.nsenter);
  } catch (e) {
    if (e instanceof NetnsError) throw e;
    if (opts.allowFail) return { status: -1, stdout: "", stderr: (e as Error).message };
    throw new CniError(ErrCode.Internal, `cannot run ${cmd}: ${(e as Error).message}`);
  }
  const [stdout, stderr, status] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (status !== 0 && !opts.allowFail) throw new CommandError([cmd, ...args], status, stderr);
  return { status, stdout, stderr };
}
