// Every plugin the multicall executable carries, by the name it is invoked as. Loaded on demand:
// a start evaluates only the code of the plugin it runs (and of a delegate it calls in-process).
import type { Plugin } from "./pkg/skel.ts";

export const PLUGINS: Record<string, () => Promise<Plugin>> = {
  loopback: async () => (await import("./loopback/plugin.ts")).loopback,
  bridge: async () => (await import("./bridge/plugin.ts")).bridge,
  "host-local": async () => (await import("../ipam/host-local/plugin.ts")).hostLocal,
  portmap: async () => (await import("./portmap/plugin.ts")).portmap,
};
