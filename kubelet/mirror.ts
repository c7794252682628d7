// Mirror pods: with an API server, every static pod gets a copy in the API (same name, bound to
// this node, annotation kubernetes.io/config.mirror = the static pod's hash) so that it is seen
// like any other pod; its status is the static pod's. A mirror pod that is deleted, outdated or
// whose static pod is gone is deleted (and recreated when the static pod still exists).
import { isApiError, resourcePath, type ApiClient } from "../apiserver/client.ts";
import type { Pod } from "../apiserver/types.ts";
import { CONFIG_MIRROR_ANNOTATION, CONFIG_SEEN_ANNOTATION } from "./labels.ts";
import { errMsg, type Logger } from "./log.ts";

export const isMirrorPod = (p: Pod): boolean => !!p.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION];

const keyOf = (p: Pod) => `${p.metadata.namespace ?? "default"}/${p.metadata.name}`;

export function mirrorOf(staticPod: Pod): Pod {
  const annotations: Record<string, string> = { ...(staticPod.metadata.annotations ?? {}), [CONFIG_MIRROR_ANNOTATION]: staticPod.metadata.uid! };
  delete annotations[CONFIG_SEEN_ANNOTATION];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: staticPod.metadata.name, namespace: staticPod.metadata.namespace, labels: staticPod.metadata.labels, annotations },
    spec: structuredClone(staticPod.spec),
  };
}

export class MirrorPods {
  private running?: Promise<void>;
  private pending = false;
  private readonly problems = new Map<string, string>();

  constructor(
    private readonly api: ApiClient,
    private readonly staticPods: () => Pod[],
    private readonly apiPods: () => Pod[],
    private readonly log: Logger,
  ) {}

  kick(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = this.sync()
      .catch((e) => this.log.warn(`mirror pods: ${errMsg(e)}`))
      .finally(() => {
        this.running = undefined;
        if (this.pending) {
          this.pending = false;
          this.kick();
        }
      });
  }

  /** The mirror pod of a static pod, when it exists and is current. */
  mirrorFor(staticPod: Pod): Pod | undefined {
    const key = keyOf(staticPod);
    return this.apiPods().find((p) => keyOf(p) === key && p.metadata.annotations?.[CONFIG_MIRROR_ANNOTATION] === staticPod.metadata.uid && !p.metadata.deletionTimestamp);
  }

  private async remove(p: Pod, why: string): Promise<void> {
    try {
      await this.api.request("DELETE", resourcePath("pods", p.metadata.namespace, p.metadata.name), { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid } });
      this.log.info(`mirror pod ${keyOf(p)}: deleted (${why})`);
    } catch (e) {
      if (!isApiError(e, 404) && !isApiError(e, 409)) throw e;
    }
  }

  async sync(): Promise<void> {
    const statics = new Map(this.staticPods().map((p) => [keyOf(p), p]));
    const existing = new Map<string, Pod>();
    for (const p of this.apiPods()) existing.set(keyOf(p), p);
    for (const [key, p] of existing) {
      if (!isMirrorPod(p)) continue;
      const sp = statics.get(key);
      if (!sp) await this.remove(p, "its static pod is gone");
      else if (p.metadata.deletionTimestamp) await this.remove(p, "deleted through the API; the static pod keeps running and its mirror is recreated");
      else if (p.metadata.annotations![CONFIG_MIRROR_ANNOTATION] !== sp.metadata.uid) await this.remove(p, "its static pod changed");
    }
    for (const [key, sp] of statics) {
      const cur = existing.get(key);
      if (cur && !isMirrorPod(cur)) {
        this.note(key, `a pod ${key} that is not a mirror pod exists in the API; the static pod gets no mirror`);
        continue;
      }
      if (cur && !cur.metadata.deletionTimestamp && cur.metadata.annotations![CONFIG_MIRROR_ANNOTATION] === sp.metadata.uid) continue;
      if (cur) continue; // being deleted: recreated once the deletion is seen
      try {
        await this.api.create<Pod>(resourcePath("pods", sp.metadata.namespace), mirrorOf(sp));
        this.problems.delete(key);
        this.log.info(`mirror pod ${key}: created`);
      } catch (e) {
        if (isApiError(e, 409)) continue; // the informer has not seen it yet
        this.note(key, `cannot create mirror pod ${key}: ${errMsg(e)}`);
      }
    }
  }

  private note(key: string, msg: string): void {
    if (this.problems.get(key) === msg) return;
    this.problems.set(key, msg);
    this.log.warn(msg);
  }
}
