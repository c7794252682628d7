// Pod status as Kubernetes has it, computed from what the runtime reports and what the kubelet
// knows (probe results, back-off): phase (getPhase's rules), the five conditions, IPs, start time,
// and container statuses with state, lastState, restartCount, ready and started.
import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from "../apiserver/types.ts";
import type { ContainerState as CriState } from "../runtime/cri/types.ts";

/** One container attempt, as the runtime reports it. */
export interface ContainerView {
  id: string;
  name: string;
  attempt: number;
  state: CriState;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  reason: string;
  message: string;
}

/** Why a container is waiting, when the kubelet knows better than "ContainerCreating". */
export interface Waiting {
  reason: string;
  message?: string;
}

export interface StatusInput {
  pod: Pod;
  /** The pod's sandbox is up with its network: containers can run. */
  sandboxReady: boolean;
  podIPs: string[];
  hostIPs: string[];
  startTime?: string;
  /** Attempts per container name, newest first. */
  attempts: Map<string, ContainerView[]>;
  /** Restart counts carried over from sandboxes that were replaced. */
  restartBase: Map<string, number>;
  waiting: Map<string, Waiting>;
  ready(c: Container, containerId: string): boolean;
  started(c: Container, containerId: string): boolean;
  previous?: PodStatus;
  /** Set once the pod is being torn down (deletion): nothing is ready. */
  terminating?: boolean;
}

export const CONTAINER_ID_PREFIX = "podnet://";

/** CRI nanoseconds ("0" = never) to RFC 3339 seconds, as Kubernetes writes times. */
export function nsToTime(ns: string | undefined): string | undefined {
  if (!ns || ns === "0") return undefined;
  try {
    return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString().replace(/\.\d+Z$/, "Z");
  } catch {
    return undefined;
  }
}

export const nowTime = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function terminated(v: ContainerView): NonNullable<ContainerState["terminated"]> {
  const t: NonNullable<ContainerState["terminated"]> = { exitCode: v.exitCode, reason: v.reason || (v.exitCode === 0 ? "Completed" : "Error"), containerID: CONTAINER_ID_PREFIX + v.id };
  if (v.exitCode > 128 && v.exitCode < 128 + 65) t.signal = v.exitCode - 128;
  if (v.message) t.message = v.message;
  const s = nsToTime(v.startedAt);
  const f = nsToTime(v.finishedAt);
  if (s) t.startedAt = s;
  if (f) t.finishedAt = f;
  return t;
}

function containerStatus(c: Container, input: StatusInput, defaultWaiting: string): ContainerStatus {
  const attempts = input.attempts.get(c.name) ?? [];
  const cur = attempts[0];
  const prev = attempts[1];
  const base = input.restartBase.get(c.name) ?? 0;
  const st: ContainerStatus = { name: c.name, state: {}, lastState: {}, ready: false, started: false, restartCount: base + (cur?.attempt ?? 0), image: c.image ?? "", imageID: "" };
  if (prev && prev.state === "CONTAINER_EXITED") st.lastState = { terminated: terminated(prev) };
  const waiting = input.waiting.get(c.name);
  if (!cur) {
    st.state = { waiting: waiting ?? { reason: defaultWaiting } };
    return st;
  }
  st.containerID = CONTAINER_ID_PREFIX + cur.id;
  if (cur.state === "CONTAINER_RUNNING") {
    st.state = { running: { startedAt: nsToTime(cur.startedAt) ?? nowTime() } };
    st.started = input.started(c, cur.id);
    st.ready = !input.terminating && input.ready(c, cur.id);
  } else if (cur.state === "CONTAINER_EXITED") {
    if (waiting) {
      // Exited and to be restarted (CrashLoopBackOff): Kubernetes shows it waiting, the exit as lastState.
      st.state = { waiting };
      st.lastState = { terminated: terminated(cur) };
    } else st.state = { terminated: terminated(cur) };
  } else {
    st.state = { waiting: waiting ?? { reason: defaultWaiting } };
  }
  return st;
}

type Phase = NonNullable<PodStatus["phase"]>;

/** Kubernetes' getPhase for the app containers (init containers handled by the caller). */
export function podPhase(pod: Pod, statuses: ContainerStatus[], initDone: boolean, initFailed: boolean): Phase {
  if (initFailed) return "Failed";
  if (!initDone) return "Pending";
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    }
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    const policy = pod.spec.restartPolicy ?? "Always";
    if (policy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (policy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

function condition(type: PodCondition["type"], ok: boolean, previous: PodStatus | undefined, reason?: string, message?: string): PodCondition {
  const status = ok ? "True" : "False";
  const old = previous?.conditions?.find((c) => c.type === type);
  const c: PodCondition = { type, status, lastProbeTime: null, lastTransitionTime: old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : nowTime() };
  if (!ok && reason) c.reason = reason;
  if (!ok && message) c.message = message;
  return c;
}

export interface InitState {
  done: boolean;
  failed: boolean;
  statuses: ContainerStatus[];
}

export function computeStatus(input: StatusInput): PodStatus {
  const { pod } = input;
  const inits = pod.spec.initContainers ?? [];
  const initStatuses = inits.map((c) => containerStatus(c, input, "PodInitializing"));
  const initDone = initStatuses.every((s) => s.state.terminated?.exitCode === 0);
  const initFailed = !initDone && (pod.spec.restartPolicy ?? "Always") === "Never" && initStatuses.some((s) => s.state.terminated && s.state.terminated.exitCode !== 0);
  const statuses = pod.spec.containers.map((c) => containerStatus(c, input, initDone ? "ContainerCreating" : "PodInitializing"));
  const phase = podPhase(pod, statuses, initDone, initFailed);
  const terminal = phase === "Succeeded" || phase === "Failed";
  const notReady = statuses.filter((s) => !s.ready).map((s) => s.name);
  const containersReady = notReady.length === 0 && !input.terminating;
  const unreadyMsg = `containers with unready status: [${notReady.join(" ")}]`;
  const reason = terminal ? "PodCompleted" : "ContainersNotReady";
  const prev = input.previous;
  const scheduled = prev?.conditions?.find((c) => c.type === "PodScheduled");
  const conditions: PodCondition[] = [
    condition("PodReadyToStartContainers", input.sandboxReady, prev),
    condition("Initialized", initDone, prev, terminal ? "PodCompleted" : "ContainersNotInitialized", `containers with incomplete status: [${inits.filter((_, i) => initStatuses[i]!.state.terminated?.exitCode !== 0).map((c) => c.name).join(" ")}]`),
    condition("Ready", containersReady, prev, reason, terminal ? undefined : unreadyMsg),
    condition("ContainersReady", containersReady, prev, reason, terminal ? undefined : unreadyMsg),
    scheduled ? { ...scheduled } : condition("PodScheduled", true, prev),
  ];
  const status: PodStatus = { phase, conditions, hostIP: input.hostIPs[0], hostIPs: input.hostIPs.map((ip) => ({ ip })), startTime: input.startTime, containerStatuses: statuses };
  if (input.podIPs.length) {
    status.podIP = input.podIPs[0];
    status.podIPs = input.podIPs.map((ip) => ({ ip }));
  }
  if (inits.length) (status as PodStatus & { initContainerStatuses?: ContainerStatus[] }).initContainerStatuses = initStatuses;
  return status;
}

/** What matters for deciding whether the API's copy is stale (times and ordering aside). */
export function statusFingerprint(s: PodStatus | undefined): string {
  if (!s) return "";
  const conds = (s.conditions ?? []).map((c) => `${c.type}=${c.status}`).sort();
  const cs = (s.containerStatuses ?? []).map((c) => {
    const st = c.state.running ? "running" : c.state.terminated ? `terminated:${c.state.terminated.exitCode}` : `waiting:${c.state.waiting?.reason ?? ""}`;
    return `${c.name}:${st}:${c.ready}:${c.started}:${c.restartCount}:${c.containerID ?? ""}`;
  });
  const init = ((s as PodStatus & { initContainerStatuses?: ContainerStatus[] }).initContainerStatuses ?? []).map((c) => `${c.name}:${c.state.terminated ? `t${c.state.terminated.exitCode}` : c.state.running ? "r" : "w"}:${c.restartCount}`);
  return JSON.stringify([s.phase, s.podIP ?? "", s.hostIP ?? "", conds, cs, init]);
}
