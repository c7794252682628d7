// What `podnet up` deploys into every cluster: the cluster DNS, as a Deployment in kube-system
// behind the Service kube-dns at the DNS IP, the way kubeadm deploys CoreDNS.
import type { Deployment, Service } from "../apiserver/types.ts";
import type { ClusterLayout } from "./layout.ts";

export const DNS_LABELS = { "k8s-app": "kube-dns" };

export function dnsService(l: ClusterLayout): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "kube-dns", namespace: "kube-system", labels: { ...DNS_LABELS, "kubernetes.io/name": "CoreDNS" } },
    spec: {
      selector: DNS_LABELS,
      clusterIP: l.cfg.dnsIP,
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
      ],
    },
  };
}

export function dnsDeployment(l: ClusterLayout): Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "kube-dns", namespace: "kube-system", labels: DNS_LABELS },
    spec: {
      replicas: 2,
      selector: { matchLabels: DNS_LABELS },
      template: {
        metadata: { labels: DNS_LABELS },
        spec: {
          // Its own resolver must not be itself.
          dnsPolicy: "Default",
          containers: [
            {
              name: "dns",
              image: "podnet/dns",
              command: ["podnet", "dns", "--api", l.apiSocket, "--listen", "0.0.0.0:53", "--domain", l.cfg.domain, "--health-port", "8080"],
              ports: [
                { name: "dns", containerPort: 53, protocol: "UDP" },
                { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
              ],
              readinessProbe: { httpGet: { path: "/ready", port: 8080 }, periodSeconds: 1 },
              livenessProbe: { httpGet: { path: "/health", port: 8080 }, periodSeconds: 10, failureThreshold: 5 },
            },
          ],
        },
      },
    },
  };
}
