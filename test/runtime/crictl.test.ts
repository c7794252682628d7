// `podnet crictl` against a real runtime daemon: crictl's tables, -o json, id prefixes, exec
// exit codes, logs, stopp/rmp.
import test from "ava";
import { execa } from "execa";
import { ROOT } from "../helpers/cni.ts";
import { podnetSrc, startRuntimeNode } from "./harness.ts";

test("crictl: pods, ps, inspectp, inspect, exec, logs, stop, rm, stopp, rmp", async (t) => {
  const rn = await startRuntimeNode(t);
  const web = await rn.runPod({ metadata: { name: "web", namespace: "shop", attempt: 2 }, labels: { app: "web" } });
  const db = await rn.runPod({ metadata: { name: "db", namespace: "data" } });
  const nginx = await rn.runContainer(web.id, "nginx", ["sh", "-c", "echo one; echo two; echo three >&2; sleep 1000"], { image: { image: "nginx:1.27" } });
  const done = await rn.runContainer(db.id, "init", ["true"], { image: { image: "busybox" } });
  await rn.waitForLog(nginx.id, "three");

  // pods: a table like crictl's, newest first.
  const pods = await rn.crictl("pods");
  t.is(pods.code, 0, pods.stderr);
  const [header, ...rows] = pods.stdout.trimEnd().split("\n");
  t.deepEqual(header!.split(/\s{2,}/), ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"]);
  t.is(rows.length, 2);
  t.deepEqual(rows[0]!.split(/\s{2,}/).filter((_, i) => i !== 1), [db.id.slice(0, 13), "Ready", "db", "data", "0"]);
  t.deepEqual(rows[1]!.split(/\s{2,}/).filter((_, i) => i !== 1), [web.id.slice(0, 13), "Ready", "web", "shop", "2"]);
  t.regex(rows[0]!.split(/\s{2,}/)[1]!, /ago$/);
  t.deepEqual((await rn.crictl("pods", "-q")).stdout.trim().split("\n"), [db.id, web.id]);
  t.deepEqual((await rn.crictl("pods", "-q", "--namespace", "shop")).stdout.trim(), web.id);
  t.deepEqual((await rn.crictl("pods", "-q", "--label", "app=web")).stdout.trim(), web.id);
  t.deepEqual((await rn.crictl("pods", "-q", "--name", "^d")).stdout.trim(), db.id);
  const podsJson = JSON.parse((await rn.crictl("pods", "-o", "json")).stdout);
  t.deepEqual(podsJson.items.map((p: any) => [p.id, p.state, p.metadata.name]), [
    [db.id, "SANDBOX_READY", "db"],
    [web.id, "SANDBOX_READY", "web"],
  ]);

  // ps: running only by default, -a for all.
  const ps = await rn.crictl("ps");
  const [psHeader, ...psRows] = ps.stdout.trimEnd().split("\n");
  t.deepEqual(psHeader!.split(/\s{2,}/), ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"]);
  t.is(psRows.length, 1);
  t.deepEqual(psRows[0]!.split(/\s{2,}/).filter((_, i) => i !== 2), [nginx.id.slice(0, 13), "nginx:1.27", "Running", "nginx", "0", web.id.slice(0, 13), "web"]);
  const all = (await rn.crictl("ps", "-a", "-q")).stdout.trim().split("\n");
  t.deepEqual(all.sort(), [nginx.id, done.id].sort());
  t.is((await rn.crictl("ps", "-a", "-q", "--pod", db.id.slice(0, 6))).stdout.trim(), done.id);
  t.is((await rn.crictl("ps", "-q", "--state", "exited")).stdout.trim(), done.id);
  const psJson = JSON.parse((await rn.crictl("ps", "-a", "-o", "json")).stdout);
  t.is(psJson.containers.length, 2);

  // inspectp / inspect with short prefixes.
  const ip = JSON.parse((await rn.crictl("inspectp", web.id.slice(0, 5))).stdout);
  t.is(ip.status.id, web.id);
  t.is(ip.status.state, "SANDBOX_READY");
  t.is(ip.info.netnsPath, web.netnsPath);
  t.is(ip.info.pid, web.holder);
  const ic = JSON.parse((await rn.crictl("inspect", nginx.id.slice(0, 5))).stdout);
  t.is(ic.status.id, nginx.id);
  t.is(ic.status.image.image, "nginx:1.27");
  t.is(ic.info.pid, nginx.pid);
  const missing = await rn.crictl("inspect", "0123456789abcdef");
  t.is(missing.code, 1);
  t.regex(missing.stderr, /NotFound: container 0123456789abcdef not found/);

  // exec: the command's output and exit code are crictl's; flags after the id belong to it.
  const ex = await rn.crictl("exec", nginx.id.slice(0, 8), "sh", "-c", "echo hi; echo oops >&2; exit 3");
  t.deepEqual([ex.code, ex.stdout, ex.stderr], [3, "hi\n", "oops\n"]);
  const ls = await rn.crictl("exec", nginx.id, "--", "ls", "-d", "/tmp");
  t.deepEqual([ls.code, ls.stdout], [0, "/tmp\n"]);
  const [cmd, args] = podnetSrc("crictl", "--state-dir", rn.stateDir, "exec", "-i", nginx.id, "wc", "-l");
  const piped = await execa(cmd, args, { cwd: ROOT, input: "a\nb\nc\n" });
  t.is(String(piped.stdout).trim(), "3");
  const stopped = await rn.crictl("exec", done.id, "true");
  t.is(stopped.code, 1);
  t.regex(stopped.stderr, /FailedPrecondition: container .* is not running/);

  // logs: the text, stderr on stderr, --tail, -t.
  const logs = await rn.crictl("logs", nginx.id.slice(0, 7));
  t.deepEqual([logs.stdout, logs.stderr], ["one\ntwo\n", "three\n"]);
  t.is((await rn.crictl("logs", "--tail", "2", nginx.id)).stdout, "two\n");
  t.regex((await rn.crictl("logs", "-t", nginx.id)).stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z one\n\S+ two\n$/);

  // The endpoint can be given as a unix:// URL too.
  const viaEndpoint = await execa(process.execPath, ["--import", "tsx", "cli/podnet.ts", "crictl", "-r", `unix://${rn.client.socketPath}`, "pods", "-q"], { cwd: ROOT });
  t.is(String(viaEndpoint.stdout).trim().split("\n").length, 2);
  const noEndpoint = await execa(process.execPath, ["--import", "tsx", "cli/podnet.ts", "crictl", "pods"], { cwd: ROOT, reject: false, env: { CONTAINER_RUNTIME_ENDPOINT: "" } });
  t.is(noEndpoint.exitCode, 2);
  t.regex(String(noEndpoint.stderr), /no runtime endpoint/);

  // stop and rm for containers; stopp and rmp for sandboxes.
  t.is((await rn.crictl("rm", nginx.id)).code, 1, "rm refuses a running container without -f");
  t.is((await rn.crictl("stop", "-t", "1", nginx.id.slice(0, 9))).stdout.trim(), nginx.id);
  t.is((await rn.crictl("rm", nginx.id.slice(0, 9))).stdout.trim(), nginx.id);
  const rmpReady = await rn.crictl("rmp", db.id);
  t.is(rmpReady.code, 1);
  t.regex(rmpReady.stderr, /is running, stop it first or use -f/);
  const stopp = await rn.crictl("stopp", web.id.slice(0, 6));
  t.deepEqual([stopp.code, stopp.stdout], [0, `Stopped sandbox ${web.id}\n`]);
  t.regex((await rn.crictl("pods")).stdout, new RegExp(`${web.id.slice(0, 13)}\\s+.*ago\\s+NotReady\\s+web`));
  t.is((await rn.crictl("rmp", web.id.slice(0, 6))).stdout, `Removed sandbox ${web.id}\n`);
  t.is((await rn.crictl("rmp", "-f", db.id)).stdout, `Removed sandbox ${db.id}\n`);
  t.is((await rn.crictl("pods", "-q")).stdout, "");
  await rn.removeAllAndCheck(t);
});
