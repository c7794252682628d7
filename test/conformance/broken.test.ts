// The conformance runner against deliberately broken plugins: our bridge wrapped by a script
// that breaks one thing at a time. The unbroken wrapper passes every check; each defect is
// caught by the check that covers it; and between them the defects make every check fail once,
// so no check passes whatever a plugin does.
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CHECK_IDS } from "../../runtime/conformance/checks.ts";
import { runConformance } from "../../runtime/conformance/runner.ts";
import type { ConformanceReport } from "../../runtime/conformance/report.ts";
import { OUR_BIN } from "../helpers/cni.ts";
import { tempDir } from "../runtime-cni/helpers.ts";
import { bridgeConf, leftovers, writeBrokenPlugins } from "./helpers.ts";

async function run(t: Parameters<typeof tempDir>[0], plugins: Record<string, unknown>[], only?: string[]): Promise<ConformanceReport> {
  const d = await tempDir(t);
  const bin = join(d, "bin");
  const state = join(d, "state");
  await mkdir(bin);
  await mkdir(state);
  await writeBrokenPlugins(bin, state);
  const ipam = join(d, "ipam");
  const file = join(d, "net.conflist");
  await writeFile(file, JSON.stringify({ cniVersion: "1.1.0", name: "brk", plugins }).replaceAll("__IPAM__", ipam));
  const r = await runConformance({ configFile: file, cniPath: [bin, OUR_BIN], ...(only ? { only } : {}) });
  t.deepEqual(await leftovers(r, ipam), [], "the run removed everything it created");
  return r;
}

const bridge = (type: string, subnet: number) => {
  const { cniVersion: _v, name: _n, ...conf } = bridgeConf(type, "__IPAM__", `10.${100 + subnet}.0.0/24`);
  return conf;
};
const statusOf = (r: ConformanceReport, id: string) => r.checks.filter((c) => c.id === id).map((c) => c.status);

test("baseline: our bridge behind the wrapper, unbroken, passes every check", async (t) => {
  const r = await run(t, [bridge("brk-none", 0)]);
  t.deepEqual(r.checks.filter((c) => c.status === "FAIL"), []);
  t.deepEqual(r.checks.filter((c) => c.status === "SKIP").map((c) => c.id), ["add-prevresult"], "only the chaining check, for a single plugin");
  for (const id of CHECK_IDS.filter((id) => id !== "add-prevresult")) t.true(statusOf(r, id).length > 0 && statusOf(r, id).every((s) => s === "PASS"), id);
});

// mode, the checks that must catch it, what the first one says.
const cases: [mode: string, caughtBy: string[], why: RegExp][] = [
  ["brk-versionbad", ["version-shape"], /supportedVersions undefined is not a non-empty list/],
  ["brk-versionlist", ["version-lists-config"], /supports \[0\.3\.0 0\.3\.1 0\.4\.0\]/],
  ["brk-versionstatic", ["version-echo"], /asked "0\.3\.0", answered "1\.1\.0"/],
  ["brk-nonjson", ["add-schema", "stdout-json"], /stdout is not JSON: "OK \{/],
  ["brk-version", ["add-schema"], /cniVersion is "1\.0\.0", expected "1\.1\.0"/],
  ["brk-lie", ["add-kernel"], /address 10\.\d+\.0\.250\/24 is not on eth0/],
  ["brk-checkfail", ["check-after-add"], /brk-checkfail CHECK: error 999 "not ready"/],
  ["brk-checknoop", ["check-detects"], /CHECK succeeded although eth0 was deleted from the container/],
  ["brk-delnoop", ["del-removes"], /eth0 is still in the container after DEL/],
  ["brk-deltwice", ["del-twice"], /second DEL: brk-deltwice error 3 "container already deleted"/],
  ["brk-delneedsnetns", ["del-netns-gone", "del-no-netns"], /brk-delneedsnetns DEL: error 999 "netns not found"/],
  ["brk-delneedsprev", ["del-after-failed-add"], /brk-delneedsprev DEL: error 999 "prevResult missing"/],
  ["brk-ifname", ["add-existing-ifname"], /ADD succeeded although eth0 already existed in the container/],
  ["brk-plainerror", ["error-bad-json", "error-objects"], /failed without a CNI error object on stdout \(exit 1, stdout "error: /],
  ["brk-envdefault", ["error-missing-env"], /ADD without CNI_CONTAINERID: succeeded/],
  ["brk-idok", ["error-invalid-env"], /CNI_CONTAINERID="-bad id!": succeeded/],
  ["brk-anyversion", ["error-version"], /succeeded .* instead of failing/],
  ["brk-noname", ["error-config"], /succeeded .* instead of failing/],
  ["brk-serial", ["concurrent"], /error 11 "busy: another ADD is running"/],
  ["brk-gcfail", ["gc-runs"], /brk-gcfail: error 999 "gc failed"/],
  ["brk-gcnoop", ["gc-releases-stale"], /still there after GC: /],
  ["brk-gcall", ["gc-keeps-valid"], /removed: /],
  ["brk-statusfail", ["status"], /reported an error although ADD works: error 50 "not available"/],
  ["brk-stdoutlog", ["stdout-json"], /stdout "deleting container pncf\w+-c\d+" is not one JSON document/],
];

cases.forEach(([mode, caughtBy, why], i) => {
  test(`${mode} is caught by ${caughtBy.join(" and ")}`, async (t) => {
    const r = await run(t, [bridge(mode, i + 1)], caughtBy);
    for (const id of caughtBy) t.true(statusOf(r, id).includes("FAIL"), `${id} fails for ${mode}: ${statusOf(r, id).join(" ")}`);
    t.regex(r.checks.find((c) => c.id === caughtBy[0] && c.status === "FAIL")?.reason ?? "", why);
  });
});

test("a chained plugin that drops prevResult is caught by add-prevresult", async (t) => {
  const r = await run(t, [bridge("bridge", 60), { type: "brk-dropprev" }], ["add-prevresult"]);
  const prev = r.checks.filter((c) => c.id === "add-prevresult");
  t.deepEqual(prev.map((c) => [c.plugin, c.status]), [["brk-dropprev", "FAIL"]]);
  t.regex(prev[0]!.reason!, /its result dropped interface cni0, interface veth\w+, interface eth0, ip 10\.160\.0\.\d+\/24 of prevResult/);
});

test("between them, the broken plugins make every check fail", (t) => {
  const caught = new Set([...cases.flatMap(([, ids]) => ids), "add-prevresult"]);
  t.deepEqual(CHECK_IDS.filter((id) => !caught.has(id)), []);
});
