// `podnet plugins`: where the built plugins are and what each one answers to VERSION.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { podnetEntry } from "../cluster/processes.ts";

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write("Usage: podnet plugins\n\nLists the CNI plugins built into dist/cni/bin and the protocol versions each supports.\n");
    return 0;
  }
  const bin = join(dirname(podnetEntry()), "cni", "bin");
  process.stdout.write(`CNI_PATH=${bin}\n`);
  for (const name of ["bridge", "host-local", "portmap", "loopback"]) {
    const p = join(bin, name);
    if (!existsSync(p)) {
      process.stdout.write(`  ${name.padEnd(11)} (not built)\n`);
      continue;
    }
    const out = execFileSync(p, [], { env: { ...process.env, CNI_COMMAND: "VERSION" }, input: "{}", encoding: "utf8" });
    const v = JSON.parse(out) as { supportedVersions: string[] };
    process.stdout.write(`  ${name.padEnd(11)} ${v.supportedVersions.join(" ")}\n`);
  }
  return 0;
}
