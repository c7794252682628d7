// Errors of the runtime side of CNI. A plugin failure keeps everything the caller needs to
// act on it: the plugin's own CNI error (code, msg, details), its stderr, and which plugin and
// command failed. Messages are one readable line; nothing here carries a stack to the user.
import type { CniErrorJSON } from "../../cni-plugins/pkg/errors.ts";

export type PluginCommand = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";

/** Something is wrong on the runtime's side: configuration, arguments, cache, versions. */
export class CniRuntimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CniRuntimeError";
  }
}

/** A network configuration file (or object) that cannot be used, with every problem found in it. */
export class ConfigError extends CniRuntimeError {
  readonly problems: string[];
  readonly file: string | undefined;
  /** The message without the problems. */
  readonly summary: string;
  constructor(message: string, problems: string[], file?: string) {
    super(problems.length ? `${message}: ${problems.join("; ")}` : message);
    this.name = "ConfigError";
    this.summary = message;
    this.problems = problems;
    this.file = file;
  }
}

export interface PluginFailure {
  /** The plugin's `type`, e.g. "bridge". */
  type: string;
  path: string;
  command: PluginCommand;
  /** The CNI error the plugin printed; absent when it printed none (or something unreadable). */
  cniError?: CniErrorJSON;
  stderr: string;
  stdout: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  timeoutMs?: number;
}

/** A plugin execution that failed: non-zero exit, timeout, unreadable output or spawn failure. */
export class PluginError extends CniRuntimeError {
  readonly type: string;
  readonly path: string;
  readonly command: PluginCommand;
  /** CNI error code (the plugin's, or 999 when the plugin gave none). */
  readonly code: number;
  readonly msg: string;
  readonly details: string | undefined;
  readonly cniError: CniErrorJSON | undefined;
  readonly stderr: string;
  readonly stdout: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;

  constructor(f: PluginFailure, why?: string) {
    const msg = f.cniError?.msg ?? why ?? "plugin failed";
    const details = f.cniError?.details;
    const code = f.cniError?.code ?? 999;
    const where = `plugin ${f.type} failed (${f.command})`;
    const stderrTail = f.stderr.trim() ? ` [stderr: ${tail(f.stderr.trim(), 300).replace(/\s*\n\s*/g, " | ")}]` : "";
    super(`${where}: ${msg}${details ? `: ${details}` : ""}${f.cniError ? ` (CNI error code ${code})` : ""}${f.cniError ? "" : stderrTail}`);
    this.name = "PluginError";
    this.type = f.type;
    this.path = f.path;
    this.command = f.command;
    this.code = code;
    this.msg = msg;
    this.details = details;
    this.cniError = f.cniError;
    this.stderr = f.stderr;
    this.stdout = f.stdout;
    this.exitCode = f.exitCode;
    this.signal = f.signal;
    this.timedOut = f.timedOut;
  }

  toJSON(): Record<string, unknown> {
    return {
      plugin: this.type,
      command: this.command,
      code: this.code,
      msg: this.msg,
      ...(this.details !== undefined ? { details: this.details } : {}),
      ...(this.stderr ? { stderr: this.stderr } : {}),
      ...(this.timedOut ? { timedOut: true } : {}),
    };
  }
}

function tail(s: string, n: number): string {
  return s.length <= n ? s : `...${s.slice(s.length - n)}`;
}

/** Reads a CNI error object from a plugin's stdout; undefined when it is not one. */
export function parseCniError(stdout: string): CniErrorJSON | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o.code !== "number" || typeof o.msg !== "string") return undefined;
  const out: CniErrorJSON = { code: o.code, msg: o.msg };
  if (typeof o.cniVersion === "string") out.cniVersion = o.cniVersion;
  if (typeof o.details === "string" && o.details !== "") out.details = o.details;
  return out;
}
