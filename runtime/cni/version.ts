// Protocol version selection (SPEC section 1, "Version considerations"): the highest version
// that the configuration lists (cniVersion + cniVersions), this runtime supports, and every
// plugin of the list reports in its VERSION answer. VERSION answers are cached per plugin
// file (path, inode, size, mtime), so a plugin is asked again only when it was replaced.
import { statSync } from "node:fs";
import { compareVersions, CURRENT_VERSION, isSupported, parseVersion, SUPPORTED_VERSIONS } from "../../cni-plugins/pkg/version.ts";
import type { NetworkConfigList } from "./config.ts";
import { CniRuntimeError, PluginError } from "./errors.ts";
import { invokePlugin, parseOutputObject, type ExecRequest } from "./exec.ts";

export interface VersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

const answers = new Map<string, { stamp: string; info: VersionInfo }>();

function stampOf(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Reads a VERSION answer the way libcni's decoder does (a bare 0.2.0 answer means 0.1.0 and 0.2.0). */
export function decodeVersionInfo(o: Record<string, unknown>): VersionInfo | string {
  if (typeof o.cniVersion !== "string" || o.cniVersion === "") return "the VERSION answer has no cniVersion";
  if (o.supportedVersions === undefined && o.cniVersion === "0.2.0") return { cniVersion: "0.2.0", supportedVersions: ["0.1.0", "0.2.0"] };
  if (!Array.isArray(o.supportedVersions) || o.supportedVersions.length === 0 || !o.supportedVersions.every((v) => typeof v === "string")) {
    return "the VERSION answer has no supportedVersions list";
  }
  return { cniVersion: o.cniVersion, supportedVersions: o.supportedVersions as string[] };
}

export type VersionExec = Pick<ExecRequest, "timeoutMs" | "netns" | "baseEnv" | "signal">;

/** The versions a plugin supports, from its (cached) VERSION answer. */
export async function pluginVersionInfo(path: string, type: string, exec: VersionExec = {}): Promise<VersionInfo> {
  let stamp: string;
  try {
    stamp = stampOf(path);
  } catch (e) {
    throw new CniRuntimeError(`plugin ${type}: cannot stat ${path}: ${(e as Error).message}`);
  }
  const hit = answers.get(path);
  if (hit && hit.stamp === stamp) return hit.info;
  const req: ExecRequest = { ...exec, path, type, command: "VERSION", cniEnv: {}, stdin: JSON.stringify({ cniVersion: CURRENT_VERSION }) };
  const out = await invokePlugin(req);
  const info = decodeVersionInfo(parseOutputObject(req, out));
  if (typeof info === "string") {
    throw new PluginError({ type, path, command: "VERSION", stdout: out, stderr: "", exitCode: 0, signal: null, timedOut: false }, info);
  }
  answers.set(path, { stamp, info });
  return info;
}

/** The configuration's versions, highest first, without those newer than this runtime knows (as libcni). */
export function configVersions(list: Pick<NetworkConfigList, "cniVersion" | "cniVersions">): string[] {
  const all = new Set<string>([...(list.cniVersions ?? []), ...(list.cniVersion ? [list.cniVersion] : [])]);
  return [...all].filter((v) => parseVersion(v) && compareVersions(v, CURRENT_VERSION) <= 0).sort((a, b) => compareVersions(b, a));
}

/**
 * Picks the protocol version for a network. `plugins` are the VERSION answers of every plugin
 * in the list, by type. Throws a CniRuntimeError naming who supports what when nothing fits.
 */
export function selectVersion(list: Pick<NetworkConfigList, "name" | "cniVersion" | "cniVersions">, plugins: { type: string; info: VersionInfo }[]): string {
  const wanted = configVersions(list);
  const declared = [...new Set([...(list.cniVersions ?? []), ...(list.cniVersion ? [list.cniVersion] : [])])];
  if (wanted.length === 0) {
    throw new CniRuntimeError(`network "${list.name}": none of its versions [${declared.join(" ")}] is ${CURRENT_VERSION} or older`);
  }
  const ours = wanted.filter(isSupported);
  if (ours.length === 0) {
    throw new CniRuntimeError(`network "${list.name}": its versions [${declared.join(" ")}] are not supported by this runtime (supports [${SUPPORTED_VERSIONS.join(" ")}])`);
  }
  const fit = ours.find((v) => plugins.every((p) => p.info.supportedVersions.includes(v)));
  if (fit) return fit;
  const who = plugins.map((p) => `${p.type} supports [${p.info.supportedVersions.join(" ")}]`).join(", ");
  throw new CniRuntimeError(`network "${list.name}": no version is supported by the configuration [${ours.join(" ")}] and by every plugin: ${who}`);
}

/** Forgets cached VERSION answers (tests, or a caller that knows plugins were replaced in place). */
export function clearVersionCache(): void {
  answers.clear();
}
