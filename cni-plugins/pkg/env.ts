// The CNI_* environment: which variables each command needs and what a valid value is.
import { CniError, ErrCode, invalidEnv } from "./errors.ts";
import { COMMANDS, type Command } from "./types.ts";

export interface CniEnv {
  command: Command;
  containerID: string;
  netns: string;
  ifname: string;
  args: string;
  path: string[];
}

const REQUIRED: Record<Command, (keyof typeof VAR)[]> = {
  ADD: ["containerID", "netns", "ifname", "path"],
  CHECK: ["containerID", "netns", "ifname", "path"],
  DEL: ["containerID", "ifname", "path"],
  GC: ["path"],
  STATUS: ["path"],
  VERSION: [],
};

const VAR = {
  containerID: "CNI_CONTAINERID",
  netns: "CNI_NETNS",
  ifname: "CNI_IFNAME",
  path: "CNI_PATH",
} as const;

// The checks below are loops over character codes, not regular expressions or Buffer: every
// plugin start runs them once, and a compiled plugin pays for each regular expression and each
// builtin the first time it is used (tens of microseconds apiece, about 0.3 ms here in all).

const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** Spec section 2: starts alphanumeric, then alphanumerics, '_', '.' or '-'. Also what makes it safe in a file name. */
export function validContainerID(id: string): boolean {
  if (id.length === 0 || !isAlnum(id.charCodeAt(0))) return false;
  for (let i = 1; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (!isAlnum(c) && c !== 95 /* _ */ && c !== 46 /* . */ && c !== 45 /* - */) return false;
  }
  return true;
}

/** What JavaScript's `\s` matches: ASCII and Unicode white space, line terminators, BOM. */
export function isWhiteSpace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** Bytes of `s` in UTF-8 (a lone surrogate counts 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Why `name` cannot be a Linux interface name, or undefined when it can. */
export function ifnameProblem(name: string): string | undefined {
  if (name === "") return "interface name is empty";
  if (utf8Length(name) > 15) return "interface name is too long";
  if (name === "." || name === "..") return "interface name is . or ..";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 47 /* / */ || c === 58 /* : */ || isWhiteSpace(c)) return "interface name contains an invalid character";
  }
  return undefined;
}

/** Network names (section 1) follow the container ID rules; host-local also uses them as a directory name. */
export function validNetworkName(name: string): boolean {
  return validContainerID(name);
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CniEnv {
  const command = env.CNI_COMMAND ?? "";
  if (COMMANDS.indexOf(command as Command) < 0) throw invalidEnv(`unknown CNI_COMMAND: ${command}`);
  const cmd = command as Command;
  const value = (k: keyof typeof VAR) => env[VAR[k]] ?? "";
  let missing = "";
  const required = REQUIRED[cmd];
  for (let i = 0; i < required.length; i++) if (value(required[i]!) === "") missing += (missing ? " " : "") + VAR[required[i]!];
  if (missing) throw invalidEnv(`required env variables [${missing}] missing`);

  const containerID = value("containerID");
  if (containerID !== "" && !validContainerID(containerID)) {
    throw invalidEnv("invalid characters in containerID (CNI_CONTAINERID)", `CNI_CONTAINERID=${JSON.stringify(containerID)}: must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`);
  }
  const ifname = value("ifname");
  if (ifname !== "") {
    const problem = ifnameProblem(ifname);
    if (problem) throw invalidEnv(`${problem} (CNI_IFNAME)`, `CNI_IFNAME=${JSON.stringify(ifname)}: at most 15 bytes, not . or .., no '/', ':' or whitespace`);
  }
  const netns = value("netns");
  if (netns !== "" && !netns.startsWith("/")) {
    throw invalidEnv("CNI_NETNS must be an absolute path", `CNI_NETNS=${JSON.stringify(netns)}`);
  }
  const path: string[] = [];
  const parts = value("path").split(":");
  for (let i = 0; i < parts.length; i++) if (parts[i] !== "") path.push(parts[i]!);
  return { command: cmd, containerID, netns, ifname, args: env.CNI_ARGS ?? "", path };
}

export { CniError, ErrCode };
