// The network configuration and result shapes of the spec, in their 1.1.0 form.
// Older result versions are converted at the edges (result.ts), never used inside.

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IPConfig {
  address: string; // CIDR notation, e.g. 10.244.1.5/24
  gateway?: string;
  interface?: number; // index into interfaces
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface DNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

/** One plugin's request configuration, as received on stdin. Plugin-specific keys stay in the object. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type?: string;
  ipam?: { type?: string; [key: string]: unknown };
  dns?: DNS;
  runtimeConfig?: Record<string, unknown>;
  args?: { cni?: Record<string, unknown>; [key: string]: unknown };
  prevResult?: unknown;
  "cni.dev/valid-attachments"?: Attachment[];
  [key: string]: unknown;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

export type Command = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
export const COMMANDS: readonly Command[] = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"];
