// A runtime daemon on a throwaway "node" for tests: its own node netns, temp dir, netns prefix,
// and a teardown that removes everything even when the test failed. The daemon and crictl run
// from source (node --import tsx cli/podnet.ts), so tests never depend on a fresh build.
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { RuntimeClient } from "../../runtime/cri/client.ts";
import { parseLogLine } from "../../runtime/cri/logformat.ts";
import type { ContainerConfig, PodSandboxConfig } from "../../runtime/cri/types.ts";
import { ROOT } from "../helpers/cni.ts";
import { createNetns, removeNetns, uniqueName, type Netns } from "../helpers/netns.ts";

const PODNET_SRC = join(ROOT, "cli/podnet.ts");

export function podnetSrc(...args: string[]): [string, string[]] {
  return [process.execPath, ["--import", "tsx", PODNET_SRC, ...args]];
}

export interface Leftovers {
  netns: string[];
  processes: number[];
  stateFiles: string[];
}

export class RuntimeNode {
  readonly node: Netns;
  readonly base: string;
  readonly stateDir: string;
  readonly prefix: string;
  readonly client: RuntimeClient;
  daemon?: ChildProcess;
  /** Every holder and container main process seen (pid -> start time), to check that none is left. */
  readonly pids = new Map<number, string>();
  /** Inodes of every sandbox netns made, to check that no process is left inside one. */
  readonly netnsInodes = new Set<number>();

  constructor(node: Netns, base: string, prefix: string) {
    this.node = node;
    this.base = base;
    this.stateDir = join(base, "state");
    this.prefix = prefix;
    this.client = RuntimeClient.forStateDir(this.stateDir);
  }

  get logFile(): string {
    return join(this.base, "daemon.log");
  }

  daemonLog(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }

  /** Starts the daemon inside the node netns and waits until it answers. */
  async start(): Promise<void> {
    const out = openSync(this.logFile, "a");
    const [cmd, args] = podnetSrc("runtime", "--state-dir", this.stateDir, "--netns-prefix", this.prefix);
    this.daemon = spawn("nsenter", [`--net=${this.node.path}`, "--", cmd, ...args], { cwd: ROOT, stdio: ["ignore", out, out] });
    closeSync(out);
    const end = Date.now() + 30000;
    for (;;) {
      try {
        await this.client.version();
        return;
      } catch (e) {
        if (this.daemon.exitCode !== null || Date.now() > end) throw new Error(`runtime did not start: ${(e as Error).message}\n${this.daemonLog()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** kill -9 of the daemon (nsenter execs node, so the spawned pid is the daemon). */
  async kill9(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const gone = new Promise((r) => d.once("exit", r));
    d.kill("SIGKILL");
    await gone;
  }

  async crictl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const [cmd, argv] = podnetSrc("crictl", "--state-dir", this.stateDir, ...args);
    const r = await execa(cmd, argv, { cwd: ROOT, reject: false, stripFinalNewline: false });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Records a process of this node (with its start time, so a reused pid is not taken for it). */
  remember(pid: number): void {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      this.pids.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!);
    } catch {
      /* already gone: nothing to check later */
    }
  }

  /** Runs a sandbox and records its holder and netns for the leak checks. */
  async runPod(config: Omit<PodSandboxConfig, "metadata"> & { metadata?: Partial<PodSandboxConfig["metadata"]> } = {}): Promise<{ id: string; netnsPath: string; netnsName: string; holder: number }> {
    const name = config.metadata?.name ?? uniqueName("pod-");
    const full: PodSandboxConfig = { ...config, metadata: { name, namespace: "default", uid: `uid-${name}`, attempt: 0, ...config.metadata } };
    const { podSandboxId, netnsPath } = await this.client.runPodSandbox({ config: full });
    const st = await this.client.podSandboxStatus({ podSandboxId, verbose: true });
    this.remember(st.info!.pid);
    this.netnsInodes.add(statSync(netnsPath).ino);
    return { id: podSandboxId, netnsPath, netnsName: st.info!.netnsName, holder: st.info!.pid };
  }

  /** Creates and starts a container; returns its id and main pid. */
  async runContainer(podSandboxId: string, name: string, command: string[], extra: Partial<ContainerConfig> = {}): Promise<{ id: string; pid: number }> {
    const { containerId } = await this.client.createContainer({ podSandboxId, config: { metadata: { name }, image: { image: "host" }, command, ...extra } });
    await this.client.startContainer({ containerId });
    const st = await this.client.containerStatus({ containerId, verbose: true });
    if (st.info!.pid) this.remember(st.info!.pid);
    return { id: containerId, pid: st.info!.pid };
  }

  /** The container's log through the API, as parsed CRI records. */
  async logs(containerId: string, tail = -1) {
    const out = [];
    for await (const line of this.client.containerLogs({ containerId, tail })) out.push({ line, rec: parseLogLine(line) });
    return out;
  }

  /** Waits until the container's log (stdout and stderr text) contains `text`. */
  async waitForLog(containerId: string, text: string, ms = 20000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const all = (await this.logs(containerId)).map((l) => l.rec?.text ?? "").join("\n");
      if (all.includes(text)) return all;
      if (Date.now() > end) throw new Error(`log of ${containerId.slice(0, 12)} never showed ${JSON.stringify(text)}; it has:\n${all}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** What is left of this node's sandboxes: netns, processes, state files. */
  leftovers(): Leftovers {
    const netns = readdirSync("/run/netns").filter((n) => n.startsWith(this.prefix));
    // The kernel reuses a freed netns's inode number, and pids are reused: a number that was ours
    // may now be another test's (its netns mounted under another name, its process started
    // later). Those are not ours, and must never be killed by destroy().
    const othersNetns = new Set<number>();
    for (const n of readdirSync("/run/netns")) {
      if (n.startsWith(this.prefix)) continue;
      try {
        othersNetns.add(statSync(join("/run/netns", n)).ino);
      } catch {
        /* removed meanwhile */
      }
    }
    const processes: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === this.daemon?.pid) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (fields[0] === "Z") continue;
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        const netnsIno = statSync(`/proc/${pid}/ns/net`).ino;
        const mine = this.pids.get(pid) === fields[19] || cmdline.includes(this.base) || (this.netnsInodes.has(netnsIno) && !othersNetns.has(netnsIno));
        if (mine) processes.push(pid);
      } catch {
        /* gone */
      }
    }
    const stateFiles = ["sandboxes", "containers", "logs"].flatMap((d) => {
      const p = join(this.stateDir, d);
      return existsSync(p) ? readdirSync(p).map((f) => join(d, f)) : [];
    });
    return { netns, processes, stateFiles };
  }

  /** Removes every sandbox through the API and asserts nothing is left. */
  async removeAllAndCheck(t: ExecutionContext): Promise<void> {
    for (const p of (await this.client.listPodSandbox()).items) await this.client.removePodSandbox({ podSandboxId: p.id });
    const left = this.leftovers();
    t.deepEqual(left, { netns: [], processes: [], stateFiles: [] }, "no netns, process or state file is left");
  }

  /** Teardown: whatever the test did, nothing of this node survives it. */
  async destroy(): Promise<void> {
    if (this.daemon && this.daemon.exitCode === null && this.daemon.signalCode === null) {
      try {
        const items = (await this.client.listPodSandbox()).items;
        await Promise.all(items.map((p) => this.client.removePodSandbox({ podSandboxId: p.id }).catch(() => {})));
      } catch {
        /* the daemon is broken: the sweep below does it */
      }
      await this.kill9();
    }
    const left = this.leftovers();
    for (const pid of left.processes) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    for (const name of left.netns) await removeNetns(name);
  }
}

/** A node netns, temp dir and running daemon, all removed when the test ends. */
export async function startRuntimeNode(t: ExecutionContext): Promise<RuntimeNode> {
  const node = await createNetns(t, "pnrn");
  const tmp = await tmpDir({ prefix: "pnrt-", unsafeCleanup: true });
  const rn = new RuntimeNode(node, tmp.path, `${uniqueName("pnr")}-`);
  t.teardown(async () => {
    await rn.destroy();
    await tmp.cleanup();
  });
  await rn.start();
  return rn;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` returns a truthy value (or throws after `ms`). */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

export async function ipLinkUp(netnsName: string, dev = "lo"): Promise<void> {
  await execa("ip", ["-n", netnsName, "link", "set", dev, "up"]);
}
