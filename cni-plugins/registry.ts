// Every plugin the multicall executable carries, by the name it is invoked as.
import type { Plugin } from "./pkg/skel.ts";
import { loopback } from "./loopback/plugin.ts";
import { bridge } from "./bridge/plugin.ts";
import { hostLocal } from "../ipam/host-local/plugin.ts";
import { portmap } from "./portmap/plugin.ts";

export const PLUGINS: Record<string, Plugin> = {
  loopback,
  bridge,
  "host-local": hostLocal,
  portmap,
};
