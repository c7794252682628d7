// `podnet apply` and `podnet get` (the built CLI) against an in-process API server: multi-document
// files, created/unchanged/configured with the server's allocations kept, every output format,
// selectors, namespaces and watches.
import test from "ava";
import { parse as parseYAML } from "yaml";
import { resourcePath } from "../../apiserver/client.ts";
import type { Deployment, KObject, Namespace, Pod, Service } from "../../apiserver/types.ts";
import { eventually, NO_STACK, outputOf, startCli } from "./helpers.ts";

const MANIFEST = (opts: { replicas: number; targetPort: number; tier: boolean }) => `# the shop: a namespace, a NodePort Service, a Deployment, and a List holding a second Service
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels:
    app: web${opts.tier ? "\n    tier: front" : ""}
spec:
  type: NodePort
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: ${opts.targetPort}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: ${opts.replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: podnet/agnhost
        args: [netexec, --http-port=8080]
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: db, namespace: shop, labels: {app: db}}
  spec:
    selector: {app: db}
    ports: [{port: 5432}]
`;

test("apply: multi-document YAML is created, then unchanged, then configured, keeping clusterIP and nodePort", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const file = await cli.file("shop.yaml", MANIFEST({ replicas: 1, targetPort: 8080, tier: true }));

  const first = await cli.run(["apply", "-f", file]);
  t.is(first.stderr, "");
  t.is(first.code, 0);
  t.is(first.stdout, "namespace/shop created\nservice/web created\ndeployment.apps/web created\nservice/db created\n");
  const web = await api.get<Service>(resourcePath("services", "shop", "web"));
  const clusterIP = web.spec.clusterIP!;
  const nodePort = web.spec.ports![0]!.nodePort!;
  t.regex(clusterIP, /^10\.(9[6-9]|1[01]\d)\.\d+\.\d+$/, "a ClusterIP from the service CIDR");
  t.true(nodePort >= 30000 && nodePort <= 32767);
  t.is(web.spec.ports![0]!.protocol, "TCP", "server-side defaults apply");
  t.truthy(web.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"], "the applied configuration is recorded");
  t.is((await api.get<Deployment>(resourcePath("deployments", "shop", "web"))).spec.replicas, 1);

  const again = await cli.run(["apply", "-f", file]);
  t.is(again.code, 0);
  t.is(again.stdout, "namespace/shop unchanged\nservice/web unchanged\ndeployment.apps/web unchanged\nservice/db unchanged\n");
  t.is((await api.get<Service>(resourcePath("services", "shop", "web"))).metadata.resourceVersion, web.metadata.resourceVersion, "nothing was written");

  await cli.file("shop.yaml", MANIFEST({ replicas: 3, targetPort: 9090, tier: false }));
  const changed = await cli.run(["apply", "-f", file]);
  t.is(changed.code, 0, changed.stderr);
  t.is(changed.stdout, "namespace/shop unchanged\nservice/web configured\ndeployment.apps/web configured\nservice/db unchanged\n");
  const after = await api.get<Service>(resourcePath("services", "shop", "web"));
  t.is(after.spec.clusterIP, clusterIP, "the allocated ClusterIP is kept");
  t.is(after.spec.ports![0]!.nodePort, nodePort, "the allocated nodePort is kept");
  t.is(after.spec.ports![0]!.targetPort, 9090);
  t.deepEqual(after.metadata.labels, { app: "web" }, "a label removed from the file is removed");
  t.is((await api.get<Deployment>(resourcePath("deployments", "shop", "web"))).spec.replicas, 3);
});

test("apply reads stdin (YAML or JSON) and directories; -n places objects without a namespace", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const json = JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name: "from-stdin" }, spec: { ports: [{ port: 53, protocol: "UDP" }] } });
  const piped = await cli.run(["apply", "-f", "-"], { input: json });
  t.is(piped.stdout, "service/from-stdin created\n", piped.stderr);
  t.is((await api.get<Service>(resourcePath("services", "default", "from-stdin"))).spec.ports![0]!.protocol, "UDP");

  await cli.run(["create", "namespace", "dev"]);
  await cli.file("a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}\n");
  await cli.file("b.json", JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name: "b" }, spec: { ports: [{ port: 2 }] } }));
  await cli.file("notes.txt", "not a manifest");
  const dir = await cli.run(["apply", "-f", cli.dir, "-n", "dev"]);
  t.is(dir.code, 0, dir.stderr);
  t.is(dir.stdout, "service/a created\nservice/b created\n", "the directory's .yaml and .json files, in name order");
  const names = (await api.list<Service>(resourcePath("services", "dev"))).items.map((s) => s.metadata.name).sort();
  t.deepEqual(names, ["a", "b"]);
});

async function seed(cli: Awaited<ReturnType<typeof startCli>>) {
  const r = await cli.run(["apply", "-f", await cli.file("shop.yaml", MANIFEST({ replicas: 2, targetPort: 8080, tier: true }))]);
  if (r.code !== 0) throw new Error(r.stderr);
}

test("get: tables with kubectl's columns for every kind, -o wide, -A, --show-labels, and an empty list", async (t) => {
  const cli = await startCli(t);
  await seed(cli);
  const api = cli.server.client;
  await eventually("the ReplicaSet's pods", async () => (await api.list<Pod>(resourcePath("pods", "shop"))).items.length === 2);

  const svc = await cli.run(["get", "svc", "-n", "shop"]);
  t.is(svc.code, 0);
  const lines = svc.stdout.trimEnd().split("\n");
  t.regex(lines[0]!, /^NAME {3,}TYPE {3,}CLUSTER-IP {3,}EXTERNAL-IP {3,}PORT\(S\) {3,}AGE$/);
  const web = await api.get<Service>(resourcePath("services", "shop", "web"));
  const webLine = lines.find((l) => l.startsWith("web "))!;
  t.regex(webLine, new RegExp(`^web +NodePort +${web.spec.clusterIP!.replace(/\./g, "\\.")} +<none> +80:${web.spec.ports![0]!.nodePort}/TCP +\\d+s$`));
  t.regex(lines.find((l) => l.startsWith("db "))!, /^db +ClusterIP +[\d.]+ +<none> +5432\/TCP +\d+s$/);
  // Columns line up: every cell starts where its header starts.
  const at = lines[0]!.indexOf("PORT(S)");
  t.is(webLine.indexOf("80:"), at);

  const wide = await cli.run(["get", "services", "-n", "shop", "-o", "wide"]);
  t.regex(wide.stdout.split("\n")[0]!, /PORT\(S\) +AGE +SELECTOR$/);
  t.regex(wide.stdout, /^web .* app=web$/m);

  const pods = await cli.run(["get", "po", "-n", "shop", "-o", "wide"]);
  t.regex(pods.stdout.split("\n")[0]!, /^NAME +READY +STATUS +RESTARTS +AGE +IP +NODE +NOMINATED NODE +READINESS GATES$/);
  t.regex(pods.stdout, /^web-[a-z0-9]+-[a-z0-9]{5} +0\/1 +Pending +0 +\d+s +<none> +<none> +<none> +<none>$/m);

  t.regex((await cli.run(["get", "deploy", "-n", "shop"])).stdout, /^NAME +READY +UP-TO-DATE +AVAILABLE +AGE\nweb +0\/2 +2 +0 +\d+s\n$/);
  t.regex((await cli.run(["get", "rs", "-n", "shop"])).stdout, /^NAME +DESIRED +CURRENT +READY +AGE\nweb-[a-z0-9]+ +2 +2 +0 +\d+s\n$/);
  t.regex((await cli.run(["get", "endpointslices", "-n", "shop"])).stdout, /^NAME +ADDRESSTYPE +PORTS +ENDPOINTS +AGE\n/);
  t.regex((await cli.run(["get", "ns"])).stdout, /^NAME +STATUS +AGE\n(.*\n)*shop +Active +\d+s\n/);
  await api.create(resourcePath("nodes"), { metadata: { name: "node-1", labels: { "node-role.kubernetes.io/worker": "" } }, status: { addresses: [{ type: "InternalIP", address: "198.18.0.11" }], nodeInfo: { kubeletVersion: "v1.33.0-podnet" }, conditions: [{ type: "Ready", status: "True" }] } });
  const nodes = await cli.run(["get", "nodes", "-o", "wide"]);
  t.regex(nodes.stdout, /^NAME +STATUS +ROLES +AGE +VERSION +INTERNAL-IP +EXTERNAL-IP +POD-CIDR +/);
  t.regex(nodes.stdout, /^node-1 +Ready +worker +\d+s +v1\.33\.0-podnet +198\.18\.0\.11 +<none> +10\.244\.\d+\.0\/24 /m);

  const all = await cli.run(["get", "svc", "-A"]);
  t.regex(all.stdout, /^NAMESPACE +NAME +TYPE /);
  t.regex(all.stdout, /^default +kubernetes +ClusterIP +10\.96\.0\.1 /m);
  t.regex(all.stdout, /^shop +web +NodePort /m);

  t.regex((await cli.run(["get", "svc", "web", "-n", "shop", "--show-labels"])).stdout, /LABELS\nweb .* app=web,tier=front\n$/);
  t.regex((await cli.run(["get", "svc", "-n", "shop", "--no-headers"])).stdout, /^db /);

  const several = await cli.run(["get", "deploy,svc", "-n", "shop"]);
  t.regex(several.stdout, /^deployment\.apps\/web +0\/2/m);
  t.regex(several.stdout, /\n\nNAME +TYPE/, "one table per kind, a blank line between");
  t.regex(several.stdout, /^service\/db +ClusterIP/m);

  const empty = await cli.run(["get", "pods", "-n", "nothing-here"]);
  t.is(empty.code, 0);
  t.is(empty.stdout, "");
  t.is(empty.stderr, "No resources found in nothing-here namespace.\n");
  t.is((await cli.run(["get", "deploy", "-A", "-l", "app=none"])).stderr, "No resources found\n");
});

test("get -o yaml and -o json round-trip to the API's objects; -o name; -l selectors", async (t) => {
  const cli = await startCli(t);
  await seed(cli);
  const api = cli.server.client;
  const web = await api.get<Service>(resourcePath("services", "shop", "web"));

  const yaml = await cli.run(["get", "svc", "web", "-n", "shop", "-o", "yaml"]);
  t.is(yaml.code, 0);
  t.deepEqual(parseYAML(yaml.stdout), web, "the YAML is the object");
  t.regex(yaml.stdout, /^apiVersion: v1\nkind: Service\nmetadata:\n/, "keys in kubectl's order");
  t.regex(yaml.stdout, /creationTimestamp: "\d{4}-/, "timestamps quoted, as kubectl prints them");
  t.regex(yaml.stdout, /\n  ports:\n  - name: http\n/, "lists not indented under their key");
  const json = await cli.run(["get", "svc", "web", "-n", "shop", "-o", "json"]);
  t.deepEqual(JSON.parse(json.stdout), web);
  t.regex(json.stdout, /^\{\n {4}"apiVersion": "v1",\n/);

  const list = JSON.parse((await cli.run(["get", "svc", "-n", "shop", "-o", "json"])).stdout) as { kind: string; apiVersion: string; items: Service[] };
  t.is(list.kind, "List");
  t.is(list.apiVersion, "v1");
  t.deepEqual(list.items.map((s) => s.metadata.name).sort(), ["db", "web"]);
  t.true(list.items.every((s) => s.kind === "Service" && s.apiVersion === "v1"));
  const listYaml = parseYAML((await cli.run(["get", "deploy", "-n", "shop", "-o", "yaml"])).stdout) as { items: Deployment[] };
  t.deepEqual(
    listYaml.items.map((d) => [d.apiVersion, d.kind, d.metadata.name]),
    [["apps/v1", "Deployment", "web"]],
  );

  const names = await cli.run(["get", "svc,deploy", "-n", "shop", "-o", "name"]);
  t.deepEqual(names.stdout.trimEnd().split("\n").sort(), ["deployment.apps/web", "service/db", "service/web"]);

  const sel = async (...args: string[]) => (await cli.run(["get", "svc", "-A", "-o", "name", ...args])).stdout.trimEnd().split("\n").filter(Boolean).sort();
  t.deepEqual(await sel("-l", "app=web"), ["service/web"]);
  t.deepEqual(await sel("-l", "app in (web,db)"), ["service/db", "service/web"]);
  t.deepEqual(await sel("-l", "app,app!=web"), ["service/db"]);
  t.deepEqual(await sel("-l", "tier"), ["service/web"]);
  t.deepEqual(await sel("--selector=provider=kubernetes"), ["service/kubernetes"]);
  t.deepEqual(await sel("--field-selector", "metadata.namespace=default"), ["service/kubernetes"]);

  const byKindName = await cli.run(["get", "svc/web", "deploy/web", "-n", "shop", "-o", "name"]);
  t.is(byKindName.stdout, "service/web\ndeployment.apps/web\n");
  const ns = parseYAML((await cli.run(["get", "namespace", "shop", "-o", "yaml"])).stdout) as Namespace;
  t.is(ns.status?.phase, "Active");
});

test("get -w prints the list, then each change as it happens", async (t) => {
  const cli = await startCli(t);
  await seed(cli);
  const api = cli.server.client;
  const watch = cli.spawn(["get", "svc", "-n", "shop", "-w"]);
  const out = outputOf(watch);
  await out.waitFor(/^web +NodePort/m, "the initial table");
  t.regex(out.text(), /^NAME +TYPE +CLUSTER-IP/);
  await api.create<Service>(resourcePath("services", "shop"), { metadata: { name: "late" }, spec: { ports: [{ port: 8443 }] } });
  const text = await out.waitFor(/^late +ClusterIP +[\d.]+ +<none> +8443\/TCP/m, "the new Service's line");
  t.is(text.match(/^NAME /gm)?.length, 1, "the header is printed once");

  // A watch on one object by name sees its changes only.
  const one = cli.spawn(["get", "svc", "db", "-n", "shop", "-w", "-o", "name"]);
  const oneOut = outputOf(one);
  await oneOut.waitFor(/^service\/db\n/, "the object");
  await api.patch(resourcePath("services", "shop", "web"), { metadata: { labels: { touched: "yes" } } });
  await api.patch(resourcePath("services", "shop", "db"), { metadata: { labels: { touched: "yes" } } });
  await oneOut.waitFor(/^service\/db\nservice\/db\n/, "the change of db");
  t.false(oneOut.text().includes("web"));
  t.notRegex(out.text(), NO_STACK);
});

test("get resolves kinds like kubectl: short names, singular, Kind, group-qualified; pod/NAME arguments; --server over TCP", async (t) => {
  const cli = await startCli(t, { listen: "127.0.0.1:0" });
  await seed(cli);
  const url = cli.server.server.url!;
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  // The last --server wins: this one replaces the helper's socket.
  t.is((await cli.run(["get", "svc", "web", "-n", "shop", "-o", "name", "--server", url])).stdout, "service/web\n");
  const refused = await cli.run(["get", "svc", "--server", "http://127.0.0.1:1"]);
  t.is(refused.code, 1);
  t.is(refused.stderr, "The connection to the server http://127.0.0.1:1 was refused - did you specify the right host or port? (ECONNREFUSED)\n");
  for (const kind of ["deploy", "deployment", "deployments", "Deployment", "deployments.apps"]) {
    const r = await cli.run(["get", kind, "-n", "shop", "-o", "name"]);
    t.is(r.stdout, "deployment.apps/web\n", kind);
  }
  const pods = (await cli.run(["get", "pods", "-n", "shop", "-o", "name"])).stdout.trimEnd().split("\n");
  t.is(pods.length, 2);
  const [first] = pods;
  const byName = await cli.run(["get", first!, "-n", "shop"]);
  t.regex(byName.stdout, new RegExp(`^${first!.replace("/", "\\/")} +0/1 +Pending`, "m"));
  const objs = JSON.parse((await cli.run(["get", "po", "-n", "shop", "-o", "json"])).stdout) as { items: KObject[] };
  t.is(objs.items.length, 2);
});
