// A compiled plugin ends through _exit(2), not the runtime's process.exit (fd.ts, exitNow): what
// it printed must still reach its caller whole, whether stdout is a pipe or a file nobody reads
// until the process is gone, with the exit status the protocol asks for. The Node bundle, which
// ends through process.exit, is the yardstick.
import test from "ava";
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import { ROOT } from "../helpers/cni.ts";

const FLAVOURS = { compiled: join(ROOT, "dist/cni/bin/loopback"), node: join(ROOT, "dist/cni/node/loopback") };

/** Runs the plugin with stdout and stderr going to files, read only after it has exited. */
async function toFiles(bin: string, env: Record<string, string>, input: string) {
  const tmp = await tmpDir({ unsafeCleanup: true, prefix: "podnet-exit-" });
  try {
    const out = join(tmp.path, "out"), err = join(tmp.path, "err");
    const fds = [openSync(out, "w"), openSync(err, "w")];
    const r = spawnSync(bin, [], { env, input, stdio: ["pipe", fds[0], fds[1]] });
    for (const fd of fds) closeSync(fd);
    return { status: r.status, stdout: readFileSync(out, "utf8"), stderr: readFileSync(err, "utf8") };
  } finally {
    await tmp.cleanup();
  }
}

const viaPipes = (bin: string, env: Record<string, string>, input: string) => {
  const r = spawnSync(bin, [], { env, input, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** The text as printed, but for what JSON.parse's message says: JavaScriptCore and V8 word it apart. */
const same = (stdout: string) => stdout.replace(/(error unmarshall network config: )[^"]*/, "$1…");

const CASES: [string, Record<string, string>, string][] = [
  ["VERSION", { CNI_COMMAND: "VERSION" }, JSON.stringify({ cniVersion: "0.4.0" })],
  ["an undecodable config (code 6)", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/none", CNI_IFNAME: "lo", CNI_PATH: "/x" }, "{ not json"],
  ["a missing variable (code 4)", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_IFNAME: "lo", CNI_PATH: "/x" }, JSON.stringify({ cniVersion: "1.0.0", name: "lo", type: "loopback" })],
  ["no CNI_COMMAND (the about line)", {}, ""],
];

test("a compiled plugin's output and exit status arrive whole, through pipes and files, as from Node", async (t) => {
  for (const [what, env, input] of CASES) {
    const node = viaPipes(FLAVOURS.node, env, input);
    t.true(node.stdout !== "" || node.stderr !== "", `${what}: the Node bundle printed something`);
    for (const got of [viaPipes(FLAVOURS.compiled, env, input), await toFiles(FLAVOURS.compiled, env, input)]) {
      t.is(got.status, node.status, `${what}: exit status`);
      t.is(same(got.stdout), same(node.stdout), `${what}: stdout`);
      t.is(got.stderr, node.stderr, `${what}: stderr`);
    }
  }
  const version = JSON.parse(viaPipes(FLAVOURS.compiled, CASES[0]![1], CASES[0]![2]).stdout);
  t.is(version.cniVersion, "0.4.0");
  const bad = viaPipes(FLAVOURS.compiled, CASES[1]![1], CASES[1]![2]);
  t.is(bad.status, 1);
  t.is(JSON.parse(bad.stdout).code, 6);
});
