// The index of EndpointSlices by Service and manager that the Endpoints and mirroring
// controllers look slices up in (apiserver/controllers/slice-index.ts).
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import { SlicesByService } from "../../apiserver/controllers/slice-index.ts";
import type { EndpointSlice } from "../../apiserver/types.ts";
import { startTestServer } from "./helpers.ts";

const slice = (name: string, svc: string, managedBy: string): EndpointSlice => ({
  metadata: { name, namespace: "default", labels: { "kubernetes.io/service-name": svc, "endpointslice.kubernetes.io/managed-by": managedBy } },
  addressType: "IPv4",
  endpoints: [],
});

test("slices are found by namespace, Service and manager, and follow relabels and deletions", async (t) => {
  const { client, server } = await startTestServer(t, { controllers: false });
  const path = resourcePath("endpointslices", "default");
  await client.create(path, slice("web-a", "web", "x"));
  await client.create(path, slice("web-b", "web", "x"));
  await client.create(path, slice("web-m", "web", "m"));
  await client.create(path, slice("db-a", "db", "x"));
  const idx = new SlicesByService(server.registry);
  idx.load();
  const names = (svc: string, by: string) => idx.get("default", svc, by).map((s) => s.obj.metadata.name).sort();
  t.deepEqual(names("web", "x"), ["web-a", "web-b"]);
  t.deepEqual(names("web", "m"), ["web-m"]);
  t.deepEqual(names("db", "x"), ["db-a"]);
  t.deepEqual(idx.get("other", "web", "x"), []);

  // web-b moves to db; web-a is deleted: the events the controllers pass on.
  const prevB = server.registry.get<EndpointSlice>("endpointslices", "default", "web-b");
  const moved = { ...prevB.obj, metadata: { ...prevB.obj.metadata, labels: { ...prevB.obj.metadata.labels, "kubernetes.io/service-name": "db" } } };
  await client.update(resourcePath("endpointslices", "default", "web-b"), moved);
  idx.onEvent({ type: "MODIFIED", resource: "endpointslices", rv: 0, object: server.registry.get("endpointslices", "default", "web-b"), prev: prevB });
  const gone = server.registry.get("endpointslices", "default", "web-a");
  await client.delete(resourcePath("endpointslices", "default", "web-a"));
  idx.onEvent({ type: "DELETED", resource: "endpointslices", rv: 0, object: gone });
  t.deepEqual(names("web", "x"), []);
  t.deepEqual(names("db", "x"), ["db-a", "web-b"]);
});
