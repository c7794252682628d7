// The CNI_* environment: which variables each command needs and what a valid value is.
import { CniError, ErrCode, invalidEnv } from "./errors.ts";
import { encode } from "./fd.ts";
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

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

/** Spec section 2: starts alphanumeric, then alphanumerics, '_', '.' or '-'. Also what makes it safe in a file name. */
export function validContainerID(id: string): boolean {
  return CONTAINER_ID.test(id);
}

/** Why `name` cannot be a Linux interface name, or undefined when it can. */
export function ifnameProblem(name: string): string | undefined {
  if (name === "") return "interface name is empty";
  // Not Buffer.byteLength: the first use of Buffer costs a compiled plugin about 0.3 M instructions.
  if (encode(name).length > 15) return "interface name is too long";
  if (name === "." || name === "..") return "interface name is . or ..";
  if (/[\/:\s]/.test(name)) return "interface name contains an invalid character";
  return undefined;
}

/** Network names (section 1) follow the container ID rules; host-local also uses them as a directory name. */
export function validNetworkName(name: string): boolean {
  return CONTAINER_ID.test(name);
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CniEnv {
  const command = env.CNI_COMMAND ?? "";
  if (!(COMMANDS as readonly string[]).includes(command)) throw invalidEnv(`unknown CNI_COMMAND: ${command}`);
  const cmd = command as Command;
  const value = (k: keyof typeof VAR) => env[VAR[k]] ?? "";
  // Loops, not filter/map: each array builtin costs a compiled plugin on its first call.
  const missing: string[] = [];
  for (const k of REQUIRED[cmd]) if (value(k) === "") missing.push(VAR[k]);
  if (missing.length) throw invalidEnv(`required env variables [${missing.join(" ")}] missing`);

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
  for (const p of value("path").split(":")) if (p !== "") path.push(p);
  return { command: cmd, containerID, netns, ifname, args: env.CNI_ARGS ?? "", path };
}

export { CniError, ErrCode };
