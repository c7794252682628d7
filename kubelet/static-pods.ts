// The static pod source: a directory of manifests, one Pod per file (YAML or JSON), read at start,
// on every change the directory reports, and at each resync. As in Kubernetes, a static pod is
// named <name>-<node>, is bound to this node, and its UID is a hash of its content, its node and
// its file, so an edited manifest is a new pod (the old one is torn down) and a restarted kubelet
// finds the same UIDs on its sandboxes.
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { defaultPod } from "../apiserver/defaults.ts";
import type { Pod } from "../apiserver/types.ts";
import { validatePod } from "../apiserver/validation.ts";
import { CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION } from "./labels.ts";
import { errMsg, type Logger } from "./log.ts";

export interface StaticPod {
  file: string;
  pod: Pod;
  mtimeMs?: number;
  size?: number;
  ino?: number;
}

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Parses and prepares one manifest; throws one line naming the file and the problem. */
export function loadManifest(file: string, text: string, nodeName: string): Pod {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) throw new Error(`${file}: want exactly one Pod, found ${docs.length} documents`);
  const doc = docs[0]!;
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message.split("\n")[0]}`);
  const raw = doc.toJS() as Record<string, unknown>;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error(`${file}: not a Pod object`);
  if (raw.kind !== "Pod") throw new Error(`${file}: kind is ${JSON.stringify(raw.kind ?? "")}, want Pod`);
  if (raw.apiVersion !== undefined && raw.apiVersion !== "v1") throw new Error(`${file}: apiVersion ${JSON.stringify(raw.apiVersion)}, want v1`);
  const pod = raw as unknown as Pod;
  pod.metadata ??= {};
  if (!pod.metadata.name) throw new Error(`${file}: metadata.name: Required value`);
  pod.metadata.namespace ??= "default";
  if (!pod.spec || typeof pod.spec !== "object") throw new Error(`${file}: spec: Required value`);
  defaultPod(pod);
  const errs = validatePod(pod);
  if (errs.length) throw new Error(`${file}: ${errs.map((e) => `${e.field}: ${e.message}`).join("; ")}`);
  const hash = createHash("sha256").update(JSON.stringify(pod)).update(`\0host:${nodeName}\0file:${file}`).digest("hex");
  // UUID-shaped, as pod UIDs are.
  const uid = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
  pod.metadata.name = `${pod.metadata.name}-${nodeName}`;
  pod.metadata.uid = uid;
  pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [CONFIG_HASH_ANNOTATION]: uid, [CONFIG_SOURCE_ANNOTATION]: "file", [CONFIG_SEEN_ANNOTATION]: new Date().toISOString() };
  pod.spec.nodeName = nodeName;
  pod.status = { phase: "Pending", conditions: [{ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z") }] };
  return pod;
}

export class StaticPodSource {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private pods = new Map<string, StaticPod>();
  /** The last error per file, so a bad manifest is logged once, not at every scan. */
  private readonly problems = new Map<string, string>();
  private scanning?: Promise<void>;
  private rescan = false;

  constructor(
    private readonly dir: string,
    private readonly nodeName: string,
    private readonly log: Logger,
    private readonly onChange: (pods: StaticPod[]) => void,
    private readonly periodMs: number,
  ) {}

  async start(): Promise<void> {
    await this.scan();
    try {
      this.watcher = watch(this.dir, () => this.schedule());
      this.watcher.on("error", () => undefined);
    } catch (e) {
      this.log.warn(`cannot watch ${this.dir} (${errMsg(e)}); it is read every ${this.periodMs / 1000}s`);
    }
    this.timer = setInterval(() => this.schedule(), this.periodMs);
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
  }

  current(): StaticPod[] {
    return [...this.pods.values()];
  }

  private schedule(): void {
    if (this.debounce) return;
    // Editors write files in several steps: read once they settle.
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.scan();
    }, 100);
  }

  scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescan = false;
        await this.scanOnce();
      } while (this.rescan);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => !n.startsWith(".")).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.note(this.dir, `cannot read the manifest directory: ${errMsg(e)}`);
      names = [];
    }
    const next = new Map<string, StaticPod>();
    for (const n of names) {
      const file = join(this.dir, n);
      try {
        const st = await stat(file);
        if (!st.isFile()) continue;
        if (st.size > MAX_MANIFEST_BYTES) throw new Error(`${file}: larger than ${MAX_MANIFEST_BYTES} bytes`);
        const prev = this.pods.get(file);
        // A file that did not change is not parsed again (a burst of new manifests rescans often).
        if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size && prev.ino === st.ino) {
          next.set(file, prev);
          this.problems.delete(file);
          continue;
        }
        const text = await readFile(file, "utf8");
        const pod = loadManifest(file, text, this.nodeName);
        // Keep the object (and its seen time) when the content is the same pod.
        next.set(file, prev && prev.pod.metadata.uid === pod.metadata.uid ? { ...prev, mtimeMs: st.mtimeMs, size: st.size, ino: st.ino } : { file, pod, mtimeMs: st.mtimeMs, size: st.size, ino: st.ino });
        this.problems.delete(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
        this.note(file, errMsg(e));
      }
    }
    // Two files naming the same pod: the first (by file name) wins, as names must be unique.
    const byName = new Map<string, StaticPod>();
    for (const sp of next.values()) {
      const k = `${sp.pod.metadata.namespace}/${sp.pod.metadata.name}`;
      if (byName.has(k)) {
        this.note(sp.file, `pod ${k} is already defined by ${byName.get(k)!.file}; ignored`);
        next.delete(sp.file);
      } else byName.set(k, sp);
    }
    const changed = next.size !== this.pods.size || [...next].some(([f, sp]) => this.pods.get(f)?.pod.metadata.uid !== sp.pod.metadata.uid);
    this.pods = next;
    if (changed) this.onChange(this.current());
  }

  private note(file: string, msg: string): void {
    if (this.problems.get(file) === msg) return;
    this.problems.set(file, msg);
    this.log.warn(`static pod manifest: ${msg}`);
  }
}
