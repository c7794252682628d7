// `podnet apiserver`: runs the API server in the foreground until SIGINT/SIGTERM.
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { DEFAULTS, startApiServer } from "./server.ts";

const USAGE = `Usage: podnet apiserver --state-dir DIR [options]

Serves the Kubernetes-shaped API (Namespaces, Nodes, Pods, Services, Endpoints,
EndpointSlices, Deployments, ReplicaSets, NetworkPolicies) on DIR/apiserver.sock, stores it
durably in DIR/apiserver.db, and runs the scheduler, EndpointSlice, Endpoints, EndpointSlice
mirroring, node lifecycle, ReplicaSet, Deployment and garbage collection controllers. Logs go
to stderr.

Options:
  --state-dir DIR                   where the store and the socket live (required)
  --listen HOST:PORT                also serve plain HTTP on this address (use a loopback address)
  --service-cidr CIDR               ClusterIP range (default ${DEFAULTS.serviceCIDR})
  --cluster-cidr CIDR               pod network, split into one podCIDR per node (default ${DEFAULTS.clusterCIDR})
  --node-cidr-mask-size N           prefix length of each node's podCIDR (default ${DEFAULTS.nodeCIDRMaskSize})
  --service-node-port-range A-B     NodePort range (default ${DEFAULTS.nodePortRange})
  --lb-pool CIDR                    LoadBalancer addresses of the emulated cloud (default ${DEFAULTS.lbPool}; "" for none)
  --node-monitor-grace-period SECS  a node silent this long turns NotReady (default ${DEFAULTS.nodeMonitorGracePeriodSeconds}; "40s" also accepted)
  --advertise-address IP            where pods reach the API (something there must forward to the
                                    socket, as podnet up's cloud-lb does): the kubernetes Service's endpoint
                                    (its EndpointSlice and Endpoints)
  --advertise-port PORT             the port at that address (default 6443)
  --v                               log every request
`;

function seconds(v: string): number {
  const m = v.match(/^(\d+(?:\.\d+)?)(ms|s|m)?$/);
  if (!m) throw new Error(`--node-monitor-grace-period wants seconds such as 40 or 40s, got "${v}"`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "state-dir": { type: "string" },
        listen: { type: "string" },
        "advertise-address": { type: "string" },
        "advertise-port": { type: "string" },
        "service-cidr": { type: "string" },
        "cluster-cidr": { type: "string" },
        "node-cidr-mask-size": { type: "string" },
        "service-node-port-range": { type: "string" },
        "lb-pool": { type: "string" },
        "node-monitor-grace-period": { type: "string" },
        v: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`podnet apiserver: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values["state-dir"]) {
    process.stderr.write(`podnet apiserver: --state-dir is required\n\n${USAGE}`);
    return 2;
  }
  const mask = values["node-cidr-mask-size"];
  if (mask !== undefined && !/^\d+$/.test(mask)) {
    process.stderr.write(`podnet apiserver: --node-cidr-mask-size wants a number, got "${mask}"\n`);
    return 2;
  }
  const advertise = values["advertise-address"];
  if (advertise !== undefined && isIP(advertise) === 0) {
    process.stderr.write(`podnet apiserver: --advertise-address wants an IP address, got "${advertise}"\n`);
    return 2;
  }
  const advPort = values["advertise-port"];
  if (advPort !== undefined && !(/^\d+$/.test(advPort) && Number(advPort) >= 1 && Number(advPort) <= 65535)) {
    process.stderr.write(`podnet apiserver: --advertise-port wants a port number (1-65535), got "${advPort}"\n`);
    return 2;
  }
  const server = await startApiServer({
    advertiseAddress: advertise,
    advertisePort: advPort === undefined ? undefined : Number(advPort),
    stateDir: values["state-dir"],
    listen: values.listen,
    serviceCIDR: values["service-cidr"],
    clusterCIDR: values["cluster-cidr"],
    nodeCIDRMaskSize: mask === undefined ? undefined : Number(mask),
    nodePortRange: values["service-node-port-range"],
    lbPool: values["lb-pool"],
    nodeMonitorGracePeriodSeconds: values["node-monitor-grace-period"] === undefined ? undefined : seconds(values["node-monitor-grace-period"]),
    verbose: values.v ?? false,
  });
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`apiserver: ${sig}, shutting down\n`);
      server.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
