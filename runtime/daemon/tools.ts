// The system programs the runtime drives, found once at start-up and then always run by absolute
// path with an argument array (never through a shell), and a small promise wrapper to run them.
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RuntimeError } from "./errors.ts";

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Tools {
  ip: string;
  nsenter: string;
  unshare: string;
  setsid: string;
  sh: string;
  perl: string;
}

export function findProgram(name: string, path = `${process.env.PATH ?? ""}:${SYSTEM_PATH}`): string | undefined {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function findTools(): Tools {
  const need = { ip: "iproute2", nsenter: "util-linux", unshare: "util-linux", setsid: "util-linux", sh: "a POSIX shell", perl: "perl (the container monitor is a perl script)" } as const;
  const out: Partial<Tools> = {};
  for (const [name, pkg] of Object.entries(need)) {
    const p = findProgram(name);
    if (!p) throw new Error(`cannot find \`${name}\` in PATH; install ${pkg}`);
    out[name as keyof Tools] = p;
  }
  return out as Tools;
}

/** dist/ (where podnet.mjs lives), from the bundle itself or from a source checkout. */
export function podnetDistDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, "podnet.mjs"))) return here;
  return join(here, "..", "..", "dist");
}

/** The podnet command to link into containers' PATH: the bundle when it exists. */
export function podnetCommand(): string | undefined {
  const p = join(podnetDistDir(), "podnet.mjs");
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program; a failure becomes an Internal error quoting its stderr. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): Promise<RunResult & { code: number }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: opts.env ?? { PATH: SYSTEM_PATH }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1) : 0;
      if (err && !opts.allowFail) {
        reject(new RuntimeError("Internal", `${cmd.split("/").pop()} ${args.join(" ")}: ${String(stderr).trim() || err.message}`));
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}
