// `podnet kubelet`: the node agent. See flags.ts for the options and kubelet.ts for the parts.
import { FlagError, parseFlags, USAGE } from "./flags.ts";
import { Kubelet } from "./kubelet.ts";
import { createLogger, errMsg } from "./log.ts";

export async function main(argv: string[]): Promise<number> {
  let cfg;
  try {
    cfg = parseFlags(argv);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    process.stderr.write(`podnet kubelet: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (cfg === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = createLogger(cfg.logFile);
  const kubelet = new Kubelet(cfg, log);
  let stopping: Promise<void> | undefined;
  const stopped = new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      if (stopping) return;
      log.info(`${sig}: stopping; the pods keep running`);
      stopping = kubelet.stop().then(
        () => resolve(0),
        (e) => {
          log.error(`stopping: ${errMsg(e)}`);
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  try {
    await Promise.race([kubelet.start(), stopped]);
  } catch (e) {
    log.error(`cannot start: ${errMsg(e)}`);
    await kubelet.stop().catch(() => undefined);
    await log.close();
    // Daemon code may hold timers or sockets; the process ends here either way.
    setImmediate(() => process.exit(1));
    return 1;
  }
  const code = await stopped;
  log.info("stopped");
  await log.close();
  setImmediate(() => process.exit(code));
  return code;
}
