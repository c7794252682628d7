// Cleanups of what a benchmark made (netns, daemons, clusters, temp dirs). Each part runs its own
// in a `finally`; if the run is interrupted (Ctrl-C, SIGTERM) instead, the signal handler runs
// every cleanup still registered, newest first, before the process exits. The handler is
// installed only while a cleanup is registered.
type Cleanup = { what: string; fn: () => Promise<void> };

const pending: Cleanup[] = [];
/** Cleanups a part's `finally` is running: a signal waits for them before exiting. */
const running = new Set<Promise<void>>();
let interrupted = false;

function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) {
    process.stderr.write(`bench: ${sig} again; still cleaning up, please wait\n`);
    return;
  }
  interrupted = true;
  process.stderr.write(`bench: ${sig}: removing what the benchmark made...\n`);
  void runAll().finally(() => process.exit(130));
}

async function runAll(): Promise<void> {
  await Promise.allSettled([...running]);
  while (pending.length) {
    const c = pending.pop()!;
    try {
      await c.fn();
    } catch (e) {
      process.stderr.write(`bench: cleaning up ${c.what}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }
}

function listen(on: boolean): void {
  const has = process.listeners("SIGINT").includes(onSignal);
  if (on && !has) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  } else if (!on && has) {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Registers `fn` to undo something; returns the function that runs it now (once) and unregisters
 * it, for the part's own `finally`.
 */
export function registerCleanup(what: string, fn: () => Promise<void>): () => Promise<void> {
  listen(true);
  const entry: Cleanup = { what, fn };
  pending.push(entry);
  let done: Promise<void> | undefined;
  return () => {
    done ??= (async () => {
      const i = pending.indexOf(entry);
      if (i < 0) return; // the signal handler has it
      pending.splice(i, 1);
      const p = fn();
      running.add(p);
      try {
        await p;
      } finally {
        running.delete(p);
        // Nothing of ours left to undo: Ctrl-C behaves as it would without us again.
        if (!pending.length && !running.size && !interrupted) listen(false);
      }
    })();
    return done;
  };
}

/** Whether a signal asked the run to stop (long loops check it to stop early). */
export function isInterrupted(): boolean {
  return interrupted;
}
