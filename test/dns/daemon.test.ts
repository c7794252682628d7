// `podnet dns` as a process in a test netns, fed by a stand-in API server over a unix socket and
// asked by the system resolver (glibc, through `getent`) with a pod-style resolv.conf: search
// list, ndots:5, UDP and TCP (use-vc), truncation, watch updates, /health and /ready, SIGTERM.
import test, { type ExecutionContext } from "ava";
import { execa, type ResultPromise } from "execa";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dir } from "tmp-promise";
import { ROOT } from "../helpers/cni.ts";
import { createNetns, inNetns, type Netns } from "../helpers/netns.ts";
import { FakeApiServer } from "./fake-apiserver.ts";
import { clusterIPService, endpointSlice, externalNameService, headlessService, pod } from "./helpers.ts";

const PODNET = ["--import", "tsx", join(ROOT, "cli/podnet.ts")];
const BIG_IPS = Array.from({ length: 40 }, (_, i) => `10.244.7.${i + 1}`);

interface Daemon {
  ns: Netns;
  api: FakeApiServer;
  tmp: string;
  proc: ResultPromise;
  /** getent with a resolv.conf of our own, bind-mounted in a private mount namespace. */
  getent(db: string, key: string, resolvOptions?: string): Promise<{ code: number; out: string }>;
}

async function startDaemon(t: ExecutionContext): Promise<Daemon> {
  const tmp = await dir({ unsafeCleanup: true });
  t.teardown(() => tmp.cleanup());
  const api = new FakeApiServer();
  const sock = join(tmp.path, "api.sock");
  await api.listen(sock);
  t.teardown(() => api.close());
  api.put("services", clusterIPService("default", "web", ["10.96.0.20"], [{ name: "http", port: 80 }]));
  api.put("services", headlessService("default", "big"));
  api.put("endpointslices", endpointSlice("default", "big", "big-1", BIG_IPS.map((ip) => ({ ip }))));
  api.put("services", headlessService("default", "db"));
  api.put("endpointslices", endpointSlice("default", "db", "db-1", [{ ip: "10.244.1.5", hostname: "db-0" }]));
  api.put("services", externalNameService("default", "ext", "web.default.svc.cluster.local"));
  api.put("pods", pod("default", "p", ["10.244.1.5"]));

  const ns = await createNetns(t, "pdns");
  // A pod-like eth0 with an address: getaddrinfo(AI_ADDRCONFIG) asks nothing when only lo has one.
  await inNetns(ns, "ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
  await inNetns(ns, "ip", ["addr", "add", "10.250.0.1/30", "dev", "eth0"]);
  await inNetns(ns, "ip", ["link", "set", "eth0", "up"]);
  await inNetns(ns, "ip", ["link", "set", "eth0p", "up"]);
  const proc = inNetns(ns, "node", [...PODNET, "dns", "--api", sock, "--listen", "0.0.0.0:53", "--health-port", "8080", "--ttl", "3"], { reject: false, all: true });
  t.teardown(() => {
    proc.kill("SIGKILL");
  });

  const getent = async (db: string, key: string, resolvOptions = "") => {
    const conf = join(tmp.path, `resolv-${Math.random().toString(16).slice(2)}.conf`);
    await writeFile(conf, `nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 attempts:2 timeout:2 ${resolvOptions}\n`);
    // The bind mount lives and dies with this private mount namespace: the host's file is untouched.
    const r = await inNetns(ns, "unshare", ["--mount", "--propagation", "private", "--", "sh", "-c", 'mount --bind "$1" /etc/resolv.conf && exec getent "$2" "$3"', "sh", conf, db, key], { reject: false });
    return { code: r.exitCode ?? -1, out: String(r.stdout) };
  };
  // Ready once /ready says so (the informers listed everything).
  for (let i = 0; ; i++) {
    const r = await inNetns(ns, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8080/ready"], { reject: false });
    if (String(r.stdout) === "200") break;
    if (proc.exitCode !== null || i > 150) throw new Error(`podnet dns never became ready:\n${(await proc).all}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return { ns, api, tmp: tmp.path, proc, getent };
}

/** The IPv4 addresses of `getent ahostsv4` output. */
function v4(out: string): string[] {
  return [...new Set(out.split("\n").filter(Boolean).map((l) => l.split(/\s+/)[0]))].sort();
}

/** Polls until `check` holds (watch events arrive asynchronously); fails the test after ~15 s. */
async function eventually(t: ExecutionContext, what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 75; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.fail(`never saw: ${what}`);
}

test("the daemon in a netns answers glibc over UDP and TCP, follows watch events, and stops on SIGTERM", async (t) => {
  const d = await startDaemon(t);
  const health = await inNetns(d.ns, "curl", ["-s", "http://127.0.0.1:8080/health"]);
  t.is(String(health.stdout), "OK");

  // Short names through the search list (the NXDOMAINs of the expansions before them included).
  const web = await d.getent("ahostsv4", "web");
  t.is(web.code, 0);
  t.deepEqual(v4(web.out), ["10.96.0.20"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "web.default")).out), ["10.96.0.20"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "web.default.svc.cluster.local.")).out), ["10.96.0.20"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "db-0.db")).out), ["10.244.1.5"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "10-244-1-5.default.pod.cluster.local")).out), ["10.244.1.5"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "ext")).out), ["10.96.0.20"]); // ExternalName -> CNAME -> A
  t.is((await d.getent("ahostsv4", "nope")).code, 2); // not found

  // Reverse lookup (PTR).
  t.regex((await d.getent("hosts", "10.96.0.20")).out, /^10\.96\.0\.20\s+web\.default\.svc\.cluster\.local$/m);

  // 40 A records do not fit 512 bytes: glibc gets TC over UDP and asks again over TCP.
  t.deepEqual(v4((await d.getent("ahostsv4", "big")).out), BIG_IPS.slice().sort());
  // TCP from the start.
  t.deepEqual(v4((await d.getent("ahostsv4", "web", "use-vc")).out), ["10.96.0.20"]);
  t.deepEqual(v4((await d.getent("ahostsv4", "big", "use-vc")).out), BIG_IPS.slice().sort());

  // Watch events: a new Service appears, a deleted one disappears.
  d.api.put("services", clusterIPService("default", "late", ["10.96.0.99"]));
  await eventually(t, "late.default resolves", async () => v4((await d.getent("ahostsv4", "late")).out).join() === "10.96.0.99");
  d.api.remove("services", clusterIPService("default", "web", []));
  await eventually(t, "web.default is gone", async () => (await d.getent("ahostsv4", "web")).code === 2);
  // An endpoint leaving the headless Service.
  d.api.put("endpointslices", endpointSlice("default", "big", "big-1", BIG_IPS.slice(1).map((ip) => ({ ip }))));
  await eventually(t, "big lost one endpoint", async () => v4((await d.getent("ahostsv4", "big")).out).length === BIG_IPS.length - 1);

  d.proc.kill("SIGTERM");
  const res = await d.proc;
  t.is(res.exitCode, 0);
  t.regex(String(res.all), /podnet dns: synced: 4 services, 2 endpoint slices, 1 pods/);
  t.regex(String(res.all), /podnet dns: stopped/);
});

test("a second daemon on a taken port, and bad options, fail with one clear line", async (t) => {
  const d = await startDaemon(t);
  const second = await inNetns(d.ns, "node", [...PODNET, "dns", "--api", join(d.tmp, "api.sock"), "--listen", "0.0.0.0:53"], { reject: false });
  t.is(second.exitCode, 1);
  t.is(String(second.stderr).trim(), "podnet: cannot listen on 0.0.0.0:53: EADDRINUSE");

  for (const [args, message] of [
    [["--ttl", "soon"], /--ttl: "soon" is not a number of seconds/],
    [["--listen", "localhost:53"], /--listen: "localhost:53" is not HOST:PORT/],
    [["--upstream", "8.8.8.8", "--no-upstream"], /exclude each other/],
    [["--upstream", "dns.google"], /--upstream: upstream "dns.google" is not IP\[:PORT\]/],
    [["--domain", "bad_domain!"], /--domain: "bad_domain!" is not a DNS name/],
    [["--bogus"], /Unknown option '--bogus'/],
  ] as const) {
    const r = await execa("node", [...PODNET, "dns", ...args], { reject: false });
    t.is(r.exitCode, 2, args.join(" "));
    t.regex(String(r.stderr), message, args.join(" "));
    t.notRegex(String(r.stderr), /\n\s+at /, "no stack trace");
  }
  const help = await execa("node", [...PODNET, "dns", "--help"]);
  t.regex(String(help.stdout), /--upstream ADDR/);
});
