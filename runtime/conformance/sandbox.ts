// The network namespaces a conformance run works in: one "node" netns where the plugins run
// (the runtime's networking domain) and one per container. All are named <runId>-<role>, so a
// run only ever removes what it created, and everything is removed at the end, on error and on
// SIGINT/SIGTERM. The root netns is never changed: only `ip netns add/del` mount points.
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Ns {
  name: string;
  path: string;
}

export function newRunId(): string {
  return `pncf${randomBytes(4).toString("hex")}`;
}

/** Runs `ip` with an argument array; resolves with stdout, rejects with stderr in the message. */
export async function ip(args: string[]): Promise<string> {
  try {
    return (await run("ip", args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(err.stderr ?? err.message).trim()}`);
  }
}

export class Sandbox {
  readonly runId: string;
  private readonly live = new Map<string, Ns>();
  private seq = 0;

  constructor(runId = newRunId()) {
    this.runId = runId;
  }

  /** A path in /run/netns that no namespace of this run will ever have. */
  missingPath(): string {
    return `/run/netns/${this.runId}-missing`;
  }

  async create(role?: string): Promise<Ns> {
    const name = `${this.runId}-${role ?? `c${++this.seq}`}`;
    const ns = { name, path: `/run/netns/${name}` };
    this.live.set(name, ns);
    await ip(["netns", "add", name]);
    return ns;
  }

  /** Removes a namespace of this run, killing anything still running in it. */
  async remove(ns: Ns): Promise<void> {
    if (!this.live.has(ns.name)) return;
    try {
      const pids = await ip(["netns", "pids", ns.name]).catch(() => "");
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* already gone */
        }
      }
      await ip(["netns", "del", ns.name]).catch(() => undefined);
    } finally {
      this.live.delete(ns.name);
    }
  }

  async removeAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((ns) => this.remove(ns)));
  }

  get names(): string[] {
    return [...this.live.keys()];
  }
}
