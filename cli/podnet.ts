// podnet: the command users run. Dispatches to the subcommands in commands.ts.
import { COMMANDS } from "./commands.ts";
import { PODNET_VERSION } from "../cni-plugins/pkg/skel.ts";

function usage(): string {
  const groups = new Map<string, string[]>();
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  for (const c of COMMANDS) {
    const list = groups.get(c.group) ?? [];
    list.push(`  ${c.name.padEnd(width)}${c.summary}`);
    groups.set(c.group, list);
  }
  const sections = [...groups].map(([g, lines]) => `${g}:\n${lines.join("\n")}`);
  return `podnet ${PODNET_VERSION}: Kubernetes networking on one Linux host, with the real kernel doing the work.

Usage: podnet COMMAND [options]     (podnet COMMAND --help for a command's options)

${sections.join("\n\n")}
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`podnet ${PODNET_VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`podnet: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await entry.load();
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Users get one line, not a stack trace; PODNET_DEBUG=1 shows the trace.
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`podnet: ${msg}\n`);
    if (process.env.PODNET_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + "\n");
    process.exitCode = 1;
  },
);
