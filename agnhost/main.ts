// `podnet agnhost SUBCOMMAND`: test workloads modelled on Kubernetes' e2e agnhost image.
export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "netexec":
      return (await import("./netexec.ts")).main(rest);
    case "serve-hostname":
      return (await import("./serve-hostname.ts")).main(rest);
    default:
      process.stderr.write(`Usage: podnet agnhost netexec|serve-hostname [options]\n${sub && sub !== "--help" ? `unknown subcommand "${sub}"\n` : ""}`);
      return sub === "--help" ? 0 : 2;
  }
}
