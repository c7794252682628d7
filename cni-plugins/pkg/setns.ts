// Acting inside a container's netns from this thread, through setns(2) (libc over FFI).
import { CniError, ErrCode } from "./errors.ts";
import { closeFd, openRead } from "./fd.ts";
import { CLONE_NEWNET, libc } from "./libc.ts";

let ownNetns: number | undefined;

/**
 * A netns that cannot be entered. Its message is worded as nsenter's would be, so callers see the
 * same failure whichever way a command was started in the netns.
 */
export class NetnsError extends CniError {
  constructor(
    readonly path: string,
    readonly stderr: string,
  ) {
    super(ErrCode.Kernel, stderr);
  }
}

/**
 * Moves this thread into the netns at `path` and returns the function that moves it back, or
 * undefined when setns(2) is not available (then use nsenter). Between the two, file writes under
 * /proc/sys and processes started from this thread act in that netns. Callers keep the window
 * synchronous, so nothing else of ours runs inside it.
 */
export function enterNetns(path: string): (() => void) | undefined {
  const c = libc();
  if (!c) return undefined;
  ownNetns ??= openRead("/proc/thread-self/ns/net");
  let fd: number;
  try {
    fd = openRead(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NetnsError(path, `nsenter: cannot open ${path}: ${code === "ENOENT" ? "No such file or directory" : code ?? (e as Error).message}`);
  }
  try {
    if (c.setns(fd, CLONE_NEWNET) !== 0) throw new NetnsError(path, `nsenter: reassociate to namespace 'ns/net' failed: Invalid argument`);
  } finally {
    closeFd(fd);
  }
  const back = ownNetns;
  return () => {
    if (c.setns(back, CLONE_NEWNET) !== 0) throw new CniError(ErrCode.Internal, "cannot return to the plugin's own netns");
  };
}
