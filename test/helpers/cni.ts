// Calls CNI plugins the way a runtime does, from inside a test's "node" netns.
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import type { Netns } from "./netns.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Our plugins as built by `npm run build` (multicall executable and its hard links). */
export const OUR_BIN = join(ROOT, "dist/cni/bin");
/** The same plugins as Node bundles. */
export const OUR_NODE_BIN = join(ROOT, "dist/cni/node");
/** Debian's containernetworking-plugins: the reference, used as an oracle. */
export const REF_BIN = "/usr/lib/cni";

export interface PluginCall {
  command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
  containerID?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  /** Extra or overriding environment variables; undefined values remove a variable. */
  env?: Record<string, string | undefined>;
}

export interface PluginOutput {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/**
 * Runs `plugin` (a path) with `config` on stdin inside the node netns `node`
 * (plugins change the netns they run in, so never the test's own).
 */
export async function callPlugin(node: Netns, plugin: string, config: unknown, call: PluginCall): Promise<PluginOutput> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: call.command };
  if (call.containerID !== undefined) env.CNI_CONTAINERID = call.containerID;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  env.CNI_PATH = call.path ?? OUR_BIN;
  for (const [k, v] of Object.entries(call.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const input = typeof config === "string" ? config : JSON.stringify(config);
  const r = await execa("nsenter", [`--net=${node.path}`, "--", plugin], { env, extendEnv: false, input, reject: false });
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}
