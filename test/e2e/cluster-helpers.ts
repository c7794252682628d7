// Shared pieces of the end-to-end tests on an emulated cluster (test/e2e/cluster-*.test.ts):
// manifests of the light workloads they run, waiting on the API server, and a namespace per test
// so that the tests sharing one cluster never see each other's objects.
import type { ExecutionContext } from "ava";
import { execa } from "execa";
import { isApiError, resourcePath } from "../../apiserver/client.ts";
import type { Container, Deployment, EndpointSlice, Namespace, Node, Pod, PodSpec } from "../../apiserver/types.ts";
import { execInPod } from "../../cluster/probe.ts";
import { eventually, type TestCluster } from "../helpers/cluster.ts";
import { uniqueName } from "../helpers/netns.ts";

/** agnhost netexec: HTTP on 8080 (named "http"), UDP on 8081 (named "udp"), Ready when /healthz answers. */
export function netexecContainer(name = "netexec"): Container {
  return {
    name,
    image: "registry.k8s.io/e2e-test-images/agnhost:2.52",
    command: ["podnet", "agnhost", "netexec", "--http-port", "8080", "--udp-port", "8081"],
    ports: [
      { name: "http", containerPort: 8080 },
      { name: "udp", containerPort: 8081, protocol: "UDP" },
    ],
    readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1 },
  };
}

/** A container that does nothing and has no probe: Ready as soon as it runs. */
export function sleeperContainer(name = "sleep"): Container {
  return { name, image: "busybox", command: ["sleep", "infinity"] };
}

export function podManifest(name: string, spec: Partial<PodSpec> & { containers: Container[] }, labels: Record<string, string> = {}): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: { terminationGracePeriodSeconds: 2, ...spec } };
}

export function deploymentManifest(name: string, replicas: number, spec: Partial<PodSpec> & { containers: Container[] }, extra: Partial<Deployment["spec"]> = {}): Deployment {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels },
    spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { terminationGracePeriodSeconds: 2, ...spec } }, ...extra },
  };
}

export const isReady = (p: Pod) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

export const nodeReadyStatus = (n: Node) => n.status?.conditions?.find((c) => c.type === "Ready")?.status;

/**
 * A namespace of the test's own, deleted (with everything in it) when the test ends; the
 * teardown waits until it is gone, so the next test starts on a quiet cluster.
 */
export async function testNamespace(t: ExecutionContext, c: TestCluster, prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await c.api.create<Namespace>(resourcePath("namespaces"), { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  t.teardown(async () => {
    await c.api.delete(resourcePath("namespaces", undefined, ns)).catch(() => undefined);
    await eventually(
      `namespace ${ns} to be gone`,
      async () => {
        try {
          await c.api.get(resourcePath("namespaces", undefined, ns));
          return undefined;
        } catch (e) {
          return isApiError(e, 404) ? true : undefined;
        }
      },
      90_000,
    );
  });
  return ns;
}

export async function listPods(c: TestCluster, ns: string | undefined, selector?: string): Promise<Pod[]> {
  return (await c.api.list<Pod>(resourcePath("pods", ns), { labelSelector: selector })).items;
}

/** Waits until `n` pods match and all of them are Ready with an IP; resolves with them. */
export async function readyPods(c: TestCluster, ns: string, selector: string, n: number, timeoutMs = 90_000): Promise<Pod[]> {
  return eventually(
    `${n} Ready pods ${selector} in ${ns}`,
    async () => {
      const pods = (await listPods(c, ns, selector)).filter((p) => !p.metadata.deletionTimestamp);
      return pods.length === n && pods.every((p) => isReady(p) && p.status?.podIP) ? pods : undefined;
    },
    timeoutMs,
  );
}

export async function slicesOf(c: TestCluster, ns: string, service: string): Promise<EndpointSlice[]> {
  return (await c.api.list<EndpointSlice>(resourcePath("endpointslices", ns), { labelSelector: `kubernetes.io/service-name=${service}` })).items;
}

export async function nodes(c: TestCluster): Promise<Node[]> {
  return (await c.api.list<Node>(resourcePath("nodes"))).items.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
}

/** Is the IPv4 address inside the CIDR? */
export function inCIDR(ip: string, cidr: string): boolean {
  const toNum = (a: string) => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const [base, len] = cidr.split("/");
  const bits = Number(len);
  const size = 2 ** (32 - bits);
  return Math.floor(toNum(ip) / size) === Math.floor(toNum(base!) / size);
}

/** Runs a command in a pod and returns stdout, failing with the command's stderr when it fails. */
export async function podRun(c: TestCluster, ns: string, pod: string, cmd: string[], container?: string): Promise<string> {
  const r = await execInPod(c, ns, pod, cmd, container);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} in pod ${ns}/${pod} exited ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** The address part of netexec's "ip:port" client address. */
export const hostOf = (addr: string) => addr.trim().replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");

// One UDP request and its answer, from Node (it exits at the first answer; socat would wait out its timeout).
const UDP_ASK = `
const [host, port, msg] = process.argv.slice(1);
const s = require("node:dgram").createSocket("udp4");
const timer = setTimeout(() => { console.error("no answer within 3 s"); process.exit(1); }, 3000);
s.on("message", (m) => { clearTimeout(timer); process.stdout.write(m.toString()); s.close(); });
s.send(msg, Number(port), host);
`;

/** Sends `msg` to host:port over UDP from inside the netns and returns the answer. */
export async function udpAskIn(netns: string, host: string, port: number, msg: string): Promise<string> {
  const r = await execa("nsenter", [`--net=/run/netns/${netns}`, "--", process.execPath, "-e", UDP_ASK, host, String(port), msg], { reject: false, timeout: 20_000 });
  if (r.exitCode !== 0) throw new Error(`UDP ${msg} to ${host}:${port} from ${netns}: ${String(r.stderr).trim() || `exit ${r.exitCode}`}`);
  return String(r.stdout);
}

/** Runs a program in a netns (a node's), returning stdout or failing with its stderr. */
export async function inNetns(netns: string, cmd: string[]): Promise<string> {
  const r = await execa("nsenter", [`--net=/run/netns/${netns}`, "--", ...cmd], { reject: false, timeout: 20_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} in ${netns} exited ${r.exitCode}: ${String(r.stderr).trim()}`);
  return String(r.stdout);
}
