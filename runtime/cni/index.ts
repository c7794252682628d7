/**
 * The runtime side of CNI: executing network configurations the way SPEC section 3 says, with a
 * result cache compatible with libcni's. This is what the kubelet calls for every pod sandbox,
 * and what `podnet cni add|check|del|gc|status` (cnitool's conventions) runs.
 *
 * ```ts
 * import { CniNetwork } from "../runtime/cni/index.ts";
 * const net = new CniNetwork({
 *   confDir: "/var/lib/podnet/c1/node-1/cni/net.d", // or configFile: ".../10-pods.conflist", or conflist: {...}
 *   name: "pods",                                    // optional: the first network otherwise
 *   cniPath: ["/opt/podnet/dist/cni/bin"],
 *   cacheDir: "/var/lib/podnet/c1/node-1/cni",       // entries in <cacheDir>/results
 *   execTimeoutMs: 30_000,                           // per plugin execution; killed after it
 *   pluginNetns: undefined,                          // run plugins in another netns (default: ours)
 * });
 * const att = { containerID: "abc123", netns: "/run/netns/pod-x", ifname: "eth0", args: [["K8S_POD_NAME", "web-0"]] };
 * const result = await net.add(att, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] });
 * await net.check(att);                 // uses the cached result and the ADD's parameters
 * await net.del(att);                   // reverse order, cached result as prevResult, then uncached
 * const gc = await net.gc([{ containerID: "abc123", ifname: "eth0" }]);   // gc.errors: every failure
 * const st = await net.status();        // st.ok, st.plugins[i].error
 * ```
 *
 * Behaviour, in short:
 * - Configurations: `.conflist`, then `.conf`/`.json`, each group in lexical byte order (libcni);
 *   a single plugin is wrapped into a list; bad files are reported with every problem
 *   (`loadConfDir().invalid`) and do not hide the good ones. Plugin objects from
 *   `<dir>/<name>/*.conf` are appended unless `loadOnlyInlinedPlugins`.
 * - Version: the highest of cniVersion + cniVersions that this runtime and every plugin's
 *   VERSION answer support (answers cached per plugin file).
 * - Requests: `name` and `cniVersion` inserted; `runtimeConfig` = the plugin's declared
 *   capabilities ∩ the capability args given; `prevResult` chained on ADD (never to the first
 *   plugin), the cached final result on CHECK and DEL; `capabilities`, `runtimeConfig` and
 *   `cni.dev/*` keys from the file removed; everything else passed through unchanged.
 * - Cache: written when ADD starts (marked incomplete) and after each plugin, so a failed or
 *   interrupted ADD can still be DELeted; removed after a successful DEL.
 * - Errors: `PluginError` (plugin, command, CNI code/msg/details, stderr, timedOut),
 *   `ConfigError` (every problem of a configuration), `CniRuntimeError` (anything else).
 * - Ordering: operations on one container run one at a time; GC of a network waits for the
 *   operations in flight on it and holds new ones until it is done (within this process).
 */
export { CniNetwork, type Attachment, type CapabilityArgs, type CniNetworkOptions, type GcReport, type StatusReport } from "./network.ts";
export { CniRuntimeError, ConfigError, PluginError, parseCniError, type PluginCommand } from "./errors.ts";
export { loadConfDir, loadConfigFile, parseNetworkConfig, selectNetwork, networkNameProblem, pluginProblems, type ConfDirReport, type NetworkConfigList, type PluginConf } from "./config.ts";
export { buildRequest, runtimeConfigFor, type GCAttachment, type RequestParams } from "./request.ts";
export { cachePath, listEntries, readEntry, removeEntry, writeEntry, CACHE_KIND, type CacheEntry } from "./cache.ts";
export { execPlugin, failureOf, findPlugin, invokePlugin, parseOutputObject, DEFAULT_EXEC_TIMEOUT_MS, type ExecOutcome, type ExecRequest } from "./exec.ts";
export { pluginVersionInfo, selectVersion, configVersions, decodeVersionInfo, clearVersionCache, type VersionInfo } from "./version.ts";
