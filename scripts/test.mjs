#!/usr/bin/env node
// Runs the ava suite (TAP output, passed through) and ends with the line "N passed, N failed".
// Arguments are handed to ava, e.g. `npm test -- test/cni/bridge.test.ts`.
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// tsx, which runs the tests' TypeScript, keeps a transform cache in TMPDIR/tsx-<euid>; a run that
// made it removes it at the end, so that the suite leaves no temp dir behind.
const tsxCache = join(tmpdir(), `tsx-${process.geteuid ? process.geteuid() : userInfo().username}`);
const tsxCacheWasThere = existsSync(tsxCache);
const ava = spawn(join(root, "node_modules/.bin/ava"), ["--tap", ...process.argv.slice(2)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
let passed = 0, failed = 0;
const lines = createInterface({ input: ava.stdout });
lines.on("line", (line) => {
  console.log(line);
  if (/^not ok \d+/.test(line)) failed++;
  else if (/^ok \d+/.test(line) && !/# (SKIP|TODO)\b/i.test(line)) passed++;
});
ava.on("close", (code) => {
  // A crash or timeout that TAP did not report as a failed test still counts as a failure.
  if (code !== 0 && failed === 0) failed = 1;
  if (!tsxCacheWasThere) rmSync(tsxCache, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? 1);
});
