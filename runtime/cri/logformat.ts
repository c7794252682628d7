// The CRI container log format, one record per line:
//   2016-10-06T00:17:09.669794202Z stdout F some text
// The tag is F for a full line and P for a part of a longer one (the next record continues it).

export type LogStream = "stdout" | "stderr";

export interface LogRecord {
  /** RFC3339Nano, as written. */
  time: string;
  stream: LogStream;
  partial: boolean;
  text: string;
}

const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$/s;

/** Parses one line (without its newline); undefined when it is not a CRI log record. */
export function parseLogLine(line: string): LogRecord | undefined {
  const m = RECORD.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as LogStream, partial: m[3] === "P", text: m[4]! };
}

export function formatLogLine(r: LogRecord): string {
  return `${r.time} ${r.stream} ${r.partial ? "P" : "F"} ${r.text}`;
}
