// Running one plugin process: argument arrays only (never a shell), the CNI_* environment,
// the request on stdin, a timeout that kills the plugin and everything it started, and
// optionally inside another network namespace (the "runtime's networking domain") via nsenter.
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { CniRuntimeError, parseCniError, PluginError, type PluginCommand } from "./errors.ts";

export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Output beyond this is not a CNI result; stop reading rather than exhaust memory. */
const MAX_OUTPUT = 16 * 1024 * 1024;

export interface ExecRequest {
  path: string;
  /** The plugin's type, for messages. */
  type: string;
  command: PluginCommand;
  /** CNI_* variables (CNI_COMMAND is set from `command`); undefined values are left out. */
  cniEnv: Record<string, string | undefined>;
  stdin: string;
  timeoutMs?: number;
  /** Run the plugin inside this network namespace (a path such as /run/netns/NAME). */
  netns?: string;
  /**
   * The environment the plugin inherits besides the CNI_* variables; the caller's
   * environment when absent. Inherited CNI_* variables are always dropped, so a stray
   * CNI_ARGS in a user's shell never reaches a plugin.
   */
  baseEnv?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface ExecOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the process could not be started at all. */
  spawnError?: string;
}

/** Looks `type` up in the CNI_PATH directories; errors name every directory searched. */
export function findPlugin(type: string, cniPath: readonly string[]): string {
  if (typeof type !== "string" || type === "" || type.includes("/") || type.includes("\\") || type === "." || type === "..") {
    throw new CniRuntimeError(`invalid plugin type ${JSON.stringify(type)}: a type is a file name, without '/' or '\\'`);
  }
  for (const dir of cniPath) {
    if (!isAbsolute(dir)) continue;
    const p = join(dir, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next directory */
    }
  }
  throw new CniRuntimeError(`failed to find plugin "${type}" in path [${cniPath.join(" ")}]`);
}

function environment(req: ExecRequest): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(req.baseEnv ?? process.env)) if (!k.startsWith("CNI_") && v !== undefined) env[k] = v;
  // npm/npx put node_modules/.bin first in PATH for the Node program, not for plugins: there,
  // "nft" would be a JavaScript tool of that name instead of nftables.
  const path = (env.PATH ?? "").split(":").filter((d) => d !== "" && !/(^|\/)node_modules\/\.bin\/?$/.test(d));
  env.PATH = path.length ? path.join(":") : SYSTEM_PATH;
  env.CNI_COMMAND = req.command;
  for (const [k, v] of Object.entries(req.cniEnv)) if (v !== undefined && k !== "CNI_COMMAND") env[k] = v;
  return env;
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    // The plugin leads its own process group, so its delegates and helpers (ip, iptables,
    // an IPAM plugin) go with it.
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

function runOnce(req: ExecRequest): Promise<ExecOutcome> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const [cmd, args] = req.netns ? ["nsenter", [`--net=${req.netns}`, "--", req.path]] : [req.path, [] as string[]];
  return new Promise((resolve) => {
    let stdout = "", stderr = "", outBytes = 0, errBytes = 0;
    let timedOut = false, aborted = false, settled = false;
    const child = spawn(cmd, args, { env: environment(req), stdio: ["pipe", "pipe", "pipe"], detached: true });
    const finish = (o: Omit<ExecOutcome, "stdout" | "stderr" | "timedOut" | "aborted">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      req.signal?.removeEventListener("abort", onAbort);
      resolve({ ...o, stdout, stderr, timedOut, aborted });
    };
    let grace: NodeJS.Timeout | undefined;
    const stop = () => {
      killGroup(child.pid);
      // A grandchild that escaped the group may still hold our pipes open: do not wait on it.
      grace = setTimeout(() => finish({ exitCode: null, signal: "SIGKILL" }), 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      outBytes += d.length;
      if (outBytes <= MAX_OUTPUT) stdout += d;
    });
    child.stderr.on("data", (d: string) => {
      errBytes += d.length;
      if (errBytes <= MAX_OUTPUT) stderr += d;
    });
    child.on("error", (e: NodeJS.ErrnoException) => finish({ exitCode: null, signal: null, spawnError: e.code === "ETXTBSY" ? "ETXTBSY" : e.message }));
    child.on("close", (code, signal) => finish({ exitCode: code, signal }));
    child.stdin.on("error", () => {
      /* the plugin need not read its stdin (EPIPE) */
    });
    child.stdin.end(req.stdin);
  });
}

/** Runs a plugin and returns what happened, whatever it was (never throws for a plugin failure). */
export async function execPlugin(req: ExecRequest): Promise<ExecOutcome> {
  // A plugin binary being replaced while we start it gives ETXTBSY; libcni retries too.
  for (let attempt = 0; ; attempt++) {
    const out = await runOnce(req);
    if (out.spawnError === "ETXTBSY" && attempt < 5) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    return out;
  }
}

/** Turns an unsuccessful outcome into a PluginError; undefined when the plugin succeeded. */
export function failureOf(req: ExecRequest, out: ExecOutcome): PluginError | undefined {
  const base = { type: req.type, path: req.path, command: req.command, stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode, signal: out.signal, timedOut: out.timedOut };
  if (out.spawnError) return new PluginError(base, `cannot run ${req.path}: ${out.spawnError}`);
  if (out.timedOut) return new PluginError({ ...base, timeoutMs: req.timeoutMs }, `timed out after ${req.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS} ms and was killed`);
  if (out.aborted) return new PluginError(base, "aborted and killed");
  if (out.exitCode === 0) return undefined;
  const cniError = parseCniError(out.stdout);
  if (cniError) return new PluginError({ ...base, cniError });
  const how = out.signal ? `was killed by ${out.signal}` : `exited with status ${out.exitCode}`;
  const said = out.stdout.trim() ? ` and printed no CNI error (stdout: ${JSON.stringify(out.stdout.trim().slice(0, 200))})` : "";
  return new PluginError(base, `${how}${said}`);
}

/** Runs a plugin; resolves with its stdout on success, rejects with a PluginError otherwise. */
export async function invokePlugin(req: ExecRequest): Promise<string> {
  const out = await execPlugin(req);
  const err = failureOf(req, out);
  if (err) throw err;
  return out.stdout;
}

/** Parses the JSON object a successful ADD or VERSION printed. */
export function parseOutputObject(req: ExecRequest, out: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(out);
  } catch (e) {
    throw new PluginError(
      { type: req.type, path: req.path, command: req.command, stdout: out, stderr: "", exitCode: 0, signal: null, timedOut: false },
      `printed output that is not JSON (${(e as Error).message.replace(/\s+/g, " ")}): ${JSON.stringify(out.trim().slice(0, 200))}`,
    );
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new PluginError({ type: req.type, path: req.path, command: req.command, stdout: out, stderr: "", exitCode: 0, signal: null, timedOut: false }, "printed JSON that is not an object");
  }
  return raw as Record<string, unknown>;
}
