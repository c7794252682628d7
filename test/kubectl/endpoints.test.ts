// Endpoints in the CLI: kubectl's ENDPOINTS column and describe page, and apply/get/describe/delete
// of a selector-less Service with hand-written Endpoints against an in-process API server.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import type { Endpoints, EndpointSlice } from "../../apiserver/types.ts";
import { formatEndpoints } from "../../kubectl/printers/columns.ts";
import { describeEndpoints } from "../../kubectl/printers/describe.ts";
import { resolveKind } from "../../kubectl/kinds.ts";
import { eventually, startCli } from "./helpers.ts";

const ep = (subsets: Endpoints["subsets"]): Endpoints => ({ metadata: { name: "e", namespace: "default" }, subsets });

test("ENDPOINTS reads like kubectl's formatEndpoints", (t) => {
  t.is(formatEndpoints(ep(undefined)), "<none>");
  t.is(formatEndpoints(ep([{ addresses: [{ ip: "10.244.1.3" }], ports: [{ port: 8080 }] }])), "10.244.1.3:8080");
  // Subset by subset, port by port, address by address; three shown, the rest counted.
  const two = ep([
    { addresses: [{ ip: "10.244.1.3" }, { ip: "10.244.2.3" }], ports: [{ name: "a", port: 8080 }, { name: "b", port: 9090 }] },
    { addresses: [{ ip: "10.244.3.3" }], notReadyAddresses: [{ ip: "10.244.4.4" }], ports: [{ name: "a", port: 8080 }] },
  ]);
  t.is(formatEndpoints(two), "10.244.1.3:8080,10.244.2.3:8080,10.244.1.3:9090 + 2 more...");
  t.is(formatEndpoints(ep([{ addresses: [{ ip: "10.0.0.1" }, { ip: "2001:db8::1" }] }])), "10.0.0.1,2001:db8::1", "a subset without ports lists bare IPs");
  t.is(formatEndpoints(ep([{ addresses: [{ ip: "2001:db8::1" }], ports: [{ port: 80 }] }])), "[2001:db8::1]:80");
  t.is(formatEndpoints(ep([{ notReadyAddresses: [{ ip: "10.0.0.9" }], ports: [{ port: 80 }] }])), "", "only not-ready addresses: an empty cell, as kubectl prints it");
});

test("describe Endpoints is kubectl's page", (t) => {
  const e = ep([
    { addresses: [{ ip: "10.244.1.3" }, { ip: "10.244.2.3" }], notReadyAddresses: [{ ip: "10.244.3.3" }], ports: [{ name: "http", port: 8080, protocol: "TCP" }, { port: 53, protocol: "UDP" }] },
    { notReadyAddresses: [{ ip: "10.244.4.4" }] },
  ]);
  e.metadata.labels = { app: "web" };
  t.is(
    describeEndpoints(e),
    [
      "Name:         e",
      "Namespace:    default",
      "Labels:       app=web",
      "Annotations:  <none>",
      "Subsets:",
      "  Addresses:          10.244.1.3,10.244.2.3",
      "  NotReadyAddresses:  10.244.3.3",
      "  Ports:",
      "    Name     Port  Protocol",
      "    ----     ----  --------",
      "    http     8080  TCP",
      "    <unset>  53    UDP",
      "",
      "  Addresses:          <none>",
      "  NotReadyAddresses:  10.244.4.4",
      "",
      "",
    ].join("\n"),
  );
  t.is(resolveKind("ep").resource, "endpoints");
  t.is(resolveKind("Endpoints").resource, "endpoints");
  t.is(resolveKind("endpoints.v1").resource, "endpoints");
});

test("apply, get, describe and delete a selector-less Service with hand-written Endpoints", async (t) => {
  const cli = await startCli(t);
  const api = cli.server.client;
  const file = await cli.file(
    "ext.yaml",
    `apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext, labels: {app: ext}}
subsets:
- addresses: [{ip: 192.0.2.10}, {ip: 192.0.2.11}, {ip: 192.0.2.12}, {ip: 192.0.2.13}]
  ports: [{name: http, port: 8080}]
`,
  );
  const applied = await cli.run(["apply", "-f", file]);
  t.is(applied.stdout, "service/ext created\nendpoints/ext created\n", applied.stderr);
  // subsets is a list Kubernetes replaces whole, and the file leaves the protocol to the server: as
  // with kubectl, the Endpoints are "configured" again although the write changes nothing.
  t.is((await cli.run(["apply", "-f", file])).stdout, "service/ext unchanged\nendpoints/ext configured\n");
  const rv = (await api.get<Endpoints>(resourcePath("endpoints", "default", "ext"))).metadata.resourceVersion;
  t.is((await cli.run(["apply", "-f", file])).stdout, "service/ext unchanged\nendpoints/ext configured\n");
  t.is((await api.get<Endpoints>(resourcePath("endpoints", "default", "ext"))).metadata.resourceVersion, rv);

  const get = await cli.run(["get", "ep", "ext"]);
  t.is(get.code, 0, get.stderr);
  t.regex(get.stdout, /^NAME +ENDPOINTS +AGE\next +192\.0\.2\.10:8080,192\.0\.2\.11:8080,192\.0\.2\.12:8080 \+ 1 more\.\.\. +\d+s\n$/);
  const all = await cli.run(["get", "endpoints"]);
  t.regex(all.stdout, /^ext +192\.0\.2\.10:8080/m);
  t.notRegex(all.stdout, /^kubernetes /m, "no --advertise-address here, so no kubernetes Endpoints");
  t.is((await cli.run(["get", "ep", "-o", "name"])).stdout, "endpoints/ext\n");

  const d = await cli.run(["describe", "ep", "ext"]);
  t.regex(d.stdout, /^Name: +ext\nNamespace: +default\nLabels: +app=ext\nAnnotations: +<none>\nSubsets:\n  Addresses: +192\.0\.2\.10,192\.0\.2\.11,192\.0\.2\.12,192\.0\.2\.13\n  NotReadyAddresses: +<none>\n  Ports:\n/);

  // The mirror that kube-proxy will read.
  const mirror = await eventually("a mirrored slice", async () => {
    const s = await api.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=ext" });
    return s.items.length === 1 && s.items[0]!.endpoints.length === 4 && s.items[0];
  });
  t.is(mirror.metadata.labels?.["endpointslice.kubernetes.io/managed-by"], "endpointslicemirroring-controller.k8s.io");

  // Endpoints first: a Service's deletion takes the Endpoints of its name along (as upstream).
  const del = await cli.run(["delete", "endpoints", "ext"]);
  t.is(del.stdout, 'endpoints "ext" deleted\n', del.stderr);
  t.is((await cli.run(["delete", "svc", "ext"])).stdout, 'service "ext" deleted\n');
  const lone = await cli.file("lone.yaml", `{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "lone"}, "subsets": [{"notReadyAddresses": [{"ip": "192.0.2.20"}]}]}\n`);
  t.is((await cli.run(["create", "-f", lone])).stdout, "endpoints/lone created\n");
  t.regex((await cli.run(["get", "ep", "lone"])).stdout, /^lone +\d+s\n$/m, "only not-ready addresses: an empty ENDPOINTS cell");
  t.is((await cli.run(["delete", "-f", lone])).stdout, 'endpoints "lone" deleted\n');
  await eventually("mirror gone", async () => (await api.list<EndpointSlice>(resourcePath("endpointslices", "default"), { labelSelector: "kubernetes.io/service-name=ext" })).items.length === 0);
});
