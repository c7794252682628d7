// Tables the way kubectl prints them: upper-case headers, columns padded to their widest cell
// plus three spaces (Go's tabwriter with kubectl's settings), the last column unpadded, and
// ages in kubectl's short human form.

export type Row = string[];

/** Lays out a header and rows; `header: undefined` prints rows only (the lines `get -w` adds). */
export function formatTable(header: string[] | undefined, rows: Row[], widths?: number[]): string {
  const all = header ? [header, ...rows] : rows;
  const w = widths ?? columnWidths(all);
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(w[i] ?? 0))).join("").trimEnd() + "\n").join("");
}

/** Each column's width: its widest cell plus a padding of 3, at least 6 (kubectl's tabwriter). */
export function columnWidths(rows: Row[]): number[] {
  const w: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (w[i] = Math.max(w[i] ?? 6, cell.length + 3)));
  return w;
}

/**
 * kubectl's HumanDuration: "45s" up to 2 minutes, then "3m12s" up to 10 minutes, "42m" up to
 * 3 hours, "5h12m" up to 8 hours, "20h" up to 2 days, "3d4h" up to 8 days, "60d" up to 2 years.
 */
export function humanDuration(ms: number): string {
  // Go's int(d.Seconds()) truncates toward zero: -1.5 s is still "0s".
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** The AGE column: time since a timestamp, "<unknown>" without one. */
export function age(timestamp: string | undefined, now = Date.now()): string {
  if (!timestamp) return "<unknown>";
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return "<unknown>";
  return humanDuration(now - t);
}
