// The benchmark table printed to the terminal.
import { fmt, type Comparison } from "./stats.ts";

export function formatTable(rows: Comparison[]): string {
  const head = ["part", "measure", "unit", "podnet min/med/max", "reference min/med/max", "ratio", "target"];
  const body = rows.map((r) => [
    r.part,
    r.name,
    r.unit,
    `${fmt(r.ours.min, r.unit)} / ${fmt(r.ours.median, r.unit)} / ${fmt(r.ours.max, r.unit)}`,
    r.reference ? `${fmt(r.reference.min, r.unit)} / ${fmt(r.reference.median, r.unit)} / ${fmt(r.reference.max, r.unit)}` : "",
    r.ratio !== undefined ? r.ratio.toFixed(2) : "",
    r.target ? `${r.target.met ? "met" : "MISSED"}: ${r.target.text}` : "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)];
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.part}/${r.name}: ${r.note}`);
  return out.join("\n") + (notes.length ? `\n\nnotes:\n${notes.join("\n")}` : "") + "\n";
}
