// The kubelet's log: one timestamped line per event, to --log-file (appended) or stderr.
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  close(): Promise<void>;
}

export function createLogger(file?: string): Logger {
  let out: WriteStream | NodeJS.WriteStream = process.stderr;
  if (file) {
    mkdirSync(dirname(file), { recursive: true });
    out = createWriteStream(file, { flags: "a" });
  }
  const line = (level: string, msg: string) => out.write(`${new Date().toISOString()} kubelet ${level}: ${msg}\n`);
  return {
    info: (m) => line("I", m),
    warn: (m) => line("W", m),
    error: (m) => line("E", m),
    close: () =>
      new Promise<void>((resolve) => {
        if (out === process.stderr) return resolve();
        (out as WriteStream).end(() => resolve());
      }),
  };
}

/** One line for any thrown value; never a stack trace. */
export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
