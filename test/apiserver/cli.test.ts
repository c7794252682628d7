// `podnet apiserver` as a process: serves its socket, logs to stderr, stops cleanly on SIGTERM
// and keeps its state for the next start; bad flags are clear errors.
import test from "ava";
import { execa } from "execa";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { dir } from "tmp-promise";
import { ApiClient, resourcePath } from "../../apiserver/client.ts";
import type { Node } from "../../apiserver/types.ts";
import { eventually } from "./helpers.ts";

const PODNET = ["--import", "tsx", join(import.meta.dirname, "../../cli/podnet.ts")];

function startProcess(stateDir: string, extra: string[] = []) {
  const p = execa("node", [...PODNET, "apiserver", "--state-dir", stateDir, ...extra], { reject: false, all: true });
  return p;
}

test("podnet apiserver serves on DIR/apiserver.sock, stops on SIGTERM, and keeps its state", async (t) => {
  const tmp = await dir({ unsafeCleanup: true, prefix: "podnet-api-" });
  t.teardown(() => tmp.cleanup());
  const sock = join(tmp.path, "apiserver.sock");
  let proc = startProcess(tmp.path, ["--node-monitor-grace-period", "40s", "--service-cidr", "10.96.0.0/16"]);
  t.teardown(() => {
    proc.kill("SIGKILL");
  });
  const client = new ApiClient({ socketPath: sock });
  await eventually("socket answers", async () => (await client.get<{ major: string }>("/version")).major === "1", 30_000, 100);
  const node = await client.create<Node>(resourcePath("nodes"), { metadata: { name: "n1" } });
  t.is(node.spec?.podCIDR, "10.244.0.0/24");
  proc.kill("SIGTERM");
  const res = await proc;
  t.is(res.exitCode, 0);
  t.regex(String(res.all), /serving on .*apiserver\.sock/);
  t.false(existsSync(sock), "the socket is removed");
  t.true(existsSync(join(tmp.path, "apiserver.db")));

  proc = startProcess(tmp.path);
  await eventually("socket answers again", async () => (await client.list<Node>(resourcePath("nodes"))).items.length === 1, 30_000, 100);
  t.is((await client.get<Node>(resourcePath("nodes", undefined, "n1"))).metadata.uid, node.metadata.uid);
  // A second server on the same state directory is refused.
  const second = await execa("node", [...PODNET, "apiserver", "--state-dir", tmp.path], { reject: false });
  t.is(second.exitCode, 1);
  t.regex(second.stderr, /another API server is already serving/);
  proc.kill("SIGTERM");
  t.is((await proc).exitCode, 0);
});

test("podnet apiserver refuses bad flags with a clear message", async (t) => {
  const none = await execa("node", [...PODNET, "apiserver"], { reject: false });
  t.is(none.exitCode, 2);
  t.regex(none.stderr, /--state-dir is required/);
  const unknown = await execa("node", [...PODNET, "apiserver", "--state-dir", "/tmp/x", "--bogus"], { reject: false });
  t.is(unknown.exitCode, 2);
  t.regex(unknown.stderr, /Unknown option '--bogus'/);
  const tmp = await dir({ unsafeCleanup: true, prefix: "podnet-api-" });
  t.teardown(() => tmp.cleanup());
  const badCidr = await execa("node", [...PODNET, "apiserver", "--state-dir", tmp.path, "--service-cidr", "10.96.0.0"], { reject: false });
  t.is(badCidr.exitCode, 1);
  t.regex(badCidr.stderr, /is not an IPv4 CIDR/);
  t.notRegex(badCidr.stderr, /    at /, "no stack trace");
});
