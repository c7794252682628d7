// Delegation (spec section 4): find the delegate in CNI_PATH, run it with the same environment
// and stdin, pass its stderr through, and on a failed ADD run its DEL before reporting.
import { CniError, ErrCode } from "./errors.ts";
import { fileIdentity, isExecutable } from "./fd.ts";
import { joinPath } from "./paths.ts";
import { parseResult } from "./result.ts";
import type { Outcome } from "./skel.ts";
import type { Command, Result } from "./types.ts";

/**
 * When a plugin executable also contains the delegate (the multicall binary), the delegate can
 * run in-process: same code, same input, same output, without a second process start.
 */
export type InProcessRunner = (type: string, env: NodeJS.ProcessEnv, stdin: string) => Promise<Outcome> | undefined;
let inProcess: InProcessRunner | undefined;
/** Our own executable; its device and inode are compared, as the plugins are hard links to it. */
let selfPath: string | undefined;

export function setInProcessRunner(runner: InProcessRunner, executable: string): void {
  inProcess = runner;
  selfPath = executable;
}

export function findPlugin(type: string, cniPath: string[]): string {
  if (!type || type.includes("/") || type === "." || type === "..") {
    throw new CniError(ErrCode.InvalidConfig, `invalid plugin type ${JSON.stringify(type)}`);
  }
  for (const dir of cniPath) {
    const p = joinPath(dir, type);
    if (isExecutable(p)) return p;
  }
  throw new CniError(ErrCode.InvalidConfig, `failed to find plugin "${type}" in path [${cniPath.join(" ")}]`);
}

async function execDelegate(command: Command, type: string, stdin: string, cniPath: string[]): Promise<Outcome> {
  const path = findPlugin(type, cniPath);
  const env = { ...process.env, CNI_COMMAND: command };
  const self = selfPath && fileIdentity(selfPath);
  if (inProcess && self && fileIdentity(path) === self) {
    const out = inProcess(type, env, stdin);
    if (out) return out;
  }
  // Loaded here, not at start: most plugin starts never run a delegate as a process.
  const r = process.getBuiltinModule("node:child_process").spawnSync(path, [], { env, input: stdin, encoding: "utf8", stdio: ["pipe", "pipe", "inherit"] });
  if (r.error) throw new CniError(ErrCode.Internal, `cannot run delegate ${type}: ${r.error.message}`);
  return { exitCode: r.status ?? 1, stdout: r.stdout ?? "", stderr: "" };
}

function failure(type: string, out: Outcome): CniError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(out.stdout);
  } catch {
    parsed = undefined;
  }
  const err = CniError.fromJSON(parsed, `delegate ${type} failed with exit status ${out.exitCode}${out.stdout.trim() ? `: ${out.stdout.trim()}` : ""}`);
  return err;
}

/** ADD through a delegate; its result is read in `version`. A failed ADD is followed by DEL. */
export async function delegateAdd(type: string, stdin: string, cniPath: string[], version: string): Promise<Result> {
  const out = await execDelegate("ADD", type, stdin, cniPath);
  if (out.exitCode !== 0) {
    const err = failure(type, out);
    await execDelegate("DEL", type, stdin, cniPath).catch(() => undefined);
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(out.stdout);
  } catch (e) {
    await execDelegate("DEL", type, stdin, cniPath).catch(() => undefined);
    throw new CniError(ErrCode.DecodeFailure, `delegate ${type} printed an unreadable result`, (e as Error).message);
  }
  return parseResult(raw, version, `${type} result`);
}

/** DEL, CHECK, GC or STATUS through a delegate; its error becomes ours. */
export async function delegate(command: Exclude<Command, "ADD" | "VERSION">, type: string, stdin: string, cniPath: string[]): Promise<void> {
  const out = await execDelegate(command, type, stdin, cniPath);
  if (out.exitCode !== 0) throw failure(type, out);
}
