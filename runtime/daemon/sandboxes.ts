// Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox
// and podnet's SetPodSandboxNetwork. The kernel side (netns, holder, pod files) is in holder.ts.
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DNSConfig, Empty, ListPodSandboxResponse, PodSandbox, PodSandboxConfig, PodSandboxStatusResponse, PortMapping, RunPodSandboxResponse } from "../cri/types.ts";
import { dropContainer, stopRunning } from "./containers.ts";
import { invalid, RuntimeError } from "./errors.ts";
import { createNetns, deleteNetns, hostsContent, netnsNameFor, netnsPathOf, resolvContent, rewriteInPlace, startHolder } from "./holder.ts";
import { isRunning, killAndWait, namespaceOf, pidsInNamespace, pidsInNetns } from "./procs.ts";
import type { Runtime } from "./runtime.ts";
import { nowNs, type SandboxRecord } from "./state.ts";
import {
  checkAbsolutePath,
  checkBool,
  checkDnsLabel,
  checkIP,
  checkObject,
  checkResolvOption,
  checkString,
  checkStringList,
  checkStringMap,
  checkUint,
  isDnsSubdomain,
  newId,
} from "./validate.ts";

interface NormalizedSandbox {
  config: PodSandboxConfig;
  hostname: string;
  /** linux.securityContext.namespaceOptions.network is NODE: the pod is on the node's network. */
  hostNetwork: boolean;
}

/** CRI's network namespace mode: POD (the default, a netns of the pod's own) or NODE (hostNetwork). */
function networkMode(linux: Record<string, unknown> | undefined): "POD" | "NODE" {
  const sc = checkObject("config.linux.securityContext", linux?.securityContext, false);
  const ns = checkObject("config.linux.securityContext.namespaceOptions", sc?.namespaceOptions, false);
  const mode = ns?.network ?? "POD";
  if (mode !== "POD" && mode !== "NODE") throw invalid("config.linux.securityContext.namespaceOptions.network", `must be POD or NODE, got ${JSON.stringify(mode)}`);
  return mode;
}

function checkDomain(field: string, value: unknown): string {
  const s = checkString(field, value, { required: true });
  if (!isDnsSubdomain(s.replace(/\.$/, "").toLowerCase())) throw invalid(field, `must be a DNS name, got ${JSON.stringify(s)}`);
  return s;
}

function normalizeDns(raw: unknown): DNSConfig | undefined {
  const d = checkObject("config.dnsConfig", raw, false);
  if (!d) return undefined;
  const servers = checkStringList("config.dnsConfig.servers", d.servers).map((s, i) => checkIP(`config.dnsConfig.servers[${i}]`, s));
  const searches = checkStringList("config.dnsConfig.searches", d.searches).map((s, i) => checkDomain(`config.dnsConfig.searches[${i}]`, s));
  const options = checkStringList("config.dnsConfig.options", d.options).map((s, i) => checkResolvOption(`config.dnsConfig.options[${i}]`, s));
  if (searches.length > 32) throw invalid("config.dnsConfig.searches", "at most 32 search domains");
  return { servers, searches, options };
}

function normalizePorts(raw: unknown): PortMapping[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalid("config.portMappings", "must be a list");
  return raw.map((p, i) => {
    const f = `config.portMappings[${i}]`;
    const o = checkObject(f, p)!;
    const protocol = (o.protocol ?? "TCP") as string;
    if (!["TCP", "UDP", "SCTP"].includes(protocol)) throw invalid(`${f}.protocol`, "must be TCP, UDP or SCTP");
    const out: PortMapping = { protocol: protocol as PortMapping["protocol"], containerPort: checkUint(`${f}.containerPort`, o.containerPort, 65535), hostPort: checkUint(`${f}.hostPort`, o.hostPort, 65535) };
    if (o.hostIp) out.hostIp = checkIP(`${f}.hostIp`, o.hostIp);
    return out;
  });
}

export function normalizeSandboxConfig(raw: unknown): NormalizedSandbox {
  const c = checkObject("config", raw)!;
  const md = checkObject("config.metadata", c.metadata)!;
  const name = checkString("config.metadata.name", md.name, { required: true });
  if (!isDnsSubdomain(name)) throw invalid("config.metadata.name", `must be a lowercase RFC 1123 subdomain (a pod name), got ${JSON.stringify(name)}`);
  const namespace = checkDnsLabel("config.metadata.namespace", md.namespace);
  const uid = checkString("config.metadata.uid", md.uid, { max: 256 });
  const attempt = checkUint("config.metadata.attempt", md.attempt);
  let hostname: string;
  if (c.hostname) {
    hostname = checkString("config.hostname", c.hostname);
    // The kernel keeps at most 64 bytes of hostname.
    if (!isDnsSubdomain(hostname, 64)) throw invalid("config.hostname", `must be a lowercase DNS name of at most 64 characters, got ${JSON.stringify(hostname)}`);
  } else {
    // As the kubelet does: the pod name, cut to 63 characters without a trailing '-' or '.'.
    hostname = name.slice(0, 63).replace(/[-.]+$/, "");
  }
  const config: PodSandboxConfig = {
    metadata: { name, uid, namespace, attempt },
    hostname: c.hostname ? hostname : "",
    logDirectory: c.logDirectory ? checkAbsolutePath("config.logDirectory", c.logDirectory) : "",
    dnsConfig: normalizeDns(c.dnsConfig),
    portMappings: normalizePorts(c.portMappings),
    labels: checkStringMap("config.labels", c.labels),
    annotations: checkStringMap("config.annotations", c.annotations),
  };
  if (c.linux !== undefined) config.linux = checkObject("config.linux", c.linux, false);
  return { config, hostname, hostNetwork: networkMode(config.linux) === "NODE" };
}

function podFiles(rt: Runtime, id: string): { hosts: string; resolv: string } {
  const dir = rt.store.sandboxDir(id);
  return { hosts: join(dir, "hosts"), resolv: join(dir, "resolv.conf") };
}

export async function runPodSandbox(rt: Runtime, req: Record<string, unknown>): Promise<RunPodSandboxResponse> {
  const { config, hostname, hostNetwork } = normalizeSandboxConfig(req.config);
  const runtimeHandler = checkString("runtimeHandler", req.runtimeHandler);
  let id = newId();
  // The netns name is a 48-bit hash; on the rare clash with an existing one, draw another id.
  for (let i = 0; existsSync(netnsPathOf(netnsNameFor(rt.netnsPrefix, id))) && i < 5; i++) id = newId();
  const own = !config.logDirectory;
  const s: SandboxRecord = {
    id,
    phase: "creating",
    config,
    runtimeHandler,
    createdAt: nowNs(),
    netnsName: hostNetwork ? "" : netnsNameFor(rt.netnsPrefix, id),
    hostname,
    logDirectory: config.logDirectory || join(rt.store.logsDir, id),
    ownLogDirectory: own,
    ips: [],
    hostAliases: [],
  };
  return rt.locks.run(id, async () => {
    rt.store.saveSandbox(s);
    rt.sandboxes.set(id, s);
    try {
      const files = podFiles(rt, id);
      writeFileSync(files.hosts, hostsContent(hostname, [], []), { mode: 0o644 });
      writeFileSync(files.resolv, resolvContent(config.dnsConfig), { mode: 0o644 });
      mkdirSync(s.logDirectory, { recursive: true, mode: 0o755 });
      if (!hostNetwork) await createNetns(rt.tools, s.netnsName);
      // On the node's network the holder stays in the daemon's own netns (the node's).
      s.holder = await startHolder(rt.tools, { netnsPath: rt.netnsPath(s) || "/proc/self/ns/net", hostname, hostsPath: files.hosts, resolvPath: files.resolv });
      if (hostNetwork) s.utsNamespace = namespaceOf(s.holder.pid, "uts");
      s.phase = "ready";
      rt.store.saveSandbox(s);
    } catch (err) {
      await teardownSandbox(rt, s).catch((e: Error) => rt.log(`cleanup of failed sandbox ${id.slice(0, 12)}: ${e.message}`));
      throw err;
    }
    rt.log(`ran sandbox ${id.slice(0, 12)} ${config.metadata.namespace}/${config.metadata.name} ${hostNetwork ? "on the node's network" : `netns ${s.netnsName}`} holder ${s.holder.pid}`);
    return { podSandboxId: id, netnsPath: rt.netnsPath(s) };
  });
}

/** Kills the sandbox's containers, its holder and anything else left in its netns; keeps the netns. */
async function stopSandboxProcesses(rt: Runtime, s: SandboxRecord): Promise<void> {
  for (const c of rt.containersOf(s.id)) await rt.locks.run(c.id, () => stopRunning(rt, c, 0));
  const holder = s.holder && isRunning(s.holder.pid, s.holder.startTime) ? [s.holder.pid] : [];
  // Whatever joined the pod's namespaces (a container's escaped children, exec sessions) goes too:
  // those in its netns, or, on the node's network, in its holder's UTS namespace. Never the node's
  // netns: the node's daemons live there.
  const joined = rt.onNodeNetwork(s) ? (s.utsNamespace ? pidsInNamespace("uts", s.utsNamespace) : []) : pidsInNetns(rt.netnsPath(s));
  const left = [...new Set([...holder, ...joined])];
  if (left.length && !(await killAndWait(left))) throw new RuntimeError("Internal", `processes of pod sandbox ${s.id} did not die: ${left.join(" ")}`);
}

/** Everything of a sandbox: processes, containers, netns, logs, state. Safe to repeat. */
export async function teardownSandbox(rt: Runtime, s: SandboxRecord): Promise<void> {
  await stopSandboxProcesses(rt, s);
  const logDirs = new Set<string>();
  for (const c of rt.containersOf(s.id)) {
    logDirs.add(dirname(c.logPath));
    dropContainer(rt, c);
  }
  if (!rt.onNodeNetwork(s)) await deleteNetns(rt.tools, s.netnsName);
  if (s.ownLogDirectory) rmSync(s.logDirectory, { recursive: true, force: true });
  else removeEmptyDirs(s.logDirectory, logDirs);
  rt.store.deleteSandbox(s.id);
  rt.sandboxes.delete(s.id);
}

/** A caller's log directory (and the subdirectories its containers' logs were in) is removed once empty, never with files in it. */
function removeEmptyDirs(top: string, dirs: Set<string>): void {
  const rmdirQuiet = (d: string) => {
    try {
      rmdirSync(d);
    } catch {
      /* not empty, or gone */
    }
  };
  for (let d of dirs) {
    for (; d.startsWith(top + "/"); d = dirname(d)) rmdirQuiet(d);
  }
  rmdirQuiet(top);
}

export async function stopPodSandbox(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const s = rt.findSandbox("podSandboxId", req.podSandboxId, true);
  if (!s) return {};
  return rt.locks.run(s.id, async () => {
    if (!rt.sandboxes.has(s.id)) return {};
    await stopSandboxProcesses(rt, s);
    if (s.phase === "ready") s.phase = "stopped";
    rt.store.saveSandbox(s);
    rt.log(`stopped sandbox ${s.id.slice(0, 12)}`);
    return {};
  });
}

export async function removePodSandbox(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const s = rt.findSandbox("podSandboxId", req.podSandboxId, true);
  if (!s) return {};
  return rt.locks.run(s.id, async () => {
    if (!rt.sandboxes.has(s.id)) return {};
    s.phase = "removing";
    rt.store.saveSandbox(s);
    await teardownSandbox(rt, s);
    rt.log(`removed sandbox ${s.id.slice(0, 12)}`);
    return {};
  });
}

export function podSandboxStatus(rt: Runtime, req: Record<string, unknown>): PodSandboxStatusResponse {
  const s = rt.requireSandbox("podSandboxId", req.podSandboxId);
  const state = rt.sandboxState(s);
  const res: PodSandboxStatusResponse = {
    status: {
      id: s.id,
      metadata: s.config.metadata,
      state,
      createdAt: s.createdAt,
      network: { ip: s.ips[0] ?? "", additionalIps: s.ips.slice(1).map((ip) => ({ ip })) },
      // Its own network namespace (or the node's: hostNetwork) and IPC namespace; PIDs are the node's.
      linux: { namespaces: { options: { network: rt.onNodeNetwork(s) ? "NODE" : "POD", pid: "NODE", ipc: "POD", netnsPath: rt.netnsPath(s) } } },
      labels: s.config.labels ?? {},
      annotations: s.config.annotations ?? {},
      runtimeHandler: s.runtimeHandler,
    },
  };
  if (checkBool("verbose", req.verbose)) {
    const files = podFiles(rt, s.id);
    res.info = {
      pid: state === "SANDBOX_READY" ? s.holder!.pid : 0,
      netnsName: s.netnsName,
      netnsPath: rt.netnsPath(s),
      hostname: s.hostname,
      hostsPath: files.hosts,
      resolvConfPath: files.resolv,
      logDirectory: s.logDirectory,
      config: s.config,
    };
  }
  return res;
}

export function listPodSandbox(rt: Runtime, req: Record<string, unknown>): ListPodSandboxResponse {
  const f = checkObject("filter", req.filter, false) ?? {};
  const id = f.id ? checkString("filter.id", f.id) : "";
  const stateObj = checkObject("filter.state", f.state, false);
  const want = stateObj ? checkString("filter.state.state", stateObj.state) : "";
  const selector = checkStringMap("filter.labelSelector", f.labelSelector);
  const items: PodSandbox[] = [];
  for (const s of rt.sandboxes.values()) {
    if (s.phase === "creating" || s.phase === "removing") continue;
    if (id && !s.id.startsWith(id)) continue;
    if (!Object.entries(selector).every(([k, v]) => s.config.labels?.[k] === v)) continue;
    const state = rt.sandboxState(s);
    if (want && state !== want) continue;
    items.push({ id: s.id, metadata: s.config.metadata, state, createdAt: s.createdAt, labels: s.config.labels ?? {}, annotations: s.config.annotations ?? {}, runtimeHandler: s.runtimeHandler });
  }
  items.sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1));
  return { items };
}

export async function setPodSandboxNetwork(rt: Runtime, req: Record<string, unknown>): Promise<Empty> {
  const s = rt.requireSandbox("podSandboxId", req.podSandboxId);
  if (!Array.isArray(req.ips)) throw invalid("ips", "must be a list of IP addresses");
  const ips = req.ips.map((ip, i) => checkIP(`ips[${i}]`, ip));
  if (req.hostAliases !== undefined && req.hostAliases !== null && !Array.isArray(req.hostAliases)) throw invalid("hostAliases", "must be a list of {ip, hostnames}");
  const aliases = ((req.hostAliases as unknown[] | undefined) ?? []).map((a, i) => {
    const o = checkObject(`hostAliases[${i}]`, a)!;
    const hostnames = checkStringList(`hostAliases[${i}].hostnames`, o.hostnames).map((h, j) => checkDomain(`hostAliases[${i}].hostnames[${j}]`, h));
    return { ip: checkIP(`hostAliases[${i}].ip`, o.ip), hostnames };
  });
  return rt.locks.run(s.id, async () => {
    if (!rt.sandboxes.has(s.id) || s.phase === "removing") throw new RuntimeError("NotFound", `pod sandbox ${s.id} not found`);
    s.ips = ips;
    s.hostAliases = aliases;
    rt.store.saveSandbox(s);
    rewriteInPlace(podFiles(rt, s.id).hosts, hostsContent(s.hostname, ips, aliases));
    rt.log(`sandbox ${s.id.slice(0, 12)} network: ${ips.join(", ") || "(none)"}`);
    return {};
  });
}
