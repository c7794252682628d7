// Deliberately broken plugins for the conformance runner's tests: one shell script (bash starts
// in a few milliseconds, Node in ~70), installed under many names, that runs a real bridge plugin
// and breaks exactly one thing depending on the name it was called by. "brk-none" breaks nothing:
// it is the baseline the others differ from. Requests are compact JSON (the runner's) and our
// bridge prints 4-space indented results, which is what the sed expressions rely on.
import { execa } from "execa";
import { existsSync } from "node:fs";
import { chmod, link, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ConformanceReport } from "../../runtime/conformance/report.ts";
import { OUR_BIN } from "../helpers/cni.ts";

const BROKEN = `#!/bin/bash
MODE=\${0##*/}
REAL=__REAL__
STATE=__STATE__
cmd=\${CNI_COMMAND:-}
stdin=\$(cat)
asked=\$(printf '%s' "\$stdin" | grep -o '"cniVersion":"[^"]*"' | head -1 | cut -d'"' -f4)
real() { out=\$(printf '%s' "\$stdin" | "\$REAL"); rc=\$?; }
finish() { printf '%s' "\$1"; exit "\$2"; }
fail() { finish "{\\"code\\":\$1,\\"msg\\":\\"\$2\\"}" 1; }
attachment() { [ -n "\${CNI_CONTAINERID:-}" ] && [ -n "\${CNI_IFNAME:-}" ]; }
case "\$MODE" in
  brk-nonjson) # decorates its ADD result with a word in front
    real; [ "\$cmd" = ADD ] && [ \$rc = 0 ] && out="OK \$out"; finish "\$out" \$rc ;;
  brk-version) # answers ADD in another version than the one asked for
    real; other=1.1.0; [ "\$asked" = 1.1.0 ] && other=1.0.0
    [ "\$cmd" = ADD ] && [ \$rc = 0 ] && out=\$(printf '%s' "\$out" | sed "0,/\\"cniVersion\\": \\"[^\\"]*\\"/s//\\"cniVersion\\": \\"\$other\\"/")
    finish "\$out" \$rc ;;
  brk-ifname) # takes over an interface that already has the requested name instead of failing
    [ "\$cmd" = ADD ] && [ -n "\${CNI_NETNS:-}" ] && nsenter --net="\$CNI_NETNS" -- ip link del "\${CNI_IFNAME:-x}" 2>/dev/null
    real; finish "\$out" \$rc ;;
  brk-deltwice) # the second DEL of an attachment fails
    if [ "\$cmd" = DEL ] && attachment; then
      mark="\$STATE/del-\$(printf '%s-%s' "\$CNI_CONTAINERID" "\$CNI_IFNAME" | tr -c 'A-Za-z0-9_.-' _)"
      [ -e "\$mark" ] && fail 3 "container already deleted"
      real; [ \$rc = 0 ] && : > "\$mark"; finish "\$out" \$rc
    fi
    real; finish "\$out" \$rc ;;
  brk-stdoutlog) # logs to stdout on DEL
    real; [ "\$cmd" = DEL ] && out="deleting container \${CNI_CONTAINERID:-}
\$out"; finish "\$out" \$rc ;;
  brk-plainerror) # prints errors as plain text instead of a CNI error object
    real; if [ \$rc != 0 ]; then msg=\$(printf '%s' "\$out" | sed -n 's/^ *"msg": "\\(.*\\)",\\{0,1\\}\$/\\1/p' | head -1); finish "error: \$msg
" \$rc; fi
    finish "\$out" \$rc ;;
  brk-checknoop) # CHECK always says all is well
    [ "\$cmd" = CHECK ] && exit 0; real; finish "\$out" \$rc ;;
  brk-checkfail) # CHECK always fails
    [ "\$cmd" = CHECK ] && fail 999 "not ready"; real; finish "\$out" \$rc ;;
  brk-envdefault) # makes up a container ID when CNI_CONTAINERID is missing
    [ -z "\${CNI_CONTAINERID:-}" ] && export CNI_CONTAINERID=default; real; finish "\$out" \$rc ;;
  brk-idok) # replaces an invalid container ID with a valid one
    if [ -n "\${CNI_CONTAINERID:-}" ] && ! [[ "\$CNI_CONTAINERID" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*\$ ]]; then export CNI_CONTAINERID=fixed-id; fi
    real; finish "\$out" \$rc ;;
  brk-anyversion) # runs any cniVersion as 1.1.0
    stdin=\${stdin//\\"cniVersion\\":\\"9.9.9\\"/\\"cniVersion\\":\\"1.1.0\\"}; real; finish "\$out" \$rc ;;
  brk-noname) # makes up a network name when there is none
    [[ "\$stdin" != *'"name":'* ]] && stdin="{\\"name\\":\\"default\\",\${stdin#\\{}"; real; finish "\$out" \$rc ;;
  brk-versionbad) # VERSION without supportedVersions
    [ "\$cmd" = VERSION ] && finish "{\\"cniVersion\\":\\"\$asked\\"}" 0; real; finish "\$out" \$rc ;;
  brk-versionlist) # VERSION claims only 0.x versions
    [ "\$cmd" = VERSION ] && finish "{\\"cniVersion\\":\\"\$asked\\",\\"supportedVersions\\":[\\"0.3.0\\",\\"0.3.1\\",\\"0.4.0\\"]}" 0; real; finish "\$out" \$rc ;;
  brk-versionstatic) # VERSION always answers 1.1.0, whatever was asked
    real; [ "\$cmd" = VERSION ] && out=\$(printf '%s' "\$out" | sed 's/"cniVersion":"[^"]*"/"cniVersion":"1.1.0"/'); finish "\$out" \$rc ;;
  brk-lie) # reports another address than the one it configured
    real; [ "\$cmd" = ADD ] && [ \$rc = 0 ] && out=\$(printf '%s' "\$out" | sed -E '0,/"address": "([0-9]+\\.[0-9]+\\.[0-9]+)\\.[0-9]+\\//s//"address": "\\1.250\\//'); finish "\$out" \$rc ;;
  brk-delnoop) # DEL does nothing
    [ "\$cmd" = DEL ] && exit 0; real; finish "\$out" \$rc ;;
  brk-delneedsnetns) # DEL fails when the container's netns is gone or not given
    if [ "\$cmd" = DEL ] && attachment && { [ -z "\${CNI_NETNS:-}" ] || [ ! -e "\$CNI_NETNS" ]; }; then fail 999 "netns not found"; fi
    real; finish "\$out" \$rc ;;
  brk-delneedsprev) # DEL fails without a prevResult
    if [ "\$cmd" = DEL ] && attachment && [[ "\$stdin" != *'"prevResult":'* ]]; then fail 999 "prevResult missing"; fi
    real; finish "\$out" \$rc ;;
  brk-serial) # cannot run two ADDs at the same time
    if [ "\$cmd" = ADD ]; then
      mkdir "\$STATE/adding" 2>/dev/null || fail 11 "busy: another ADD is running"
      real; rmdir "\$STATE/adding"; finish "\$out" \$rc
    fi
    real; finish "\$out" \$rc ;;
  brk-statusfail) # STATUS says the plugin is not available
    [ "\$cmd" = STATUS ] && fail 50 "not available"; real; finish "\$out" \$rc ;;
  brk-gcfail) # GC does its job, then reports a failure
    real; [ "\$cmd" = GC ] && fail 999 "gc failed"; finish "\$out" \$rc ;;
  brk-gcnoop) # GC does nothing
    [ "\$cmd" = GC ] && exit 0; real; finish "\$out" \$rc ;;
  brk-gcall) # GC treats every attachment as stale
    [ "\$cmd" = GC ] && stdin=\$(printf '%s' "\$stdin" | sed 's|"cni.dev/valid-attachments":\\[[^]]*\\]|"cni.dev/valid-attachments":[]|')
    real; finish "\$out" \$rc ;;
  brk-dropprev) # a chained plugin that answers ADD with an empty result, dropping its prevResult
    [ "\$cmd" = ADD ] && finish "{\\"cniVersion\\":\\"\$asked\\"}" 0
    [ "\$cmd" = VERSION ] && { real; finish "\$out" \$rc; }
    exit 0 ;;
  brk-slow) # ADD hangs, with a child of its own, until killed
    if [ "\$cmd" = ADD ]; then sleep 300 & echo \$! > "\$STATE/slow.pid"; wait; exit 1; fi
    real; finish "\$out" \$rc ;;
  *) real; finish "\$out" \$rc ;;
esac
`;

export const BROKEN_MODES = [
  "brk-none", "brk-nonjson", "brk-version", "brk-ifname", "brk-deltwice", "brk-stdoutlog", "brk-plainerror", "brk-checknoop", "brk-checkfail",
  "brk-envdefault", "brk-idok", "brk-anyversion", "brk-noname", "brk-versionbad", "brk-versionlist", "brk-versionstatic", "brk-lie", "brk-delnoop",
  "brk-delneedsnetns", "brk-delneedsprev", "brk-serial", "brk-statusfail", "brk-gcfail", "brk-gcnoop", "brk-gcall", "brk-dropprev", "brk-slow",
] as const;

/** Writes the broken plugin into `binDir` under every mode name; `state` is a scratch directory. */
export async function writeBrokenPlugins(binDir: string, state: string, real = join(OUR_BIN, "bridge")): Promise<void> {
  const main = join(binDir, BROKEN_MODES[0]);
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  await writeFile(main, BROKEN.replace("__REAL__", q(real)).replace("__STATE__", q(state)));
  await chmod(main, 0o755);
  for (const m of BROKEN_MODES.slice(1)) await link(main, join(binDir, m));
}

/** A bridge configuration for one (possibly broken) plugin type, IPAM in `ipamDir`. */
export function bridgeConf(type: string, ipamDir: string, subnet: string): Record<string, unknown> {
  return { cniVersion: "1.1.0", name: "brk", type, bridge: "cni0", isGateway: true, ipMasq: true, ipam: { type: "host-local", dataDir: ipamDir, ranges: [[{ subnet }]] } };
}

/** What a run left behind: its namespaces, and the IPAM stores named after it. */
export async function leftovers(r: ConformanceReport, ...dataDirs: string[]): Promise<string[]> {
  const ns = (await execa("ip", ["netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(r.runId));
  return [...ns, ...["/var/lib/cni/networks", ...dataDirs].map((d) => join(d, r.network.runName)).filter((d) => existsSync(d))];
}
