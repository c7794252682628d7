// The runtime's shared core: the records in memory (mirrored on disk by state.ts), per-object
// locks, id resolution, and the refresh that turns a monitor's files into a container's state.
// The API methods live in sandboxes.ts, containers.ts, exec.ts and logs.ts.
import { readlinkSync, rmSync, symlinkSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { RuntimeError, notFound } from "./errors.ts";
import { netnsPathOf } from "./holder.ts";
import { isRunning, killAndWait, pidsInSession } from "./procs.ts";
import { installShim, readExitFile, readPidFile } from "./shim.ts";
import { nowNs, Store, type ContainerRecord, type SandboxRecord } from "./state.ts";
import { findTools, podnetCommand, podnetDistDir, SYSTEM_PATH, type Tools } from "./tools.ts";
import { checkIdOrPrefix, checkNetnsPrefix, ID } from "./validate.ts";
import type { ContainerState, PodSandboxState } from "../cri/types.ts";

export interface RuntimeOptions {
  stateDir: string;
  /** Start of every netns name this daemon makes (default "pn-"). */
  netnsPrefix?: string;
  log?: (msg: string) => void;
}

/** Serializes work per key (a sandbox or container id). */
export class KeyedLock {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export class Runtime {
  readonly store: Store;
  readonly tools: Tools;
  readonly netnsPrefix: string;
  readonly shimPath: string;
  /** PATH inside containers unless their env sets one: podnet's own commands first. */
  readonly defaultPath: string;
  readonly sandboxes = new Map<string, SandboxRecord>();
  readonly containers = new Map<string, ContainerRecord>();
  readonly locks = new KeyedLock();
  /** Processes of ExecSync calls still running, per container, killed when it stops. */
  readonly execs = new Map<string, Set<number>>();
  readonly log: (msg: string) => void;

  constructor(opts: RuntimeOptions) {
    this.log = opts.log ?? (() => {});
    this.netnsPrefix = checkNetnsPrefix(opts.netnsPrefix ?? "pn-");
    this.tools = findTools();
    this.store = new Store(opts.stateDir);
    this.shimPath = installShim(this.store.root);
    this.linkPodnet();
    this.defaultPath = [this.store.binDir, podnetDistDir(), dirname(process.execPath), SYSTEM_PATH].join(":");
    for (const s of this.store.loadSandboxes()) this.sandboxes.set(s.id, s);
    for (const c of this.store.loadContainers()) this.containers.set(c.id, c);
  }

  /** bin/podnet -> the podnet command, so containers can run `podnet ...` by name. */
  private linkPodnet(): void {
    const target = podnetCommand();
    const link = join(this.store.binDir, "podnet");
    if (!target) return;
    try {
      if (readlinkSync(link) === target) return;
    } catch {
      /* absent */
    }
    const tmp = `${link}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    renameSync(tmp, link);
  }

  /** Whether the sandbox is on the node's network (no netns of its own). */
  onNodeNetwork(s: SandboxRecord): boolean {
    return s.netnsName === "";
  }

  /** The sandbox's own netns; "" for a sandbox on the node's network. */
  netnsPath(s: SandboxRecord): string {
    return this.onNodeNetwork(s) ? "" : netnsPathOf(s.netnsName);
  }

  sandboxState(s: SandboxRecord): PodSandboxState {
    return s.phase === "ready" && s.holder && isRunning(s.holder.pid, s.holder.startTime) ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
  }

  containersOf(sandboxId: string): ContainerRecord[] {
    return [...this.containers.values()].filter((c) => c.podSandboxId === sandboxId);
  }

  /**
   * A sandbox by id or unique id prefix. With `missingOk`, an unknown full-length id gives
   * undefined (Stop and Remove are idempotent); an unknown prefix is always NotFound.
   */
  findSandbox(field: string, raw: unknown, missingOk = false): SandboxRecord | undefined {
    return this.find(this.sandboxes, "pod sandbox", field, raw, missingOk);
  }

  findContainer(field: string, raw: unknown, missingOk = false): ContainerRecord | undefined {
    return this.find(this.containers, "container", field, raw, missingOk);
  }

  requireSandbox(field: string, raw: unknown): SandboxRecord {
    return this.findSandbox(field, raw)!;
  }
  requireContainer(field: string, raw: unknown): ContainerRecord {
    return this.findContainer(field, raw)!;
  }

  private find<T extends { id: string }>(map: Map<string, T>, what: string, field: string, raw: unknown, missingOk: boolean): T | undefined {
    const id = checkIdOrPrefix(field, raw);
    const exact = map.get(id);
    if (exact) return exact;
    const matches = [...map.keys()].filter((k) => k.startsWith(id));
    if (matches.length === 1) return map.get(matches[0]!);
    if (matches.length > 1) throw new RuntimeError("InvalidArgument", `${field}: ${id} matches ${matches.length} ${what}s; give more digits`);
    if (missingOk && ID.test(id)) return undefined;
    throw notFound(`${what} ${id}`);
  }

  /**
   * Brings a container record up to date with its monitor's files: "pid" once started, "exit"
   * once ended. A monitor that died without writing "exit" (killed) leaves the exit code
   * unknown; whatever is left of the container is then killed so nothing runs unwatched.
   */
  refresh(c: ContainerRecord): ContainerState {
    const dir = this.store.containerDir(c.id);
    if (c.phase === "starting") {
      const started = readPidFile(dir);
      if (started) {
        Object.assign(c, { phase: "running", main: started.main, shim: started.shim, startedAt: started.startedAt });
        this.store.saveContainer(c);
      }
    }
    if (c.phase === "running") {
      let exit = readExitFile(dir);
      if (!exit && c.shim && !isRunning(c.shim.pid, c.shim.startTime)) {
        exit = readExitFile(dir);
        if (!exit) {
          if (c.main && isRunning(c.main.pid, c.main.startTime)) void killAndWait([c.main.pid, ...pidsInSession(c.main.pid)]);
          Object.assign(c, { phase: "exited", exitCode: 255, finishedAt: nowNs(), reason: "Unknown", message: "the container's monitor ended without recording an exit code" });
          this.store.saveContainer(c);
          this.log(`container ${c.id.slice(0, 12)}: monitor lost, exit code unknown`);
        }
      }
      if (exit) {
        Object.assign(c, { phase: "exited", exitCode: exit.exitCode, finishedAt: exit.finishedAt, reason: exit.exitCode === 0 ? "Completed" : "Error" });
        this.store.saveContainer(c);
      }
    }
    return containerState(c);
  }

  /** The container's main process while it runs. */
  mainPid(c: ContainerRecord): number {
    return c.phase === "running" && c.main && isRunning(c.main.pid, c.main.startTime) ? c.main.pid : 0;
  }

}

export function containerState(c: ContainerRecord): ContainerState {
  switch (c.phase) {
    case "created":
    case "starting":
      return "CONTAINER_CREATED";
    case "running":
      return "CONTAINER_RUNNING";
    default:
      return "CONTAINER_EXITED";
  }
}
