// The node's NetworkPolicy enforcer: watches Pods, Namespaces and NetworkPolicies and keeps the
// table `inet podnet-netpol` of this netns equal to what they ask for this node's pods. Every
// change renders the whole table; an unchanged rendering is not applied again, so the churn of
// pods that no policy concerns costs no nft run.
import { ApiClient, Informer, resourcePath } from "../apiserver/client.ts";
import type { Namespace, NetworkPolicy, Pod } from "../apiserver/types.ts";
import { nftApply, type Runner } from "../kube-proxy/exec.ts";
import { SyncRunner } from "../kube-proxy/sync-runner.ts";
import { computeIsolation, type IsolatedPod } from "./model.ts";
import { deleteTableScript, renderTable } from "./render.ts";

export interface NetworkPolicyStatus {
  synced: boolean;
  syncs: number;
  /** Pods of this node some policy isolates, "namespace/name". */
  isolatedPods: string[];
  lastError: string;
}

export class NetworkPolicyController {
  private readonly pods: Informer<Pod>;
  private readonly namespaces: Informer<Namespace>;
  private readonly policies: Informer<NetworkPolicy>;
  private readonly runner: SyncRunner;
  private applied = "";
  private isolated: string[] = [];
  private syncs = 0;
  private lastError = "";
  private started = false;

  constructor(
    client: ApiClient,
    private readonly nodeName: string,
    private readonly exec: Runner,
    private readonly log: (msg: string) => void,
    minSyncMs = 100,
  ) {
    this.pods = new Informer<Pod>(client, resourcePath("pods"));
    this.namespaces = new Informer<Namespace>(client, resourcePath("namespaces"));
    this.policies = new Informer<NetworkPolicy>(client, resourcePath("networkpolicies"));
    this.runner = new SyncRunner(() => this.sync(), minSyncMs);
    for (const inf of [this.pods, this.namespaces, this.policies] as Informer<any>[]) {
      inf.on("add", () => this.request()).on("update", () => this.request()).on("delete", () => this.request());
    }
  }

  private request(): void {
    if (this.started && this.pods.synced && this.namespaces.synced && this.policies.synced) this.runner.request();
  }

  /** Starts the watches; the first sync follows once all three caches are filled. */
  start(): void {
    this.started = true;
    const what = (inf: string) => (e: unknown) => this.log(`network policy: ${inf} informer: ${e instanceof Error ? e.message : String(e)}`);
    void Promise.all([this.pods.start().catch(what("pods")), this.namespaces.start().catch(what("namespaces")), this.policies.start().catch(what("networkpolicies"))]).then(() => this.request());
  }

  private async sync(): Promise<boolean> {
    let isolated: IsolatedPod[];
    try {
      // Inside the try as well: a failure must become a retry, never an unhandled rejection.
      isolated = computeIsolation({ nodeName: this.nodeName, pods: this.pods.list(), namespaces: this.namespaces.list(), policies: this.policies.list() });
      const script = renderTable(isolated);
      if (script === this.applied) return true;
      await nftApply(this.exec, script);
      this.applied = script;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      this.log(`network policy: sync failed, retrying: ${this.lastError}`);
      return false;
    }
    this.syncs++;
    this.lastError = "";
    const keys = isolated.map((p) => p.key);
    if (keys.join(",") !== this.isolated.join(",")) this.log(`network policy: ${keys.length} pod(s) of this node isolated${keys.length ? `: ${keys.join(", ")}` : ""}`);
    this.isolated = keys;
    return true;
  }

  status(): NetworkPolicyStatus {
    return { synced: this.syncs > 0, syncs: this.syncs, isolatedPods: [...this.isolated], lastError: this.lastError };
  }

  /** Resolves once no sync is pending (tests). */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  stop(): void {
    this.started = false;
    this.pods.stop();
    this.namespaces.stop();
    this.policies.stop();
    this.runner.stop();
  }
}

/** Removes the node's policy table: what `podnet kube-proxy --cleanup` does for it. */
export async function cleanupNetworkPolicy(exec: Runner): Promise<void> {
  await nftApply(exec, deleteTableScript());
}
