// The runtime's state on disk, under its state directory:
//   runtime.sock                      the API socket
//   shim.pl                           the container monitor (see shim.ts), rewritten at start
//   bin/podnet                        link to the podnet command, for containers' PATH
//   sandboxes/<id>/sandbox.json       a sandbox record; hosts, resolv.conf: the pod's files
//   containers/<id>/container.json    a container record; env, pid, exit, ...: its monitor's files
//   logs/<sandbox id>/<name>_<attempt>.log   container logs when the sandbox names no logDirectory
// Records are written to a temporary file and renamed, so a daemon killed at any moment leaves
// either the old or the new record, never half of one. Each record is written before the kernel
// object it describes is made (netns, processes), so a restart always knows what to clean up.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ContainerConfig, KeyValue, PodSandboxConfig } from "../cri/types.ts";
import { ID } from "./validate.ts";

export interface ProcessRef {
  pid: number;
  startTime: string;
}

export interface SandboxRecord {
  id: string;
  /** creating: netns/holder may be half made; removing: being torn down. */
  phase: "creating" | "ready" | "stopped" | "removing";
  config: PodSandboxConfig;
  runtimeHandler: string;
  createdAt: string;
  /**
   * The pod's own netns under /run/netns; "" for a sandbox on the node's network (CRI's
   * namespaceOptions.network NODE, a hostNetwork pod), which has none.
   */
  netnsName: string;
  /** Of a hostNetwork sandbox, the holder's UTS namespace (procs.ts namespaceOf): what runs in it is the pod's. */
  utsNamespace?: string;
  hostname: string;
  logDirectory: string;
  /** True when logDirectory is the runtime's own (removed with the sandbox). */
  ownLogDirectory: boolean;
  holder?: ProcessRef;
  ips: string[];
  hostAliases: { ip: string; hostnames: string[] }[];
}

export interface ContainerRecord {
  id: string;
  podSandboxId: string;
  /** starting: the monitor may be running without having said so yet. */
  phase: "created" | "starting" | "running" | "exited" | "removing";
  config: ContainerConfig;
  /** argv: command then args. */
  argv: string[];
  workingDir: string;
  envs: KeyValue[];
  logPath: string;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  reason: string;
  message: string;
  /** The container's main process, when started. */
  main?: ProcessRef;
  /** Its monitor (shim.ts). */
  shim?: ProcessRef;
}

export class Store {
  readonly root: string;
  readonly sandboxesDir: string;
  readonly containersDir: string;
  readonly logsDir: string;
  readonly binDir: string;

  constructor(root: string) {
    this.root = root;
    this.sandboxesDir = join(root, "sandboxes");
    this.containersDir = join(root, "containers");
    this.logsDir = join(root, "logs");
    this.binDir = join(root, "bin");
    for (const d of [root, this.sandboxesDir, this.containersDir, this.logsDir, this.binDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  sandboxDir(id: string): string {
    return join(this.sandboxesDir, checkedId(id));
  }
  containerDir(id: string): string {
    return join(this.containersDir, checkedId(id));
  }

  loadSandboxes(): SandboxRecord[] {
    return this.loadAll<SandboxRecord>(this.sandboxesDir, "sandbox.json");
  }
  loadContainers(): ContainerRecord[] {
    return this.loadAll<ContainerRecord>(this.containersDir, "container.json");
  }

  saveSandbox(rec: SandboxRecord): void {
    const dir = this.sandboxDir(rec.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeAtomic(join(dir, "sandbox.json"), JSON.stringify(rec, null, 1));
  }
  saveContainer(rec: ContainerRecord): void {
    const dir = this.containerDir(rec.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeAtomic(join(dir, "container.json"), JSON.stringify(rec, null, 1));
  }

  deleteSandbox(id: string): void {
    rmSync(this.sandboxDir(id), { recursive: true, force: true });
  }
  deleteContainer(id: string): void {
    rmSync(this.containerDir(id), { recursive: true, force: true });
  }

  /** Records whose directory name is an id and whose file parses; anything else is skipped, never deleted. */
  private loadAll<T>(dir: string, file: string): T[] {
    const out: T[] = [];
    for (const name of readdirSync(dir)) {
      if (!ID.test(name)) continue;
      try {
        const rec = JSON.parse(readFileSync(join(dir, name, file), "utf8")) as T & { id: string };
        if (rec.id === name) out.push(rec);
      } catch {
        /* a directory whose record was never written: handled by the caller's sweep */
      }
    }
    return out;
  }

  /** Directory names under sandboxes/ or containers/ that hold no readable record. */
  strayDirs(kind: "sandboxes" | "containers"): string[] {
    const dir = kind === "sandboxes" ? this.sandboxesDir : this.containersDir;
    const file = kind === "sandboxes" ? "sandbox.json" : "container.json";
    return readdirSync(dir).filter((name) => {
      if (!ID.test(name)) return false;
      try {
        readFileSync(join(dir, name, file));
        return false;
      } catch {
        return true;
      }
    });
  }
}

function checkedId(id: string): string {
  if (!ID.test(id)) throw new Error(`internal: not an id: ${JSON.stringify(id)}`);
  return id;
}

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Nanoseconds since the epoch as a decimal string (CRI's int64 timestamps). */
export function nowNs(): string {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return (BigInt(us) * 1000n).toString();
}
