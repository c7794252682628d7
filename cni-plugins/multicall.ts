// One executable for every plugin: it runs the plugin named by the file it was invoked as
// (bridge, host-local, portmap, loopback are hard links to it). A delegate that resolves to
// this same file runs in-process, saving a process start per delegation.
import { baseName } from "./pkg/paths.ts";
import { setInProcessRunner } from "./pkg/invoke.ts";
import { pluginMain, runPlugin } from "./pkg/skel.ts";
import { PLUGINS } from "./registry.ts";

const invokedAs = baseName(process.argv0 || process.argv[1] || "");
const load = PLUGINS[invokedAs];
if (!load) {
  process.stderr.write(
    `podnet CNI plugins: run this file under the name of a plugin (${Object.keys(PLUGINS).sort().join(", ")}),\n` +
      `for example through the hard links that "npm run build" makes in dist/cni/bin.\n`,
  );
  process.exit(invokedAs === "podnet-cni" ? 0 : 1);
}
setInProcessRunner((type, env, stdin) => {
  const loadDelegate = PLUGINS[type];
  return loadDelegate ? loadDelegate().then((p) => runPlugin(p, env, stdin)) : undefined;
}, process.execPath);
await pluginMain(await load());
