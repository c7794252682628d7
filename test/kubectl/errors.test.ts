// Errors as kubectl shows them, from the built CLI: the server's NotFound, AlreadyExists and
// Invalid (422, naming the field), unknown kinds, bad files and flags, an unreachable server.
// Always exit code 1, one readable message, never a stack trace, and nothing half-done.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Service } from "../../apiserver/types.ts";
import { NO_STACK, startCli } from "./helpers.ts";

test("NotFound and AlreadyExists read like kubectl's", async (t) => {
  const cli = await startCli(t);
  const missing = await cli.run(["get", "pods", "nope"]);
  t.is(missing.code, 1);
  t.is(missing.stdout, "");
  t.is(missing.stderr, 'Error from server (NotFound): pods "nope" not found\n');
  t.is((await cli.run(["get", "deploy", "nope", "-n", "shop"])).stderr, 'Error from server (NotFound): deployments.apps "nope" not found\n');
  t.is((await cli.run(["describe", "svc", "nope"])).stderr, 'Error from server (NotFound): services "nope" not found\n');
  t.is((await cli.run(["delete", "pod", "nope"])).stderr, 'Error from server (NotFound): pods "nope" not found\n');
  const ignored = await cli.run(["delete", "pod", "nope", "--ignore-not-found"]);
  t.is(ignored.code, 0);
  t.is(ignored.stderr, "");

  // Found and missing names together: the found ones print, the missing ones are errors.
  const mixed = await cli.run(["get", "svc", "kubernetes", "nope", "-o", "name"]);
  t.is(mixed.code, 1);
  t.is(mixed.stdout, "service/kubernetes\n");
  t.is(mixed.stderr, 'Error from server (NotFound): services "nope" not found\n');

  t.is((await cli.run(["create", "namespace", "shop"])).stdout, "namespace/shop created\n");
  const twice = await cli.run(["create", "namespace", "shop"]);
  t.is(twice.code, 1);
  t.is(twice.stderr, 'Error from server (AlreadyExists): namespaces "shop" already exists\n');

  const file = await cli.file("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n");
  t.is((await cli.run(["create", "-f", file])).stdout, "service/web created\n");
  const again = await cli.run(["create", "-f", file]);
  t.is(again.code, 1);
  t.is(again.stderr, `Error from server (AlreadyExists): error when creating "${file}": services "web" already exists\n`);
});

test("invalid objects: 422 shown as 'The Service \"x\" is invalid: FIELD: ...', nothing created, the other documents still applied", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const file = await cli.file(
    "mixed.yaml",
    `apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  ports: [{port: 0}]
---
apiVersion: v1
kind: Service
metadata: {name: good}
spec:
  ports: [{port: 80}]
`,
  );
  const r = await cli.run(["apply", "-f", file]);
  t.is(r.code, 1);
  t.is(r.stdout, "service/good created\n");
  t.is(r.stderr, 'The Service "bad" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n');
  const names = (await api.list<Service>(resourcePath("services", "default"))).items.map((s) => s.metadata.name).sort();
  t.deepEqual(names, ["good", "kubernetes"], "the invalid Service was not created");

  // Several problems are listed one per line, as kubectl does.
  const two = await cli.file("two.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: worse}\nspec:\n  type: Bogus\n  ports: [{port: 70000}]\n");
  const r2 = await cli.run(["apply", "-f", two]);
  t.is(r2.code, 1);
  const [head, ...items] = r2.stderr.trimEnd().split("\n");
  t.is(head, 'The Service "worse" is invalid: ');
  t.deepEqual(items.map((l) => l.replace(/^(\* [^:]+: [^:]+:[^:]*):.*$/, "$1")).sort(), ['* spec.ports[0].port: Invalid value: 70000', '* spec.type: Unsupported value: "Bogus"']);

  // An update that the server refuses (a pod's spec is immutable) is shown the same way.
  const pod = (image: string, command: string) =>
    cli.file("pod.yaml", `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: ${image}\n    command: [${command}]\n`);
  t.is((await cli.run(["apply", "-f", await pod("a", "sleep")])).stdout, "pod/p created\n");
  const refused = await cli.run(["apply", "-f", await pod("a", "cat")]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^The Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than /);
  t.is((await cli.run(["apply", "-f", await pod("b", "sleep")])).stdout, "pod/p configured\n", "images may change");
});

test("unknown kinds, bad files, bad flags and an unreachable server are clear one-line errors", async (t) => {
  const cli = await startCli(t);
  const cases: [string[], RegExp | string][] = [
    [["get", "foo"], 'error: the server doesn\'t have a resource type "foo"\n'],
    [["get", "cm"], 'error: the server doesn\'t have a resource type "cm"\n'],
    [["describe", "widgets", "x"], 'error: the server doesn\'t have a resource type "widgets"\n'],
    [["get"], /^error: you must specify the type of resource to get; one of: pods \(po\), services \(svc\), nodes \(no\), namespaces \(ns\), endpoints \(ep\), endpointslices, deployments \(deploy\), replicasets \(rs\), networkpolicies \(netpol\)\n$/],
    [["get", "pods", "--bogus"], "error: unknown flag: --bogus\n"],
    [["get", "pods", "-o", "table"], /^error: unable to match a printer suitable for the output format "table"/],
    [["get", "pods", "x", "-A"], "error: a resource cannot be retrieved by name across all namespaces\n"],
    [["apply"], "error: must specify -f FILE, DIR or - (stdin)\n"],
    [["apply", "-f", "/nonexistent/file.yaml"], 'error: the path "/nonexistent/file.yaml" does not exist\n'],
    [["delete", "pods"], /^error: resource\(s\) were provided, but no name was specified/],
    [["scale", "deploy", "web"], 'error: required flag(s) "replicas" not set\n'],
    [["scale", "svc", "web", "--replicas", "2"], /^error: cannot scale services/],
    [["get", "pods", "-n", "Bad_NS"], /^error: invalid namespace "Bad_NS"/],
  ];
  for (const [args, want] of cases) {
    const r = await cli.run(args);
    t.is(r.code, 1, args.join(" "));
    if (typeof want === "string") t.is(r.stderr, want, args.join(" "));
    else t.regex(r.stderr, want, args.join(" "));
    t.notRegex(r.stderr, NO_STACK);
  }

  const foo = await cli.file("foo.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: after-widget}\n");
  const r = await cli.run(["apply", "-f", foo]);
  t.is(r.code, 1);
  t.is(r.stdout, "namespace/after-widget created\n", "the objects podnet knows are still applied");
  t.is(r.stderr, `error: resource mapping not found for name: "w" namespace: "" from "${foo}": no matches for kind "Widget" in version "example.com/v1"\n`);

  const broken = await cli.file("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n");
  const b = await cli.run(["apply", "-f", broken]);
  t.is(b.code, 1);
  t.regex(b.stderr, new RegExp(`^error: error parsing ${broken.replace(/[.]/g, "\\.")}: error converting YAML to JSON: yaml: line \\d+: `));

  const clash = await cli.file("clash.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec: {ports: [{port: 1}]}\n");
  t.is(
    (await cli.run(["apply", "-f", clash, "-n", "other"])).stderr,
    `error: the namespace from the provided object "shop" does not match the namespace "other". You must pass '--namespace=shop' to perform this operation.\n`,
  );

  // No server behind the socket: kubectl's connection message, exit 1.
  const { execa } = await import("execa");
  const { PODNET } = await import("../helpers/podnet.ts");
  const down = await execa(process.execPath, [PODNET, "get", "pods", "--server", `${cli.dir}/no-such.sock`], { reject: false });
  t.is(down.exitCode, 1);
  t.is(down.stderr, `The connection to the server unix:${cli.dir}/no-such.sock was refused - did you specify the right host or port? (ENOENT)`);
  // No cluster of that name: says how to start one.
  const noCluster = await execa(process.execPath, [PODNET, "get", "pods", "--name", "nocluster"], { reject: false, env: { PODNET_STATE_ROOT: cli.dir } });
  t.is(noCluster.exitCode, 1);
  t.regex(noCluster.stderr, /^error: no cluster "nocluster": start one with `podnet up --name nocluster`/);
});
