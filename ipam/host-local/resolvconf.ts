// resolv.conf into a CNI DNS object, read the way the reference reads it: nameserver, domain,
// search and options lines; comments (# or ;) and short lines skipped.
import { readText } from "../../cni-plugins/pkg/fd.ts";
import { invalidConfig } from "../../cni-plugins/pkg/errors.ts";
import type { DNS } from "../../cni-plugins/pkg/types.ts";

export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line[0] === "#" || line[0] === ";") continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [key, ...rest] = fields as [string, ...string[]];
    switch (key) {
      case "nameserver":
        (dns.nameservers ??= []).push(rest[0]!);
        break;
      case "domain":
        dns.domain = rest[0]!;
        break;
      case "search":
        (dns.search ??= []).push(...rest);
        break;
      case "options":
        (dns.options ??= []).push(...rest);
        break;
    }
  }
  return dns;
}

export function readResolvConf(path: string): DNS {
  let text: string;
  try {
    text = readText(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw invalidConfig(`ipam.resolvConf: cannot read ${path}: ${err.code ?? err.message}`);
  }
  return parseResolvConf(text);
}
