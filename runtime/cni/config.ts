// Network configurations (SPEC section 1): reading, validating and finding them on disk.
//
// Directory rules follow libcni's LoadNetworkConf: `*.conflist` files in lexical (byte) order
// first, then `*.conf` and `*.json` files together in lexical order; a single-plugin file is
// wrapped into a list of one. Unlike libcni, one unreadable file does not hide the others:
// every bad file is reported with all of its problems and the good ones stay usable.
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { parseVersion } from "../../cni-plugins/pkg/version.ts";
import { ConfigError } from "./errors.ts";

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkConfigList {
  name: string;
  /** As written in the file (may be absent when only `cniVersions` is given). */
  cniVersion?: string;
  cniVersions?: string[];
  disableCheck: boolean;
  disableGC: boolean;
  loadOnlyInlinedPlugins: boolean;
  /** Plugin configuration objects, exactly as written (the request builder copies them). */
  plugins: PluginConf[];
  /** The configuration bytes, stored base64 in the result cache as libcni does. */
  bytes: string;
  /** Where it came from: a file path, or "(inline)". */
  source: string;
  /** Things that are legal but worth telling the administrator (reserved keys, skipped plugin files). */
  warnings: string[];
}

export interface FileProblems {
  file: string;
  problems: string[];
}

export interface ConfDirReport {
  dir: string;
  /** Usable networks in libcni's search order; for a duplicated name the first one wins. */
  networks: NetworkConfigList[];
  /** Files that could not be used, each with every problem found. */
  invalid: FileProblems[];
  /** Files whose network name an earlier file already took. */
  shadowed: { file: string; name: string; by: string }[];
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

/** Spec section 1: starts alphanumeric, then alphanumerics, '_', '.', '-' (so it is also a safe file name). */
export function networkNameProblem(name: unknown): string | undefined {
  if (name === undefined) return `"name" is missing`;
  if (typeof name !== "string") return `"name" must be a string, not ${typeOf(name)}`;
  if (name === "") return `"name" is empty`;
  if (!NAME_RE.test(name)) return `"name" ${JSON.stringify(name)} is invalid: it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`;
  return undefined;
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : typeof v;
}

/** JSON.parse with the position turned into line:column, which is what people look for in a file. */
function parseJSON(text: string): { value?: unknown; problem?: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split("\n").length;
      const col = pos - before.lastIndexOf("\n");
      return { problem: `not valid JSON at line ${line}, column ${col}: ${msg.replace(/ in JSON at position \d+.*$/, "")}` };
    }
    return { problem: `not valid JSON: ${text.trim() === "" ? "the file is empty" : msg}` };
  }
}

function readBool(o: Record<string, unknown>, key: string, problems: string[]): boolean {
  const v = o[key];
  if (v === undefined) return false;
  if (typeof v === "boolean") return v;
  // libcni also accepts the strings "true"/"false", in any case.
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  problems.push(`"${key}" must be true or false, not ${JSON.stringify(v)}`);
  return false;
}

function versionProblem(v: unknown, what: string): string | undefined {
  if (typeof v !== "string") return `${what} must be a string, not ${typeOf(v)}`;
  if (!parseVersion(v)) return `${what} ${JSON.stringify(v)} is not a version (x.y.z)`;
  return undefined;
}

const typeProblem = (t: unknown, what: string): string | undefined => {
  if (t === undefined) return `${what} is missing`;
  if (typeof t !== "string") return `${what} must be a string, not ${typeOf(t)}`;
  if (t === "") return `${what} is empty`;
  if (t.includes("/") || t.includes("\\")) return `${what} ${JSON.stringify(t)} must be a file name, without '/' or '\\'`;
  if (t === "." || t === "..") return `${what} ${JSON.stringify(t)} is not a plugin name`;
  if (t.includes("\0")) return `${what} contains a NUL byte`;
  return undefined;
};

/** Problems of one plugin configuration object; `at` says where it is, for messages. */
export function pluginProblems(p: unknown, at: string): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!p || typeof p !== "object" || Array.isArray(p)) return { problems: [`${at} must be an object, not ${typeOf(p)}`], warnings };
  const o = p as Record<string, unknown>;
  const tp = typeProblem(o.type, `${at}: "type"`);
  if (tp) problems.push(tp);
  if (o.capabilities !== undefined) {
    if (!o.capabilities || typeof o.capabilities !== "object" || Array.isArray(o.capabilities)) problems.push(`${at}: "capabilities" must be an object of booleans`);
    else for (const [k, v] of Object.entries(o.capabilities)) if (typeof v !== "boolean") problems.push(`${at}: capabilities.${k} must be true or false`);
  }
  if (o.ipam !== undefined) {
    if (!o.ipam || typeof o.ipam !== "object" || Array.isArray(o.ipam)) problems.push(`${at}: "ipam" must be an object`);
    else if ((o.ipam as Record<string, unknown>).type !== undefined) {
      const ip = typeProblem((o.ipam as Record<string, unknown>).type, `${at}: ipam "type"`);
      if (ip) problems.push(ip);
    }
  }
  // Reserved keys (section 1): generated by the runtime, so what a file says is replaced.
  for (const k of Object.keys(o)) {
    if (k === "runtimeConfig" || k.startsWith("cni.dev/")) warnings.push(`${at}: "${k}" is reserved for the runtime and is replaced at execution time`);
  }
  return { problems, warnings };
}

/**
 * Reads a configuration list (or, with `single`, one plugin's configuration, wrapped into a list
 * of one). Throws a ConfigError listing every problem.
 */
export function parseNetworkConfig(text: string, source = "(inline)", opts: { single?: boolean } = {}): NetworkConfigList {
  const { value, problem } = parseJSON(text);
  if (problem) throw new ConfigError(`invalid network configuration ${source}`, [problem], source);
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new ConfigError(`invalid network configuration ${source}`, [`the top level must be an object, not ${typeOf(value)}`], source);
  const o = value as Record<string, unknown>;
  // A .conf/.json holding a "plugins" list is a list in the wrong file: accept it as one.
  const single = opts.single && !("plugins" in o);
  const problems: string[] = [];
  const warnings: string[] = [];

  const np = networkNameProblem(o.name);
  if (np) problems.push(np);
  if (o.cniVersion !== undefined) {
    const vp = versionProblem(o.cniVersion, `"cniVersion"`);
    if (vp) problems.push(vp);
  }
  let cniVersions: string[] | undefined;
  if (!single && o.cniVersions !== undefined) {
    if (!Array.isArray(o.cniVersions)) problems.push(`"cniVersions" must be a list of versions`);
    else {
      cniVersions = [];
      o.cniVersions.forEach((v, i) => {
        const vp = versionProblem(v, `cniVersions[${i}]`);
        if (vp) problems.push(vp);
        else cniVersions!.push(v as string);
      });
    }
  }
  if (o.cniVersion === undefined && !cniVersions?.length) problems.push(`"cniVersion" is missing (and no "cniVersions" list is given)`);

  let plugins: unknown[];
  let disableCheck = false, disableGC = false, loadOnlyInlinedPlugins = false;
  if (single) {
    plugins = [o];
  } else {
    disableCheck = readBool(o, "disableCheck", problems);
    disableGC = readBool(o, "disableGC", problems);
    loadOnlyInlinedPlugins = readBool(o, "loadOnlyInlinedPlugins", problems);
    if (o.plugins === undefined) {
      if (loadOnlyInlinedPlugins) problems.push(`"loadOnlyInlinedPlugins" is true but there is no "plugins" list`);
      plugins = [];
    } else if (!Array.isArray(o.plugins)) {
      problems.push(`"plugins" must be a list, not ${typeOf(o.plugins)}`);
      plugins = [];
    } else {
      if (o.plugins.length === 0) problems.push(`"plugins" is empty`);
      plugins = o.plugins;
    }
  }
  plugins.forEach((p, i) => {
    const r = pluginProblems(p, single ? "the plugin" : `plugins[${i}]`);
    problems.push(...r.problems);
    warnings.push(...r.warnings);
  });
  if (problems.length) throw new ConfigError(`invalid network configuration ${source}`, problems, source);

  const name = o.name as string;
  const bytes = single ? JSON.stringify({ cniVersion: o.cniVersion, name, plugins: [o] }) : text;
  return {
    name,
    ...(typeof o.cniVersion === "string" ? { cniVersion: o.cniVersion } : {}),
    ...(cniVersions ? { cniVersions } : {}),
    disableCheck,
    disableGC,
    loadOnlyInlinedPlugins,
    plugins: plugins as PluginConf[],
    bytes,
    source,
    warnings,
  };
}

/**
 * Section 1: unless `loadOnlyInlinedPlugins`, plugin objects from `<dir>/<name>/*.conf` are
 * appended to the list. Invalid ones are skipped with a warning; valid ones must be invoked.
 */
async function appendSiblingPlugins(list: NetworkConfigList, dir: string): Promise<void> {
  if (list.loadOnlyInlinedPlugins) return;
  const sub = join(dir, list.name); // the name is validated, so it is one path component
  let names: string[];
  try {
    names = (await readdir(sub, { withFileTypes: true })).filter((e) => e.isFile() && extname(e.name) === ".conf").map((e) => e.name).sort(byteOrder);
  } catch {
    return;
  }
  for (const n of names) {
    const file = join(sub, n);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      list.warnings.push(`skipped plugin file ${file}: ${(e as Error).message}`);
      continue;
    }
    const { value, problem } = parseJSON(text);
    const r = problem ? { problems: [problem], warnings: [] } : pluginProblems(value, file);
    if (r.problems.length) list.warnings.push(`skipped plugin file ${file}: ${r.problems.join("; ")}`);
    else {
      list.plugins.push(value as PluginConf);
      list.warnings.push(...r.warnings);
    }
  }
}

/** Go's sort.Strings order: by UTF-8 bytes, not locale. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Reads one configuration file: `.conflist` as a list, anything else as a single plugin or a list. */
export async function loadConfigFile(file: string): Promise<NetworkConfigList> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read network configuration ${file}`, [(e as Error).message], file);
  }
  const list = parseNetworkConfig(text, file, { single: extname(file) !== ".conflist" });
  if (extname(file) === ".conflist") await appendSiblingPlugins(list, join(file, ".."));
  if (list.plugins.length === 0) throw new ConfigError(`invalid network configuration ${file}`, [`no plugins: "plugins" is missing and ${join(file, "..", list.name)}/ holds no plugin files`], file);
  return list;
}

/** Every network configuration in `dir`, in libcni's order, with the problems of the bad files. */
export async function loadConfDir(dir: string): Promise<ConfDirReport> {
  const report: ConfDirReport = { dir, networks: [], invalid: [], shadowed: [] };
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // libcni treats a missing directory as "no configurations", not as a failure.
    if (err.code === "ENOENT") return report;
    throw new ConfigError(`cannot read network configuration directory ${dir}`, [err.message]);
  }
  const files = entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
  const lists = files.filter((f) => extname(f) === ".conflist").sort(byteOrder);
  const singles = files.filter((f) => extname(f) === ".conf" || extname(f) === ".json").sort(byteOrder);
  const seen = new Map<string, string>();
  for (const f of [...lists, ...singles]) {
    const file = join(dir, f);
    try {
      const list = await loadConfigFile(file);
      const earlier = seen.get(list.name);
      if (earlier) {
        report.shadowed.push({ file, name: list.name, by: earlier });
        continue;
      }
      seen.set(list.name, file);
      report.networks.push(list);
    } catch (e) {
      report.invalid.push({ file, problems: e instanceof ConfigError ? e.problems : [(e as Error).message] });
    }
  }
  return report;
}

/** Picks a network by name, or the first one; the error names the bad files that might have held it. */
export function selectNetwork(report: ConfDirReport, name?: string): NetworkConfigList {
  const found = name === undefined ? report.networks[0] : report.networks.find((n) => n.name === name);
  if (found) return found;
  const what = name === undefined ? `no usable network configuration in ${report.dir}` : `no network configuration named "${name}" in ${report.dir}`;
  const problems = report.invalid.map((b) => `${b.file}: ${b.problems.join("; ")}`);
  if (name !== undefined && report.networks.length) problems.unshift(`networks found: ${report.networks.map((n) => n.name).join(", ")}`);
  throw new ConfigError(problems.length ? `${what} (${report.invalid.length} invalid file${report.invalid.length === 1 ? "" : "s"})` : what, problems);
}
