// Validation (422 Invalid naming the field, with Kubernetes' wording) and defaults.
import test from "ava";
import { resourcePath, type ApiClient } from "../../apiserver/client.ts";
import type { Deployment, Pod, Service } from "../../apiserver/types.ts";
import { apiError, startTestServer } from "./helpers.ts";

const container = { name: "app", image: "podnet/agnhost" };

async function invalid(client: ApiClient, path: string, obj: unknown) {
  const e = await apiError(client.create(path, obj), 422);
  return { message: e.message, fields: (e.body.details?.causes ?? []).map((c) => c.field), reason: e.reason, body: e.body };
}

test("Services: ports, protocols, names and types are checked, naming the field", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("services", "default");
  const port0 = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ port: 0, targetPort: 80 }] } });
  t.is(port0.message, 'Service "x" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive');
  t.is(port0.reason, "Invalid");
  t.deepEqual(port0.body.details?.causes, [{ reason: "FieldValueInvalid", message: "Invalid value: 0: must be between 1 and 65535, inclusive", field: "spec.ports[0].port" }]);
  t.is(port0.body.details?.kind, "Service");
  t.is(port0.body.details?.name, "x");

  const proto = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ port: 53, protocol: "ICMP" }] } });
  t.is(proto.message, 'Service "x" is invalid: spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"');

  const names = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ port: 80 }, { port: 81 }] } });
  t.deepEqual(names.fields, ["spec.ports[0].name", "spec.ports[1].name"]);
  t.regex(names.message, /^Service "x" is invalid: \[spec\.ports\[0\]\.name: Required value, spec\.ports\[1\]\.name: Required value\]$/);

  const dup = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ name: "a", port: 80 }, { name: "a", port: 80 }] } });
  t.deepEqual(dup.fields, ["spec.ports[1].name", "spec.ports[1]"]);

  const svcName = await invalid(client, path, { metadata: { name: "1web" }, spec: { ports: [{ port: 80 }] } });
  t.deepEqual(svcName.fields, ["metadata.name"]);
  t.regex(svcName.message, /a DNS-1035 label must consist of lower case alphanumeric characters/);

  const type = await invalid(client, path, { metadata: { name: "x" }, spec: { type: "Magic", ports: [{ port: 80 }] } });
  t.deepEqual(type.fields, ["spec.type"]);

  const np = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ port: 80, nodePort: 30080 }] } });
  t.is(np.message, "Service \"x\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");

  const etp = await invalid(client, path, { metadata: { name: "x" }, spec: { externalTrafficPolicy: "Local", ports: [{ port: 80 }] } });
  t.deepEqual(etp.fields, ["spec.externalTrafficPolicy"]);

  const tp = await invalid(client, path, { metadata: { name: "x" }, spec: { ports: [{ port: 80, targetPort: "Not_A_Name" }] } });
  t.true(tp.fields.every((f) => f === "spec.ports[0].targetPort"));

  const noPorts = await invalid(client, path, { metadata: { name: "x" }, spec: { selector: { app: "x" } } });
  t.deepEqual(noPorts.fields, ["spec.ports"]);

  const ext = await invalid(client, path, { metadata: { name: "x" }, spec: { type: "ExternalName" } });
  t.deepEqual(ext.fields, ["spec.externalName"]);
});

test("Service defaults are Kubernetes' defaults", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("services", "default");
  const svc = await client.create<Service>(path, { metadata: { name: "web" }, spec: { selector: { app: "web" }, ports: [{ port: 80 }] } });
  t.is(svc.spec.type, "ClusterIP");
  t.is(svc.spec.sessionAffinity, "None");
  t.deepEqual(svc.spec.ports, [{ port: 80, protocol: "TCP", targetPort: 80 }]);
  t.deepEqual(svc.spec.ipFamilies, ["IPv4"]);
  t.is(svc.spec.ipFamilyPolicy, "SingleStack");
  t.is(svc.spec.internalTrafficPolicy, "Cluster");
  t.is(svc.spec.externalTrafficPolicy, undefined);
  t.deepEqual(svc.spec.clusterIPs, [svc.spec.clusterIP]);
  const np = await client.create<Service>(path, { metadata: { name: "np" }, spec: { type: "NodePort", sessionAffinity: "ClientIP", selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] } });
  t.is(np.spec.externalTrafficPolicy, "Cluster");
  t.is(np.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds, 10800);
  t.is(np.spec.ports![0].targetPort, "http");
  t.true(np.spec.ports![0].nodePort! >= 30000 && np.spec.ports![0].nodePort! <= 32767);
  const headless = await client.create<Service>(path, { metadata: { name: "hl" }, spec: { clusterIP: "None", selector: { app: "web" } } });
  t.is(headless.spec.clusterIP, "None");
  t.deepEqual(headless.spec.clusterIPs, ["None"]);
});

test("Pods: containers, names, ports and policies are checked; defaults are applied", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("pods", "default");
  const noContainers = await invalid(client, path, { metadata: { name: "p" }, spec: {} });
  t.deepEqual(noContainers.fields, ["spec.containers"]);
  const dupNames = await invalid(client, path, { metadata: { name: "p" }, spec: { containers: [container, container] } });
  t.is(dupNames.message, 'Pod "p" is invalid: spec.containers[1].name: Duplicate value: "app"');
  const badPort = await invalid(client, path, { metadata: { name: "p" }, spec: { containers: [{ ...container, ports: [{ containerPort: 70000 }] }] } });
  t.deepEqual(badPort.fields, ["spec.containers[0].ports[0].containerPort"]);
  const badProto = await invalid(client, path, { metadata: { name: "p" }, spec: { containers: [{ ...container, ports: [{ containerPort: 80, protocol: "tcp" }] }] } });
  t.deepEqual(badProto.fields, ["spec.containers[0].ports[0].protocol"]);
  const badPortName = await invalid(client, path, { metadata: { name: "p" }, spec: { containers: [{ ...container, ports: [{ name: "http_port", containerPort: 80 }] }] } });
  t.deepEqual(badPortName.fields, ["spec.containers[0].ports[0].name"]);
  const noImage = await invalid(client, path, { metadata: { name: "p" }, spec: { containers: [{ name: "app" }] } });
  t.deepEqual(noImage.fields, ["spec.containers[0].image"]);
  const policy = await invalid(client, path, { metadata: { name: "p" }, spec: { restartPolicy: "Sometimes", containers: [container] } });
  t.is(policy.message, 'Pod "p" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"');
  const badName = await invalid(client, path, { metadata: { name: "Web_1" }, spec: { containers: [container] } });
  t.deepEqual(badName.fields, ["metadata.name"]);
  t.regex(badName.message, /^Pod "Web_1" is invalid: metadata\.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of/);
  const badLabel = await invalid(client, path, { metadata: { name: "p", labels: { "a b": "x", ok: "not ok!" } }, spec: { containers: [container] } });
  t.deepEqual(badLabel.fields, ["metadata.labels", "metadata.labels"]);
  const noName = await invalid(client, path, { metadata: {}, spec: { containers: [container] } });
  t.is(noName.message, 'Pod "" is invalid: metadata.name: Required value: name or generateName is required');

  const pod = await client.create<Pod>(path, { metadata: { name: "p" }, spec: { containers: [{ ...container, ports: [{ containerPort: 8080 }] }] } });
  t.is(pod.spec.restartPolicy, "Always");
  t.is(pod.spec.dnsPolicy, "ClusterFirst");
  t.is(pod.spec.terminationGracePeriodSeconds, 30);
  t.is(pod.spec.enableServiceLinks, true);
  t.is(pod.spec.schedulerName, "default-scheduler");
  t.is(pod.spec.containers[0].ports![0].protocol, "TCP");
  t.is(pod.status?.phase, "Pending");
  // A pod's spec is fixed once created, except for a few fields.
  const change = await apiError(client.patch(`${path}/p`, { spec: { containers: [{ ...container, args: ["x"] }] } }, { type: "strategic" }), 422);
  t.deepEqual(change.body.details?.causes?.map((c) => c.field), ["spec"]);
  t.regex(change.message, /pod updates may not change fields other than/);
});

test("Deployments: the selector must match the template labels; strategy and replicas are checked; defaults applied", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const path = resourcePath("deployments", "default");
  const mismatch = await invalid(client, path, {
    metadata: { name: "web" },
    spec: { selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "api" } }, spec: { containers: [container] } } },
  });
  t.is(mismatch.message, 'Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`');
  t.deepEqual(mismatch.fields, ["spec.template.metadata.labels"]);
  const noSelector = await invalid(client, path, { metadata: { name: "web" }, spec: { template: { metadata: { labels: { app: "web" } }, spec: { containers: [container] } } } });
  t.deepEqual(noSelector.fields, ["spec.selector"]);
  // The selector's expressions are checked as metav1 checks them (shared with NetworkPolicy).
  const expr = await invalid(client, path, {
    metadata: { name: "web" },
    spec: { selector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier!", operator: "Equals", values: ["a"] }] }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [container] } } },
  });
  t.deepEqual(expr.fields, ["spec.selector.matchExpressions[0].operator", "spec.selector.matchExpressions[0].key"], "no selector/labels mismatch on top");
  t.is(expr.body.details?.causes?.[0]?.message, 'Invalid value: "Equals": not a valid selector operator');
  const base = { selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [container] } } };
  const neg = await invalid(client, path, { metadata: { name: "web" }, spec: { ...base, replicas: -1 } });
  t.deepEqual(neg.fields, ["spec.replicas"]);
  const zero = await invalid(client, path, { metadata: { name: "web" }, spec: { ...base, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } } });
  t.deepEqual(zero.fields, ["spec.strategy.rollingUpdate.maxUnavailable"]);
  const pct = await invalid(client, path, { metadata: { name: "web" }, spec: { ...base, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "lots" } } } });
  t.deepEqual(pct.fields, ["spec.strategy.rollingUpdate.maxSurge"]);
  const restart = await invalid(client, path, { metadata: { name: "web" }, spec: { ...base, template: { ...base.template, spec: { containers: [container], restartPolicy: "Never" } } } });
  t.is(restart.message, 'Deployment "web" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"');
  const tmplContainer = await invalid(client, path, { metadata: { name: "web" }, spec: { ...base, template: { ...base.template, spec: { containers: [{ name: "app", image: "x", ports: [{ containerPort: 0 }] }] } } } });
  t.deepEqual(tmplContainer.fields, ["spec.template.spec.containers[0].ports[0].containerPort"]);

  const d = await client.create<Deployment>(path, { metadata: { name: "web" }, spec: base });
  t.is(d.spec.replicas, 1);
  t.deepEqual(d.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } });
  t.is(d.spec.revisionHistoryLimit, 10);
  t.is(d.spec.progressDeadlineSeconds, 600);
  t.is(d.spec.template.spec.restartPolicy, "Always");
  t.is(d.metadata.generation, 1);
  const sel = await apiError(client.patch(`${path}/web`, { spec: { selector: { matchLabels: { app: "web", v: "2" } }, template: { metadata: { labels: { app: "web", v: "2" } } } } }), 422);
  t.deepEqual(sel.body.details?.causes?.map((c) => c.field), ["spec.selector"]);
  t.regex(sel.message, /field is immutable/);
});

test("Nodes, EndpointSlices and Namespaces are validated too", async (t) => {
  const { client } = await startTestServer(t, { controllers: false });
  const cidr = await invalid(client, resourcePath("nodes"), { metadata: { name: "n1" }, spec: { podCIDR: "10.244.1.0/33" } });
  t.deepEqual(cidr.fields, ["spec.podCIDR"]);
  const taint = await invalid(client, resourcePath("nodes"), { metadata: { name: "n1" }, spec: { taints: [{ key: "k", effect: "Sometimes" }] } });
  t.deepEqual(taint.fields, ["spec.taints[0].effect"]);
  const slice = await invalid(client, resourcePath("endpointslices", "default"), { metadata: { name: "s" }, addressType: "IPv4", endpoints: [{ addresses: ["not-an-ip"] }], ports: [{ port: 80, protocol: "XTP" }] });
  t.deepEqual(slice.fields, ["endpoints[0].addresses[0]", "ports[0].protocol"]);
  const noType = await invalid(client, resourcePath("endpointslices", "default"), { metadata: { name: "s" }, endpoints: [] });
  t.deepEqual(noType.fields, ["addressType"]);
  const ns = await invalid(client, resourcePath("namespaces"), { metadata: { name: "a.b" } });
  t.deepEqual(ns.fields, ["metadata.name"]);
  t.regex(ns.message, /a lowercase RFC 1123 label/);
  // Bodies that are not objects, or of another kind, are a 400.
  t.is((await apiError(client.create(resourcePath("pods", "default"), { kind: "Service", metadata: { name: "x" }, spec: {} }), 400)).reason, "BadRequest");
  t.is((await apiError(client.create(resourcePath("pods", "default"), [1, 2]), 400)).reason, "BadRequest");
  t.is((await apiError(client.update(resourcePath("services", "default", "kubernetes"), { metadata: { name: "other" }, spec: {} }), 400)).reason, "BadRequest");
});

test("externalTrafficPolicy Local -> Cluster on a LoadBalancer drops its health check node port and frees it", async (t) => {
  const { client } = await startTestServer(t);
  const path = resourcePath("services", "default");
  const lb = await client.create<Service>(path, { metadata: { name: "lb" }, spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", selector: { app: "x" }, ports: [{ port: 80 }] } });
  const hc = lb.spec.healthCheckNodePort;
  t.truthy(hc);
  const cluster = await client.update<Service>(resourcePath("services", "default", "lb"), { ...lb, spec: { ...lb.spec, externalTrafficPolicy: "Cluster" } });
  t.is(cluster.spec.healthCheckNodePort, undefined);
  const reuse = await client.create<Service>(path, { metadata: { name: "np" }, spec: { type: "NodePort", selector: { app: "x" }, ports: [{ port: 80, nodePort: hc }] } });
  t.is(reuse.spec.ports?.[0]?.nodePort, hc, "the port was released");
});
