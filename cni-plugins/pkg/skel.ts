// The plugin skeleton: environment, stdin, version negotiation, dispatch and output.
// runPlugin() is pure with respect to the process (env and stdin in, text out), so the same
// code serves a plugin executable and an in-process delegate.
import { parseCniArgs, type CniArgs } from "./args.ts";
import { readEnv, validNetworkName, type CniEnv } from "./env.ts";
import { asCniError, CniError, ErrCode } from "./errors.ts";
import { isTerminal, readAll, writeAll } from "./fd.ts";
import { convertResult, formatJSON, parseResult } from "./result.ts";
import type { NetConf, Result } from "./types.ts";
import { CURRENT_VERSION, requireCommandAllowed, requireSupported, SUPPORTED_VERSIONS } from "./version.ts";

export const PODNET_VERSION = "0.1.0";

export interface PluginContext {
  env: CniEnv;
  args: CniArgs;
  conf: NetConf;
  /** The stdin bytes as received: delegates get exactly these. */
  stdin: string;
  version: string;
  prevResult?: Result;
}

export interface Plugin {
  name: string;
  /** CNI_ARGS keys this plugin (or a delegate it forwards them to) understands. */
  knownArgs?: readonly string[];
  add(ctx: PluginContext): Result | Promise<Result>;
  del(ctx: PluginContext): void | Promise<void>;
  check(ctx: PluginContext): void | Promise<void>;
  gc?(ctx: PluginContext): void | Promise<void>;
  status?(ctx: PluginContext): void | Promise<void>;
}

export interface Outcome {
  exitCode: number;
  stdout: string;
  /** Text meant for the plugin's stderr (the about line). */
  stderr: string;
}

export function aboutText(name: string): string {
  return `CNI ${name} plugin podnet v${PODNET_VERSION}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`;
}

function decodeConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(ErrCode.DecodeFailure, `error unmarshall network config: ${stdin.trim() === "" ? "unexpected end of JSON input" : (e as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new CniError(ErrCode.DecodeFailure, "error unmarshall network config: not a JSON object");
  return raw as NetConf;
}

function versionOf(conf: NetConf): string {
  if (conf.cniVersion === undefined) {
    throw new CniError(ErrCode.IncompatibleVersion, "incompatible CNI versions", `config has no cniVersion (read as 0.1.0); plugin supports [${SUPPORTED_VERSIONS.join(" ")}]`);
  }
  if (typeof conf.cniVersion !== "string") throw new CniError(ErrCode.DecodeFailure, "cniVersion must be a string");
  requireSupported(conf.cniVersion);
  return conf.cniVersion;
}

/** Best guess at the version to stamp on an error: the config's when readable. */
function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as NetConf).cniVersion;
    if (typeof v === "string" && /^\d+\.\d+\.\d+$/.test(v)) return v;
  } catch {
    /* unreadable config: the current version */
  }
  return CURRENT_VERSION;
}

export async function runPlugin(plugin: Plugin, envVars: NodeJS.ProcessEnv, stdin: string): Promise<Outcome> {
  if (!envVars.CNI_COMMAND) return { exitCode: 0, stdout: "", stderr: aboutText(plugin.name) };
  try {
    const env = readEnv(envVars);
    if (env.command === "VERSION") {
      let asked = CURRENT_VERSION;
      try {
        const v = stdin.trim() ? (JSON.parse(stdin) as NetConf).cniVersion : undefined;
        if (typeof v === "string" && v) asked = v;
      } catch {
        /* VERSION answers even without a readable config */
      }
      return { exitCode: 0, stdout: JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS }) + "\n", stderr: "" };
    }
    const conf = decodeConf(stdin);
    const version = versionOf(conf);
    requireCommandAllowed(env.command, version);
    if (typeof conf.name !== "string" || conf.name === "") throw new CniError(ErrCode.InvalidConfig, "missing network name");
    if (!validNetworkName(conf.name)) throw new CniError(ErrCode.InvalidConfig, `invalid network name ${JSON.stringify(conf.name)}`, "a network name starts with a letter or digit, followed by letters, digits, '_', '.' or '-'");
    const args = parseCniArgs(env.args, plugin.knownArgs ?? []);
    const ctx: PluginContext = { env, args, conf, stdin, version };
    if (conf.prevResult !== undefined && conf.prevResult !== null) ctx.prevResult = parseResult(conf.prevResult, version, "prevResult");

    switch (env.command) {
      case "ADD": {
        const result = await plugin.add(ctx);
        return { exitCode: 0, stdout: formatJSON(convertResult(result, version)), stderr: "" };
      }
      case "DEL":
        await plugin.del(ctx);
        break;
      case "CHECK":
        await plugin.check(ctx);
        break;
      case "GC":
        await plugin.gc?.(ctx);
        break;
      case "STATUS":
        await plugin.status?.(ctx);
        break;
    }
    return { exitCode: 0, stdout: "", stderr: "" };
  } catch (e) {
    const err = asCniError(e);
    return { exitCode: 1, stdout: formatJSON(err.toJSON(errorVersion(stdin))), stderr: "" };
  }
}

function readStdin(): string {
  try {
    return readAll(0);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // No stdin at all (closed descriptor) reads as empty; anything else is an I/O failure.
    if (code === "EAGAIN" || code === "EBADF" || code === "EOF") return "";
    throw e;
  }
}

/** Entry point of a plugin executable. */
export async function pluginMain(plugin: Plugin): Promise<never> {
  let out: Outcome;
  if (!process.env.CNI_COMMAND) {
    out = { exitCode: 0, stdout: "", stderr: aboutText(plugin.name) };
  } else if (process.env.CNI_COMMAND === "VERSION" && isTerminal(0)) {
    out = await runPlugin(plugin, process.env, "");
  } else {
    let stdin: string;
    try {
      stdin = readStdin();
    } catch (e) {
      out = { exitCode: 1, stdout: formatJSON(new CniError(ErrCode.IOFailure, `error reading from stdin: ${(e as Error).message}`).toJSON(CURRENT_VERSION)), stderr: "" };
      return finish(out);
    }
    out = await runPlugin(plugin, process.env, stdin);
  }
  return finish(out);
}

function finish(out: Outcome): never {
  if (out.stdout) writeAll(1, out.stdout);
  if (out.stderr) writeAll(2, out.stderr);
  process.exit(out.exitCode);
}
