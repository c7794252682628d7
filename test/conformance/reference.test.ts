// The conformance runner on Debian's reference plugins (containernetworking-plugins 1.1.1, which
// claim spec versions up to 1.0.0). Every FAIL here is a deviation of theirs from the spec they
// claim, documented in docs/conformance.md; this test keeps that table honest.
import test from "ava";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runConformance } from "../../runtime/conformance/runner.ts";
import type { ConformanceReport } from "../../runtime/conformance/report.ts";
import { REF_BIN } from "../helpers/cni.ts";
import { tempDir } from "../runtime-cni/helpers.ts";
import { leftovers } from "./helpers.ts";

const fails = (r: ConformanceReport) => r.checks.filter((c) => c.status === "FAIL").map((c) => `${c.id}${c.plugin ? ` ${c.plugin}` : ""}`).sort();
const reason = (r: ConformanceReport, id: string, plugin?: string) => r.checks.find((c) => c.id === id && c.status === "FAIL" && (plugin === undefined || c.plugin === plugin))?.reason ?? "";


test("reference bridge + host-local + portmap: exactly the documented deviations", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "10-ref.conflist");
  await writeFile(
    config,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "refnet",
      plugins: [
        { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: join(d, "ipam"), ranges: [[{ subnet: "10.88.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    }),
  );
  const r = await runConformance({ configFile: config, cniPath: [REF_BIN] });
  t.is(r.version, "1.0.0");
  t.deepEqual(r.otherVersions, ["0.3.0", "0.3.1", "0.4.0"]);
  t.deepEqual(fails(r), ["check-after-add", "error-invalid-env bridge", "error-invalid-env portmap", "version-echo bridge", "version-echo portmap"]);
  t.regex(reason(r, "version-echo", "bridge"), /asked "0\.3\.0", answered "1\.0\.0"/);
  t.regex(reason(r, "check-after-add"), /portmap CHECK: error 999 "could not check ipv6 dnat: chain CNI-DN-\w+ not found in iptables table nat"/);
  t.regex(reason(r, "error-invalid-env", "bridge"), /CNI_CONTAINERID="-bad id!": error 4 "invalid characters in containerID".*the message does not name CNI_CONTAINERID; CNI_IFNAME of 17 bytes: error 4 "interface name is too long".*does not name CNI_IFNAME/);
  t.notRegex(reason(r, "error-invalid-env", "bridge"), /CNI_COMMAND/, "an unknown CNI_COMMAND is reported properly");
  // GC and STATUS came with spec 1.1.0, which 1.1.1 does not claim: skipped, not failed.
  for (const id of ["gc-runs", "gc-releases-stale", "gc-keeps-valid", "status"]) {
    t.true(r.checks.filter((c) => c.id === id).every((c) => c.status === "SKIP" && /1\.1\.0/.test(c.reason ?? "")), id);
  }
  for (const id of ["add-schema", "add-kernel", "add-prevresult", "del-twice", "del-removes", "del-netns-gone", "del-no-netns", "del-after-failed-add", "add-existing-ifname", "check-detects", "concurrent", "stdout-json", "error-objects", "error-bad-json", "error-missing-env", "error-version", "error-config"]) {
    t.true(r.checks.some((c) => c.id === id && c.status === "PASS"), `${id} passes`);
  }
  t.deepEqual(await leftovers(r, join(d, "ipam")), []);
});

test("reference loopback: exactly the documented deviations", async (t) => {
  const d = await tempDir(t);
  const config = join(d, "99-lo.conf");
  await writeFile(config, JSON.stringify({ cniVersion: "1.0.0", name: "lo", type: "loopback" }));
  const r = await runConformance({ configFile: config, cniPath: [REF_BIN] });
  t.is(r.ifname, "lo");
  t.deepEqual(fails(r), ["add-schema", "add-schema", "add-schema", "error-invalid-env loopback", "version-echo loopback"]);
  const schema = r.checks.filter((c) => c.id === "add-schema" && c.status === "FAIL");
  t.deepEqual(schema.map((c) => c.title.match(/the (\S+) result schema/)![1]), ["0.3.0", "0.3.1", "0.4.0"]);
  for (const c of schema) t.regex(c.reason!, /loopback: ips\[0\]\.version must be "4" or "6"/);
  t.true(r.checks.some((c) => c.id === "add-schema" && c.status === "PASS" && c.title.includes("1.0.0")));
  t.deepEqual(await leftovers(r), []);
});
