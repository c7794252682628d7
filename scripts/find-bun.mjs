// Where the Bun binary of node_modules is. Bun's npm package links its real binary in a
// postinstall script, which this project does not run (allowScripts): the binary itself comes in
// the platform's optional package.
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export function findBun(root = ROOT) {
  const arch = process.arch === "arm64" ? "aarch64" : "x64";
  const candidates = [
    ...["", "-baseline", "-musl", "-musl-baseline"].map((v) => join(root, "node_modules", "@oven", `bun-linux-${arch}${v}`, "bin", "bun")),
    join(root, "node_modules", "bun", "bin", "bun.exe"),
  ];
  const found = candidates.find((p) => existsSync(p) && statSync(p).size > 1_000_000);
  if (!found) throw new Error(`no Bun binary under node_modules (looked for ${candidates.join(", ")}): run npm ci`);
  return found;
}
