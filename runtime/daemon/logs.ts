// podnet's ContainerLogs: a container's log file (written by its monitor, see shim.ts) sent as
// CRI log lines, optionally only the last N, optionally following new lines until the container
// has exited. Follow notices a rotated file (ReopenContainerLog) and moves on to the new one.
import { open, stat, type FileHandle } from "node:fs/promises";
import type { ContainerRecord } from "./state.ts";
import type { Runtime } from "./runtime.ts";
import { checkBool, checkInt64 } from "./validate.ts";
import { sleep } from "./procs.ts";

const CHUNK = 64 * 1024;

/** Offset where the last `n` lines of the file begin. */
export async function tailOffset(fh: FileHandle, n: number): Promise<number> {
  const { size } = await fh.stat();
  if (n <= 0) return size;
  let pos = size;
  let seen = 0;
  let first = true;
  const buf = Buffer.alloc(CHUNK);
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    await fh.read(buf, 0, len, pos);
    for (let i = len - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      // The newline that ends the file does not start a line.
      if (first && pos + i === size - 1) continue;
      if (++seen === n) return pos + i + 1;
    }
    first = false;
  }
  return 0;
}

export interface LogsRequest {
  follow: boolean;
  tail: number;
}

export function parseLogsRequest(req: Record<string, unknown>): LogsRequest {
  return { follow: checkBool("follow", req.follow), tail: req.tail === undefined || req.tail === null ? -1 : checkInt64("tail", req.tail) };
}

async function openIfThere(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch {
    return undefined;
  }
}

async function inode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

/** Sends the log through `write` (one call per batch of whole lines) until done or aborted. */
export async function streamLogs(rt: Runtime, c: ContainerRecord, opts: LogsRequest, write: (text: string) => Promise<void>, signal: AbortSignal): Promise<void> {
  let fh = await openIfThere(c.logPath);
  let offset = fh && opts.tail >= 0 ? await tailOffset(fh, opts.tail) : 0;
  let pending = Buffer.alloc(0);
  const buf = Buffer.alloc(CHUNK);
  const flushPartial = async () => {
    if (pending.length) await write(pending.toString("utf8") + "\n");
    pending = Buffer.alloc(0);
  };
  try {
    for (;;) {
      if (signal.aborted) return;
      let got = 0;
      if (fh) {
        const r = await fh.read(buf, 0, CHUNK, offset);
        got = r.bytesRead;
        offset += got;
        if (got) {
          const data = Buffer.concat([pending, buf.subarray(0, got)]);
          const end = data.lastIndexOf(0x0a);
          pending = end < 0 ? data : data.subarray(end + 1);
          if (end >= 0) await write(data.subarray(0, end + 1).toString("utf8"));
          continue;
        }
      }
      if (!opts.follow) return await flushPartial();
      // At the end of the file: a new file at the path (rotation) or a finished container ends it.
      const exited = !rt.containers.has(c.id) || rt.refresh(c) === "CONTAINER_EXITED";
      const current = await inode(c.logPath);
      const mine = fh ? (await fh.stat()).ino : undefined;
      if (current !== undefined && current !== mine) {
        await flushPartial();
        await fh?.close();
        fh = await openIfThere(c.logPath);
        offset = 0;
        continue;
      }
      if (exited) {
        // The monitor wrote all output before it recorded the exit: one last read finds the rest.
        if (fh) {
          const r = await fh.read(buf, 0, CHUNK, offset);
          if (r.bytesRead) continue;
        }
        return await flushPartial();
      }
      await sleep(150);
    }
  } finally {
    await fh?.close();
  }
}
