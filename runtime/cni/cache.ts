// The result cache, in libcni's format so that tools reading /var/lib/cni keep working:
// <cacheDir>/results/<network>-<containerID>-<ifname> holds
//   {"kind":"cniCacheV1","containerId","config":<base64 of the config bytes>,"ifName",
//    "networkName","netns","cniArgs":[[k,v]],"capabilityArgs":{...},"result":{...}}
// (directory 0700, file 0600). One addition, which libcni ignores: "incomplete": true while an
// ADD is running or after it failed, with the result of the last plugin that succeeded, so a
// later DEL (or GC) can undo a partial ADD.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ifnameProblem, validContainerID } from "../../cni-plugins/pkg/env.ts";
import { networkNameProblem } from "./config.ts";
import { CniRuntimeError } from "./errors.ts";

export const CACHE_KIND = "cniCacheV1";

export interface CacheEntry {
  kind: typeof CACHE_KIND;
  containerId: string;
  /** base64 of the network configuration bytes. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /** The final ADD result, in the version the ADD ran in. */
  result?: Record<string, unknown>;
  /** podnet: the ADD has not completed (running, or failed); `result` is the last plugin's that succeeded. */
  incomplete?: boolean;
}

/** The cache file of an attachment; every part is validated so none can climb out of the directory. */
export function cachePath(cacheDir: string, network: string, containerID: string, ifname: string): string {
  const np = networkNameProblem(network);
  if (np) throw new CniRuntimeError(`cannot use the result cache: network ${np}`);
  if (!validContainerID(containerID)) throw new CniRuntimeError(`cannot use the result cache: invalid container ID ${JSON.stringify(containerID)}`);
  const ip = ifnameProblem(ifname);
  if (ip) throw new CniRuntimeError(`cannot use the result cache: ${ip} (${JSON.stringify(ifname)})`);
  return join(cacheDir, "results", `${network}-${containerID}-${ifname}`);
}

/** Writes an entry atomically (write aside, then rename), in libcni's key order. */
export async function writeEntry(cacheDir: string, e: Omit<CacheEntry, "kind">): Promise<void> {
  const file = cachePath(cacheDir, e.networkName, e.containerId, e.ifName);
  const dir = join(cacheDir, "results");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const entry: CacheEntry = { kind: CACHE_KIND, containerId: e.containerId, config: e.config, ifName: e.ifName, networkName: e.networkName };
  if (e.netns) entry.netns = e.netns;
  if (e.cniArgs?.length) entry.cniArgs = e.cniArgs;
  if (e.capabilityArgs && Object.keys(e.capabilityArgs).length) entry.capabilityArgs = e.capabilityArgs;
  if (e.result) entry.result = e.result;
  if (e.incomplete) entry.incomplete = true;
  const tmp = join(dir, `.${e.networkName}-${e.containerId}-${e.ifName}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CniRuntimeError(`cannot write the result cache ${file}: ${(err as Error).message}`);
  }
}

function asEntry(raw: unknown): CacheEntry | undefined {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  if (o.kind !== CACHE_KIND || typeof o.containerId !== "string" || typeof o.ifName !== "string" || typeof o.networkName !== "string") return undefined;
  if (o.ifName === "" || o.networkName === "") return undefined;
  return o as unknown as CacheEntry;
}

export type ReadOutcome = { entry: CacheEntry } | { missing: true } | { unreadable: string };

export async function readEntry(cacheDir: string, network: string, containerID: string, ifname: string): Promise<ReadOutcome> {
  const file = cachePath(cacheDir, network, containerID, ifname);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { missing: true };
    return { unreadable: `cannot read ${file}: ${(e as Error).message}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { unreadable: `${file} is not JSON: ${(e as Error).message}` };
  }
  const entry = asEntry(raw);
  return entry ? { entry } : { unreadable: `${file} is not a ${CACHE_KIND} entry` };
}

export async function removeEntry(cacheDir: string, network: string, containerID: string, ifname: string): Promise<void> {
  await rm(cachePath(cacheDir, network, containerID, ifname), { force: true });
}

/** Every readable entry, optionally only a network's, in file name order (as libcni lists them). */
export async function listEntries(cacheDir: string, network?: string): Promise<CacheEntry[]> {
  const dir = join(cacheDir, "results");
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith(".")).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new CniRuntimeError(`cannot list the result cache ${dir}: ${(e as Error).message}`);
  }
  const out: CacheEntry[] = [];
  for (const n of names) {
    if (network !== undefined && !n.startsWith(`${network}-`)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(join(dir, n), "utf8"));
    } catch {
      continue;
    }
    const e = asEntry(raw);
    if (e && (network === undefined || e.networkName === network)) out.push(e);
  }
  return out;
}
