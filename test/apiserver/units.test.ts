// Unit tests of the pure pieces: selector parsing, patches, allocators, resource paths.
import test from "ava";
import { resourcePath } from "../../apiserver/client.ts";
import { ClusterIPAllocator, PodCIDRAllocator, PortAllocator } from "../../apiserver/allocators.ts";
import { jsonPatch, mergePatch, strategicMergePatch } from "../../apiserver/patch.ts";
import { matchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from "../../apiserver/selectors.ts";

test("label selector syntax", (t) => {
  t.deepEqual(parseLabelSelector("a=b, c!=d,e in (x, y),f notin (z),g,!h,i==j"), [
    { key: "a", op: "=", values: ["b"] },
    { key: "c", op: "!=", values: ["d"] },
    { key: "e", op: "in", values: ["x", "y"] },
    { key: "f", op: "notin", values: ["z"] },
    { key: "g", op: "exists", values: [] },
    { key: "h", op: "!", values: [] },
    { key: "i", op: "=", values: ["j"] },
  ]);
  t.deepEqual(parseLabelSelector("app.kubernetes.io/name=web"), [{ key: "app.kubernetes.io/name", op: "=", values: ["web"] }]);
  t.deepEqual(parseLabelSelector("a="), [{ key: "a", op: "=", values: [""] }]);
  t.deepEqual(parseLabelSelector(""), []);
  for (const bad of ["a in x", "a in ()", "=b", "a,", "a b", "a=(b)", "-a=b", "a=b$"]) t.throws(() => parseLabelSelector(bad), { instanceOf: SelectorError }, bad);
  const reqs = parseLabelSelector("tier notin (front),env");
  t.true(matchLabels(reqs, { env: "prod" }));
  t.false(matchLabels(reqs, { env: "prod", tier: "front" }));
  t.false(matchLabels(reqs, {}));
  t.deepEqual(parseFieldSelector("spec.nodeName=n1,status.phase!=Failed,metadata.name==a\\,b"), [
    { field: "spec.nodeName", op: "=", value: "n1" },
    { field: "status.phase", op: "!=", value: "Failed" },
    { field: "metadata.name", op: "=", value: "a,b" },
  ]);
});

test("merge, strategic merge and JSON patches", (t) => {
  const pod = { spec: { containers: [{ name: "a", image: "1", env: [{ name: "X", value: "1" }] }, { name: "b", image: "1" }] }, metadata: { labels: { a: "1" } } };
  t.deepEqual(mergePatch(pod, { metadata: { labels: { a: null, b: "2" } } }), { ...pod, metadata: { labels: { b: "2" } } });
  t.deepEqual((mergePatch(pod, { spec: { containers: [{ name: "c" }] } }) as typeof pod).spec.containers, [{ name: "c" }]);
  const sm = strategicMergePatch(pod, { spec: { containers: [{ name: "a", image: "2", env: [{ name: "Y", value: "2" }] }, { name: "b", $patch: "delete" }, { name: "c", image: "3" }] } }) as typeof pod;
  t.deepEqual(sm.spec.containers, [
    { name: "a", image: "2", env: [{ name: "X", value: "1" }, { name: "Y", value: "2" }] },
    { name: "c", image: "3" },
  ]);
  t.deepEqual(pod.spec.containers.length, 2, "the target is not modified");
  t.deepEqual(jsonPatch({ a: [1, 2] }, [{ op: "add", path: "/a/-", value: 3 }, { op: "remove", path: "/a/0" }, { op: "test", path: "/a/0", value: 2 }]), { a: [2, 3] });
  t.throws(() => jsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 2 }]));
});

test("allocators: static and dynamic bands, reserved addresses, sequential podCIDRs", (t) => {
  const ips = new ClusterIPAllocator("10.96.0.0/12", ["10.96.0.1", "10.96.0.10"]);
  for (let i = 0; i < 200; i++) {
    const ip = ips.next()!;
    // The first 256 addresses are kept for Services that ask for an address.
    t.false(ip.startsWith("10.96.0."), `${ip} is in the static band`);
  }
  t.is(ips.take("10.96.0.10"), "ok");
  t.is(ips.take("10.96.0.10"), "taken");
  t.is(ips.take("10.112.0.1"), "out-of-range");
  t.is(ips.take("10.96.0.0"), "out-of-range", "the network address is not a ClusterIP");
  const small = new ClusterIPAllocator("10.0.0.0/29", ["10.0.0.1"]);
  const got = new Set<string>();
  for (let ip = small.next(); ip; ip = small.next()) got.add(ip);
  t.deepEqual([...got].sort(), ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  const ports = new PortAllocator("30000-30002");
  t.deepEqual([ports.next(), ports.next(), ports.next()].sort(), [30000, 30001, 30002]);
  t.is(ports.next(), undefined);
  const cidrs = new PodCIDRAllocator("10.244.0.0/16", 24);
  t.is(cidrs.next(), "10.244.0.0/24");
  t.is(cidrs.take("10.244.2.0/24"), "ok");
  t.is(cidrs.next(), "10.244.1.0/24");
  t.is(cidrs.next(), "10.244.3.0/24");
  t.is(cidrs.take("10.244.5.0/25"), "misaligned");
  t.is(cidrs.take("192.168.0.0/24"), "outside");
});

test("resourcePath builds Kubernetes' paths", (t) => {
  t.is(resourcePath("pods"), "/api/v1/pods");
  t.is(resourcePath("pods", "default"), "/api/v1/namespaces/default/pods");
  t.is(resourcePath("pods", "default", "web-1"), "/api/v1/namespaces/default/pods/web-1");
  t.is(resourcePath("endpointslices", "kube-system"), "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices");
  t.is(resourcePath("deployments", "a", "b"), "/apis/apps/v1/namespaces/a/deployments/b");
  t.is(resourcePath("replicasets"), "/apis/apps/v1/replicasets");
  t.is(resourcePath("nodes", undefined, "n1"), "/api/v1/nodes/n1");
  t.is(resourcePath("nodes", "n1"), "/api/v1/nodes/n1");
  t.is(resourcePath("namespaces", undefined, "default"), "/api/v1/namespaces/default");
  t.throws(() => resourcePath("pods", undefined, "x"));
});
