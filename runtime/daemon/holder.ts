// A sandbox in the kernel: a network namespace made by `ip netns add`, and a holder process (the
// pause container's role) that owns the pod's UTS, IPC and mount namespaces. A sandbox on the
// node's network (CRI's NODE mode, a hostNetwork pod) has no netns of its own: its holder stays
// in the daemon's netns, which is the node's.
//
// The holder is `sleep infinity`, about 1.7 MB RSS and a few hundred KB PSS: no Node.js process per
// pod. It is started as
//   nsenter --net=/run/netns/NAME -- unshare --uts --ipc --mount --propagation slave -- \
//     sh -c HOLDER_SCRIPT podnet-pause HOSTNAME HOSTS_FILE RESOLV_FILE
// where the fixed script sets the hostname, bind-mounts the pod's hosts and resolv.conf files over
// /etc/hosts and /etc/resolv.conf inside the new mount namespace, says "ready" and execs sleep.
// Every exec keeps the pid, so the pid we spawn is the holder.
//
// Why "slave" propagation and not "private": a private copy of the host's mounts would keep its own
// copy of every /run/netns/* bind mount that existed when the pod started, pinning those network
// namespaces (and their interfaces) after `ip netns del` until this pod ends. As a slave, the host's
// unmounts reach the copy, while the pod's own mounts over /etc stay inside it.
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync, ftruncateSync, writeSync, readFileSync } from "node:fs";
import type { DNSConfig } from "../cri/types.ts";
import { RuntimeError } from "./errors.ts";
import { isRunning, startTimeOf, signal } from "./procs.ts";
import type { ProcessRef } from "./state.ts";
import { run, SYSTEM_PATH, type Tools } from "./tools.ts";

export const NETNS_DIR = "/run/netns";

/** A short hash of the sandbox id after the daemon's prefix: unique host-wide, at most 36 bytes. */
export function netnsNameFor(prefix: string, sandboxId: string): string {
  return prefix + createHash("sha256").update(sandboxId).digest("hex").slice(0, 12);
}

export function netnsPathOf(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

export async function createNetns(tools: Tools, name: string): Promise<void> {
  await run(tools.ip, ["netns", "add", name]);
}

/** Removes the netns bind mount; nothing to do when it is already gone. */
export async function deleteNetns(tools: Tools, name: string): Promise<void> {
  if (!existsSync(netnsPathOf(name))) return;
  const r = await run(tools.ip, ["netns", "del", name], { allowFail: true });
  if (r.code !== 0 && existsSync(netnsPathOf(name))) throw new RuntimeError("Internal", `ip netns del ${name}: ${r.stderr.trim()}`);
}

// Positional parameters only: the values are validated, and never become part of the script text.
const HOLDER_SCRIPT = [
  "set -e",
  'hostname "$1"',
  'mount --bind "$2" /etc/hosts',
  'if [ -e /etc/resolv.conf ]; then mount --bind "$3" /etc/resolv.conf; fi',
  "echo ready",
  "exec sleep infinity </dev/null >/dev/null 2>&1",
].join("\n");

export interface HolderSpec {
  netnsPath: string;
  hostname: string;
  hostsPath: string;
  resolvPath: string;
}

/** Starts the holder and resolves once its namespaces are set up (or rejects with its stderr). */
export function startHolder(tools: Tools, spec: HolderSpec, timeoutMs = 15000): Promise<ProcessRef> {
  const argv = [`--net=${spec.netnsPath}`, "--", tools.unshare, "--uts", "--ipc", "--mount", "--propagation", "slave", "--", tools.sh, "-c", HOLDER_SCRIPT, "podnet-pause", spec.hostname, spec.hostsPath, spec.resolvPath];
  return new Promise((resolve, reject) => {
    const child = spawn(tools.nsenter, argv, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { PATH: SYSTEM_PATH } });
    let out = "";
    let err = "";
    let settled = false;
    const finish = (e?: Error, ref?: ProcessRef) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      if (e) reject(e);
      else resolve(ref!);
    };
    const timer = setTimeout(() => {
      if (child.pid) signal(child.pid, "SIGKILL");
      finish(new RuntimeError("Internal", `sandbox holder did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready\n")) {
        const pid = child.pid!;
        const startTime = startTimeOf(pid);
        if (!startTime || !isRunning(pid)) finish(new RuntimeError("Internal", `sandbox holder exited right after starting: ${err.trim()}`));
        else finish(undefined, { pid, startTime });
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", (e) => finish(new RuntimeError("Internal", `cannot start sandbox holder: ${e.message}`)));
    child.on("exit", (code, sig) => finish(new RuntimeError("Internal", `sandbox holder failed (${sig ?? `exit ${code}`}): ${err.trim() || "no message"}`)));
  });
}

const HOSTS_HEADER = `# Kubernetes-managed hosts file (written by the podnet runtime).
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
`;

/** The pod's /etc/hosts, as the kubelet writes it: the pod's IPs name its hostname. */
export function hostsContent(hostname: string, ips: string[], aliases: { ip: string; hostnames: string[] }[]): string {
  let text = HOSTS_HEADER;
  for (const ip of ips) text += `${ip}\t${hostname}\n`;
  if (aliases.length) {
    text += "\n# Entries added by HostAliases.\n";
    for (const a of aliases) text += `${a.ip}\t${a.hostnames.join("\t")}\n`;
  }
  return text;
}

/** The pod's /etc/resolv.conf from the sandbox's dnsConfig, or the host's when it has none. */
export function resolvContent(dns: DNSConfig | undefined): string {
  const servers = dns?.servers ?? [];
  const searches = dns?.searches ?? [];
  const options = dns?.options ?? [];
  if (!servers.length && !searches.length && !options.length) {
    try {
      return readFileSync("/etc/resolv.conf", "utf8");
    } catch {
      return "";
    }
  }
  let text = "";
  if (searches.length) text += `search ${searches.join(" ")}\n`;
  for (const s of servers) text += `nameserver ${s}\n`;
  if (options.length) text += `options ${options.join(" ")}\n`;
  return text;
}

/**
 * Rewrites a file in place. The pod sees it through a bind mount of this very inode, so the usual
 * write-and-rename would leave the pod looking at the old file.
 */
export function rewriteInPlace(path: string, text: string): void {
  const fd = openSync(path, "r+");
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, text, 0);
  } finally {
    closeSync(fd);
  }
}
