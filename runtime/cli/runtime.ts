// `podnet runtime --state-dir DIR`: the node's container runtime daemon. Run it inside the node's
// network namespace, e.g. `nsenter --net=/run/netns/NODE podnet runtime --state-dir DIR`.
import { readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { socketInStateDir } from "../cri/client.ts";
import { recover } from "../daemon/recover.ts";
import { Runtime } from "../daemon/runtime.ts";
import { listen } from "../daemon/server.ts";

const USAGE = `Usage: podnet runtime --state-dir DIR [--netns-prefix PREFIX] [--socket PATH]

The container runtime of one emulated node: pod sandboxes (a network namespace and a light
holder process each) and containers (process trees in the sandbox's namespaces), behind a
CRI-shaped JSON API on the unix socket DIR/runtime.sock. Start it inside the node's netns:
  nsenter --net=/run/netns/NODE podnet runtime --state-dir DIR
Use \`podnet crictl --state-dir DIR ...\` to look at it.

Options:
  --state-dir DIR        records, logs and the socket (created if missing)
  --netns-prefix PREFIX  start of the sandboxes' netns names (default "pn-"): give each node
                         and cluster its own so names never collide host-wide
  --socket PATH          serve here instead of DIR/runtime.sock

It logs one line per change to stderr. SIGTERM or SIGINT stops the daemon and leaves pods running;
the next start adopts them.
`;

function logLine(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} runtime: ${msg}\n`);
}

/**
 * Sandboxes' netns are bind mounts under /run/netns that the kubelet and CNI plugins must see; in
 * a mount namespace of its own (as `ip netns exec` gives) the daemon would make them where no
 * one else looks.
 */
function warnIfPrivateMounts(): void {
  try {
    if (readlinkSync("/proc/self/ns/mnt") !== readlinkSync("/proc/1/ns/mnt")) {
      logLine("warning: running in a mount namespace other than the host's; pods' netns mounts may not be visible to the kubelet (start with `nsenter --net=...`, not `ip netns exec`)");
    }
  } catch {
    /* /proc/1 unreadable: nothing to say */
  }
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { "state-dir": { type: "string" }, "netns-prefix": { type: "string" }, socket: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`podnet runtime: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values["state-dir"]) {
    process.stderr.write(`podnet runtime: --state-dir is required\n\n${USAGE}`);
    return 2;
  }
  const stateDir = resolve(values["state-dir"]);
  warnIfPrivateMounts();
  const rt = new Runtime({ stateDir, netnsPrefix: values["netns-prefix"], log: logLine });
  await recover(rt);
  const socketPath = values.socket ? resolve(values.socket) : socketInStateDir(stateDir);
  const server = await listen(rt, socketPath);
  logLine(`serving ${socketPath} (state ${stateDir}, netns prefix "${rt.netnsPrefix}", pid ${process.pid})`);

  return new Promise<number>((done) => {
    const stop = (sig: string) => {
      logLine(`${sig}: stopping; sandboxes and containers keep running`);
      server.close();
      server.closeAllConnections();
      done(0);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
