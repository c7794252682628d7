// `describe`, `delete`, `scale` and `create namespace` from the built CLI against an in-process API
// server whose controllers (EndpointSlices, ReplicaSets, Deployments) run, with a stand-in
// kubelet where a pod has to run or be confirmed deleted.
import test from "ava";
import { isApiError, resourcePath } from "../../apiserver/client.ts";
import type { Deployment, EndpointSlice, Pod, Service } from "../../apiserver/types.ts";
import { createReadyNode, FakeKubelet, runningPod } from "../apiserver/helpers.ts";
import { eventually, startCli } from "./helpers.ts";

const gone = async (p: Promise<unknown>) => p.then(() => false, (e: unknown) => isApiError(e, 404));

test("describe service shows its labels, IPs, ports and the ready endpoints from its EndpointSlices", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  await createReadyNode(api, "node-1");
  const svcFile = await cli.file(
    "svc.yaml",
    `apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web, tier: front}}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
`,
  );
  t.is((await cli.run(["apply", "-f", svcFile])).stdout, "service/web created\n");
  const ports = [{ name: "http", containerPort: 8080 }];
  await runningPod(api, "default", "web-1", { labels: { app: "web" }, node: "node-1", ip: "10.244.0.5", ports });
  await runningPod(api, "default", "web-2", { labels: { app: "web" }, node: "node-1", ip: "10.244.0.6", ports });
  await runningPod(api, "default", "web-3", { labels: { app: "web" }, node: "node-1", ip: "10.244.0.7", ports, ready: false });
  await eventually("the slice with three endpoints", async () => {
    const slices = await api.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=web" });
    return slices.items.reduce((n, s) => n + (s.endpoints?.length ?? 0), 0) === 3;
  });
  const svc = await api.get<Service>(resourcePath("services", "default", "web"));

  const r = await cli.run(["describe", "svc", "web"]);
  t.is(r.code, 0, r.stderr);
  const d = r.stdout;
  t.regex(d, /^Name: +web\nNamespace: +default\nLabels: +app=web\n +tier=front\nAnnotations: +<none>\nSelector: +app=web\nType: +NodePort\n/);
  t.regex(d, new RegExp(`^IP: +${svc.spec.clusterIP!.replace(/\./g, "\\.")}$`, "m"));
  t.regex(d, /^Port: +http +80\/TCP$/m);
  t.regex(d, /^TargetPort: +http\/TCP$/m);
  t.regex(d, new RegExp(`^NodePort: +http +${svc.spec.ports![0]!.nodePort}/TCP$`, "m"));
  const endpoints = /^Endpoints: +(.*)$/m.exec(d)?.[1]?.split(",").sort();
  t.deepEqual(endpoints, ["10.244.0.5:8080", "10.244.0.6:8080"], "ready endpoints with the resolved target port; the unready one is left out");
  t.notRegex(d, /last-applied-configuration/, "the apply annotation is not repeated");
  t.notRegex(d, /^Events:/m);

  const slices = await cli.run(["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]);
  t.regex(slices.stdout, /^web-[a-z0-9]+ +IPv4 +8080 +10\.244\.0\.\d,10\.244\.0\.\d,10\.244\.0\.\d +\d+s$/m);
  const ds = await cli.run(["describe", "endpointslices", "-l", "kubernetes.io/service-name=web"]);
  t.regex(ds.stdout, /^AddressType: +IPv4$/m);
  t.regex(ds.stdout, /^ +- +Addresses: +10\.244\.0\.7\n +Conditions:\n +Ready: +false\n/m);
  t.regex(ds.stdout, /TargetRef: +Pod\/web-1\n/);
});

test("describe pod, node and deployment: states, addresses, the node's pods, the deployment's ReplicaSet", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  await createReadyNode(api, "node-1");
  await api.patch(resourcePath("nodes", undefined, "node-1"), { status: { addresses: [{ type: "InternalIP", address: "198.18.0.11" }] } }, { subresource: "status" });
  const kubelet = new FakeKubelet(api, ["node-1"]).start();
  t.teardown(() => kubelet.stop());
  const deploy = await cli.file(
    "deploy.yaml",
    `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: podnet/agnhost
        command: [podnet, agnhost, netexec]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}}
`,
  );
  t.is((await cli.run(["apply", "-f", deploy])).stdout, "deployment.apps/api created\n");
  await eventually("two ready replicas", async () => (await api.get<Deployment>(resourcePath("deployments", "default", "api"))).status?.readyReplicas === 2);
  const pods = (await api.list<Pod>(resourcePath("pods", "default"), { labelSelector: "app=api" })).items;

  const dp = await cli.run(["describe", "pod", pods[0]!.metadata.name!]);
  t.is(dp.code, 0, dp.stderr);
  t.regex(dp.stdout, new RegExp(`^Node: +node-1/198\\.18\\.0\\.10$`, "m"));
  t.regex(dp.stdout, new RegExp(`^IP: +${pods[0]!.status!.podIP!.replace(/\./g, "\\.")}$`, "m"));
  t.regex(dp.stdout, /^Controlled By: +ReplicaSet\/api-[a-z0-9]+$/m);
  t.regex(dp.stdout, /^Containers:\n {2}api:\n {4}Image: +podnet\/agnhost\n {4}Port: +8080\/TCP \(http\)\n/m);
  t.regex(dp.stdout, /^ {4}Command:\n {6}podnet\n {6}agnhost\n {6}netexec\n/m);
  t.regex(dp.stdout, /^ {4}Readiness: +http-get http:\/\/:http\/healthz delay=0s timeout=1s period=10s #success=1 #failure=3$/m);
  t.regex(dp.stdout, /^Conditions:\n {2}Type +Status\n(.*\n)* {2}Ready +True $/m);

  // A name prefix describes every pod it starts, as kubectl describe does.
  const byPrefix = await cli.run(["describe", "pods", "api-"]);
  t.is(byPrefix.stdout.match(/^Name: /gm)?.length, 2);

  const dn = await cli.run(["describe", "node", "node-1"]);
  t.regex(dn.stdout, /^Addresses:\n {2}InternalIP: +198\.18\.0\.11$/m);
  t.regex(dn.stdout, /^PodCIDR: +10\.244\.\d+\.0\/24$/m);
  t.regex(dn.stdout, /^Non-terminated Pods: +\(2 in total\)$/m);
  for (const p of pods) t.regex(dn.stdout, new RegExp(`^ +default +${p.metadata.name} +${p.status!.podIP!.replace(/\./g, "\\.")} +\\d+s$`, "m"));
  t.regex(dn.stdout, /^ +Ready +True +/m);

  const dd = await cli.run(["describe", "deploy", "api"]);
  t.regex(dd.stdout, /^Replicas: +2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$/m);
  t.regex(dd.stdout, /^StrategyType: +RollingUpdate$/m);
  t.regex(dd.stdout, /^Pod Template:\n {2}Labels: +app=api\n {2}Containers:\n {4}api:\n/m);
  t.regex(dd.stdout, /^NewReplicaSet: +api-[a-z0-9]+ \(2\/2 replicas created\)$/m);
  const drs = await cli.run(["describe", "rs", "-l", "app=api"]);
  t.regex(drs.stdout, /^Replicas: +2 current \/ 2 desired$/m);
  t.regex(drs.stdout, /^Pods Status: +2 Running \/ 0 Waiting \/ 0 Succeeded \/ 0 Failed$/m);
  t.regex(drs.stdout, /^Controlled By: +Deployment\/api$/m);

  // scale, then the get and describe follow.
  t.is((await cli.run(["scale", "deploy", "api", "--replicas", "3"])).stdout, "deployment.apps/api scaled\n");
  await eventually("three ready replicas", async () => (await api.get<Deployment>(resourcePath("deployments", "default", "api"))).status?.readyReplicas === 3);
  t.regex((await cli.run(["get", "deploy", "api"])).stdout, /^api +3\/3 +3 +3 +\d+s$/m);
  const wrongCurrent = await cli.run(["scale", "deployment/api", "--replicas", "1", "--current-replicas", "2"]);
  t.is(wrongCurrent.code, 1);
  t.is(wrongCurrent.stderr, "error: Expected replicas to be 2, was 3\n");
  t.is((await api.get<Deployment>(resourcePath("deployments", "default", "api"))).spec.replicas, 3, "a failed precondition changes nothing");
});

test("delete by name, by selector and by file; pods wait for their kubelet unless --wait=false; --force with 0 is at once", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  await createReadyNode(api, "node-1");
  const file = await cli.file(
    "things.yaml",
    `apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{port: 1}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {ports: [{port: 2}]}
`,
  );
  await cli.run(["apply", "-f", file]);
  t.is((await cli.run(["delete", "-f", file])).stdout, 'service "a" deleted\nservice "b" deleted\n');
  t.true(await gone(api.get(resourcePath("services", "default", "a"))));
  t.true(await gone(api.get(resourcePath("services", "default", "b"))));
  const twice = await cli.run(["delete", "-f", file]);
  t.is(twice.code, 1);
  t.is(twice.stderr, `Error from server (NotFound): error when deleting "${file}": services "a" not found\nError from server (NotFound): error when deleting "${file}": services "b" not found\n`);

  // Pods on a node whose kubelet does not confirm stay Terminating; --wait=false returns at once.
  for (const n of ["p1", "p2", "other"]) await runningPod(api, "default", n, { labels: { app: n === "other" ? "other" : "p" }, node: "node-1", ip: `10.244.0.${n.length + 10}` });
  const noWait = await cli.run(["delete", "pods", "-l", "app=p", "--wait=false"]);
  t.is(noWait.code, 0, noWait.stderr);
  t.is(noWait.stdout, 'pod "p1" deleted\npod "p2" deleted\n');
  const p1 = await api.get<Pod>(resourcePath("pods", "default", "p1"));
  t.truthy(p1.metadata.deletionTimestamp, "graceful: the kubelet has to confirm");
  t.regex((await cli.run(["get", "pods", "p1"])).stdout, /^p1 +0\/1 +Terminating +0 +\d+s$/m);
  t.false(await gone(api.get(resourcePath("pods", "default", "other"))), "the selector spared the others");

  // With a kubelet confirming, delete waits (the default) until the pod is gone.
  const kubelet = new FakeKubelet(api, ["node-1"]).start();
  t.teardown(() => kubelet.stop());
  const waited = await cli.run(["delete", "pod", "other", "--grace-period", "5"]);
  t.is(waited.code, 0, waited.stderr);
  t.is(waited.stdout, 'pod "other" deleted\n');
  t.true(await gone(api.get(resourcePath("pods", "default", "other"))), "gone when delete returns");
  await eventually("p1 and p2 confirmed", async () => (await gone(api.get(resourcePath("pods", "default", "p1")))) && (await gone(api.get(resourcePath("pods", "default", "p2")))));
  kubelet.stop();

  // --grace-period=0 --force removes a bound pod without its kubelet.
  await runningPod(api, "default", "stuck", { labels: { app: "stuck" }, node: "node-1", ip: "10.244.0.99" });
  const forced = await cli.run(["delete", "pod", "stuck", "--grace-period=0", "--force"]);
  t.is(forced.code, 0, forced.stderr);
  t.is(forced.stdout, 'pod "stuck" force deleted\n');
  t.regex(forced.stderr, /^warning: Immediate deletion does not wait for confirmation/);
  t.true(await gone(api.get(resourcePath("pods", "default", "stuck"))));

  // A timeout bounds the wait for a pod nobody confirms.
  await runningPod(api, "default", "slow", { labels: { app: "slow" }, node: "node-1", ip: "10.244.0.98" });
  const timedOut = await cli.run(["delete", "pod", "slow", "--timeout", "1s"]);
  t.is(timedOut.code, 1);
  t.is(timedOut.stdout, 'pod "slow" deleted\n');
  t.is(timedOut.stderr, "error: timed out waiting for the condition on pods/slow\n");

  // --all in a namespace; the namespace itself with create/delete.
  t.is((await cli.run(["create", "namespace", "scratch"])).stdout, "namespace/scratch created\n");
  await api.create(resourcePath("services", "scratch"), { metadata: { name: "x" }, spec: { ports: [{ port: 1 }] } });
  await api.create(resourcePath("services", "scratch"), { metadata: { name: "y" }, spec: { ports: [{ port: 2 }] } });
  t.is((await cli.run(["delete", "svc", "--all", "-n", "scratch"])).stdout, 'service "x" deleted\nservice "y" deleted\n');
  t.is((await cli.run(["delete", "svc", "--all", "-n", "scratch"])).stderr, "No resources found in scratch namespace.\n");
  const delNs = await cli.run(["delete", "ns", "scratch"]);
  t.is(delNs.code, 0, delNs.stderr);
  t.is(delNs.stdout, 'namespace "scratch" deleted\n');
  t.true(await gone(api.get(resourcePath("namespaces", undefined, "scratch"))));
  const protectedNs = await cli.run(["delete", "ns", "default"]);
  t.is(protectedNs.code, 1);
  t.regex(protectedNs.stderr, /^Error from server \(Forbidden\): namespaces "default" is forbidden: /);
});
