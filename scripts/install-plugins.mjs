#!/usr/bin/env node
// npm run install-plugins -- DIR: copies the built plugins into DIR (e.g. /opt/cni/bin) for a
// real CNI runtime. The multicall executable is copied once and the plugins are hard links to it,
// as in dist/cni/bin (a plugin is chosen by the name it is run as).
import { copyFileSync, chmodSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "dist/cni/bin");
const PLUGINS = ["bridge", "host-local", "portmap", "loopback"];
const dest = process.argv[2];
if (!dest || dest === "--help") {
  console.error("Usage: npm run install-plugins -- DIR    (e.g. /opt/cni/bin; run `npm run build` first)");
  process.exit(dest ? 0 : 2);
}
if (!existsSync(join(src, "podnet-cni"))) {
  console.error(`install-plugins: ${src}/podnet-cni is missing: run \`npm run build\` first`);
  process.exit(1);
}
const dir = resolve(dest);
mkdirSync(dir, { recursive: true });
// Copy beside the target and rename, so a runtime calling a plugin meanwhile never sees half a file.
const multi = join(dir, "podnet-cni");
copyFileSync(join(src, "podnet-cni"), `${multi}.tmp`);
chmodSync(`${multi}.tmp`, 0o755);
renameSync(`${multi}.tmp`, multi);
for (const p of PLUGINS) {
  const target = join(dir, p);
  const tmp = `${target}.tmp`;
  rmSync(tmp, { force: true });
  try {
    linkSync(multi, tmp);
  } catch {
    copyFileSync(multi, tmp); // another filesystem under the same directory name: a copy works too
    chmodSync(tmp, 0o755);
  }
  renameSync(tmp, target);
}
const size = (statSync(multi).size / 2 ** 20).toFixed(0);
console.log(`installed ${PLUGINS.join(", ")} into ${dir} (hard links to podnet-cni, ${size} MiB)`);
