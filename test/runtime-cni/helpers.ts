// Helpers for the runtime-side CNI tests: temp dirs that go away, and a tiny "recorder" plugin
// that the tests write: it logs every invocation (command, CNI_* env, stdin) to a file and
// answers like a well-behaved plugin (an ADD echoes prevResult, or makes up a result for the
// first plugin). Behaviour switches come from its own config's "test" key, which the runtime
// must pass through unchanged: {"id", "failOn": [...], "sleepOn": [...], "pidFile", "delayOn": [...],
// "delay" (seconds), "garbageOn": [...]}.
import type { ExecutionContext } from "ava";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dir } from "tmp-promise";

export async function tempDir(t: ExecutionContext, prefix = "pncni-"): Promise<string> {
  const d = await dir({ prefix, unsafeCleanup: true });
  t.teardown(() => d.cleanup());
  return d.path;
}

const RECORDER = `#!/usr/bin/env node
"use strict";
const fs = require("fs");
const cp = require("child_process");
const LOG = __LOG__;
function main() {
  const env = process.env;
  const cmd = env.CNI_COMMAND || "";
  let raw = "";
  try { raw = fs.readFileSync(0, "utf8"); } catch (e) {}
  let conf = {};
  try { conf = JSON.parse(raw); } catch (e) {}
  const cni = {};
  for (const k of Object.keys(env)) if (k.startsWith("CNI_")) cni[k] = env[k];
  const me = (conf.test && conf.test.id) || conf.type;
  fs.appendFileSync(LOG, JSON.stringify({ event: "start", id: me, command: cmd, env: cni, stdin: raw }) + "\\n");
  const t = conf.test || {};
  const done = () => fs.appendFileSync(LOG, JSON.stringify({ event: "end", id: me, command: cmd, env: cni }) + "\\n");
  if ((t.sleepOn || []).includes(cmd)) {
    // Sleeps through a child of its own, so a test can see that a timeout kills the whole group.
    const c = cp.spawn("sleep", ["300"], { stdio: "ignore" });
    if (t.pidFile) fs.writeFileSync(t.pidFile, String(c.pid));
    setInterval(() => {}, 1000);
    return;
  }
  if ((t.delayOn || []).includes(cmd)) {
    cp.execFileSync("sleep", [String(t.delay || 0.3)]);
  }
  if ((t.failOn || []).includes(cmd)) {
    process.stderr.write("recorder: failing on purpose\\n");
    process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 7, msg: "failing on purpose", details: "test.failOn includes " + cmd }));
    done();
    process.exit(1);
  }
  if ((t.garbageOn || []).includes(cmd)) {
    process.stdout.write("all good!\\n");
    done();
    return;
  }
  if (cmd === "VERSION") {
    process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion || "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] }));
  } else if (cmd === "ADD") {
    const r = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [{ name: env.CNI_IFNAME, sandbox: env.CNI_NETNS }], ips: [{ address: "10.123.0." + (2 + (fs.readFileSync(LOG, "utf8").split("\\n").length % 200)) + "/24", interface: 0 }] };
    process.stdout.write(JSON.stringify(r));
  }
  done();
}
main();
`;

/** Writes the recorder as `<binDir>/<name>`, logging to `log`. */
export async function writeRecorder(binDir: string, name: string, log: string): Promise<string> {
  const p = join(binDir, name);
  await writeFile(p, RECORDER.replace("__LOG__", JSON.stringify(log)));
  await chmod(p, 0o755);
  await writeFile(log, "", { flag: "a" });
  return p;
}

export interface LogEntry {
  event: "start" | "end";
  id: string;
  command: string;
  env: Record<string, string>;
  stdin: string;
}

export async function readLog(log: string): Promise<LogEntry[]> {
  const text = await readFile(log, "utf8");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as LogEntry);
}

/** The requests (parsed stdin) a recorder got, in order, optionally for one command only. */
export async function requests(log: string, command?: string): Promise<{ id: string; command: string; env: Record<string, string>; req: any }[]> {
  return (await readLog(log))
    .filter((e) => e.event === "start" && (command === undefined || e.command === command))
    .map((e) => ({ id: e.id, command: e.command, env: e.env, req: e.stdin ? JSON.parse(e.stdin) : undefined }));
}
