// Runs the system programs the kubelet drives (ip, nft) by absolute path with argument arrays,
// never through a shell. The kubelet runs inside the node's netns, so they change that netns.
import { execFile } from "node:child_process";
import { systemBinary } from "../cni-plugins/pkg/exec.ts";

export interface SysResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sys(cmd: "ip" | "nft", args: string[], input?: string): Promise<SysResult> {
  return new Promise((resolve) => {
    const child = execFile(systemBinary(cmd), args, { maxBuffer: 64 * 1024 * 1024, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Like sys(), but a failure throws one line naming the command and its stderr. */
export async function sysOk(cmd: "ip" | "nft", args: string[], input?: string): Promise<string> {
  const r = await sys(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}
