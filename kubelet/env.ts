// A container's environment as the kubelet builds it: the service environment variables of the
// pod's namespace (plus the master service `kubernetes` of default, always), then the container's
// own env with downward-API fieldRefs and $(VAR) references expanded, the container's winning.
import type { Container, Pod, Service } from "../apiserver/types.ts";

export interface EnvVar {
  name: string;
  value: string;
}

const MASTER_SERVICES = new Set(["kubernetes"]);

const envName = (s: string) => s.toUpperCase().replace(/-/g, "_");

function hasClusterIP(s: Service): boolean {
  const ip = s.spec?.clusterIP;
  return !!ip && ip !== "None";
}

const joinHostPort = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

/** {SVC}_SERVICE_HOST/_PORT/_PORT_{NAME} and the docker-link {SVC}_PORT... variables of one Service. */
export function serviceEnv(s: Service): EnvVar[] {
  const ports = s.spec.ports ?? [];
  const ip = s.spec.clusterIP!;
  const prefix = envName(s.metadata.name!);
  const out: EnvVar[] = [{ name: `${prefix}_SERVICE_HOST`, value: ip }];
  if (!ports.length) return out;
  out.push({ name: `${prefix}_SERVICE_PORT`, value: String(ports[0]!.port) });
  for (const p of ports) if (p.name) out.push({ name: `${prefix}_SERVICE_PORT_${envName(p.name)}`, value: String(p.port) });
  ports.forEach((p, i) => {
    const proto = p.protocol ?? "TCP";
    const url = `${proto.toLowerCase()}://${joinHostPort(ip, p.port)}`;
    if (i === 0) out.push({ name: `${prefix}_PORT`, value: url });
    const pp = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
    out.push({ name: pp, value: url }, { name: `${pp}_PROTO`, value: proto.toLowerCase() }, { name: `${pp}_PORT`, value: String(p.port) }, { name: `${pp}_ADDR`, value: ip });
  });
  return out;
}

/** The Services whose variables a pod gets, as Kubernetes picks them. */
export function servicesForPod(pod: Pod, services: Service[]): Service[] {
  const ns = pod.metadata.namespace ?? "default";
  const links = pod.spec.enableServiceLinks !== false;
  const chosen = new Map<string, Service>();
  const sorted = [...services].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  for (const s of sorted) {
    if (!hasClusterIP(s)) continue;
    const name = s.metadata.name!;
    if (s.metadata.namespace === "default" && MASTER_SERVICES.has(name)) {
      if (!chosen.has(name)) chosen.set(name, s);
    } else if (s.metadata.namespace === ns && links) {
      chosen.set(name, s);
    }
  }
  return [...chosen.values()].sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
}

export interface PodFacts {
  podIPs: string[];
  hostIPs: string[];
  nodeName: string;
}

/** A downward-API fieldRef's value, or an error naming the unsupported path. */
export function fieldRefValue(pod: Pod, path: string, facts: PodFacts): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations)?.[m[2]!] ?? "";
  switch (path) {
    case "metadata.name":
      return pod.metadata.name ?? "";
    case "metadata.namespace":
      return pod.metadata.namespace ?? "default";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "spec.nodeName":
      return facts.nodeName;
    case "spec.serviceAccountName":
      return String((pod.spec as unknown as Record<string, unknown>).serviceAccountName ?? "default");
    case "status.podIP":
      return facts.podIPs[0] ?? "";
    case "status.podIPs":
      return facts.podIPs.join(",");
    case "status.hostIP":
      return facts.hostIPs[0] ?? "";
    case "status.hostIPs":
      return facts.hostIPs.join(",");
    default:
      throw new Error(`unsupported fieldRef fieldPath ${JSON.stringify(path)}`);
  }
}

/** Expands $(VAR) from `vars`; $$ is a literal $, unknown references stay as written. */
export function expand(s: string, vars: Map<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return vars.has(name!) ? vars.get(name!)! : whole;
  });
}

export function containerEnv(pod: Pod, c: Container, services: Service[], facts: PodFacts): EnvVar[] {
  const vars = new Map<string, string>();
  for (const s of servicesForPod(pod, services)) for (const e of serviceEnv(s)) vars.set(e.name, e.value);
  for (const e of c.env ?? []) {
    let value: string;
    if (e.valueFrom?.fieldRef) value = fieldRefValue(pod, e.valueFrom.fieldRef.fieldPath, facts);
    else if (e.valueFrom) throw new Error(`env ${e.name}: only valueFrom.fieldRef is supported`);
    else value = expand(e.value ?? "", vars);
    vars.set(e.name, value);
  }
  return [...vars].map(([name, value]) => ({ name, value }));
}

/** command and args with $(VAR) references expanded from the container's environment. */
export function expandCommand(c: Container, env: EnvVar[]): { command: string[]; args: string[] } {
  const vars = new Map(env.map((e) => [e.name, e.value]));
  return { command: (c.command ?? []).map((x) => expand(x, vars)), args: (c.args ?? []).map((x) => expand(x, vars)) };
}
