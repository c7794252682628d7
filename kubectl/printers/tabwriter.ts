// Elastic tabstops as Go's text/tabwriter lays them out, which is what kubectl's describe output
// is made of: a cell is text ended by a tab; consecutive lines that have a cell in the same
// column form a block, and the block's cells are padded to its widest cell plus the padding.
// The text after a line's last tab is not a cell and is never padded.

export function tabwrite(text: string, opts: { minWidth?: number; padding?: number } = {}): string {
  const minWidth = opts.minWidth ?? 0;
  const padding = opts.padding ?? 2;
  const endsWithNewline = text.endsWith("\n");
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split("\n").map((l) => l.split("\t"));
  const out: string[] = new Array<string>(lines.length);
  const widths: number[] = [];

  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      out[i] = cells.map((c, j) => (j < cells.length - 1 && j < widths.length ? c.padEnd(widths[j]!) : c)).join("");
    }
  };

  // Go's tabwriter.format: find each block of lines with a cell in the current column, size it,
  // then lay out the next column within that block.
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i]!.length - 1) continue;
      writeLines(line0, i);
      line0 = i;
      let width = minWidth;
      for (; i < line1; i++) {
        const cells = lines[i]!;
        if (column >= cells.length - 1) break;
        width = Math.max(width, cells[column]!.length + padding);
      }
      widths.push(width);
      format(line0, i);
      widths.pop();
      line0 = i;
      i--; // the for loop's i++ must look at line i again
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out.join("\n") + (endsWithNewline ? "\n" : "");
}
