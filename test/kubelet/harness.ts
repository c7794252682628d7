// A throwaway kubelet node for tests: a node netns (with eth0 to an "outside" netns), a temp dir,
// the runtime daemon and the kubelet running inside the node netns from dist/podnet.mjs (run
// `node scripts/build.mjs cli` first), and a teardown that removes every pod, process, netns and
// file it made even when the test failed. Helpers read pod status from the kubelet's status
// socket (standalone) and look for anything a pod could leak.
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { dir as tmpDir } from "tmp-promise";
import type { Pod } from "../../apiserver/types.ts";
import { RuntimeClient } from "../../runtime/cri/client.ts";
import { OUR_BIN, REF_BIN, ROOT } from "../helpers/cni.ts";
import { createNetns, inNetns, removeNetns, uniqueName, type Netns } from "../helpers/netns.ts";
import { PODNET } from "../helpers/podnet.ts";

/** Our plugins once every one the node config needs is built; the reference plugins until then. */
export function defaultCniBin(): string {
  return ["bridge", "host-local", "portmap", "loopback"].every((p) => existsSync(join(OUR_BIN, p))) ? OUR_BIN : REF_BIN;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, ms = 30_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ""}`);
    await sleep(every);
  }
}

export interface NodeOptions {
  podCIDR?: string;
  /** The node's eth0 address (a /24 shared with the "outside" netns at .1). */
  nodeIP?: string;
  cniBin?: string;
  kubeletArgs?: string[];
  /** The API server's socket: the kubelet joins it (and takes its podCIDR from its Node unless podCIDR is given). */
  api?: string;
  /** Start the runtime and kubelet right away (default true). */
  start?: boolean;
}

export interface Leftovers {
  netns: string[];
  veths: string[];
  ipReservations: string[];
  cniCache: string[];
  nftMentions: string[];
  processes: number[];
  runtimeState: string[];
}

function httpGet(socketPath: string, path: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ code: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

export class KubeletNode {
  readonly name: string;
  readonly stateDir: string;
  readonly manifests: string;
  readonly prefix: string;
  readonly runtime: RuntimeClient;
  readonly nodeIP: string;
  readonly podCIDR?: string;
  readonly api?: string;
  readonly cniBin: string;
  /** A marker in every container's environment (manifests get it through env), to find their processes. */
  readonly mark = uniqueName("mk");
  runtimeProc?: ChildProcess;
  kubeletProc?: ChildProcess;
  kubeletArgs: string[];
  /** Sandbox ids and holder pids seen, for the leak checks. */
  readonly sandboxIds = new Set<string>();
  readonly holderPids = new Set<number>();

  constructor(
    readonly node: Netns,
    readonly outside: Netns,
    readonly base: string,
    opts: NodeOptions,
  ) {
    this.name = uniqueName("node-");
    this.stateDir = join(base, "state");
    this.manifests = join(base, "manifests");
    this.prefix = `${uniqueName("pk")}-`;
    this.runtime = RuntimeClient.forStateDir(this.stateDir);
    this.nodeIP = opts.nodeIP ?? "198.19.7.2";
    this.api = opts.api;
    this.podCIDR = opts.podCIDR ?? (opts.api ? undefined : "10.250.7.0/24");
    this.cniBin = opts.cniBin ?? defaultCniBin();
    this.kubeletArgs = opts.kubeletArgs ?? [];
    mkdirSync(this.manifests, { recursive: true });
  }

  get statusSocket(): string {
    return join(this.stateDir, "kubelet.sock");
  }
  get ipamDir(): string {
    return join(this.stateDir, "cni", "networks", "podnet");
  }
  get kubeletLog(): string {
    return join(this.base, "kubelet.log");
  }
  get runtimeLog(): string {
    return join(this.base, "runtime.log");
  }

  logs(): string {
    const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
    return `--- kubelet ---\n${read(this.kubeletLog).slice(-6000)}\n--- runtime ---\n${read(this.runtimeLog).slice(-3000)}`;
  }

  private spawnIn(args: string[], logFile: string): ChildProcess {
    const out = openSync(logFile, "a");
    const p = spawn("nsenter", [`--net=${this.node.path}`, "--", process.execPath, PODNET, ...args], { cwd: ROOT, stdio: ["ignore", out, out] });
    closeSync(out);
    return p;
  }

  async startRuntime(): Promise<void> {
    this.runtimeProc = this.spawnIn(["runtime", "--state-dir", this.stateDir, "--netns-prefix", this.prefix], this.runtimeLog);
    await eventually("the runtime", async () => (await this.runtime.version()) && true, 30_000);
  }

  kubeletArgv(): string[] {
    const source = this.api ? ["--api", this.api] : [];
    const cidr = this.podCIDR ? ["--pod-cidr", this.podCIDR] : [];
    return ["kubelet", "--node", this.name, "--state-dir", this.stateDir, "--pod-manifest-path", this.manifests, ...source, ...cidr, "--node-ip", this.nodeIP, "--cni-bin-dir", this.cniBin, "--log-file", this.kubeletLog, ...this.kubeletArgs];
  }

  async startKubelet(extra: string[] = []): Promise<void> {
    this.kubeletProc = this.spawnIn([...this.kubeletArgv(), ...extra], join(this.base, "kubelet.out"));
    await eventually("the kubelet status endpoint", async () => (await this.healthz()) === 200, 30_000);
  }

  async healthz(): Promise<number> {
    return (await httpGet(this.statusSocket, "/healthz")).code;
  }

  private static async killProc(p: ChildProcess | undefined, sig: NodeJS.Signals): Promise<void> {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill(sig);
    await gone;
  }

  kill9Kubelet(): Promise<void> {
    return KubeletNode.killProc(this.kubeletProc, "SIGKILL");
  }
  stopKubelet(): Promise<void> {
    return KubeletNode.killProc(this.kubeletProc, "SIGTERM");
  }
  kill9Runtime(): Promise<void> {
    return KubeletNode.killProc(this.runtimeProc, "SIGKILL");
  }

  /** The kubelet's pods with their status (GET /pods on its socket). */
  async pods(): Promise<Pod[]> {
    const r = await httpGet(this.statusSocket, "/pods");
    if (r.code !== 200) throw new Error(`GET /pods: ${r.code} ${r.body}`);
    return (JSON.parse(r.body) as { items: Pod[] }).items;
  }

  /** A static pod's full name (the kubelet appends the node name). */
  podName(name: string): string {
    return `${name}-${this.name}`;
  }

  async pod(name: string): Promise<Pod | undefined> {
    const full = this.podName(name);
    return (await this.pods()).find((p) => p.metadata.name === full);
  }

  async waitPod(name: string, what: string, pred: (p: Pod) => boolean, ms = 30_000): Promise<Pod> {
    try {
      return await eventually(`pod ${name}: ${what}`, async () => {
        const p = await this.pod(name);
        return p && pred(p) ? p : undefined;
      }, ms);
    } catch (e) {
      const p = await this.pod(name).catch(() => undefined);
      throw new Error(`${(e as Error).message}\nstatus: ${JSON.stringify(p?.status)}\n${this.logs()}`);
    }
  }

  waitRunning(name: string, ms = 30_000): Promise<Pod> {
    return this.waitPod(name, "Running and Ready", (p) => p.status?.phase === "Running" && !!p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"), ms);
  }

  /** Writes a static pod manifest; the marker env var goes into every container. */
  writeManifest(name: string, spec: Pod["spec"], extra: Partial<Pod["metadata"]> = {}): void {
    const s = structuredClone(spec);
    for (const c of [...s.containers, ...(s.initContainers ?? [])]) c.env = [...(c.env ?? []), { name: "PODNET_TEST_MARK", value: this.mark }];
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "default", ...extra }, spec: s };
    const tmp = join(this.manifests, `.${name}.tmp`);
    writeFileSync(tmp, JSON.stringify(pod, null, 2));
    // Renamed into place so the kubelet never reads half a file.
    renameSync(tmp, join(this.manifests, `${name}.json`));
  }

  removeManifest(name: string): void {
    rmSync(join(this.manifests, `${name}.json`), { force: true });
  }

  /** The running container `container` of pod `name` (runtime ids), via the kubelet's labels. */
  async containerId(name: string, container: string): Promise<string> {
    return this.containerIdOf(this.podName(name), container);
  }

  /** Like containerId, for a pod by its full name (API pods have no node suffix). */
  async containerIdOf(full: string, container: string): Promise<string> {
    const list = await this.runtime.listContainers({ filter: { labelSelector: { "io.kubernetes.pod.name": full, "io.kubernetes.container.name": container }, state: { state: "CONTAINER_RUNNING" } } });
    const c = list.containers[0];
    if (!c) throw new Error(`no running container ${container} in pod ${full}`);
    return c.id;
  }

  async exec(name: string, container: string, cmd: string[], timeout = 20): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return this.runtime.execSync({ containerId: await this.containerId(name, container), cmd, timeout });
  }

  async execIn(full: string, container: string, cmd: string[], timeout = 20): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return this.runtime.execSync({ containerId: await this.containerIdOf(full, container), cmd, timeout });
  }

  /** Records the sandboxes (and their holders) of the pods that exist now, for the leak checks. */
  async recordSandboxes(): Promise<void> {
    for (const s of (await this.runtime.listPodSandbox({})).items) {
      this.sandboxIds.add(s.id);
      try {
        const st = await this.runtime.podSandboxStatus({ podSandboxId: s.id, verbose: true });
        if (st.info?.pid) this.holderPids.add(st.info.pid);
      } catch {
        /* gone */
      }
    }
  }

  /** The IPs host-local has reserved on this node (its store's files, but for the lock and the cursor). */
  ipReservations(): string[] {
    return existsSync(this.ipamDir) ? readdirSync(this.ipamDir).filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip")) : [];
  }

  async leftovers(): Promise<Leftovers> {
    const netns = readdirSync("/run/netns").filter((n) => n.startsWith(this.prefix));
    const links = JSON.parse(String((await inNetns(this.node, "ip", ["-j", "link", "show", "type", "veth"])).stdout) || "[]") as { ifname: string }[];
    const veths = links.map((l) => l.ifname).filter((n) => n !== "eth0");
    const ipReservations = this.ipReservations();
    const cacheDir = join(this.stateDir, "cni", "cache", "results");
    const cniCache = existsSync(cacheDir) ? readdirSync(cacheDir) : [];
    const ruleset = String((await inNetns(this.node, "/usr/sbin/nft", ["list", "ruleset"])).stdout);
    const nftMentions = [...this.sandboxIds].filter((id) => ruleset.includes(id) || ruleset.includes(id.slice(0, 12)));
    if (/CNI-DN-/.test(ruleset)) nftMentions.push("CNI-DN- chain");
    const processes: number[] = [];
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const pid = Number(p);
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
        if (this.holderPids.has(pid)) {
          processes.push(pid);
          continue;
        }
        const env = readFileSync(`/proc/${pid}/environ`, "utf8");
        if (env.includes(`PODNET_TEST_MARK=${this.mark}`)) processes.push(pid);
        else if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(join(this.stateDir, "containers"))) processes.push(pid);
      } catch {
        /* gone */
      }
    }
    const runtimeState = ["sandboxes", "containers"].flatMap((d) => {
      const p = join(this.stateDir, d);
      return existsSync(p) ? readdirSync(p).map((f) => `${d}/${f}`) : [];
    });
    return { netns, veths, ipReservations, cniCache, nftMentions, processes, runtimeState };
  }

  async assertNoLeaks(t: ExecutionContext, what = "nothing is left"): Promise<void> {
    let left = await this.leftovers();
    const empty = (l: Leftovers) => Object.values(l).every((v) => v.length === 0);
    const end = Date.now() + 20_000;
    while (!empty(left) && Date.now() < end) {
      await sleep(250);
      left = await this.leftovers();
    }
    if (!empty(left)) t.log(this.logs());
    t.deepEqual(left, { netns: [], veths: [], ipReservations: [], cniCache: [], nftMentions: [], processes: [], runtimeState: [] }, what);
  }

  /** Teardown: stop the kubelet, remove every sandbox through the runtime, kill what is left. */
  async destroy(): Promise<void> {
    await this.kill9Kubelet();
    if (this.runtimeProc && this.runtimeProc.exitCode === null && this.runtimeProc.signalCode === null) {
      try {
        const items = (await this.runtime.listPodSandbox({})).items;
        await Promise.all(items.map((s) => this.runtime.removePodSandbox({ podSandboxId: s.id }).catch(() => undefined)));
      } catch {
        /* broken runtime: the sweep below */
      }
    }
    await this.kill9Runtime();
    const left = await this.leftovers().catch(() => undefined);
    for (const pid of left?.processes ?? []) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    for (const n of readdirSync("/run/netns").filter((x) => x.startsWith(this.prefix))) await removeNetns(n);
  }
}

/** A node with its netns, eth0 (to an "outside" netns at .1), temp dir and daemons, all removed at the end. */
export async function startNode(t: ExecutionContext, opts: NodeOptions = {}): Promise<KubeletNode> {
  const node = await createNetns(t, "pkn");
  const outside = await createNetns(t, "pko");
  const tmp = await tmpDir({ prefix: "pnkl-", unsafeCleanup: true });
  const kn = new KubeletNode(node, outside, tmp.path, opts);
  t.teardown(async () => {
    await kn.destroy();
    await tmp.cleanup();
  });
  const ip = kn.nodeIP;
  const gw = ip.split(".").slice(0, 3).join(".") + ".1";
  await execa("ip", ["-n", node.name, "link", "add", "eth0", "type", "veth", "peer", "name", "up0", "netns", outside.name]);
  await execa("ip", ["-n", node.name, "addr", "add", `${ip}/24`, "dev", "eth0"]);
  await execa("ip", ["-n", outside.name, "addr", "add", `${gw}/24`, "dev", "up0"]);
  await execa("ip", ["-n", node.name, "link", "set", "eth0", "up"]);
  await execa("ip", ["-n", outside.name, "link", "set", "up0", "up"]);
  await execa("ip", ["-n", node.name, "route", "add", "default", "via", gw]);
  await inNetns(node, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  if (opts.start !== false) {
    await kn.startRuntime();
    await kn.startKubelet();
  }
  return kn;
}

/** A `node -e` HTTP server on PORT answering its hostname and the client's address. */
export function httpServer(port: number): string[] {
  return ["node", "-e", `require("http").createServer((q,s)=>s.end(require("os").hostname()+" "+q.socket.remoteAddress.replace(/^::ffff:/,""))).listen(${port},"0.0.0.0")`];
}

/** A `node -e` client printing the body of GET http://HOST:PORT/ (exit 1 on error). */
export function httpClient(host: string, port: number): string[] {
  return ["node", "-e", `require("http").get("http://${host}:${port}/",r=>{let b="";r.on("data",d=>b+=d);r.on("end",()=>{process.stdout.write(b)})}).on("error",e=>{console.error(e.message);process.exit(1)})`];
}
