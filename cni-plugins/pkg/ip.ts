// iproute2 driver: JSON queries (ip -j) and batched changes (ip -batch -).
// Batch lines are assembled from tokens that are checked to be plain words, so no input
// can add a command or an argument of its own.
import { CommandError, run, runAsync, type RunOptions, type RunResult } from "./exec.ts";
import { CniError, ErrCode } from "./errors.ts";
import { batchOverNetlink } from "./ipnl.ts";

export interface AddrInfo {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  operstate?: string;
  master?: string;
  /** For a veth: the peer's ifindex (in the netns link_netnsid names, when it is another). */
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
  addr_info?: AddrInfo[];
}

export interface RouteInfo {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  table?: string;
  flags?: string[];
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:\/@%+,=-]+$/;

function token(t: string | number): string {
  const s = String(t);
  if (!SAFE_TOKEN.test(s)) throw new CniError(ErrCode.InvalidConfig, `refusing unsafe value ${JSON.stringify(s)} in an ip command`);
  return s;
}

/** The batch script: checked tokens, one line per command. (Loops: see ipnl.ts on builtins.) */
function scriptOf(lines: (string | number)[][]): string {
  let script = "";
  for (const l of lines) {
    let line = "";
    for (const t of l) line += (line ? " " : "") + token(t);
    script += `${line}\n`;
  }
  return script;
}

/**
 * The lines over rtnetlink when they can go that way (ipnl.ts), failing as run() would; undefined
 * when ip itself must run them.
 */
function overNetlink(lines: (string | number)[][], argv: string[], opts: RunOptions, json: boolean): RunResult | undefined {
  if (opts.nsenter) return undefined;
  const r = batchOverNetlink(lines, { netns: opts.netns, json });
  if (r && r.status !== 0 && !opts.allowFail) throw new CommandError(["ip", ...argv], r.status, r.stderr);
  return r;
}

/** Runs `ip -batch -` with one command per line; `force` keeps going past failed lines. */
export function ipBatch(lines: (string | number)[][], opts: RunOptions & { force?: boolean } = {}): void {
  if (lines.length === 0) return;
  const script = scriptOf(lines);
  const argv = opts.force ? ["-force", "-batch", "-"] : ["-batch", "-"];
  if (!opts.force && overNetlink(lines, argv, opts, false)) return;
  run("ip", argv, { ...opts, input: script });
}

/**
 * Like ipBatch, in JSON mode: every "show" line answers with one JSON document, returned in order.
 * Lets a plugin change and then read back a netns with a single process start (or none).
 */
export function ipBatchJSON<T = unknown>(lines: (string | number)[][], opts: RunOptions = {}): T[] {
  const script = scriptOf(lines);
  const out = (overNetlink(lines, ["-j", "-batch", "-"], opts, true) ?? run("ip", ["-j", "-batch", "-"], { ...opts, input: script })).stdout;
  const docs: T[] = [];
  for (const l of out.split("\n")) if (l.trim() !== "") docs.push(JSON.parse(l) as T);
  return docs;
}

export interface BatchOutcome extends RunResult {
  /** 1-based number of the line that stopped the batch ("Command failed -:N"), when one did. */
  failedLine?: number;
}

/**
 * `ip -batch -` (or `bridge -batch -`) without blocking and without throwing, so a caller can
 * run several at once and decide which failures it tolerates (e.g. "File exists" on a line
 * another ADD raced it to). With `json`, each "show" line answers with one JSON line on stdout.
 */
export async function batchAsync(program: "ip" | "bridge", lines: (string | number)[][], opts: RunOptions & { json?: boolean; details?: boolean } = {}): Promise<BatchOutcome> {
  const script = scriptOf(lines);
  // The lines every pod's ADD and DEL send go over rtnetlink where we can: no process start.
  if (program === "ip" && !opts.nsenter) {
    const done = batchOverNetlink(lines, { netns: opts.netns, json: opts.json });
    if (done) return done;
  }
  const args = [...(opts.json ? ["-j"] : []), ...(opts.details ? ["-d"] : []), "-batch", "-"];
  const r = await runAsync(program, args, { netns: opts.netns, nsenter: opts.nsenter, input: script, allowFail: true });
  const m = /Command failed -:(\d+)/.exec(r.stderr);
  return m ? { ...r, failedLine: Number(m[1]) } : r;
}

/** Runs one ip command with plain arguments. */
export function ip(args: (string | number)[], opts: RunOptions = {}): string {
  return run("ip", args.map(String), opts).stdout;
}

function parseJSON<T>(text: string): T {
  const t = text.trim();
  return (t === "" ? [] : JSON.parse(t)) as T;
}

/** Link details with addresses, or undefined when there is no such link. */
export function getLink(name: string, opts: RunOptions = {}): LinkInfo | undefined {
  const r = run("ip", ["-j", "-d", "addr", "show", "dev", token(name)], { ...opts, allowFail: true });
  if (r.status !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return undefined;
    if (opts.allowFail) return undefined;
    throw new CniError(ErrCode.Kernel, `ip addr show ${name} failed: ${r.stderr.trim()}`);
  }
  return parseJSON<LinkInfo[]>(r.stdout)[0];
}

export function listLinks(opts: RunOptions = {}): LinkInfo[] {
  return parseJSON<LinkInfo[]>(run("ip", ["-j", "-d", "addr", "show"], opts).stdout);
}

export function listRoutes(family: 4 | 6, opts: RunOptions & { table?: string } = {}): RouteInfo[] {
  const args = [`-${family}`, "-j", "route", "show"];
  if (opts.table) args.push("table", token(opts.table));
  return parseJSON<RouteInfo[]>(run("ip", args, opts).stdout);
}

export const familyOf = (address: string): 4 | 6 => (address.includes(":") ? 6 : 4);
