// Our plugins pass every check of the conformance runner: no FAIL, and the checks that need a
// 1.1.0 plugin (GC, STATUS) really run instead of being skipped.
import test from "ava";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runConformance } from "../../runtime/conformance/runner.ts";
import type { ConformanceReport } from "../../runtime/conformance/report.ts";
import { OUR_BIN, OUR_NODE_BIN } from "../helpers/cni.ts";
import { tempDir } from "../runtime-cni/helpers.ts";
import { leftovers } from "./helpers.ts";

const failures = (r: ConformanceReport) => r.checks.filter((c) => c.status === "FAIL").map((c) => `${c.id} ${c.plugin ?? ""}: ${c.reason}`);
const statuses = (r: ConformanceReport, id: string) => r.checks.filter((c) => c.id === id).map((c) => c.status);

for (const [flavour, dir] of [["multicall", OUR_BIN], ["node bundle", OUR_NODE_BIN]] as const) {
  test(`loopback (${flavour}) at 1.1.0: all PASS, GC and STATUS included`, async (t) => {
    const d = await tempDir(t);
    const config = join(d, "99-loopback.conf");
    await writeFile(config, JSON.stringify({ cniVersion: "1.1.0", name: "lo", type: "loopback" }));
    const r = await runConformance({ configFile: config, cniPath: [dir] });
    t.deepEqual(failures(r), []);
    t.is(r.version, "1.1.0");
    t.deepEqual(r.otherVersions, ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]);
    for (const id of ["version-echo", "error-invalid-env", "gc-runs", "gc-keeps-valid", "status", "check-after-add", "del-twice", "del-after-failed-add"]) t.deepEqual(statuses(r, id), ["PASS"], id);
    t.deepEqual(await leftovers(r), []);
  });
}

test("bridge + host-local + portmap (ours) at 1.1.0: all PASS, with GC releasing stale state", async (t) => {
  const d = await tempDir(t);
  const ipam = join(d, "ipam");
  const config = join(d, "10-pods.conflist");
  await writeFile(
    config,
    JSON.stringify({
      cniVersion: "1.1.0",
      name: "pods",
      plugins: [
        { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: ipam, ranges: [[{ subnet: "10.150.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
        { type: "portmap", capabilities: { portMappings: true }, snat: true },
      ],
    }),
  );
  const r = await runConformance({ configFile: config, cniPath: [OUR_BIN] });
  t.deepEqual(failures(r), []);
  t.is(r.version, "1.1.0");
  for (const id of ["add-schema", "add-kernel", "add-prevresult", "check-after-add", "check-detects", "add-existing-ifname", "del-twice", "del-removes", "del-netns-gone", "del-no-netns", "del-after-failed-add", "concurrent", "gc-runs", "gc-releases-stale", "gc-keeps-valid"]) {
    t.true(statuses(r, id).length > 0 && statuses(r, id).every((s) => s === "PASS"), `${id}: ${statuses(r, id).join(" ")}`);
  }
  t.deepEqual(statuses(r, "status"), ["PASS", "PASS"]);
  t.deepEqual(r.checks.filter((c) => c.status === "SKIP"), []);
  t.deepEqual(await leftovers(r, ipam), []);
});
