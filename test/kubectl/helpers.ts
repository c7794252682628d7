// Helpers for the kubectl-like CLI tests: an in-process API server on a temp dir (from the API
// server's test helpers) and the built `podnet` command run against it with --server.
import type { ExecutionContext } from "ava";
import { execa, type ResultPromise } from "execa";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dir } from "tmp-promise";
import { PODNET } from "../helpers/podnet.ts";
import { startTestServer, type TestServer } from "../apiserver/helpers.ts";

export { eventually } from "../apiserver/helpers.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of every run: no cluster or API server picked up from the caller's. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["PODNET_CLUSTER", "PODNET_APISERVER", "PODNET_APISERVER_SOCKET", "PODNET_DEBUG", "PODNET_STATE_ROOT"]) delete env[k];
  return env;
}

export function requireBuild(): void {
  if (!existsSync(PODNET)) throw new Error(`${PODNET} is missing: build it with \`node scripts/build.mjs cli\``);
}

export interface Cli {
  server: TestServer;
  socket: string;
  /** `podnet VERB --server SOCKET ARGS...`. */
  run(args: string[], opts?: { input?: string; env?: Record<string, string> }): Promise<CliResult>;
  /** A long-running `podnet VERB --server SOCKET ARGS...` (get -w, logs -f); killed when the test ends. */
  spawn(args: string[], opts?: { env?: Record<string, string> }): ResultPromise;
  /** Writes a manifest file in a temp dir removed when the test ends; returns its path. */
  file(name: string, text: string): Promise<string>;
  dir: string;
}

export async function startCli(t: ExecutionContext, opts: Parameters<typeof startTestServer>[1] = {}): Promise<Cli> {
  requireBuild();
  const server = await startTestServer(t, opts);
  const tmp = await dir({ unsafeCleanup: true, prefix: "podnet-kubectl-" });
  t.teardown(() => tmp.cleanup());
  const socket = server.server.socketPath;
  // --server right after the verb: after a "--" (exec) it would be part of the command.
  const withServer = ([verb, ...rest]: string[]) => [PODNET, verb!, "--server", socket, ...rest];
  return {
    server,
    socket,
    dir: tmp.path,
    async run(args, o = {}) {
      const r = await execa(process.execPath, withServer(args), { reject: false, input: o.input ?? "", env: { ...cleanEnv(), ...o.env }, extendEnv: false, stripFinalNewline: false });
      return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    spawn(args, o = {}) {
      const p = execa(process.execPath, withServer(args), { reject: false, env: { ...cleanEnv(), ...o.env }, extendEnv: false, stdin: "ignore" });
      t.teardown(async () => {
        p.kill("SIGKILL");
        await p;
      });
      return p;
    },
    async file(name, text) {
      const p = join(tmp.path, name);
      await writeFile(p, text);
      return p;
    },
  };
}

/** Collects a running process's stdout and waits until it matches. */
export function outputOf(p: ResultPromise): { text: () => string; waitFor: (re: RegExp, what: string, ms?: number) => Promise<string> } {
  let text = "";
  p.stdout!.on("data", (d: Buffer) => (text += d.toString("utf8")));
  let err = "";
  p.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
  return {
    text: () => text,
    async waitFor(re, what, ms = 20_000) {
      const end = Date.now() + ms;
      while (!re.test(text)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; stdout so far:\n${text}\nstderr:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return text;
    },
  };
}

/** No line of a user's error output looks like a stack frame. */
export const NO_STACK = /^\s+at .+\(.*:\d+:\d+\)$/m;
