#!/usr/bin/env node
// Builds what users and runtimes execute:
//   dist/cni/bin/podnet-cni   one self-contained executable (Bun-compiled) carrying every plugin;
//   dist/cni/bin/<plugin>     hard links to it: bridge, host-local, portmap, loopback;
//   dist/cni/node/<plugin>    the same plugins as single-file JS bundles with a node shebang;
//   dist/podnet.mjs           the podnet command (Node), with its daemons and tools;
//   dist/bin/podnet           a link to it, for PATH.
// Bun is used for its start-up time: a CNI plugin is a process started per call, and Node
// alone needs 60-80 ms to start here while Bun's compiled executables need about 5 ms.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findBun } from "./find-bun.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bun = findBun();
export const PLUGINS = ["bridge", "host-local", "portmap", "loopback"];
const ENTRY = { bridge: "cni-plugins/bridge/main.ts", portmap: "cni-plugins/portmap/main.ts", loopback: "cni-plugins/loopback/main.ts", "host-local": "ipam/host-local/main.ts" };

function bunBuild(args) {
  execFileSync(bun, ["build", ...args], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}

const only = process.argv.slice(2);
const want = (part) => only.length === 0 || only.includes(part);
// Everything is built beside its final place and renamed into it, so that plugins being run
// while a build happens (tests, a running cluster) never see a half-written directory.
const stage = join(root, "dist", `.stage-${process.pid}`);
const binDir = join(stage, "cni/bin");
const nodeDir = join(stage, "cni/node");

function publish(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  const old = `${to}.old-${process.pid}`;
  if (existsSync(to)) renameSync(to, old);
  renameSync(from, to);
  rmSync(old, { recursive: true, force: true });
}

rmSync(stage, { recursive: true, force: true });
if (want("cni")) {
  mkdirSync(binDir, { recursive: true });
  const multi = join(binDir, "podnet-cni");
  bunBuild([
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    // A plugin must not read .env or bunfig.toml from whatever directory its runtime runs in.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    // A plugin lives for milliseconds: tiering code up to the JIT costs more than it saves
    // (about 2 ms of CPU less per call here with the thresholds scaled by 100).
    "--compile-jit-policy=100",
    // Each plugin's code in its own chunk, loaded when that plugin runs: a start then loads the
    // bytecode of one plugin, not of all four (about 1 ms of CPU less per call here).
    "--splitting",
    "cni-plugins/multicall.ts",
    "--outfile",
    multi,
  ]);
  const present = PLUGINS.filter((p) => existsSync(join(root, ENTRY[p])));
  for (const p of present) linkSync(multi, join(binDir, p));

  mkdirSync(nodeDir, { recursive: true });
  for (const p of present) {
    const out = join(nodeDir, p);
    bunBuild(["--target=node", "--format=esm", "--minify", ENTRY[p], "--outfile", out]);
    const body = readFileSync(out, "utf8").replace(/^#!.*\n/, "");
    writeFileSync(out, `#!/usr/bin/env node\n${body}`);
    chmodSync(out, 0o755);
  }
  publish(binDir, join(root, "dist/cni/bin"));
  publish(nodeDir, join(root, "dist/cni/node"));
  console.log(`built ${present.join(", ")} into dist/cni/bin (multicall) and dist/cni/node`);
}

if (want("cli") && existsSync(join(root, "cli/podnet.ts"))) {
  mkdirSync(stage, { recursive: true });
  const out = join(stage, "podnet.mjs");
  bunBuild(["--target=node", "--format=esm", "--external", "better-sqlite3", "cli/podnet.ts", "--outfile", out]);
  const body = readFileSync(out, "utf8").replace(/^#!.*\n/, "");
  writeFileSync(out, `#!/usr/bin/env node\n${body}`);
  chmodSync(out, 0o755);
  renameSync(out, join(root, "dist/podnet.mjs"));
  // dist/bin/podnet: a directory to put on PATH (containers get it) so `podnet ...` just works.
  const binStage = join(stage, "bin");
  mkdirSync(binStage, { recursive: true });
  symlinkSync("../podnet.mjs", join(binStage, "podnet"));
  publish(binStage, join(root, "dist/bin"));
  console.log("built dist/podnet.mjs (and dist/bin/podnet)");
}
rmSync(stage, { recursive: true, force: true });
