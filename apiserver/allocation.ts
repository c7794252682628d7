// What the API server allocates when Services and Nodes are written: ClusterIPs, NodePorts and
// health-check NodePorts for Services, podCIDRs for Nodes. Every change is all-or-nothing: an
// Allocation is committed when the object is stored, rolled back when the write fails.
import { isIPv4 } from "node:net";
import { AddressPool, ClusterIPAllocator, PodCIDRAllocator, PortAllocator } from "./allocators.ts";
import { fieldErr, type FieldError } from "./errors.ts";
import type { Node, Service } from "./types.ts";
import { deepEqual } from "./util.ts";

export interface AllocationConfig {
  serviceCIDR: string;
  clusterCIDR: string;
  nodeCIDRMaskSize: number;
  nodePortRange: string;
  /** The emulated cloud's load-balancer addresses; without it LoadBalancer Services stay pending. */
  lbPool?: string;
}

/** Undo (on failure) and finish (on success: release what the old object held). */
export interface Allocation {
  rollback(): void;
  commit(): void;
}

export class AllocationError extends Error {
  constructor(public readonly causes: FieldError[]) {
    super(causes.map((c) => `${c.field}: ${c.message}`).join(", "));
  }
}

const needsNodePorts = (s: Service["spec"]) => s.type === "NodePort" || (s.type === "LoadBalancer" && s.allocateLoadBalancerNodePorts !== false);
const needsHealthCheck = (s: Service["spec"]) => s.type === "LoadBalancer" && s.externalTrafficPolicy === "Local";
const hasClusterIP = (s: Service["spec"]) => s.type !== "ExternalName";
/** LoadBalancer Services of the default class are the emulated cloud's; others belong to someone else. */
const ownLoadBalancer = (s: Service["spec"]) => s.type === "LoadBalancer" && !s.loadBalancerClass;
const ingressIP = (svc: Service | undefined) => svc?.status?.loadBalancer?.ingress?.[0]?.ip;

function nodePortsOf(spec: Service["spec"]): Set<number> {
  const out = new Set<number>();
  for (const p of spec.ports ?? []) if (p.nodePort) out.add(p.nodePort);
  if (spec.healthCheckNodePort) out.add(spec.healthCheckNodePort);
  return out;
}

export class Allocators {
  readonly clusterIPs: ClusterIPAllocator;
  readonly nodePorts: PortAllocator;
  readonly podCIDRs: PodCIDRAllocator;
  readonly lbPool?: AddressPool;
  /** 10.96.0.10 in the default range: given only to a Service that asks for it. */
  readonly dnsIP: string;
  readonly kubernetesIP: string;

  constructor(cfg: AllocationConfig) {
    const probe = new ClusterIPAllocator(cfg.serviceCIDR);
    this.kubernetesIP = probe.nth(1);
    this.dnsIP = probe.nth(10);
    this.clusterIPs = new ClusterIPAllocator(cfg.serviceCIDR, [this.kubernetesIP, this.dnsIP]);
    this.nodePorts = new PortAllocator(cfg.nodePortRange);
    this.podCIDRs = new PodCIDRAllocator(cfg.clusterCIDR, cfg.nodeCIDRMaskSize);
    if (cfg.lbPool) this.lbPool = new AddressPool(cfg.lbPool);
  }

  /** Marks what a stored Service holds (at start). */
  restoreService(svc: Service): void {
    const ip = svc.spec?.clusterIP;
    if (ip && ip !== "None") this.clusterIPs.take(ip);
    for (const p of nodePortsOf(svc.spec ?? {})) this.nodePorts.take(p);
    const lb = ingressIP(svc);
    if (lb && svc.spec && ownLoadBalancer(svc.spec)) this.lbPool?.take(lb);
  }

  restoreNode(node: Node): void {
    if (node.spec?.podCIDR) this.podCIDRs.take(node.spec.podCIDR);
  }

  /**
   * Before validation of an update: fields that depend on the type and were not changed by the
   * user are dropped when the type changes, and allocated values the user left out are carried
   * over from the stored object, as Kubernetes' service REST does.
   */
  carryOverService(svc: Service, old: Service): void {
    const spec = svc.spec;
    const o = old.spec;
    if (!spec || typeof spec !== "object" || !o) return;
    if (spec.type !== o.type) {
      if (!hasClusterIP(spec) && spec.clusterIP === o.clusterIP) {
        delete spec.clusterIP;
        delete spec.clusterIPs;
        delete spec.ipFamilies;
        delete spec.ipFamilyPolicy;
      }
      if (!needsNodePorts(spec)) {
        for (const p of spec.ports ?? []) {
          const before = (o.ports ?? []).find((q) => q.port === p.port && (q.protocol ?? "TCP") === (p.protocol ?? "TCP"));
          if (p.nodePort && before?.nodePort === p.nodePort) delete p.nodePort;
        }
      }
      const external = spec.type === "NodePort" || spec.type === "LoadBalancer";
      if (!external && spec.externalTrafficPolicy === o.externalTrafficPolicy) delete spec.externalTrafficPolicy;
      if (spec.type !== "LoadBalancer") {
        if (spec.allocateLoadBalancerNodePorts === o.allocateLoadBalancerNodePorts) delete spec.allocateLoadBalancerNodePorts;
        if (spec.loadBalancerIP === o.loadBalancerIP) delete spec.loadBalancerIP;
        if (spec.loadBalancerClass === o.loadBalancerClass) delete spec.loadBalancerClass;
        if (deepEqual(spec.loadBalancerSourceRanges, o.loadBalancerSourceRanges)) delete spec.loadBalancerSourceRanges;
      }
      if (spec.type === "ExternalName" && spec.internalTrafficPolicy === o.internalTrafficPolicy) delete spec.internalTrafficPolicy;
    }
    // The health check port goes with the need for it, also when only externalTrafficPolicy
    // changes (Local -> Cluster), as Kubernetes does.
    if (!needsHealthCheck(spec) && spec.healthCheckNodePort === o.healthCheckNodePort) delete spec.healthCheckNodePort;
    if (hasClusterIP(spec) && hasClusterIP(o) && !spec.clusterIP && o.clusterIP) {
      spec.clusterIP = o.clusterIP;
      spec.clusterIPs ??= o.clusterIPs;
      spec.ipFamilies ??= o.ipFamilies;
      spec.ipFamilyPolicy ??= o.ipFamilyPolicy;
    }
    if (needsNodePorts(spec)) {
      for (const p of spec.ports ?? []) {
        if (p.nodePort) continue;
        const before = (o.ports ?? []).find((q) => q.port === p.port && (q.protocol ?? "TCP") === (p.protocol ?? "TCP")) ?? (o.ports ?? []).find((q) => q.name && q.name === p.name);
        if (before?.nodePort) p.nodePort = before.nodePort;
      }
    }
    if (needsHealthCheck(spec) && !spec.healthCheckNodePort && o.healthCheckNodePort) spec.healthCheckNodePort = o.healthCheckNodePort;
  }

  /** Allocates what a new or changed Service needs; throws AllocationError naming the field. */
  allocateService(svc: Service, old?: Service): Allocation {
    const spec = svc.spec;
    const taken: (() => void)[] = [];
    const errs: FieldError[] = [];
    const rollback = () => taken.forEach((undo) => undo());

    // ClusterIP
    const oldIP = old && hasClusterIP(old.spec) ? old.spec.clusterIP : undefined;
    if (hasClusterIP(spec)) {
      if (spec.clusterIP === "None") {
        spec.clusterIPs = ["None"];
      } else if (spec.clusterIP && spec.clusterIP === oldIP) {
        // unchanged
      } else if (spec.clusterIP) {
        const ip = spec.clusterIP;
        const r = this.clusterIPs.take(ip);
        if (r === "ok") taken.push(() => this.clusterIPs.release(ip));
        else if (r === "taken") errs.push(fieldErr.invalid("spec.clusterIP", ip, `failed to allocate IP ${ip}: provided IP is already allocated`));
        else
          errs.push(
            fieldErr.invalid(
              "spec.clusterIP",
              ip,
              `failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.clusterIPs.cidr.text}`,
            ),
          );
        spec.clusterIPs = [ip];
      } else {
        const ip = this.clusterIPs.next();
        if (!ip) errs.push(fieldErr.invalid("spec.clusterIP", "", `failed to allocate a serviceIP: range is full (${this.clusterIPs.cidr.text})`));
        else {
          taken.push(() => this.clusterIPs.release(ip));
          spec.clusterIP = ip;
          spec.clusterIPs = [ip];
        }
      }
      spec.ipFamilies ??= ["IPv4"];
      spec.ipFamilyPolicy ??= "SingleStack";
    }

    // NodePorts: ports the old object held stay held; new ones are taken or picked.
    const oldPorts = old ? nodePortsOf(old.spec) : new Set<number>();
    const takenHere = new Map<number, string>(); // port -> protocol that claimed it in this object
    const claim = (field: string, port: number, protocol: string) => {
      const prev = takenHere.get(port);
      if (prev !== undefined) {
        // One service may use a nodePort once per protocol (e.g. DNS on TCP and UDP 53).
        if (prev === protocol) errs.push(fieldErr.duplicate(field, port));
        return;
      }
      takenHere.set(port, protocol);
      if (oldPorts.has(port)) return;
      const r = this.nodePorts.take(port);
      if (r === "ok") taken.push(() => this.nodePorts.release(port));
      else if (r === "taken") errs.push(fieldErr.invalid(field, port, "provided port is already allocated"));
      else errs.push(fieldErr.invalid(field, port, `provided port is not in the valid range. The range of valid ports is ${this.nodePorts.text}`));
    };
    if (needsNodePorts(spec)) {
      (spec.ports ?? []).forEach((p, i) => {
        if (p.nodePort) claim(`spec.ports[${i}].nodePort`, p.nodePort, p.protocol ?? "TCP");
      });
      (spec.ports ?? []).forEach((p) => {
        if (p.nodePort) return;
        // A port of the same number on another protocol shares its nodePort, as in Kubernetes.
        const sibling = (spec.ports ?? []).find((q) => q !== p && q.port === p.port && q.nodePort && q.protocol !== p.protocol);
        if (sibling?.nodePort && takenHere.get(sibling.nodePort) !== p.protocol) {
          p.nodePort = sibling.nodePort;
          return;
        }
        const n = this.nodePorts.next();
        if (n === undefined) errs.push(fieldErr.invalid("spec.ports", spec.ports, `failed to allocate a nodePort: range is full (${this.nodePorts.text})`));
        else {
          taken.push(() => this.nodePorts.release(n));
          takenHere.set(n, p.protocol ?? "TCP");
          p.nodePort = n;
        }
      });
    }
    if (needsHealthCheck(spec)) {
      if (spec.healthCheckNodePort) {
        if (takenHere.has(spec.healthCheckNodePort)) errs.push(fieldErr.duplicate("spec.healthCheckNodePort", spec.healthCheckNodePort));
        else claim("spec.healthCheckNodePort", spec.healthCheckNodePort, "TCP");
      } else {
        const n = this.nodePorts.next();
        if (n === undefined) errs.push(fieldErr.invalid("spec.healthCheckNodePort", 0, `failed to allocate a nodePort: range is full (${this.nodePorts.text})`));
        else {
          taken.push(() => this.nodePorts.release(n));
          spec.healthCheckNodePort = n;
        }
      }
    }
    // The emulated cloud's load balancer: status.loadBalancer belongs to the API server here.
    const oldLB = old && ownLoadBalancer(old.spec) ? ingressIP(old) : undefined;
    let newLB: string | undefined;
    if (ownLoadBalancer(spec) && this.lbPool) {
      const want = spec.loadBalancerIP;
      if (want && want !== oldLB) {
        const r = this.lbPool.take(want);
        if (r === "ok") {
          taken.push(() => this.lbPool!.release(want));
          newLB = want;
        } else if (r === "taken") errs.push(fieldErr.invalid("spec.loadBalancerIP", want, "provided IP is already allocated"));
        else errs.push(fieldErr.invalid("spec.loadBalancerIP", want, `is not in the load-balancer pool ${this.lbPool.cidr.text}`));
      } else if (oldLB) {
        newLB = oldLB;
      } else {
        newLB = this.lbPool.next();
        if (newLB) {
          const ip = newLB;
          taken.push(() => this.lbPool!.release(ip));
        }
      }
      svc.status = { ...(svc.status ?? {}), loadBalancer: newLB ? { ingress: [{ ip: newLB, ipMode: "VIP" }] } : {} };
    } else if (oldLB) {
      svc.status = { ...(svc.status ?? {}), loadBalancer: {} };
    }
    if (errs.length) {
      rollback();
      throw new AllocationError(errs);
    }
    return {
      rollback,
      commit: () => {
        if (oldLB && oldLB !== newLB) this.lbPool?.release(oldLB);
        if (!old) return;
        if (oldIP && oldIP !== "None" && oldIP !== spec.clusterIP) this.clusterIPs.release(oldIP);
        const now = nodePortsOf(spec);
        for (const p of oldPorts) if (!now.has(p)) this.nodePorts.release(p);
      },
    };
  }

  releaseService(svc: Service): void {
    const ip = svc.spec?.clusterIP;
    if (ip && ip !== "None" && isIPv4(ip)) this.clusterIPs.release(ip);
    for (const p of nodePortsOf(svc.spec ?? {})) this.nodePorts.release(p);
    const lb = ingressIP(svc);
    if (lb && svc.spec && ownLoadBalancer(svc.spec)) this.lbPool?.release(lb);
  }

  allocateNode(node: Node, old?: Node): Allocation {
    node.spec ??= {};
    const spec = node.spec;
    if (!spec.podCIDR && spec.podCIDRs?.length) spec.podCIDR = spec.podCIDRs[0];
    if (old?.spec?.podCIDR && !spec.podCIDR) {
      spec.podCIDR = old.spec.podCIDR;
      spec.podCIDRs = old.spec.podCIDRs;
    }
    const noop: Allocation = { rollback: () => {}, commit: () => {} };
    if (spec.podCIDR && spec.podCIDR === old?.spec?.podCIDR) return noop;
    if (spec.podCIDR) {
      const cidr = spec.podCIDR;
      const r = this.podCIDRs.take(cidr);
      if (r === "taken") throw new AllocationError([fieldErr.invalid("spec.podCIDR", cidr, "already allocated to another node")]);
      if (r === "misaligned")
        throw new AllocationError([
          fieldErr.invalid("spec.podCIDR", cidr, `must be a /${this.podCIDRs.maskSize} aligned inside the cluster CIDR ${this.podCIDRs.cluster.text}`),
        ]);
      spec.podCIDRs = [cidr];
      return r === "ok" ? { rollback: () => this.podCIDRs.release(cidr), commit: () => {} } : noop;
    }
    const cidr = this.podCIDRs.next();
    if (!cidr) return noop; // like Kubernetes: the node simply gets no podCIDR when the range is full
    spec.podCIDR = cidr;
    spec.podCIDRs = [cidr];
    return { rollback: () => this.podCIDRs.release(cidr), commit: () => {} };
  }

  releaseNode(node: Node): void {
    if (node.spec?.podCIDR) this.podCIDRs.release(node.spec.podCIDR);
  }
}
