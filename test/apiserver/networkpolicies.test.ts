// NetworkPolicy (networking.k8s.io/v1): Kubernetes' defaults, its validation with the field paths
// and wording of ValidateNetworkPolicy, and the REST verbs, watch and discovery for the kind.
import test from "ava";
import { resourcePath, type ApiClient } from "../../apiserver/client.ts";
import type { NetworkPolicy, NetworkPolicySpec, WatchEvent } from "../../apiserver/types.ts";
import { apiError, eventually, startTestServer } from "./helpers.ts";

const path = resourcePath("networkpolicies", "default");

async function create(client: ApiClient, name: string, spec?: unknown): Promise<NetworkPolicy> {
  return client.create<NetworkPolicy>(path, { metadata: { name }, ...(spec === undefined ? {} : { spec }) } as NetworkPolicy);
}

test("NetworkPolicy defaults are Kubernetes': TCP ports, policyTypes from the rules, an empty podSelector", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });

  const bare = await create(client, "bare");
  t.is(bare.apiVersion, "networking.k8s.io/v1");
  t.is(bare.kind, "NetworkPolicy");
  t.is(bare.metadata.generation, 1);
  t.deepEqual(bare.spec, { podSelector: {}, policyTypes: ["Ingress"] }, "no spec at all: deny every ingress to every pod");

  const ingressOnly = await create(client, "ingress", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ ports: [{ port: 5432 }, { port: 53, protocol: "UDP" }, {}] }] });
  t.deepEqual(ingressOnly.spec.ingress![0]!.ports, [{ port: 5432, protocol: "TCP" }, { port: 53, protocol: "UDP" }, { protocol: "TCP" }]);
  t.deepEqual(ingressOnly.spec.policyTypes, ["Ingress"]);

  const withEgress = await create(client, "egress", { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" } }], ports: [{ port: 443 }] }] });
  t.deepEqual(withEgress.spec.policyTypes, ["Ingress", "Egress"], "egress rules make it an Egress policy too");
  t.deepEqual(withEgress.spec.egress![0]!.ports, [{ port: 443, protocol: "TCP" }]);

  const emptyEgress = await create(client, "empty-egress", { podSelector: {}, egress: [] });
  t.deepEqual(emptyEgress.spec.policyTypes, ["Ingress"], "an empty egress list is no egress rule");

  const explicit = await create(client, "explicit", { podSelector: {}, policyTypes: ["Egress"], egress: [{}] });
  t.deepEqual(explicit.spec.policyTypes, ["Egress"], "policyTypes given are kept");
  const emptyTypes = await create(client, "empty-types", { podSelector: {}, policyTypes: [], egress: [{}] });
  t.deepEqual(emptyTypes.spec.policyTypes, ["Ingress", "Egress"], "an empty policyTypes is defaulted like an absent one");
  const nullSelector = await create(client, "null-selector", { podSelector: null });
  t.deepEqual(nullSelector.spec.podSelector, {});
});

test("NetworkPolicy accepts what Kubernetes accepts", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const spec: NetworkPolicySpec = {
    podSelector: { matchLabels: { app: "db" }, matchExpressions: [{ key: "tier", operator: "In", values: ["back", "data"] }, { key: "legacy", operator: "DoesNotExist" }] },
    policyTypes: ["Ingress", "Egress"],
    ingress: [
      {
        from: [
          { podSelector: { matchLabels: { role: "api" } } },
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ops" } }, podSelector: { matchExpressions: [{ key: "app", operator: "Exists" }] } },
          { namespaceSelector: {} },
          { ipBlock: { cidr: "172.17.0.0/16", except: ["172.17.1.0/24", "172.17.2.128/25"] } },
          { ipBlock: { cidr: "10.0.0.1/8" } },
        ],
        ports: [{ port: 5432 }, { port: "metrics", protocol: "TCP" }, { port: 32000, endPort: 32768, protocol: "UDP" }, { protocol: "SCTP" }, { port: 7000, endPort: 7000 }],
      },
      {},
    ],
    egress: [{ to: [{ ipBlock: { cidr: "2001:db8::/32", except: ["2001:db8:1::/48"] } }, { podSelector: {} }] }, { ports: [{ port: 53, protocol: "UDP" }] }],
  };
  const np = await create(client, "full", spec);
  t.deepEqual(np.spec.ingress![0]!.from, spec.ingress![0]!.from);
  t.is(np.spec.ingress![0]!.ports!.length, 5);
  t.deepEqual(np.spec.egress, [spec.egress![0], { ports: [{ port: 53, protocol: "UDP" }] }]);
  // A dotted name is a valid DNS-1123 subdomain, as Kubernetes requires of NetworkPolicy names.
  t.is((await create(client, "allow.dns-egress")).metadata.name, "allow.dns-egress");
});

test("NetworkPolicy rejections name the field and read like Kubernetes'", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const cases: { what: string; spec: unknown; causes: [string, string][] }[] = [
    {
      what: "a peer with nothing in it",
      spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }, {}] }] },
      causes: [["spec.ingress[0].from[1]", "Required value: must specify a peer"]],
    },
    {
      what: "ipBlock with a selector",
      spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" }, namespaceSelector: {} }] }] },
      causes: [["spec.egress[0].to[0]", "Forbidden: may not specify both ipBlock and another peer"]],
    },
    {
      what: "a bad CIDR",
      spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }, { ipBlock: { cidr: "10.0.0.0/33" } }] }] },
      causes: [["spec.ingress[0].from[1].ipBlock.cidr", 'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']],
    },
    {
      what: "an address without a prefix length",
      spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "192.168.1.1" } }] }] },
      causes: [["spec.ingress[0].from[0].ipBlock.cidr", 'Invalid value: "192.168.1.1": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']],
    },
    {
      what: "leading zeros",
      spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "010.0.0.0/8" } }] }] },
      causes: [["spec.ingress[0].from[0].ipBlock.cidr", 'Invalid value: "010.0.0.0/8": must not have leading 0s in IP or prefix length']],
    },
    {
      what: "an empty cidr",
      spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "" } }] }] },
      causes: [["spec.ingress[0].from[0].ipBlock.cidr", "Required value"]],
    },
    {
      what: "except outside, equal to, of another family than, or not a CIDR",
      spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "10.1.0.0/16", except: ["10.2.0.0/24", "10.1.0.0/16", "fd00::/64", "10.1.0.0/8", "nope", "10.1.5.0/24"] } }] }] },
      causes: [
        ["spec.egress[0].to[0].ipBlock.except[0]", 'Invalid value: "10.2.0.0/24": must be a strict subset of `cidr`'],
        ["spec.egress[0].to[0].ipBlock.except[1]", 'Invalid value: "10.1.0.0/16": must be a strict subset of `cidr`'],
        ["spec.egress[0].to[0].ipBlock.except[2]", 'Invalid value: "fd00::/64": must be a strict subset of `cidr`'],
        ["spec.egress[0].to[0].ipBlock.except[3]", 'Invalid value: "10.1.0.0/8": must be a strict subset of `cidr`'],
        ["spec.egress[0].to[0].ipBlock.except[4]", 'Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'],
      ],
    },
    {
      what: "an IPv6 except outside its IPv6 cidr",
      spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "2001:db8::/32", except: ["2001:db9::/48"] } }] }] },
      causes: [["spec.egress[0].to[0].ipBlock.except[0]", 'Invalid value: "2001:db9::/48": must be a strict subset of `cidr`']],
    },
    {
      what: "ports: protocol, number, name, range",
      spec: {
        podSelector: {},
        ingress: [
          {
            ports: [
              { port: 80, protocol: "ICMP" },
              { port: 0 },
              { port: 65536 },
              { port: "Not_A_Name" },
              { port: "http", endPort: 90 },
              { port: 9000, endPort: 8000 },
              { port: 9000, endPort: 70000 },
              { endPort: 90 },
            ],
          },
        ],
      },
      causes: [
        ["spec.ingress[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'],
        ["spec.ingress[0].ports[1].port", "Invalid value: 0: must be between 1 and 65535, inclusive"],
        ["spec.ingress[0].ports[2].port", "Invalid value: 65536: must be between 1 and 65535, inclusive"],
        ["spec.ingress[0].ports[3].port", 'Invalid value: "Not_A_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'],
        ["spec.ingress[0].ports[4].endPort", "Invalid value: 90: may not be specified when `port` is non-numeric"],
        ["spec.ingress[0].ports[5].endPort", "Invalid value: 8000: must be greater than or equal to `port`"],
        ["spec.ingress[0].ports[6].endPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"],
        ["spec.ingress[0].ports[7].endPort", "Invalid value: 90: may not be specified when `port` is not specified"],
      ],
    },
    {
      what: "a port name longer than 15 characters",
      spec: { podSelector: {}, egress: [{ ports: [{ port: "a-very-long-port-name" }] }] },
      causes: [["spec.egress[0].ports[0].port", 'Invalid value: "a-very-long-port-name": must be no more than 15 characters']],
    },
    {
      what: "label selectors: operators, values, keys",
      spec: {
        podSelector: { matchExpressions: [{ key: "app", operator: "In" }, { key: "app", operator: "Exists", values: ["x"] }, { key: "app", operator: "Equals", values: ["x"] }] },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { "bad key!": "x" } } }, { podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["ok", "not ok"] }] } }] }],
      },
      causes: [
        ["spec.podSelector.matchExpressions[0].values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"],
        ["spec.podSelector.matchExpressions[1].values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"],
        ["spec.podSelector.matchExpressions[2].operator", 'Invalid value: "Equals": not a valid selector operator'],
        [
          "spec.ingress[0].from[0].namespaceSelector.matchLabels",
          `Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
        ],
        [
          "spec.ingress[0].from[1].podSelector.matchExpressions[0].values[1]",
          `Invalid value: "not ok": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
        ],
      ],
    },
    {
      what: "a selector key with an empty prefix",
      spec: { podSelector: { matchExpressions: [{ key: "/app", operator: "Exists" }] } },
      causes: [["spec.podSelector.matchExpressions[0].key", 'Invalid value: "/app": prefix part must be non-empty']],
    },
    {
      what: "policyTypes: unknown and too many",
      spec: { podSelector: {}, policyTypes: ["Ingress", "Sideways"] },
      causes: [["spec.policyTypes[1]", 'Unsupported value: "Sideways": supported values: "Ingress", "Egress"']],
    },
    {
      what: "three policyTypes",
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress", "Ingress"] },
      causes: [["spec.policyTypes", 'Invalid value: []networking.PolicyType{"Ingress", "Egress", "Ingress"}: may not specify more than two policyTypes']],
    },
  ];
  for (const c of cases) {
    const e = await apiError(create(client, "bad", c.spec), 422);
    t.is(e.reason, "Invalid", c.what);
    t.deepEqual(
      (e.body.details?.causes ?? []).map((x) => [x.field, x.message]),
      c.causes,
      c.what,
    );
    t.is(e.body.details?.kind, "NetworkPolicy");
    t.is(e.body.details?.group, "networking.k8s.io");
    const parts = c.causes.map(([f, m]) => `${f}: ${m}`);
    t.is(e.message, `NetworkPolicy "bad" is invalid: ${parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`}`, c.what);
  }
  t.deepEqual((await client.list<NetworkPolicy>(path)).items, [], "nothing invalid was stored");

  const badName = await apiError(create(client, "Not_Valid"), 422);
  t.deepEqual(badName.body.details?.causes?.map((c) => c.field), ["metadata.name"]);
  t.regex(badName.message, /a lowercase RFC 1123 subdomain must consist of/);
});

test("NetworkPolicy REST: create, get, list, update (generation), patch, delete, and an unknown namespace", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  await client.create(resourcePath("namespaces"), { metadata: { name: "team" } });
  const created = await client.create<NetworkPolicy>(path, {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "db", labels: { app: "db" } },
    spec: { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "api" } } }] }] },
  });
  await create(client, "other");
  await client.create<NetworkPolicy>(resourcePath("networkpolicies", "team"), { metadata: { name: "deny-all" }, spec: { podSelector: {} } } as NetworkPolicy);

  const got = await client.get<NetworkPolicy>(`${path}/db`);
  t.deepEqual(got, created);
  t.deepEqual((await client.list<NetworkPolicy>(path)).items.map((n) => n.metadata.name), ["db", "other"]);
  const all = await client.list<NetworkPolicy>(resourcePath("networkpolicies"));
  t.is(all.kind, "NetworkPolicyList");
  t.is(all.apiVersion, "networking.k8s.io/v1");
  t.deepEqual(all.items.map((n) => `${n.metadata.namespace}/${n.metadata.name}`).sort(), ["default/db", "default/other", "team/deny-all"]);
  t.deepEqual((await client.list<NetworkPolicy>(path, { labelSelector: "app=db" })).items.map((n) => n.metadata.name), ["db"]);
  t.deepEqual((await client.list<NetworkPolicy>(resourcePath("networkpolicies"), { fieldSelector: "metadata.namespace=team" })).items.map((n) => n.metadata.name), ["deny-all"]);

  // The spec may change (unlike a pod's): the generation follows it; metadata changes leave it.
  const changed = structuredClone(got);
  changed.spec.ingress![0]!.ports = [{ port: 5432 }];
  const updated = await client.update<NetworkPolicy>(`${path}/db`, changed);
  t.is(updated.metadata.generation, 2);
  t.deepEqual(updated.spec.ingress![0]!.ports, [{ port: 5432, protocol: "TCP" }], "defaults apply on update");
  const relabelled = await client.patch<NetworkPolicy>(`${path}/db`, { metadata: { labels: { app: "db", team: "data" } } });
  t.is(relabelled.metadata.generation, 2);
  const egress = await client.patch<NetworkPolicy>(`${path}/db`, { spec: { egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }], policyTypes: ["Ingress", "Egress"] } }, { type: "strategic" });
  t.is(egress.metadata.generation, 3);
  t.deepEqual(egress.spec.policyTypes, ["Ingress", "Egress"]);
  t.deepEqual(egress.spec.ingress, updated.spec.ingress, "a strategic patch leaves the lists it does not name");
  const badPatch = await apiError(client.patch(`${path}/db`, { spec: { egress: [{ to: [{}] }] } }), 422);
  t.deepEqual(badPatch.body.details?.causes?.map((c) => c.field), ["spec.egress[0].to[0]"]);
  const stale = await apiError(client.update(`${path}/db`, { ...changed, metadata: { ...changed.metadata, resourceVersion: got.metadata.resourceVersion } }), 409);
  t.is(stale.reason, "Conflict");
  t.regex(stale.message, /^Operation cannot be fulfilled on networkpolicies\.networking\.k8s\.io "db"/);

  const dup = await apiError(create(client, "other"), 409);
  t.is(dup.message, 'networkpolicies.networking.k8s.io "other" already exists');
  const noNs = await apiError(client.create(resourcePath("networkpolicies", "nowhere"), { metadata: { name: "x" }, spec: {} }), 404);
  t.is(noNs.message, 'namespaces "nowhere" not found');

  await client.delete(`${path}/db`);
  const missing = await apiError(client.get(`${path}/db`), 404);
  t.is(missing.message, 'networkpolicies.networking.k8s.io "db" not found');
  t.deepEqual((await client.list<NetworkPolicy>(path)).items.map((n) => n.metadata.name), ["other"]);
});

test("NetworkPolicy watch: ADDED, MODIFIED, DELETED; discovery lists the kind under networking.k8s.io/v1", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const start = await client.list<NetworkPolicy>(path);
  const events: WatchEvent<NetworkPolicy>[] = [];
  const w = client.watch<NetworkPolicy>(path, { resourceVersion: start.metadata.resourceVersion }, (ev) => events.push(ev));
  t.teardown(() => w.stop());
  await create(client, "web", { podSelector: { matchLabels: { app: "web" } } });
  await client.patch(`${path}/web`, { spec: { ingress: [{}] } });
  await client.delete(`${path}/web`);
  await eventually("three events", () => events.length >= 3);
  t.deepEqual(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.generation]), [
    ["ADDED", "web", 1],
    ["MODIFIED", "web", 2],
    ["DELETED", "web", 2],
  ]);
  t.deepEqual(events[1]!.object.spec.ingress, [{}]);

  const groups = await client.get<{ groups: { name: string; preferredVersion: { groupVersion: string } }[] }>("/apis");
  t.is(groups.groups.find((g) => g.name === "networking.k8s.io")?.preferredVersion.groupVersion, "networking.k8s.io/v1");
  const list = await client.get<{ groupVersion: string; resources: { name: string; singularName: string; kind: string; namespaced: boolean; shortNames?: string[]; verbs: string[] }[] }>("/apis/networking.k8s.io/v1");
  t.is(list.groupVersion, "networking.k8s.io/v1");
  t.deepEqual(list.resources.map((r) => r.name), ["networkpolicies"], "no status subresource");
  t.like(list.resources[0], { singularName: "networkpolicy", kind: "NetworkPolicy", namespaced: true, shortNames: ["netpol"] });
  t.true(list.resources[0]!.verbs.includes("watch"));
});

test("a namespace's NetworkPolicies go with it", async (t) => {
  const { client } = await startTestServer(t);
  await client.create(resourcePath("namespaces"), { metadata: { name: "gone" } });
  await client.create(resourcePath("networkpolicies", "gone"), { metadata: { name: "deny-all" }, spec: {} });
  await client.delete(resourcePath("namespaces", "gone"));
  await eventually("the namespace removed", async () => {
    try {
      await client.get(resourcePath("namespaces", "gone"));
      return false;
    } catch {
      return true;
    }
  });
  t.deepEqual((await client.list<NetworkPolicy>(resourcePath("networkpolicies"))).items, []);
});
