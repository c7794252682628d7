// NetworkPolicy in the CLI: `get` with kubectl's columns, `describe` with kubectl's page, and
// `apply`/`create`/`delete` of YAML files, from the built CLI against an in-process API server;
// the printers are also checked directly, where the whole text can be compared.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { NetworkPolicy } from "../../apiserver/types.ts";
import { resolveKind } from "../../kubectl/kinds.ts";
import { COLUMNS } from "../../kubectl/printers/columns.ts";
import { describeNetworkPolicy, goTimeString } from "../../kubectl/printers/describe.ts";
import { startCli } from "./helpers.ts";

// The example of the Kubernetes documentation, and two more: deny-all (empty selector) and one
// whose ports rely on the TCP default.
const POLICIES = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  labels: {app: web}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In, values: [web, api]}]
  ingress:
  - {}
  - ports: [{port: 8000, endPort: 9000}, {protocol: UDP}, {port: http}]
    from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: lb}}}]
`;

const DOCS_EXAMPLE_SPEC = `Spec:
  PodSelector:     role=db
  Allowing ingress traffic:
    To Port: 6379/TCP
    From:
      IPBlock:
        CIDR: 172.17.0.0/16
        Except: 172.17.1.0/24
    From:
      NamespaceSelector: project=myproject
    From:
      PodSelector: role=frontend
  Allowing egress traffic:
    To Port: 5978/TCP
    To:
      IPBlock:
        CIDR: 10.0.0.0/24
        Except: 
  Policy Types: Ingress, Egress
`;

test("netpol is a kind of the CLI by every name kubectl knows it by", (t) => {
  for (const typed of ["netpol", "networkpolicy", "networkpolicies", "NetworkPolicy", "networkpolicies.networking.k8s.io", "netpol.v1.networking.k8s.io"]) {
    t.is(resolveKind(typed).resource, "networkpolicies", typed);
  }
});

test("describe a NetworkPolicy: kubectl's page, with the empty selector, isolation, port ranges and combined peers", (t) => {
  const np: NetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "web", namespace: "shop", creationTimestamp: "2024-05-01T10:00:00Z", labels: { b: "2", a: "1" }, annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", note: "x" } },
    spec: {
      podSelector: {},
      policyTypes: ["Ingress", "Egress"],
      ingress: [{}, { ports: [{ port: 8000, endPort: 9000, protocol: "TCP" }, { protocol: "UDP" }, { port: "http", protocol: "TCP" }], from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "lb" } } }, { namespaceSelector: { matchLabels: { team: "a" } } }] }],
      egress: [],
    },
  };
  t.is(
    describeNetworkPolicy(np),
    `Name:         web
Namespace:    shop
Created on:   ${goTimeString("2024-05-01T10:00:00Z")}
Labels:       a=1
              b=2
Annotations:  note: x
Spec:
  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)
  Allowing ingress traffic:
    To Port: <any> (traffic allowed to all ports)
    From: <any> (traffic not restricted by source)
    ----------
    To Port Range: 8000-9000/TCP
    To Port: <nil>/UDP
    To Port: http/TCP
    From:
      NamespaceSelector: <none>
      PodSelector: role=lb
    From:
      NamespaceSelector: team=a
  Allowing egress traffic:
    <none> (Selected pods are isolated for egress connectivity)
  Policy Types: Ingress, Egress
`,
  );
  const ingressOnly = describeNetworkPolicy({ ...np, spec: { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"] } });
  t.regex(ingressOnly, /\n {2}PodSelector: {5}app=db\n {2}Allowing ingress traffic:\n {4}<none> \(Selected pods are isolated for ingress connectivity\)\n {2}Not affecting egress traffic\n {2}Policy Types: Ingress\n$/);
  const egressOnly = describeNetworkPolicy({ ...np, spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{ ports: [{ port: 53, protocol: "UDP" }] }] } });
  t.regex(egressOnly, /\n {2}Not affecting ingress traffic\n {2}Allowing egress traffic:\n {4}To Port: 53\/UDP\n {4}To: <any> \(traffic not restricted by destination\)\n {2}Policy Types: Egress\n$/);
});

test("Go's time.String() for 'Created on'", (t) => {
  t.regex(goTimeString("2024-05-01T10:00:00Z"), /^2024-05-0[12] \d\d:\d\d:00 [+-]\d{4} \S+$/);
  t.is(goTimeString(undefined), "0001-01-01 00:00:00 +0000 UTC");
  if (new Date().getTimezoneOffset() === 0 && new Date("2024-05-01T10:00:00Z").getTimezoneOffset() === 0) t.is(goTimeString("2024-05-01T10:00:00Z"), "2024-05-01 10:00:00 +0000 UTC");
});

test("get's columns for NetworkPolicy are kubectl's: POD-SELECTOR and AGE, nothing more with -o wide", (t) => {
  const c = COLUMNS.networkpolicies;
  t.deepEqual(c.header, ["POD-SELECTOR", "AGE"]);
  t.deepEqual(c.wideHeader, []);
  const now = Date.parse("2024-05-01T10:05:00Z");
  const at = (podSelector: NetworkPolicy["spec"]["podSelector"]): NetworkPolicy => ({ metadata: { name: "x", creationTimestamp: "2024-05-01T10:00:00Z" }, spec: { podSelector } });
  t.deepEqual(c.cells(at({}), now), ["<none>", "5m"]);
  t.deepEqual(c.cells(at({ matchLabels: { role: "db", app: "x" } }), now), ["app=x,role=db", "5m"]);
  t.deepEqual(c.cells(at({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["b", "a"] }] }), now), ["tier notin (a,b)", "5m"]);
});

test("apply, get, describe, create and delete NetworkPolicies with the CLI", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const file = await cli.file("netpol.yaml", POLICIES);

  const first = await cli.run(["apply", "-f", file]);
  t.is(first.stderr, "");
  t.is(first.stdout, "networkpolicy.networking.k8s.io/test-network-policy created\nnetworkpolicy.networking.k8s.io/default-deny-all created\nnetworkpolicy.networking.k8s.io/web created\n");
  const web = await api.get<NetworkPolicy>(resourcePath("networkpolicies", "default", "web"));
  t.deepEqual(web.spec.policyTypes, ["Ingress"], "defaulted by the server");
  t.deepEqual(web.spec.ingress![1]!.ports![1], { protocol: "UDP" });

  // A policy whose file leaves a port's protocol to the default is "configured" again: rules are
  // lists Kubernetes replaces whole, so kubectl's patch sends them back, and the write changes nothing.
  const again = await cli.run(["apply", "-f", file]);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, "networkpolicy.networking.k8s.io/test-network-policy unchanged\nnetworkpolicy.networking.k8s.io/default-deny-all unchanged\nnetworkpolicy.networking.k8s.io/web configured\n");
  const webAfter = await api.get<NetworkPolicy>(resourcePath("networkpolicies", "default", "web"));
  t.is(webAfter.metadata.resourceVersion, web.metadata.resourceVersion, "the patch changed nothing");
  t.is(webAfter.metadata.generation, 1);

  await cli.file("netpol.yaml", POLICIES.replace("port: 6379", "port: 6380"));
  const changed = await cli.run(["apply", "-f", file]);
  t.regex(changed.stdout, /^networkpolicy\.networking\.k8s\.io\/test-network-policy configured$/m);
  const tnp = await api.get<NetworkPolicy>(resourcePath("networkpolicies", "default", "test-network-policy"));
  t.deepEqual(tnp.spec.ingress![0]!.ports, [{ protocol: "TCP", port: 6380 }]);
  t.is(tnp.metadata.generation, 2);

  const get = await cli.run(["get", "netpol"]);
  t.is(get.code, 0, get.stderr);
  t.regex(get.stdout, /^NAME {18}POD-SELECTOR {7}AGE\ndefault-deny-all {6}<none> {13}\d+s\ntest-network-policy {3}role=db {12}\d+s\nweb {19}app in \(api,web\) {3}\d+s\n$/);
  const wide = await cli.run(["get", "networkpolicies", "-o", "wide"]);
  const ages = (s: string) => s.replace(/\d+s$/gm, "AGE");
  t.is(ages(wide.stdout), ages(get.stdout), "-o wide adds no column");
  t.regex(wide.stdout.split("\n")[0]!, /^NAME +POD-SELECTOR +AGE$/);
  const all = await cli.run(["get", "networkpolicies.networking.k8s.io", "-A", "-l", "app=web"]);
  t.regex(all.stdout, /^NAMESPACE +NAME +POD-SELECTOR +AGE\ndefault +web +app in \(api,web\) +\d+s\n$/);
  t.is((await cli.run(["get", "netpol", "-o", "name"])).stdout, "networkpolicy.networking.k8s.io/default-deny-all\nnetworkpolicy.networking.k8s.io/test-network-policy\nnetworkpolicy.networking.k8s.io/web\n");
  t.regex((await cli.run(["get", "netpol/web", "-o", "yaml"])).stdout, /^apiVersion: networking\.k8s\.io\/v1\nkind: NetworkPolicy\n/);
  const none = await cli.run(["get", "netpol", "-n", "kube-system"]);
  t.is(none.stderr, "No resources found in kube-system namespace.\n");

  const d = await cli.run(["describe", "netpol", "test-network-policy"]);
  t.is(d.code, 0, d.stderr);
  t.regex(d.stdout, /^Name: {9}test-network-policy\nNamespace: {4}default\nCreated on: {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\nLabels: {7}<none>\nAnnotations: {2}<none>\n/);
  t.true(d.stdout.endsWith(DOCS_EXAMPLE_SPEC.replace("6379", "6380")), d.stdout);
  const denyAll = await cli.run(["describe", "networkpolicy", "default-deny"]);
  t.regex(denyAll.stdout, /^Name: +default-deny-all\n/, "a name prefix, as kubectl describe allows");
  t.regex(denyAll.stdout, /\n {2}PodSelector: {5}<none> \(Allowing the specific traffic to all pods in this namespace\)\n {2}Allowing ingress traffic:\n {4}<none> \(Selected pods are isolated for ingress connectivity\)\n/);

  const invalid = await cli.file(
    "bad.yaml",
    `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]
    ports: [{port: 80, protocol: ICMP}]
`,
  );
  const refused = await cli.run(["apply", "-f", invalid]);
  t.is(refused.code, 1);
  t.is(refused.stdout, "");
  t.is(
    refused.stderr,
    'The NetworkPolicy "bad" is invalid: \n* spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"\n* spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer\n',
  );

  const created = await cli.run(["create", "-f", await cli.file("one.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-dns}\nspec:\n  podSelector: {}\n  egress: [{ports: [{port: 53, protocol: UDP}]}]\n")]);
  t.is(created.stdout, "networkpolicy.networking.k8s.io/allow-dns created\n", created.stderr);
  t.deepEqual((await api.get<NetworkPolicy>(resourcePath("networkpolicies", "default", "allow-dns"))).spec.policyTypes, ["Ingress", "Egress"]);

  const del = await cli.run(["delete", "netpol", "web", "allow-dns"]);
  t.is(del.code, 0, del.stderr);
  t.is(del.stdout, 'networkpolicy.networking.k8s.io "web" deleted\nnetworkpolicy.networking.k8s.io "allow-dns" deleted\n');
  const byFile = await cli.run(["delete", "-f", file]);
  t.regex(byFile.stdout, /^networkpolicy\.networking\.k8s\.io "test-network-policy" deleted\nnetworkpolicy\.networking\.k8s\.io "default-deny-all" deleted\n/);
  t.deepEqual((await api.list<NetworkPolicy>(resourcePath("networkpolicies"))).items, []);
});
