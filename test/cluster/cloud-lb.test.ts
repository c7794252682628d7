// The emulated cloud load balancer's decisions (the routes themselves are checked end to end in
// test/e2e/services-external.test.ts): which addresses are health-checked, and where they go.
import test from "ava";
import type { Service } from "../../apiserver/types.ts";
import { healthChecked, nextHops } from "../../cluster/cloud-lb.ts";

const svc = (name: string, spec: Partial<Service["spec"]>, ingress: string[]): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace: "default" },
  spec: { ports: [{ port: 80 }], ...spec } as Service["spec"],
  status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } },
});

test("only LoadBalancer Services with externalTrafficPolicy Local and a health check port are health-checked", (t) => {
  const out = healthChecked([
    svc("local", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31000 }, ["198.18.1.1"]),
    svc("cluster", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }, ["198.18.1.2"]),
    svc("nodeport", { type: "NodePort", externalTrafficPolicy: "Local", healthCheckNodePort: 31001 }, []),
    svc("pending", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31002 }, []),
    svc("dual", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31003 }, ["198.18.1.4", "fd00::4"]),
  ]);
  t.deepEqual(out, [
    { ip: "198.18.1.1", port: 31000, service: "default/local" },
    { ip: "198.18.1.4", port: 31003, service: "default/dual" },
  ]);
});

test("an address goes to its healthy nodes, and to every node when none is healthy (fail open)", (t) => {
  const nodes = ["198.18.0.11", "198.18.0.12", "198.18.0.13"];
  t.deepEqual(nextHops(nodes, [false, true, false]), ["198.18.0.12"]);
  t.deepEqual(nextHops(nodes, [true, false, true]), ["198.18.0.11", "198.18.0.13"]);
  t.deepEqual(nextHops(nodes, [false, false, false]), nodes);
});
