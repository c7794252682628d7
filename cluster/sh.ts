// Small async helpers over system programs, always with argument arrays.
import { execa } from "execa";

export async function sh(cmd: string, args: string[], opts: { input?: string; netns?: string } = {}): Promise<string> {
  const argv = opts.netns ? ["nsenter", `--net=/run/netns/${opts.netns}`, "--", cmd, ...args] : [cmd, ...args];
  const r = await execa(argv[0]!, argv.slice(1), { input: opts.input, reject: false });
  if (r.exitCode !== 0) throw new Error(`${[cmd, ...args].join(" ")}: ${String(r.stderr).trim() || `exit status ${r.exitCode}`}`);
  return String(r.stdout);
}

export async function shOk(cmd: string, args: string[], opts: { input?: string; netns?: string } = {}): Promise<boolean> {
  try {
    await sh(cmd, args, opts);
    return true;
  } catch {
    return false;
  }
}

export async function listNetns(): Promise<string[]> {
  const out = await sh("ip", ["-j", "netns", "list"]).catch(() => "");
  if (!out.trim()) return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export async function netnsPids(name: string): Promise<number[]> {
  const out = await sh("ip", ["netns", "pids", name]).catch(() => "");
  return out.split(/\s+/).filter(Boolean).map(Number);
}
