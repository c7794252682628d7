// Start-up reconciliation (also after kill -9): the runtime's sandboxes that this kubelet made
// are compared with the pods it should run. Sandboxes of pods no longer wanted are torn down
// (CNI DEL with the cached parameters, then StopPodSandbox and RemovePodSandbox); the rest are
// adopted by their pods' workers. Then CNI GC runs on both networks with the attachments of the
// sandboxes that remain, so whatever a crash left half made (an interrupted ADD, a sandbox the
// runtime removed while we were down) releases its IP, veth and rules.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { RuntimeClient } from "../runtime/cri/client.ts";
import { MANAGED_BY, MANAGED_BY_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL } from "./labels.ts";
import type { Limiter } from "./limiter.ts";
import { errMsg, type Logger } from "./log.ts";
import { sandboxNetwork, type PodNetwork } from "./network.ts";

export interface ReconcileReport {
  adopted: number;
  removed: number;
  gcDeleted: number;
  errors: string[];
}

export async function tearDownSandbox(runtime: RuntimeClient, network: PodNetwork, sandboxId: string): Promise<void> {
  const { netnsPath, hostNetwork } = await sandboxNetwork(runtime, sandboxId);
  if (!hostNetwork) await network.tearDown(sandboxId, netnsPath);
  await runtime.stopPodSandbox({ podSandboxId: sandboxId });
  await runtime.removePodSandbox({ podSandboxId: sandboxId });
}

/**
 * The CNI library writes cache entries aside and renames them into place; a process killed in
 * between leaves the temporary file (".<network>-<id>-<ifname>.<pid>.<rand>.tmp"). Those of
 * processes that no longer run are removed.
 */
export function removeStaleCacheTemps(cacheDir: string, log: Logger): number {
  const dir = join(cacheDir, "results");
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const n of names) {
    const m = /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive && pid !== process.pid) continue;
    rmSync(join(dir, n), { force: true });
    removed++;
  }
  if (removed) log.info(`reconcile: removed ${removed} temporary CNI cache file(s) left by a killed kubelet`);
  return removed;
}

export async function reconcile(runtime: RuntimeClient, network: PodNetwork, wanted: (uid: string) => boolean, limiter: Limiter, log: Logger): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: 0, removed: 0, gcDeleted: 0, errors: [] };
  const items = (await runtime.listPodSandbox({})).items ?? [];
  const valid: string[] = [];
  await Promise.all(
    items.map(async (s) => {
      const uid = s.labels?.[POD_UID_LABEL];
      if (s.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY || !uid) {
        valid.push(s.id); // not ours: never touched, and its attachments stay valid
        return;
      }
      if (wanted(uid)) {
        valid.push(s.id);
        report.adopted++;
        return;
      }
      const what = `${s.labels[POD_NAMESPACE_LABEL] ?? "?"}/${s.labels[POD_NAME_LABEL] ?? "?"} sandbox ${s.id.slice(0, 12)}`;
      try {
        await limiter.run(() => tearDownSandbox(runtime, network, s.id));
        report.removed++;
        log.info(`reconcile: removed ${what} (its pod is no longer wanted)`);
      } catch (e) {
        valid.push(s.id); // keep its attachments: the next start tries again
        report.errors.push(`${what}: ${errMsg(e)}`);
      }
    }),
  );
  try {
    const gc = await network.gc(valid);
    report.gcDeleted = gc.pods.deleted.length + gc.loopback.deleted.length;
    for (const e of [...gc.pods.errors, ...gc.loopback.errors]) report.errors.push(`CNI GC: ${errMsg(e)}`);
  } catch (e) {
    report.errors.push(`CNI GC: ${errMsg(e)}`);
  }
  for (const e of report.errors) log.warn(`reconcile: ${e}`);
  log.info(`reconcile: ${report.adopted} sandbox(es) adopted, ${report.removed} removed, ${report.gcDeleted} stale CNI attachment(s) deleted`);
  return report;
}
