// Runs system programs (nft, conntrack) with argument arrays, never through a shell, optionally
// inside a network namespace through nsenter. Asynchronous, so that the daemon's HTTP servers
// (metrics, health checks) keep answering while a large nft transaction is being applied.
import { spawn } from "node:child_process";
import { systemBinary } from "../cni-plugins/pkg/exec.ts";

// Programs are run by absolute path (see systemBinary): PATH under npm starts with node_modules/.bin.
export { systemBinary };

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  /** The netns the programs run in (a path such as /run/netns/NAME); the current one when absent. */
  readonly netns?: string;
  exec(cmd: string, args: string[], input?: string): Promise<ExecResult>;
}

export class NftError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = "NftError";
  }
}

export function makeRunner(netns?: string): Runner {
  return {
    netns,
    exec(cmd, args, input) {
      const bin = cmd.startsWith("/") ? cmd : systemBinary(cmd);
      const argv = netns ? [systemBinary("nsenter"), `--net=${netns}`, "--", bin, ...args] : [bin, ...args];
      return new Promise((resolve) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (c: Buffer) => out.push(c));
        child.stderr.on("data", (c: Buffer) => err.push(c));
        child.on("error", (e) => resolve({ code: -1, stdout: "", stderr: `cannot run ${cmd}: ${e.message}` }));
        child.on("close", (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
        // A program that exits before reading all of stdin (EPIPE) reports through its exit code.
        child.stdin.on("error", () => {});
        child.stdin.end(input ?? "");
      });
    },
  };
}

/** Applies an nft script in one transaction (`nft -f -`); throws NftError with nft's message. */
export async function nftApply(runner: Runner, script: string): Promise<void> {
  const r = await runner.exec("nft", ["-f", "-"], script);
  if (r.code !== 0) {
    const lines = r.stderr.trim().split("\n");
    throw new NftError(`nft failed: ${lines.slice(0, 6).join(" | ").slice(0, 800)}`, r.stderr);
  }
}
