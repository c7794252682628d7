// Pushes pod status to the API server: a merge patch of the status subresource with the pod's
// UID as precondition, sent when the kubelet's status differs (in what matters: phase, IPs,
// conditions, container states) from what the API server has. A pod whose status someone else
// changed (the node lifecycle controller marking it NotReady) gets the kubelet's status again.
// Writes per pod are coalesced: one in flight, the newest status sent next.
import { isApiError, resourcePath, type ApiClient } from "../apiserver/client.ts";
import type { Pod, PodStatus } from "../apiserver/types.ts";
import { errMsg, type Logger } from "./log.ts";
import { statusFingerprint } from "./status.ts";

export interface StatusTarget {
  namespace: string;
  name: string;
  uid: string;
}

interface Entry {
  status: PodStatus;
  target?: StatusTarget;
  /** Fingerprint of the status last accepted by the API server. */
  sent?: string;
  inflight: boolean;
  /** A newer status of ours arrived while a write was in flight. */
  again: boolean;
  /** The API server's copy was seen to differ while a write was in flight: write again after it. */
  stale: boolean;
  retryTimer?: NodeJS.Timeout;
  failures: number;
}

const NULLABLE = ["reason", "message", "podIP", "podIPs", "nominatedNodeName"] as const;

export class StatusManager {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  constructor(
    private readonly api: ApiClient,
    private readonly log: Logger,
  ) {}

  /** The kubelet's newest status for a pod (uid = the kubelet's pod UID) and where it goes. */
  set(uid: string, status: PodStatus, target: StatusTarget | undefined): void {
    let e = this.entries.get(uid);
    if (!e) {
      e = { status, target, inflight: false, again: false, stale: false, failures: 0 };
      this.entries.set(uid, e);
    }
    e.status = status;
    if (target) e.target = target;
    if (e.target && statusFingerprint(status) !== e.sent) this.push(uid, e);
  }

  /** The API server's copy changed (a watch event): re-send when it no longer matches ours. */
  observed(uid: string, apiStatus: PodStatus | undefined, target: StatusTarget): void {
    const e = this.entries.get(uid);
    if (!e) return;
    e.target = target;
    const theirs = statusFingerprint(apiStatus);
    if (theirs === statusFingerprint(e.status)) {
      e.sent = theirs;
      return;
    }
    e.sent = undefined;
    // A write in flight may land before or after the change we just saw: write again after it.
    if (e.inflight) e.stale = true;
    this.push(uid, e);
  }

  forget(uid: string): void {
    const e = this.entries.get(uid);
    if (e?.retryTimer) clearTimeout(e.retryTimer);
    this.entries.delete(uid);
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) if (e.retryTimer) clearTimeout(e.retryTimer);
  }

  private push(uid: string, e: Entry): void {
    if (this.stopped) return;
    if (e.inflight) {
      e.again = true;
      return;
    }
    void this.send(uid, e);
  }

  private async send(uid: string, e: Entry): Promise<void> {
    e.inflight = true;
    e.again = false;
    e.stale = false;
    const target = e.target!;
    const status = e.status;
    const body: Record<string, unknown> = { ...status };
    for (const k of NULLABLE) if (body[k] === undefined) body[k] = null;
    try {
      await this.api.patch<Pod>(resourcePath("pods", target.namespace, target.name), { metadata: { uid: target.uid }, status: body }, { subresource: "status" });
      e.sent = statusFingerprint(status);
      e.failures = 0;
    } catch (err) {
      if (isApiError(err, 404) || isApiError(err, 409)) {
        // Gone or replaced: the informer tells us about the new one.
        e.sent = statusFingerprint(status);
      } else {
        e.failures++;
        if (e.failures === 1 || e.failures % 20 === 0) this.log.warn(`status of pod ${target.namespace}/${target.name}: ${errMsg(err)}`);
        const delay = Math.min(200 * 2 ** Math.min(e.failures, 6), 10_000);
        e.retryTimer = setTimeout(() => {
          e.retryTimer = undefined;
          if (this.entries.get(uid) === e) this.push(uid, e);
        }, delay);
      }
    } finally {
      e.inflight = false;
    }
    if (this.entries.get(uid) !== e) return;
    if (e.stale) {
      // The API server's copy changed while we wrote: ours may have been overwritten. One more
      // write costs little; its own watch event then confirms the copy matches.
      e.sent = undefined;
      this.push(uid, e);
    } else if (e.again && statusFingerprint(e.status) !== e.sent) this.push(uid, e);
  }
}
