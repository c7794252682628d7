// The container monitor ("shim", conmon's role), one small perl process per container.
//
// Why a separate process, and why perl: a container's output and exit status must survive the
// daemon, which may be restarted or killed -9 at any time. So the daemon is never a hop for them.
// The shim forks the container's main process (nsenter into the sandbox holder's namespaces, then
// the command), holds the read ends of its stdout and stderr pipes and appends every line to the
// log file in CRI format with its own timestamp, waits for the process, and writes its exit code
// and finish time to a file. The daemon only reads those files, before and after a restart alike.
// CRI timestamps need sub-second time and line splitting, which no coreutils program offers; perl
// is on every Debian-like system, starts in a few ms and costs about 6 MB RSS per container
// (1.5 MB PSS: perl's own pages are shared between monitors). Time::HiRes gives microsecond
// timestamps when present (whole seconds otherwise); POSIX is left out, it would add 2 MB each.
// The sandbox holder, of which a node has hundreds, stays a bare `sleep`.
//
// When the main process exits, the shim kills what is left in its session (as the end of a
// container's PID namespace would), drains the pipes for up to 2 s, writes "exit", and ends.
// The script is fixed text; everything variable comes as argv and the env file.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RuntimeError } from "./errors.ts";
import { isRunning, signal, waitFor } from "./procs.ts";
import type { ProcessRef } from "./state.ts";
import { writeAtomic } from "./state.ts";
import { SYSTEM_PATH, type Tools } from "./tools.ts";

export const SHIM_SCRIPT = String.raw`# podnet container monitor; see runtime/daemon/shim.ts for the design.
# usage: perl shim.pl CONTAINER_DIR LOG_PATH CMD ARGS...
#   reads  CONTAINER_DIR/env       NUL-separated NAME=VALUE, the container's whole environment
#   writes CONTAINER_DIR/pid       "MAIN_PID MAIN_START STARTED_NS SHIM_PID SHIM_START"
#          CONTAINER_DIR/exit      "EXIT_CODE FINISHED_NS" (128+N when killed by signal N)
#          CONTAINER_DIR/reopened  a counter, bumped after SIGUSR1 made it reopen LOG_PATH
use strict;
use warnings;

my ($dir, $log_path, @cmd) = @ARGV;
die "usage: shim.pl CONTAINER_DIR LOG_PATH CMD...\n" unless defined $log_path && @cmd;
$0 = "podnet-shim $dir";

my $hires = eval { require Time::HiRes; 1 };
sub now { return $hires ? Time::HiRes::gettimeofday() : (time(), 0) }
sub stamp {
  my ($s, $us) = now();
  my @t = gmtime($s);
  return sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06d000Z", $t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0], $us);
}
sub now_ns { my ($s, $us) = now(); return sprintf("%d%06d000", $s, $us) }
sub stat_fields {
  my ($pid) = @_;
  open(my $f, '<', "/proc/$pid/stat") or return ();
  my $l = <$f>;
  close $f;
  return () unless defined $l;
  $l =~ s/^.*\) //s;
  return split(/ /, $l);
}
sub start_time { my @f = stat_fields($_[0]); return @f ? $f[19] : 0 }
sub put {
  my ($name, $text) = @_;
  my $tmp = "$dir/.$name.tmp";
  open(my $f, '>', $tmp) or die "cannot write $tmp: $!\n";
  print $f $text;
  close($f) or die "cannot write $tmp: $!\n";
  rename($tmp, "$dir/$name") or die "cannot rename $tmp: $!\n";
}

my %env;
{
  open(my $ef, '<', "$dir/env") or die "cannot read $dir/env: $!\n";
  local $/ = "\0";
  while (my $kv = <$ef>) {
    chomp $kv;
    my $i = index($kv, '=');
    $env{substr($kv, 0, $i)} = substr($kv, $i + 1) if $i > 0;
  }
  close $ef;
}

my $log;
sub open_log {
  if (!open($log, '>>', $log_path)) {
    warn "cannot open log $log_path: $!\n";
    open($log, '>', '/dev/null') or die;
    return 0;
  }
  binmode $log;
  select((select($log), $| = 1)[0]);
  return 1;
}
open_log() or die "cannot open log $log_path\n";

# Stray signals must not end the monitor; the container gets the defaults back before exec.
$SIG{$_} = 'IGNORE' for qw(HUP INT TERM PIPE QUIT);
my $reopen = 0;
$SIG{USR1} = sub { $reopen = 1 };
$SIG{CHLD} = sub { };    # only to interrupt select() when the container exits

pipe(my $out_r, my $out_w) or die "pipe: $!\n";
pipe(my $err_r, my $err_w) or die "pipe: $!\n";
my $main = fork();
die "fork: $!\n" unless defined $main;
if ($main == 0) {
  # CMD starts with setsid(1): the container gets a session of its own, which is how its
  # processes are found later (perl's POSIX module would cost 2 MB per container for this).
  $SIG{$_} = 'DEFAULT' for qw(HUP INT TERM PIPE QUIT USR1 CHLD);
  open(STDIN, '<', '/dev/null');
  open(STDOUT, '>&', $out_w) or exit 127;
  open(STDERR, '>&', $err_w) or exit 127;
  %ENV = %env;
  { no warnings 'exec'; exec { $cmd[0] } @cmd; }
  print STDERR "podnet-shim: cannot run $cmd[0]: $!\n";
  exit 127;
}
close $out_w;
close $err_w;
put("pid", join(" ", $main, start_time($main), now_ns(), $$, start_time($$)) . "\n");
print STDOUT "$main\n";
open(STDOUT, '>', '/dev/null');

my %fh = (stdout => $out_r, stderr => $err_r);
my %buf = (stdout => '', stderr => '');
my $reopens = 0;

# Appends the complete lines of a stream (F), 16 KiB pieces of an overlong one (P), and at the end
# whatever is left (F), in one write.
sub emit {
  my ($s, $final) = @_;
  my $ts = stamp();
  my $out = '';
  while ((my $i = index($buf{$s}, "\n")) >= 0) {
    my $line = substr($buf{$s}, 0, $i + 1, '');
    chop $line;
    $out .= "$ts $s P " . substr($line, 0, 16384, '') . "\n" while length($line) > 16384;
    $out .= "$ts $s F $line\n";
  }
  while (length($buf{$s}) >= 16384) {
    $out .= "$ts $s P " . substr($buf{$s}, 0, 16384, '') . "\n";
  }
  if ($final && length($buf{$s})) {
    $out .= "$ts $s F $buf{$s}\n";
    $buf{$s} = '';
  }
  print $log $out if length $out;
}

sub kill_session {
  my ($sid) = @_;
  kill('KILL', -$sid);
  opendir(my $d, "/proc") or return;
  for my $p (grep { /^\d+$/ } readdir($d)) {
    my @f = stat_fields($p);
    kill('KILL', $p) if @f && $f[3] == $sid && $p != $$;
  }
  closedir($d);
}

my ($status, $drain_until);
while (1) {
  if ($reopen) {
    $reopen = 0;
    close($log);
    open_log();
    put("reopened", ++$reopens . "\n");
  }
  if (!defined $status && waitpid($main, 1) == $main) {    # 1: WNOHANG
    $status = $?;
    kill_session($main);
    $drain_until = time() + 2;
  }
  my @open = grep { defined $fh{$_} } qw(stdout stderr);
  last if defined $status && (!@open || time() >= $drain_until);
  my $rin = '';
  vec($rin, fileno($fh{$_}), 1) = 1 for @open;
  my $n = select(my $rout = $rin, undef, undef, defined $status ? 0.2 : 1);
  next unless $n && $n > 0;
  for my $s (@open) {
    next unless vec($rout, fileno($fh{$s}), 1);
    my $got = sysread($fh{$s}, my $data, 65536);
    next if !defined $got && ($!{EINTR} || $!{EAGAIN});
    if (!$got) {
      emit($s, 1);
      close($fh{$s});
      $fh{$s} = undef;
      next;
    }
    $buf{$s} .= $data;
    emit($s, 0);
  }
}
emit($_, 1) for qw(stdout stderr);
close($log);
my $code = ($status & 127) ? 128 + ($status & 127) : ($status >> 8);
put("exit", "$code " . now_ns() . "\n");
exit 0;
`;

export const SHIM_FILE = "shim.pl";

/** Writes the script into the state dir (atomically: running monitors already read theirs). */
export function installShim(stateDir: string): string {
  const path = join(stateDir, SHIM_FILE);
  writeAtomic(path, SHIM_SCRIPT);
  return path;
}

export interface ShimStart {
  main: ProcessRef;
  shim: ProcessRef;
  startedAt: string;
}

export function readPidFile(dir: string): ShimStart | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, "pid"), "utf8");
  } catch {
    return undefined;
  }
  const [pid, start, startedAt, shimPid, shimStart] = text.trim().split(" ");
  if (!shimStart) return undefined;
  return { main: { pid: Number(pid), startTime: start! }, startedAt: startedAt!, shim: { pid: Number(shimPid), startTime: shimStart } };
}

export function readExitFile(dir: string): { exitCode: number; finishedAt: string } | undefined {
  try {
    const [code, at] = readFileSync(join(dir, "exit"), "utf8").trim().split(" ");
    if (at === undefined) return undefined;
    return { exitCode: Number(code), finishedAt: at };
  } catch {
    return undefined;
  }
}

export interface ShimSpec {
  /** The container's directory (containers/<id>). */
  dir: string;
  logPath: string;
  /** What the shim forks: the full argv (nsenter ... -- command args). */
  argv: string[];
  env: Record<string, string>;
}

/** Starts a monitor and resolves once the container's main process exists. */
export function startShim(tools: Tools, shimPath: string, spec: ShimSpec, timeoutMs = 15000): Promise<ShimStart> {
  writeFileSync(
    join(spec.dir, "env"),
    Object.entries(spec.env)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(""),
    { mode: 0o600 },
  );
  const shimLog = openSync(join(spec.dir, "shim.log"), "a");
  return new Promise((resolve, reject) => {
    // A clean environment: PERL5LIB and friends from the daemon's must not reach the monitor.
    const child = spawn(tools.perl, [shimPath, spec.dir, spec.logPath, ...spec.argv], { detached: true, stdio: ["ignore", "pipe", shimLog], env: { PATH: SYSTEM_PATH } });
    closeSync(shimLog);
    let out = "";
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.destroy();
      child.unref();
      if (err) return reject(err);
      const started = readPidFile(spec.dir);
      if (!started) return reject(new RuntimeError("Internal", `container monitor gave no pid: ${shimError(spec.dir)}`));
      resolve(started);
    };
    const timer = setTimeout(() => {
      if (child.pid) signal(child.pid, "SIGKILL");
      finish(new RuntimeError("Internal", `container monitor did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) finish();
    });
    child.on("error", (e) => finish(new RuntimeError("Internal", `cannot start container monitor: ${e.message}`)));
    // "close" comes after stdout's last data, so a container that ends at once is still seen started.
    child.on("close", () => finish(readPidFile(spec.dir) ? undefined : new RuntimeError("Internal", `container monitor failed: ${shimError(spec.dir)}`)));
  });
}

function shimError(dir: string): string {
  try {
    return readFileSync(join(dir, "shim.log"), "utf8").trim().split("\n").slice(-3).join("; ") || "no message";
  } catch {
    return "no message";
  }
}

/** Asks the monitor to reopen the log file, and waits until it has. */
export async function reopenLog(dir: string, shim: ProcessRef): Promise<void> {
  const count = () => {
    try {
      return Number(readFileSync(join(dir, "reopened"), "utf8").trim());
    } catch {
      return 0;
    }
  };
  const before = count();
  if (!isRunning(shim.pid, shim.startTime) || !signal(shim.pid, "SIGUSR1")) throw new RuntimeError("FailedPrecondition", "the container's monitor is not running");
  if (!(await waitFor(() => count() > before, 5000))) throw new RuntimeError("Internal", "the container's monitor did not reopen the log within 5 s");
}
