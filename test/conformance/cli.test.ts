// `podnet cni conformance` as users run it: text and --json output, exit status, and nothing
// left behind when the run is interrupted by SIGINT/SIGTERM or a check throws.
import test from "ava";
import { execa } from "execa";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SYSTEM_PATH } from "../../runtime/cni/exec.ts";
import { runConformance } from "../../runtime/conformance/runner.ts";
import { CHECK_GROUPS } from "../../runtime/conformance/checks.ts";
import { OUR_BIN, REF_BIN } from "../helpers/cni.ts";
import { PODNET } from "../helpers/podnet.ts";
import { tempDir } from "../runtime-cni/helpers.ts";
import { bridgeConf, leftovers, writeBrokenPlugins } from "./helpers.ts";

const conformance = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, [PODNET, "cni", "conformance", ...args], { env: { PATH: SYSTEM_PATH, ...env }, extendEnv: false, reject: false });

const LINE = /^(PASS|FAIL|SKIP)  §\d [A-Za-z ]+?\s+\S.*$/;

test("--json on the reference loopback: the report, exit status 1 for its FAILs, the header on stderr", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "lo.conf");
  await writeFile(config, JSON.stringify({ cniVersion: "1.0.0", name: "lo", type: "loopback" }));
  const r = await conformance(["--config", config, "--cni-path", REF_BIN, "--json"]);
  t.is(r.exitCode, 1);
  const report = JSON.parse(r.stdout);
  t.like(report, { config, network: { name: "lo" }, cniPath: [REF_BIN], ifname: "lo", version: "1.0.0" });
  t.is(report.summary.fail, report.checks.filter((c: any) => c.status === "FAIL").length);
  t.is(report.summary.total, report.checks.length);
  t.true(report.summary.fail > 0);
  for (const c of report.checks) {
    t.regex(c.section, /^§\d /);
    t.true(["PASS", "FAIL", "SKIP"].includes(c.status));
    if (c.status !== "PASS") t.true(typeof c.reason === "string" && c.reason.length > 0, `${c.id} says why it is ${c.status}`);
  }
  t.regex(r.stderr, /^CNI conformance of .*lo\.conf: network "lo", run as "pncf[0-9a-f]{8}"/);
  t.deepEqual(await leftovers(report), []);
});

test("text output on our loopback: one line per check, a summary, exit status 0; CNI_PATH is the default plugin path", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "lo.conf");
  await writeFile(config, JSON.stringify({ cniVersion: "1.1.0", name: "lo", type: "loopback" }));
  const r = await conformance(["--config", config], { CNI_PATH: OUR_BIN });
  t.is(r.exitCode, 0, r.stdout);
  const lines = r.stdout.split("\n");
  t.regex(lines[0]!, /^CNI conformance of /);
  const checks = lines.filter((l) => /^(PASS|FAIL|SKIP) /.test(l));
  t.true(checks.length >= 25);
  for (const l of checks) t.regex(l, LINE);
  t.false(checks.some((l) => l.startsWith("FAIL")));
  const summary = lines.find((l) => / checks: /.test(l))!;
  t.regex(summary, new RegExp(`^${checks.length} checks: \\d+ PASS, 0 FAIL, \\d+ SKIP; checked at 1\\.1\\.0`));
});

test("--only runs the named checks besides the VERSION and main checks; an unknown id is a usage error", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "lo.conf");
  await writeFile(config, JSON.stringify({ cniVersion: "1.1.0", name: "lo", type: "loopback" }));
  const r = await conformance(["--config", config, "--cni-path", OUR_BIN, "--only", "status,del-no-netns", "--json"]);
  t.is(r.exitCode, 0, r.stderr);
  const ids = new Set(JSON.parse(r.stdout).checks.map((c: any) => c.id));
  for (const id of [...CHECK_GROUPS.version, ...CHECK_GROUPS.main, ...CHECK_GROUPS.output, "status", "del-no-netns", "del-netns-gone"]) t.true(ids.has(id) || id === "del-removes", id);
  for (const id of ["gc-runs", "concurrent", "error-bad-json", "add-existing-ifname"]) t.false(ids.has(id), id);
  const bad = await conformance(["--config", config, "--cni-path", OUR_BIN, "--only", "status,nope"]);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /--only: unknown check "nope"; the checks are: version-shape, /);
});

test("usage errors and unusable configurations: clear messages, non-zero exit, no stack trace", async (t) => {
  const d = await tempDir(t);
  const missing = await conformance(["--cni-path", REF_BIN]);
  t.is(missing.exitCode, 2);
  t.regex(missing.stderr, /conformance needs --config FILE/);
  const noFile = await conformance(["--config", join(d, "nope.conflist"), "--cni-path", REF_BIN]);
  t.is(noFile.exitCode, 1);
  t.regex(noFile.stderr, /cannot read network configuration .*nope\.conflist/);
  await writeFile(join(d, "bad.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "no-such-plugin" }] }));
  const noPlugin = await conformance(["--config", join(d, "bad.conflist"), "--cni-path", REF_BIN]);
  t.is(noPlugin.exitCode, 1);
  t.regex(noPlugin.stderr, /failed to find plugin "no-such-plugin" in path \[\/usr\/lib\/cni\]/);
  const noPath = await conformance(["--config", join(d, "bad.conflist")]);
  t.is(noPath.exitCode, 2);
  t.regex(noPath.stderr, /CNI_PATH is not set/);
  for (const r of [missing, noFile, noPlugin, noPath]) t.notRegex(r.stderr, /\n\s+at /);
});

/** Gone, or a zombie waiting to be reaped: either way no longer running. */
function stopped(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return / Z /.test(st.slice(st.lastIndexOf(")")));
  } catch {
    return true;
  }
}

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  test(`${signal} in the middle of a plugin call: the plugin is killed and every namespace and store of the run is removed`, async (t) => {
    const d = await tempDir(t);
    const bin = join(d, "bin");
    const state = join(d, "state");
    await mkdir(bin);
    await mkdir(state);
    await writeBrokenPlugins(bin, state);
    const ipam = join(d, "ipam");
    const config = join(d, "slow.conf");
    await writeFile(config, JSON.stringify(bridgeConf("brk-slow", ipam, "10.140.0.0/24")));
    const child = execa(process.execPath, [PODNET, "cni", "conformance", "--config", config, "--cni-path", `${bin}:${OUR_BIN}`, "--timeout", "120"], { env: { PATH: SYSTEM_PATH }, extendEnv: false, reject: false });
    t.teardown(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    const pidFile = join(state, "slow.pid");
    for (let i = 0; i < 200 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    t.true(existsSync(pidFile), "the slow ADD started");
    const runId = /run as "(pncf[0-9a-f]{8})"/.exec(out)![1]!;
    const before = (await execa("ip", ["netns", "list"])).stdout;
    t.regex(before, new RegExp(`^${runId}-node`, "m"), "the run's namespaces exist while it runs");
    child.kill(signal);
    const r = await child;
    t.is(r.exitCode, code);
    t.regex(r.stderr, new RegExp(`${signal}, removing what the run created`));
    t.regex(r.stderr, /interrupted; every namespace and store of the run was removed/);
    t.notRegex((await execa("ip", ["netns", "list"])).stdout, new RegExp(runId));
    t.false(existsSync(join(ipam, runId)));
    const slow = Number(await readFile(pidFile, "utf8"));
    for (let i = 0; i < 50 && !stopped(slow); i++) await new Promise((r) => setTimeout(r, 100));
    t.true(stopped(slow), "the plugin's own child was killed with it");
  });
}

test("a check that throws is reported as a FAIL; an error that escapes the checks still leaves nothing behind", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "lo.conf");
  await writeFile(config, JSON.stringify({ cniVersion: "1.0.0", name: "lo", type: "loopback" }));
  // Thrown once, inside a check: the check FAILs with the runner's error and the run goes on.
  let seen = 0;
  const once = await runConformance({
    configFile: config,
    cniPath: [REF_BIN],
    onCheck: () => {
      if (++seen === 5) throw new Error("boom from a check");
    },
  });
  t.true(once.checks.some((c) => c.status === "FAIL" && c.reason === "runner error: boom from a check"));
  t.deepEqual(await leftovers(once), []);
  // Thrown every time from the fifth on: it escapes the run, which still cleans up.
  let runId = "";
  seen = 0;
  await t.throwsAsync(
    runConformance({
      configFile: config,
      cniPath: [REF_BIN],
      onStart: (s) => (runId = s.runId),
      onCheck: () => {
        if (++seen >= 5) throw new Error("boom from a check");
      },
    }),
    { message: "boom from a check" },
  );
  t.regex(runId, /^pncf/);
  t.notRegex((await execa("ip", ["netns", "list"])).stdout, new RegExp(runId));
});
