// Containers: a process tree started by its monitor (shim.ts) inside the sandbox holder's
// namespaces, with `nsenter --target HOLDER --net --uts --ipc --mount`, so it has the pod's
// network, hostname, IPC and the pod's own /etc/hosts and /etc/resolv.conf over the host's
// filesystem (no images: `image` is recorded, never pulled).
import { accessSync, constants, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type {
  Container,
  ContainerConfig,
  ContainerStatusResponse,
  CreateContainerResponse,
  Empty,
  KeyValue,
  ListContainersResponse,
} from "../cri/types.ts";
import { invalid, precondition, RuntimeError } from "./errors.ts";
import { isRunning, killAndWait, pidsInSession, signal, waitFor } from "./procs.ts";
import type { Runtime } from "./runtime.ts";
import { reopenLog, startShim } from "./shim.ts";
import { nowNs, type ContainerRecord, type ProcessRef, type SandboxRecord } from "./state.ts";
import {
  checkAbsolutePath,
  checkBool,
  checkDnsLabel,
  checkEnvKey,
  checkInt64,
  checkObject,
  checkRelativePath,
  checkString,
  checkStringList,
  checkStringMap,
  checkUint,
  newId,
} from "./validate.ts";

interface NormalizedContainer {
  config: ContainerConfig;
  argv: string[];
  workingDir: string;
  envs: KeyValue[];
}

export function normalizeContainerConfig(raw: unknown): NormalizedContainer {
  const c = checkObject("config", raw)!;
  const md = checkObject("config.metadata", c.metadata)!;
  const name = checkDnsLabel("config.metadata.name", md.name);
  const attempt = checkUint("config.metadata.attempt", md.attempt);
  const imageObj = checkObject("config.image", c.image, false);
  const image = imageObj ? checkString("config.image.image", imageObj.image, { max: 4096 }) : "";
  const command = checkStringList("config.command", c.command);
  const args = checkStringList("config.args", c.args);
  const argv = [...command, ...args];
  if (!argv.length || !argv[0]) throw invalid("config.command", "is required: there is no image to take an entrypoint from, so give command (or args)");
  const workingDir = c.workingDir ? checkAbsolutePath("config.workingDir", c.workingDir) : "/";
  if (!isDirectory(workingDir)) throw invalid("config.workingDir", `${workingDir} is not a directory on this host (containers see the host's filesystem)`);
  if (c.envs !== undefined && c.envs !== null && !Array.isArray(c.envs)) throw invalid("config.envs", "must be a list of {key, value}");
  const envs: KeyValue[] = ((c.envs as unknown[] | undefined) ?? []).map((e, i) => {
    const kv = checkObject(`config.envs[${i}]`, e)!;
    return { key: checkEnvKey(`config.envs[${i}].key`, kv.key), value: checkString(`config.envs[${i}].value`, kv.value) };
  });
  if (Array.isArray(c.mounts) && c.mounts.length) throw invalid("config.mounts", "not supported: containers see the host's filesystem, with the pod's own /etc/hosts and /etc/resolv.conf");
  if (checkBool("config.tty", c.tty)) throw invalid("config.tty", "not supported: containers have no terminal");
  const logPath = c.logPath ? checkRelativePath("config.logPath", c.logPath) : undefined;
  const config: ContainerConfig = {
    metadata: { name, attempt },
    image: { image },
    command,
    args,
    workingDir: c.workingDir ? workingDir : "",
    envs,
    labels: checkStringMap("config.labels", c.labels),
    annotations: checkStringMap("config.annotations", c.annotations),
    logPath,
    stdin: checkBool("config.stdin", c.stdin),
    stdinOnce: checkBool("config.stdinOnce", c.stdinOnce),
  };
  return { config, argv, workingDir, envs };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Where the kernel would find argv[0] inside the container, or undefined. */
function resolveExecutable(cmd: string, path: string, workingDir: string): string | undefined {
  if (cmd.includes("/")) {
    const p = isAbsolute(cmd) ? cmd : join(workingDir, cmd);
    return isExecutableFile(p) ? p : undefined;
  }
  for (const dir of path.split(":")) {
    const p = join(dir ? (isAbsolute(dir) ? dir : join(workingDir, dir)) : workingDir, cmd);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** The container's environment: a default PATH, HOSTNAME and HOME, then its own envs. */
export function containerEnv(rt: Runtime, s: SandboxRecord, c: ContainerRecord): Record<string, string> {
  const env: Record<string, string> = { PATH: rt.defaultPath, HOSTNAME: s.hostname, HOME: "/root" };
  for (const { key, value } of c.envs) env[key] = value;
  return env;
}

/** argv that runs `cmd` inside the sandbox's namespaces, in `workingDir`. */
export function nsenterArgv(rt: Runtime, holder: ProcessRef, workingDir: string, cmd: string[]): string[] {
  return [rt.tools.nsenter, `--target=${holder.pid}`, "--net", "--uts", "--ipc", "--mount", `--wd=${workingDir}`, "--", ...cmd];
}

/** The sandbox's holder while it runs; containers cannot start or exec without it. */
export function liveHolder(rt: Runtime, s: SandboxRecord): ProcessRef {
  if (rt.sandboxState(s) !== "SANDBOX_READY" || !s.holder) throw precondition(`pod sandbox ${s.id} is not ready`);
  return s.holder;
}

export async function createContainer(rt: Runtime, req: Record<string, unknown>): Promise<CreateContainerResponse> {
  const s = rt.requireSandbox("podSandboxId", req.podSandboxId);
  const n = normalizeContainerConfig(req.config);
  return rt.locks.run(s.id, async () => {
    if (!rt.sandboxes.has(s.id)) throw new RuntimeError("NotFound", `pod sandbox ${s.id} not found`);
    liveHolder(rt, s);
    const { name, attempt } = n.config.metadata;
    const clash = rt.containersOf(s.id).find((c) => c.config.metadata.name === name && (c.config.metadata.attempt ?? 0) === attempt && c.phase !== "removing");
    if (clash) throw new RuntimeError("AlreadyExists", `container name ${name} attempt ${attempt} is already used by ${clash.id} in pod sandbox ${s.id}`);
    const logPath = join(s.logDirectory, n.config.logPath ?? `${name}_${attempt}.log`);
    mkdirSync(dirname(logPath), { recursive: true, mode: 0o755 });
    const c: ContainerRecord = {
      id: newId(),
      podSandboxId: s.id,
      phase: "created",
      config: n.config,
      argv: n.argv,
      workingDir: n.workingDir,
      envs: n.envs,
      logPath,
      createdAt: nowNs(),
      startedAt: "0",
      finishedAt: "0",
      exitCode: 0,
      reason: "",
      message: "",
    };
    rt.store.saveContainer(c);
    rt.containers.set(c.id, c);
    rt.log(`created container ${c.id.slice(0, 12)} ${name} in sandbox ${s.id.slice(0, 12)}`);
    return { containerId: c.id };
  });
}

export async function startContainer(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const c = rt.requireContainer("containerId", req.containerId);
  return rt.locks.run(c.id, async () => {
    const state = rt.refresh(c);
    if (state !== "CONTAINER_CREATED" || c.phase !== "created") throw precondition(`container ${c.id} is ${state === "CONTAINER_CREATED" ? "being started" : state === "CONTAINER_RUNNING" ? "already running" : "exited; create a new one"}`);
    const s = rt.sandboxes.get(c.podSandboxId);
    if (!s) throw precondition(`pod sandbox ${c.podSandboxId} of container ${c.id} is gone`);
    const holder = liveHolder(rt, s);
    const env = containerEnv(rt, s, c);
    const fail = (message: string) => {
      Object.assign(c, { phase: "exited", exitCode: 128, reason: "StartError", message, finishedAt: nowNs() });
      rt.store.saveContainer(c);
      return new RuntimeError("FailedPrecondition", `cannot start container ${c.id}: ${message}`);
    };
    if (!isDirectory(c.workingDir)) throw fail(`working directory ${c.workingDir} does not exist`);
    if (!resolveExecutable(c.argv[0]!, env.PATH ?? "", c.workingDir)) throw fail(`exec: "${c.argv[0]}": executable file not found in $PATH (${env.PATH})`);
    // Recorded before the monitor starts, so a restart that finds "starting" looks for it.
    c.phase = "starting";
    rt.store.saveContainer(c);
    try {
      // setsid: the container's processes get a session of their own (see shim.ts).
      const argv = [rt.tools.setsid, ...nsenterArgv(rt, holder, c.workingDir, c.argv)];
      const started = await startShim(rt.tools, rt.shimPath, { dir: rt.store.containerDir(c.id), logPath: c.logPath, argv, env });
      Object.assign(c, { phase: "running", main: started.main, shim: started.shim, startedAt: started.startedAt });
      rt.store.saveContainer(c);
    } catch (err) {
      throw fail((err as Error).message);
    }
    rt.log(`started container ${c.id.slice(0, 12)} pid ${c.main!.pid}`);
    return {};
  });
}

function signalRef(ref: ProcessRef | undefined, sig: NodeJS.Signals): boolean {
  return !!ref && isRunning(ref.pid, ref.startTime) && signal(ref.pid, sig);
}

/** Kills the ExecSync processes still running in a container. */
export async function killExecs(rt: Runtime, containerId: string): Promise<void> {
  const pids = rt.execs.get(containerId);
  if (!pids?.size) return;
  const all = [...pids].flatMap((pid) => [pid, ...pidsInSession(pid)]);
  await killAndWait(all);
}

/**
 * Stops a running container: SIGTERM to its main process, up to `timeoutSec` for it to end, then
 * SIGKILL to everything in its session. Waits until its monitor has recorded the exit.
 */
export async function stopRunning(rt: Runtime, c: ContainerRecord, timeoutSec: number): Promise<void> {
  rt.refresh(c);
  if (c.phase === "running") {
    if (timeoutSec > 0 && signalRef(c.main, "SIGTERM")) {
      rt.log(`stopping container ${c.id.slice(0, 12)}: SIGTERM, ${timeoutSec}s grace`);
      await waitFor(() => rt.refresh(c) === "CONTAINER_EXITED", timeoutSec * 1000, 50);
    }
    if (rt.refresh(c) === "CONTAINER_RUNNING") {
      const main = c.main!;
      const pids = [...(isRunning(main.pid, main.startTime) ? [main.pid] : []), ...pidsInSession(main.pid)];
      await killAndWait(pids);
      if (!(await waitFor(() => rt.refresh(c) === "CONTAINER_EXITED", 10000))) {
        // The monitor is stuck (it should never be): end it; refresh then records an unknown exit.
        signalRef(c.shim, "SIGKILL");
        await waitFor(() => rt.refresh(c) === "CONTAINER_EXITED", 5000);
      }
    }
  }
  await killExecs(rt, c.id);
}

export async function stopContainer(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const c = rt.findContainer("containerId", req.containerId, true);
  const timeout = checkInt64("timeout", req.timeout);
  if (!c) return {};
  return rt.locks.run(c.id, async () => {
    await stopRunning(rt, c, Math.max(0, timeout));
    return {};
  });
}

/** Deletes a stopped container's record and log file. */
export function dropContainer(rt: Runtime, c: ContainerRecord): void {
  rmSync(c.logPath, { force: true });
  rt.store.deleteContainer(c.id);
  rt.containers.delete(c.id);
  rt.execs.delete(c.id);
}

export async function removeContainer(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const c = rt.findContainer("containerId", req.containerId, true);
  if (!c) return {};
  return rt.locks.run(c.id, async () => {
    if (!rt.containers.has(c.id)) return {};
    await stopRunning(rt, c, 0);
    c.phase = "removing";
    rt.store.saveContainer(c);
    dropContainer(rt, c);
    rt.log(`removed container ${c.id.slice(0, 12)}`);
    return {};
  });
}

export function containerStatusOf(rt: Runtime, c: ContainerRecord, verbose: boolean): ContainerStatusResponse {
  const state = rt.refresh(c);
  const image = c.config.image ?? { image: "" };
  const res: ContainerStatusResponse = {
    status: {
      id: c.id,
      metadata: { name: c.config.metadata.name, attempt: c.config.metadata.attempt ?? 0 },
      state,
      createdAt: c.createdAt,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      exitCode: c.exitCode,
      image,
      imageRef: image.image,
      reason: c.reason,
      message: c.message,
      labels: c.config.labels ?? {},
      annotations: c.config.annotations ?? {},
      mounts: [],
      logPath: c.logPath,
    },
  };
  if (verbose) res.info = { pid: rt.mainPid(c), podSandboxId: c.podSandboxId, command: c.config.command ?? [], args: c.config.args ?? [], workingDir: c.workingDir, envs: c.envs, config: c.config };
  return res;
}

export function containerStatus(rt: Runtime, req: Record<string, unknown>): ContainerStatusResponse {
  const c = rt.requireContainer("containerId", req.containerId);
  return containerStatusOf(rt, c, checkBool("verbose", req.verbose));
}

function matchesLabels(labels: Record<string, string> | undefined, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

export function listContainers(rt: Runtime, req: Record<string, unknown>): ListContainersResponse {
  const f = (checkObject("filter", req.filter, false) ?? {}) as Record<string, unknown>;
  const id = f.id ? checkString("filter.id", f.id) : "";
  const sandbox = f.podSandboxId ? checkString("filter.podSandboxId", f.podSandboxId) : "";
  const stateObj = checkObject("filter.state", f.state, false);
  const want = stateObj ? checkString("filter.state.state", stateObj.state) : "";
  const selector = checkStringMap("filter.labelSelector", f.labelSelector);
  const out: Container[] = [];
  for (const c of rt.containers.values()) {
    if (c.phase === "removing") continue;
    if (id && !c.id.startsWith(id)) continue;
    if (sandbox && !c.podSandboxId.startsWith(sandbox)) continue;
    if (!matchesLabels(c.config.labels, selector)) continue;
    const state = rt.refresh(c);
    if (want && state !== want) continue;
    out.push({
      id: c.id,
      podSandboxId: c.podSandboxId,
      metadata: { name: c.config.metadata.name, attempt: c.config.metadata.attempt ?? 0 },
      image: c.config.image ?? { image: "" },
      imageRef: c.config.image?.image ?? "",
      state,
      createdAt: c.createdAt,
      labels: c.config.labels ?? {},
      annotations: c.config.annotations ?? {},
    });
  }
  out.sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1));
  return { containers: out };
}

export async function reopenContainerLog(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const c = rt.requireContainer("containerId", req.containerId);
  return rt.locks.run(c.id, async () => {
    if (rt.refresh(c) !== "CONTAINER_RUNNING") throw precondition(`container ${c.id} is not running`);
    mkdirSync(dirname(c.logPath), { recursive: true, mode: 0o755 });
    await reopenLog(rt.store.containerDir(c.id), c.shim!);
    return {};
  });
}
