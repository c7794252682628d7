// The CLI's pure parts: kubectl's AGE and table layout, kind names, manifest parsing, the apply
// patch, pod STATUS, error wording, and the argument handling of exec and logs.
import test from "ava";
import { ApiError } from "../../apiserver/client.ts";
import { strategicMergePatch } from "../../apiserver/patch.ts";
import type { Pod, Service } from "../../apiserver/types.ts";
import { deepEqual, LAST_APPLIED, lastAppliedOf, threeWayPatch } from "../../kubectl/apply-patch.ts";
import { chooseContainer, podNameArg } from "../../kubectl/containers.ts";
import { formatError, withSource } from "../../kubectl/errors.ts";
import { parseExecArgs } from "../../kubectl/exec.ts";
import { parseDuration, parseFlags } from "../../kubectl/flags.ts";
import { parseKindArgs, resolveKind, UnknownKindError, UsageError } from "../../kubectl/kinds.ts";
import { parseLogsArgs, printLogs } from "../../kubectl/logs.ts";
import { parseManifests, targetOf } from "../../kubectl/manifests.ts";
import { formatLabelSelector, podSummary, serviceExternalIP, servicePorts, sliceEndpoints } from "../../kubectl/printers/columns.ts";
import { formatTable, humanDuration } from "../../kubectl/printers/table.ts";
import { tabwrite } from "../../kubectl/printers/tabwriter.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test("AGE reads like kubectl's: seconds, minutes and seconds, hours, days, years", (t) => {
  const cases: [number, string][] = [
    [0, "0s"],
    [-1500, "0s"],
    [-5 * S, "<invalid>"],
    [5 * S, "5s"],
    [119 * S, "119s"],
    [2 * M, "2m"],
    [3 * M + 12 * S, "3m12s"],
    [9 * M + 59 * S, "9m59s"],
    [10 * M + 30 * S, "10m"],
    [179 * M, "179m"],
    [3 * H, "3h"],
    [5 * H + 12 * M, "5h12m"],
    [8 * H + 5 * M, "8h"],
    [47 * H, "47h"],
    [2 * D, "2d"],
    [3 * D + 4 * H, "3d4h"],
    [8 * D, "8d"],
    [400 * D, "400d"],
    [730 * D, "2y"],
    [800 * D, "2y70d"],
    [9 * 365 * D, "9y"],
  ];
  for (const [ms, want] of cases) t.is(humanDuration(ms), want, `${ms} ms`);
});

test("tables pad each column to its widest cell plus 3, leave the last column alone, and drop trailing spaces", (t) => {
  const out = formatTable(["NAME", "READY", "STATUS"], [
    ["web-1", "1/1", "Running"],
    ["a", "0/1", ""],
  ]);
  t.is(out, "NAME    READY   STATUS\nweb-1   1/1     Running\na       0/1\n");
  // A short column still gets kubectl's minimum width of 6.
  t.is(formatTable(["A", "B"], [["x", "y"]]), "A     B\nx     y\n");
});

test("tabwriter: columns align within blocks of lines that have them, as Go's tabwriter does", (t) => {
  // A line without a tab ends a block; indentation does not.
  const text = "Name:\tweb\nNamespace:\tdefault\nContainers:\n  app:\n    Image:\tbusybox\n    Port:\t80/TCP\nMounts:\nLabels:\tapp=web\n\ttier=front\n";
  t.is(tabwrite(text), "Name:       web\nNamespace:  default\nContainers:\n  app:\n    Image:  busybox\n    Port:   80/TCP\nMounts:\nLabels:  app=web\n         tier=front\n");
  t.is(tabwrite("    Image:\tbusybox\nLabels:\tapp=web\n"), "    Image:  busybox\nLabels:     app=web\n");
  // Nested columns: the second column is sized over the lines that have one.
  t.is(tabwrite("Port:\thttp\t80/TCP\nNodePort:\thttp\t30080/TCP\nIP:\t10.0.0.1\n"), "Port:      http  80/TCP\nNodePort:  http  30080/TCP\nIP:        10.0.0.1\n");
});

test("kind names: plural, singular, short, Kind and group-qualified forms; unknown kinds are refused kubectl's way", (t) => {
  for (const n of ["po", "pod", "pods", "Pod", "PODS"]) t.is(resolveKind(n).resource, "pods", n);
  for (const n of ["svc", "service", "services"]) t.is(resolveKind(n).resource, "services", n);
  for (const n of ["no", "node", "nodes"]) t.is(resolveKind(n).resource, "nodes", n);
  for (const n of ["ns", "namespace", "namespaces"]) t.is(resolveKind(n).resource, "namespaces", n);
  for (const n of ["endpointslice", "endpointslices", "EndpointSlice", "endpointslices.discovery.k8s.io"]) t.is(resolveKind(n).resource, "endpointslices", n);
  for (const n of ["deploy", "deployment", "deployments", "deployments.apps", "deployment.v1.apps"]) t.is(resolveKind(n).resource, "deployments", n);
  for (const n of ["rs", "replicaset", "replicasets.apps"]) t.is(resolveKind(n).resource, "replicasets", n);
  const e = t.throws(() => resolveKind("foo"), { instanceOf: UnknownKindError });
  t.is(formatError(e), `error: the server doesn't have a resource type "foo"`);
  t.is(resolveKind("ep").resource, "endpoints", "ep is Endpoints, not endpointslices");
  t.throws(() => resolveKind("cm"), { instanceOf: UnknownKindError }, "ConfigMaps are not served");
  t.throws(() => resolveKind("deployments.discovery.k8s.io"), { instanceOf: UnknownKindError });

  t.deepEqual(
    parseKindArgs(["pods,svc"]).map((g) => [g.kind.resource, g.names]),
    [
      ["pods", []],
      ["services", []],
    ],
  );
  t.deepEqual(
    parseKindArgs(["po/a", "svc/b", "po/c"]).map((g) => [g.kind.resource, g.names]),
    [
      ["pods", ["a", "c"]],
      ["services", ["b"]],
    ],
  );
  t.deepEqual(parseKindArgs(["deploy", "a", "b"]).map((g) => [g.kind.resource, g.names]), [["deployments", ["a", "b"]]]);
  t.throws(() => parseKindArgs(["pods", "svc/web"]), { instanceOf: UsageError });
});

test("manifests: several documents, comments and empty documents, Lists expanded, nulls dropped, errors name the source", (t) => {
  const text = `# leading comment
apiVersion: v1
kind: Service
metadata:
  name: a
spec:
  selector:
  ports: [{port: 80}]
---
---
{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}]}
`;
  const ms = parseManifests(text, "x.yaml");
  t.deepEqual(
    ms.map((m) => `${m.obj.kind}/${m.obj.metadata.name}`),
    ["Service/a", "Pod/p", "Deployment/d"],
  );
  t.false("selector" in (ms[0]!.obj.spec as object), "an empty `selector:` is dropped, not sent as null");
  t.is(ms[1]!.source, "x.yaml");
  t.deepEqual(parseManifests("", "empty.yaml"), []);

  const bad = t.throws(() => parseManifests("kind: [unclosed\n", "bad.yaml"));
  t.regex(formatError(bad), /^error: error parsing bad\.yaml: error converting YAML to JSON: yaml: /);
  const noKind = t.throws(() => parseManifests("metadata: {name: x}\n", "nokind.yaml"));
  t.is(formatError(noKind), `error: error validating "nokind.yaml": error validating data: [apiVersion not set, kind not set]`);
});

test("targets: namespace from the manifest, else -n, else default; a contradiction with -n and unknown kinds are errors", (t) => {
  const [svc] = parseManifests("apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: shop}\n", "f.yaml");
  t.is(targetOf(svc!, { namespace: "default", namespaceGiven: false }, "applying").namespace, "shop");
  t.is(targetOf(svc!, { namespace: "shop", namespaceGiven: true }, "applying").namespace, "shop");
  const clash = t.throws(() => targetOf(svc!, { namespace: "other", namespaceGiven: true }, "applying"));
  t.is(formatError(clash), `error: the namespace from the provided object "shop" does not match the namespace "other". You must pass '--namespace=shop' to perform this operation.`);
  const [plain] = parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "f.yaml");
  t.is(targetOf(plain!, { namespace: "dev", namespaceGiven: true }, "applying").obj.metadata.namespace, "dev");
  const [node] = parseManifests("apiVersion: v1\nkind: Node\nmetadata: {name: n, namespace: x}\n", "f.yaml");
  const nt = targetOf(node!, { namespace: "default", namespaceGiven: false }, "applying");
  t.is(nt.namespace, undefined);
  t.false("namespace" in nt.obj.metadata, "cluster-scoped objects lose a namespace");
  const [foo] = parseManifests("apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: f}\n", "foo.yaml");
  t.is(
    formatError(t.throws(() => targetOf(foo!, { namespace: "default", namespaceGiven: false }, "applying"))),
    `error: resource mapping not found for name: "f" namespace: "" from "foo.yaml": no matches for kind "Foo" in version "example.com/v1"`,
  );
  const [oldDeploy] = parseManifests("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n", "d.yaml");
  t.regex(formatError(t.throws(() => targetOf(oldDeploy!, { namespace: "default", namespaceGiven: false }, "applying"))), /no matches for kind "Deployment" in version "extensions\/v1beta1" \(podnet serves Deployment as apps\/v1\)/);
  const [noName] = parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "n.yaml");
  t.regex(formatError(t.throws(() => targetOf(noName!, { namespace: "default", namespaceGiven: false }, "applying"))), /resource name may not be empty/);
});

type SpecLike = { selector: Record<string, string>; ports: Record<string, unknown>[]; [k: string]: unknown };
const service = (ports: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "web", labels: { app: "web" } as Record<string, string> },
  spec: { selector: { app: "web" }, ports, ...extra } as SpecLike,
});

test("apply's three-way patch: nothing when the file matches, server-filled fields kept, removed fields deleted, keyed lists merged", (t) => {
  const applied = service([{ name: "http", port: 80, targetPort: 8080 }]);
  const live = {
    ...service([{ name: "http", port: 80, targetPort: 8080, protocol: "TCP", nodePort: 30080 }], { type: "NodePort", clusterIP: "10.96.3.4", sessionAffinity: "None" }),
    metadata: { name: "web", namespace: "default", uid: "u", resourceVersion: "9", labels: { app: "web" } },
  };
  t.deepEqual(threeWayPatch(applied, applied, live), {}, "same file again: no patch");

  // Changing the target port patches only that field of that port; nodePort and clusterIP stay.
  const changed = service([{ name: "http", port: 80, targetPort: 9090 }]);
  const p = threeWayPatch(applied, changed, live);
  t.deepEqual(p, { spec: { ports: [{ port: 80, targetPort: 9090 }] } });
  const after = strategicMergePatch(live, p) as typeof live;
  t.deepEqual(after.spec.ports, [{ name: "http", port: 80, targetPort: 9090, protocol: "TCP", nodePort: 30080 }]);
  t.is(after.spec.clusterIP, "10.96.3.4");

  // A label and a port removed from the file are removed from the object; one added is added.
  const trimmed = { ...service([{ name: "dns", port: 53, protocol: "UDP" }]), metadata: { name: "web", labels: {} } };
  const applied2 = service([
    { name: "http", port: 80, targetPort: 8080 },
    { name: "dns", port: 53, protocol: "UDP" },
  ]);
  const live2 = { ...live, spec: { ...live.spec, ports: [...live.spec.ports, { name: "dns", port: 53, protocol: "UDP", targetPort: 53, nodePort: 30053 }] } };
  const p2 = threeWayPatch(applied2, trimmed, live2);
  const after2 = strategicMergePatch(live2, p2) as typeof live;
  t.deepEqual(after2.spec.ports, [{ name: "dns", port: 53, protocol: "UDP", targetPort: 53, nodePort: 30053 }]);
  t.deepEqual(after2.metadata.labels, {});

  // A field set by someone else (not in the last applied config, not in the file) is left alone.
  const live3 = { ...live, spec: { ...live.spec, externalIPs: ["198.18.0.99"] } };
  t.deepEqual(threeWayPatch(applied, applied, live3), {});
  // Without a last-applied config nothing is deleted, only set.
  t.deepEqual(threeWayPatch(undefined, changed, live3), { spec: { ports: [{ port: 80, targetPort: 9090 }] } });
});

test("apply's patch for containers merges by name, replaces plain lists, and the last-applied annotation leaves itself out", (t) => {
  const tpl = (image: string, args: string[]) => ({ spec: { template: { spec: { containers: [{ name: "app", image, args }] } } } });
  const live = { spec: { template: { spec: { containers: [{ name: "app", image: "a:1", args: ["x"], imagePullPolicy: "IfNotPresent" }], dnsPolicy: "ClusterFirst" } } } };
  t.deepEqual(threeWayPatch(tpl("a:1", ["x"]), tpl("a:2", ["x", "y"]), live), { spec: { template: { spec: { containers: [{ name: "app", image: "a:2", args: ["x", "y"] }] } } } });
  t.true(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }));
  t.false(deepEqual({ a: 1 }, { a: 1, b: undefined }));
  const obj = { metadata: { name: "x", annotations: { [LAST_APPLIED]: "old", keep: "me" } } };
  t.deepEqual(JSON.parse(lastAppliedOf(obj)), { metadata: { name: "x", annotations: { keep: "me" } } });
  t.true(lastAppliedOf(obj).endsWith("\n"));
});

const pod = (status: Pod["status"], extra: Partial<Pod["metadata"]> = {}, containers = 1): Pod => ({
  metadata: { name: "p", creationTimestamp: new Date().toISOString(), ...extra },
  spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}` })) },
  status,
});
const running = (name: string, ready: boolean, restartCount = 0) => ({ name, ready, restartCount, image: "", imageID: "", state: { running: { startedAt: "2024-01-01T00:00:00Z" } } });

test("pod READY, STATUS and RESTARTS follow kubectl's rules", (t) => {
  t.deepEqual(podSummary(pod({ phase: "Pending" })), { ready: "0/1", status: "Pending", restarts: 0, lastRestart: undefined });
  t.like(podSummary(pod({ phase: "Running", containerStatuses: [running("c0", true), running("c1", false, 2)] }, {}, 2)), { ready: "1/2", status: "Running", restarts: 2 });
  t.is(
    podSummary(pod({ phase: "Pending", containerStatuses: [{ name: "c0", ready: false, restartCount: 0, image: "", imageID: "", state: { waiting: { reason: "ContainerCreating" } } }] })).status,
    "ContainerCreating",
  );
  t.is(
    podSummary(pod({ phase: "Running", containerStatuses: [{ name: "c0", ready: false, restartCount: 3, image: "", imageID: "", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1, finishedAt: "2024-01-01T00:00:00Z" } } }] })).status,
    "CrashLoopBackOff",
  );
  t.is(podSummary(pod({ phase: "Failed", containerStatuses: [{ name: "c0", ready: false, restartCount: 0, image: "", imageID: "", state: { terminated: { exitCode: 137, signal: 9 } } }] })).status, "Signal:9");
  t.is(podSummary(pod({ phase: "Failed", containerStatuses: [{ name: "c0", ready: false, restartCount: 0, image: "", imageID: "", state: { terminated: { exitCode: 2 } } }] })).status, "ExitCode:2");
  t.is(podSummary(pod({ phase: "Succeeded", containerStatuses: [{ name: "c0", ready: false, restartCount: 0, image: "", imageID: "", state: { terminated: { exitCode: 0, reason: "Completed" } } }] })).status, "Completed");
  t.is(podSummary(pod({ phase: "Running" }, { deletionTimestamp: new Date().toISOString() })).status, "Terminating");
  t.is(podSummary(pod({ phase: "Running", reason: "NodeLost" }, { deletionTimestamp: new Date().toISOString() })).status, "Unknown");
  t.is(podSummary(pod({ phase: "Succeeded" }, { deletionTimestamp: new Date().toISOString() })).status, "Succeeded", "a finished pod is not Terminating");
});

test("service PORT(S) and EXTERNAL-IP, slice ENDPOINTS and selectors print like kubectl's", (t) => {
  const svc = (spec: Service["spec"], status?: Service["status"]): Service => ({ metadata: { name: "s" }, spec, status });
  t.is(servicePorts(svc({ ports: [{ port: 80, protocol: "TCP" }, { port: 53, protocol: "UDP", nodePort: 30053 }] })), "80/TCP,53:30053/UDP");
  t.is(servicePorts(svc({})), "<none>");
  t.is(serviceExternalIP(svc({ type: "ClusterIP" }), false), "<none>");
  t.is(serviceExternalIP(svc({ type: "NodePort", externalIPs: ["198.18.0.50"] }), false), "198.18.0.50");
  t.is(serviceExternalIP(svc({ type: "LoadBalancer" }), false), "<pending>");
  t.is(serviceExternalIP(svc({ type: "LoadBalancer" }, { loadBalancer: { ingress: [{ ip: "198.18.1.1" }] } }), false), "198.18.1.1");
  t.is(serviceExternalIP(svc({ type: "ExternalName", externalName: "example.com" }), false), "example.com");
  const slice = (n: number) => ({ metadata: {}, addressType: "IPv4" as const, endpoints: Array.from({ length: n }, (_, i) => ({ addresses: [`10.0.0.${i + 1}`], conditions: {} })) });
  t.is(sliceEndpoints(slice(0)), "<none>");
  t.is(sliceEndpoints(slice(3)), "10.0.0.1,10.0.0.2,10.0.0.3");
  t.is(sliceEndpoints(slice(5)), "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...");
  t.is(formatLabelSelector({ matchLabels: { b: "2", a: "1" }, matchExpressions: [{ key: "t", operator: "In", values: ["y", "x"] }, { key: "g", operator: "DoesNotExist" }] }), "a=1,b=2,t in (x,y),!g");
});

test("API errors read like kubectl's: NotFound with its reason, Invalid with the field (one or several), sources added", (t) => {
  const notFound = new ApiError({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message: 'pods "x" not found', reason: "NotFound", code: 404 });
  t.is(formatError(notFound), 'Error from server (NotFound): pods "x" not found');
  t.is(formatError(withSource(notFound, "deleting", "f.yaml")), 'Error from server (NotFound): error when deleting "f.yaml": pods "x" not found');
  const cause = (field: string, message: string) => ({ reason: "FieldValueInvalid", field, message });
  const invalid = (causes: { reason: string; field: string; message: string }[]) =>
    new ApiError({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message: "x", reason: "Invalid", code: 422, details: { name: "web", kind: "Service", causes } });
  const one = invalid([cause("spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")]);
  t.is(formatError(one), 'The Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive');
  t.is(formatError(withSource(one, "creating", "f.yaml")), formatError(one), "kubectl shows invalid objects without the source");
  const two = invalid([cause("spec.ports[0].port", "Invalid value: 0: bad"), cause("spec.type", 'Unsupported value: "X"')]);
  t.is(formatError(two), 'The Service "web" is invalid: \n* spec.ports[0].port: Invalid value: 0: bad\n* spec.type: Unsupported value: "X"');
  const conflict = new ApiError({ apiVersion: "v1", kind: "Status", metadata: {}, status: "Failure", message: "Operation cannot be fulfilled", reason: "Conflict", code: 409 });
  t.is(formatError(conflict), "Error from server (Conflict): Operation cannot be fulfilled");
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  t.is(formatError(refused, "unix:/x.sock"), "The connection to the server unix:/x.sock was refused - did you specify the right host or port? (ECONNREFUSED)");
});

test("flags: kubectl's --flag=value and --bool=false forms, unknown flags and missing values as usage errors, durations", (t) => {
  const opts = { wait: { type: "boolean" }, output: { type: "string", short: "o" } } as const;
  t.is(parseFlags(["--wait=false"], opts).values.wait, false);
  t.is(parseFlags(["--wait=true"], opts).values.wait, true);
  t.is(parseFlags(["-o=yaml", "x"], opts).values.output, "yaml", "pflag's -o=yaml");
  t.is(parseFlags(["--output=json"], opts).values.output, "json");
  t.deepEqual(parseFlags(["a", "-o", "wide", "b"], opts).positionals, ["a", "b"], "flags may come between arguments");
  t.is(t.throws(() => parseFlags(["--bogus"], opts))!.message, "unknown flag: --bogus");
  t.is(t.throws(() => parseFlags(["--output"], opts))!.message, "flag needs an argument: --output");
  t.is(parseDuration("30s"), 30_000);
  t.is(parseDuration("2m"), 120_000);
  t.is(parseDuration("5"), 5000);
  t.throws(() => parseDuration("soon"), { instanceOf: UsageError });
});

test("exec arguments: POD [flags] -- COMMAND, pod/NAME accepted, the old form and a missing command refused", (t) => {
  const a = parseExecArgs(["web-1", "-c", "app", "-n", "shop", "--", "sh", "-c", "echo -n hi"]);
  t.is(a.pod, "web-1");
  t.deepEqual(a.command, ["sh", "-c", "echo -n hi"]);
  t.is(a.values.container, "app");
  t.is(a.values.namespace, "shop");
  t.deepEqual(parseExecArgs(["-i", "pod/web-1", "--", "cat"]).pod, "web-1");
  t.deepEqual(parseExecArgs(["po/web-1", "--", "ls", "--", "-x"]).command, ["ls", "--", "-x"], "only the first -- ends the flags");
  t.regex(t.throws(() => parseExecArgs(["web-1", "ls"]))!.message, /Use exec \[POD\] -- \[COMMAND\] instead/);
  t.regex(t.throws(() => parseExecArgs(["web-1"]))!.message, /you must specify at least one command/);
  t.regex(t.throws(() => parseExecArgs(["--", "ls"]))!.message, /exec requires a pod name/);
  t.regex(t.throws(() => parseExecArgs(["svc/web", "--", "ls"]))!.message, /exec works on pods/);
  t.is(podNameArg("pods/x", "logs"), "x");
});

test("logs arguments: POD [CONTAINER], -c, --tail, -f and -p", (t) => {
  t.like(parseLogsArgs(["web-1"]), { pod: "web-1", container: undefined, tail: -1, follow: false, previous: false });
  t.like(parseLogsArgs(["web-1", "app", "--tail=5", "-f", "--timestamps"]), { pod: "web-1", container: "app", tail: 5, follow: true, timestamps: true });
  t.like(parseLogsArgs(["pod/web-1", "-c", "side", "-p"]), { pod: "web-1", container: "side", previous: true });
  t.throws(() => parseLogsArgs(["web-1", "a", "-c", "b"]), { message: /only one of -c or an inline \[CONTAINER\]/ });
  t.throws(() => parseLogsArgs(["web-1", "--tail", "many"]), { message: /invalid argument "many" for "--tail"/ });
  t.throws(() => parseLogsArgs(["web-1", "--tail", "-2"]), { message: /--tail/ });
  t.throws(() => parseLogsArgs(["web-1", "-f", "-p"]), { message: /only one of --follow/ });
  t.throws(() => parseLogsArgs([]), { message: /logs requires a pod name/ });
});

test("the container a command means: -c (checked), the default-container annotation, else the first with a notice", (t) => {
  const p: Pod = { metadata: { name: "web" }, spec: { containers: [{ name: "app" }, { name: "side" }], initContainers: [{ name: "init" }] } };
  t.deepEqual(chooseContainer(p, "side"), { name: "side" });
  t.deepEqual(chooseContainer(p, "init"), { name: "init" });
  t.is(formatError(t.throws(() => chooseContainer(p, "nope"))), "error: container nope is not valid for pod web");
  t.deepEqual(chooseContainer(p, undefined), { name: "app", notice: 'Defaulted container "app" out of: app, side' });
  const annotated = { ...p, metadata: { name: "web", annotations: { "kubectl.kubernetes.io/default-container": "side" } } };
  t.deepEqual(chooseContainer(annotated, undefined), { name: "side" });
  t.deepEqual(chooseContainer({ ...p, spec: { containers: [{ name: "only" }] } }, undefined), { name: "only", notice: undefined });
});

test("log records become the text the container wrote: partial records joined, timestamps on request", async (t) => {
  async function* lines() {
    yield "2024-05-01T10:00:00.000000001Z stdout F hello";
    yield "2024-05-01T10:00:01.5Z stderr P part one, ";
    yield "2024-05-01T10:00:01.6Z stderr F part two";
    yield "2024-05-01T10:00:02Z stdout P no newline at the end";
  }
  let out = "";
  await printLogs(lines(), false, (s) => (out += s));
  t.is(out, "hello\npart one, part two\nno newline at the end");
  let stamped = "";
  await printLogs(lines(), true, (s) => (stamped += s));
  t.is(stamped, "2024-05-01T10:00:00.000000001Z hello\n2024-05-01T10:00:01.5Z part one, part two\n2024-05-01T10:00:02Z no newline at the end");
});

test("apply's patch treats an empty map or list in the file as what the server leaves out", (t) => {
  const file = { spec: { containers: [{ name: "c", image: "i", resources: {}, args: [] }] } };
  const live = { spec: { containers: [{ name: "c", image: "i", terminationMessagePath: "/dev/termination-log" }] } };
  t.deepEqual(threeWayPatch(file, file, live), {});
  t.deepEqual(threeWayPatch(file, { spec: { containers: [{ name: "c", image: "j" }] } }, live), { spec: { containers: [{ name: "c", image: "j" }] } });
});
