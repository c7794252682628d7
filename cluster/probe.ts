// Running commands inside pods and in the external client, for the demo and the e2e tests.
import { execa } from "execa";
import { resourcePath } from "../apiserver/client.ts";
import type { Pod } from "../apiserver/types.ts";
import { findPodContainer } from "../kubectl/containers.ts";
import type { ClusterContext } from "./context.ts";

export interface ExecOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` in a container of a pod (the first container unless named), through its node's runtime. */
export async function execInPod(ctx: ClusterContext, namespace: string, pod: string, cmd: string[], container?: string, timeoutSeconds = 20): Promise<ExecOutcome> {
  const pc = await findPodContainer({ api: ctx.api, cluster: ctx, namespace, namespaceGiven: true }, { pod, container }, () => undefined);
  const r = await pc.runtime.execSync({ containerId: pc.container.id, cmd, timeout: timeoutSeconds });
  return { exitCode: Number(r.exitCode ?? 0), stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Runs a program in the cluster's external client netns (outside the cluster). */
export async function execExternal(ctx: ClusterContext, cmd: string[]): Promise<ExecOutcome> {
  const r = await execa("nsenter", [`--net=/run/netns/${ctx.layout.externalNetns}`, "--", ...cmd], { reject: false, timeout: 30_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** curl with short timeouts; the body, or throws with curl's error. */
export const curlArgs = (url: string) => ["curl", "-sS", "--max-time", "5", "--connect-timeout", "3", url];

export async function podsOf(ctx: ClusterContext, namespace: string, selector: string): Promise<Pod[]> {
  return (await ctx.api.list<Pod>(resourcePath("pods", namespace), { labelSelector: selector })).items;
}
