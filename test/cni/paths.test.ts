// The plugins' own join/basename must give what node:path gives for the paths they build.
import test from "ava";
import { basename, join } from "node:path";
import { baseName, joinPath } from "../../cni-plugins/pkg/paths.ts";

const JOINS: string[][] = [
  ["/var/lib/cni/networks", "podnet"],
  ["/var/lib/cni/networks/", "podnet"],
  ["/var/lib//cni/./networks", "podnet", "10.22.0.5"],
  ["/a/b", "../c"],
  ["/", "..", "x"],
  ["rel/dir", "file"],
  ["rel", "..", "..", "up"],
  ["./state", "lock"],
  ["", "x"],
  ["", ""],
  ["/only"],
  ["a/", "/b/", "c/"],
];

test("joinPath matches node:path join", (t) => {
  for (const parts of JOINS) {
    // path.join keeps a trailing slash; the plugins never join a trailing-slash last part.
    t.is(joinPath(...parts), join(...parts).replace(/(.)\/$/, "$1"), JSON.stringify(parts));
  }
});

test("baseName matches node:path basename", (t) => {
  for (const p of ["/usr/lib/cni/bridge", "bridge", "/opt/cni/bin/host-local/", "", "/", "./loopback", "dir//portmap"]) {
    t.is(baseName(p), basename(p), JSON.stringify(p));
  }
});
