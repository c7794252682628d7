// Runs system programs with argument arrays (never a shell), optionally inside a netns via nsenter.
import { spawnSync } from "node:child_process";
import { CniError, ErrCode } from "./errors.ts";

export interface RunOptions {
  /** Path of a network namespace to run in (e.g. CNI_NETNS); the current one when absent. */
  netns?: string;
  input?: string;
  /** Return the failed result instead of throwing. */
  allowFail?: boolean;
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

export function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  const argv = opts.netns ? ["nsenter", `--net=${opts.netns}`, "--", cmd, ...args] : [cmd, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    input: opts.input ?? "",
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) {
    if (opts.allowFail) return { status: -1, stdout: "", stderr: String(r.error.message) };
    throw new CniError(ErrCode.Internal, `cannot run ${cmd}: ${r.error.message}`);
  }
  const res = { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  if (res.status !== 0 && !opts.allowFail) throw new CommandError([cmd, ...args], res.status, res.stderr);
  return res;
}
