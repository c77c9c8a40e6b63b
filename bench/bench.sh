#!/usr/bin/env bash
# Benchmark one `neon-watchdog check` pass over 100 healthy targets, in two configs:
#   classic: 40 process_name checks (helper processes bench-sleep-0..39),
#            30 tcp_port checks (3 local TCP listeners), 30 command checks (/bin/true);
#   mixed:   25 process_name (10 of them with max_rss_mb/max_cpu_percent/max_children),
#            5 pid_file (+ process_name guard), 15 tcp_port, 15 http (python3 http.server
#            on 127.0.0.1, body_contains), 15 command, 10 file_fresh, 10 disk_free, 5 system,
#            with a metrics textfile written each pass.
# Reports the median wall time (hyperfine) and the peak RSS of one pass, per config.
#
# Usage:   bench/bench.sh
# Env:     NEON_WATCHDOG_BIN=/path/to/bin   use this binary, skip cargo build
#          NEON_BENCH_RUNS=30               hyperfine --runs
#          NEON_BENCH_WARMUP=3              hyperfine --warmup
#          NEON_BENCH_JSON=out.json         keep a copy of hyperfine's JSON
#          NEON_BENCH_KEEP=1                keep the temp dir (config, logs)
#          NEON_BENCH_TIME=/usr/bin/time    GNU time; a missing path selects
#                                           the python3 fallback for peak RSS
#          NEON_BENCH_ONLY=classic|mixed    run one config only
# Needs:   bash, cargo, hyperfine, python3, /usr/bin/time (Debian package
#          `time`; optional, a python3 fallback is used without it).
#
# Exits non-zero if the check does not exit 0: an unhealthy pass means the
# benchmark measured the wrong thing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

runs=${NEON_BENCH_RUNS:-30}
warmup=${NEON_BENCH_WARMUP:-3}
n_proc=40 n_tcp=30 n_cmd=30 n_listeners=3

die() { echo "bench: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found${2:+ ($2)}"; }
need hyperfine "apt-get install hyperfine"
need python3

# ---- (a) build ------------------------------------------------------------
if [[ -n ${NEON_WATCHDOG_BIN:-} ]]; then
  bin=$NEON_WATCHDOG_BIN
  echo "bench: using NEON_WATCHDOG_BIN=$bin (skipping cargo build)"
else
  need cargo
  echo "bench: cargo build --release --locked"
  (cd "$repo" && cargo build --release --locked)
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/neon-watchdog
fi
[[ -x $bin ]] || die "$bin is not executable"
case $bin in /*) ;; *) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;; esac

# ---- helpers and cleanup --------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/neon-bench.XXXXXX")
helper_pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((${#helper_pids[@]})); then
    kill "${helper_pids[@]}" 2>/dev/null || true
    wait "${helper_pids[@]}" 2>/dev/null || true
  fi
  if [[ -n ${NEON_BENCH_KEEP:-} ]]; then
    echo "bench: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/bin"

# 40 long-running processes with distinct names. A copy of sleep named
# bench-sleep-N has comm, argv[0] and exe basename all equal to bench-sleep-N
# (14 chars max, below the 15-char comm limit).
for ((i = 0; i < n_proc; i++)); do
  name=bench-sleep-$i
  cp /bin/sleep "$tmp/bin/$name"
  "$tmp/bin/$name" 3600 &
  helper_pids+=($!)
done

# TCP listeners on 127.0.0.1, ephemeral ports. They accept and immediately
# close connections so the backlog never fills during hundreds of passes.
cat >"$tmp/listener.py" <<'PY'
import os, signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1024)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(tmp, sys.argv[1])  # atomic: the reader never sees a partial port
while True:
    c, _ = s.accept()
    c.close()
PY
for ((i = 0; i < n_listeners; i++)); do
  python3 "$tmp/listener.py" "$tmp/port-$i" &
  helper_pids+=($!)
done

ports=()
for ((i = 0; i < n_listeners; i++)); do
  for ((t = 0; t < 100; t++)); do   # up to 10 s
    [[ -s $tmp/port-$i ]] && break
    sleep 0.1
  done
  [[ -s $tmp/port-$i ]] || die "TCP listener $i did not start"
  ports+=("$(<"$tmp/port-$i")")
done

# Sanity: every helper is alive and has the expected name.
for ((i = 0; i < n_proc; i++)); do
  comm=$(cat "/proc/${helper_pids[i]}/comm" 2>/dev/null) || die "helper bench-sleep-$i died"
  [[ $comm == "bench-sleep-$i" ]] || die "helper $i has comm '$comm', expected bench-sleep-$i"
done
echo "bench: started $n_proc process helpers, $n_listeners TCP listeners on ports ${ports[*]}"

# An HTTP server for the http checks (python3's, threaded), and a fresh file.
http_port_file=$tmp/http-port
cat >"$tmp/bench_httpd.py" <<'PY'
import http.server, os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status":"UP"}'
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 1024   # the default backlog of 5 drops SYNs of 15 parallel checks
s = S(("127.0.0.1", 0), H)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(s.server_address[1]))
os.rename(tmp, sys.argv[1])
s.serve_forever()
PY
python3 "$tmp/bench_httpd.py" "$http_port_file" &
helper_pids+=($!)
for ((t = 0; t < 100; t++)); do [[ -s $http_port_file ]] && break; sleep 0.1; done
[[ -s $http_port_file ]] || die "HTTP server did not start"
http_port=$(<"$http_port_file")
touch "$tmp/heartbeat"
for ((i = 0; i < 5; i++)); do echo "${helper_pids[i]}" >"$tmp/bench-$i.pid"; done

# ---- (b) configs -------------------------------------------------------------
classic() {
  echo "interval_seconds: 30"
  echo "timeout_seconds: 5"
  echo "state_file: $tmp/state-classic/state.json"
  echo "targets:"
  for ((i = 0; i < n_proc; i++)); do
    printf '  - name: p%d\n    checks:\n      - process_name: bench-sleep-%d\n    action: none\n' "$i" "$i"
  done
  for ((i = 0; i < n_tcp; i++)); do
    printf '  - name: t%d\n    checks:\n      - tcp_port: 127.0.0.1:%s\n    action: none\n' \
      "$i" "${ports[i % n_listeners]}"
  done
  for ((i = 0; i < n_cmd; i++)); do
    printf '  - name: c%d\n    checks:\n      - command: ["/bin/true"]\n    action: none\n' "$i"
  done
}

mixed() {
  echo "interval_seconds: 30"
  echo "timeout_seconds: 5"
  echo "state_file: $tmp/state-mixed/state.json"
  echo "metrics: {textfile: $tmp/state-mixed/nw.prom}"
  echo "targets:"
  for ((i = 0; i < 25; i++)); do
    if ((i < 10)); then
      printf '  - name: p%d\n    checks:\n      - {process_name: bench-sleep-%d, max_rss_mb: 1000, max_cpu_percent: 90, max_children: 10}\n    action: none\n' "$i" "$i"
    else
      printf '  - name: p%d\n    checks:\n      - process_name: bench-sleep-%d\n    action: none\n' "$i" "$i"
    fi
  done
  for ((i = 0; i < 5; i++)); do
    printf '  - name: f%d\n    checks:\n      - {pid_file: %s, process_name: bench-sleep-%d}\n    action: none\n' "$i" "$tmp/bench-$i.pid" "$i"
  done
  for ((i = 0; i < 15; i++)); do
    printf '  - name: t%d\n    checks:\n      - tcp_port: 127.0.0.1:%s\n    action: none\n' "$i" "${ports[i % n_listeners]}"
  done
  for ((i = 0; i < 15; i++)); do
    printf '  - name: h%d\n    checks:\n      - {http: "http://127.0.0.1:%s/health", body_contains: UP}\n    action: none\n' "$i" "$http_port"
  done
  for ((i = 0; i < 15; i++)); do
    printf '  - name: c%d\n    checks:\n      - command: ["/bin/true"]\n    action: none\n' "$i"
  done
  for ((i = 0; i < 10; i++)); do
    printf '  - name: ff%d\n    checks:\n      - {file_fresh: %s, max_age_seconds: 86400}\n    action: none\n' "$i" "$tmp/heartbeat"
  done
  for ((i = 0; i < 10; i++)); do
    printf '  - name: d%d\n    checks:\n      - {disk_free: %s, min_free_mb: 1}\n    action: none\n' "$i" "$tmp"
  done
  for ((i = 0; i < 5; i++)); do
    printf '  - name: s%d\n    checks:\n      - system: {max_load_per_core: 1000}\n    action: none\n' "$i"
  done
}

measure() {
  local name=$1 config=$2
  mkdir -p "$tmp/state-$name"
  local n_targets
  n_targets=$(grep -c '^  - name: ' "$config")
  ((n_targets == 100)) || die "$name config has $n_targets targets"
  echo
  echo "bench: == $name: $config ($n_targets targets)"
  local cmd=("$bin" check -c "$config")

  # One plain pass first: it must be healthy (exit 0), otherwise the numbers
  # would measure failure handling, not a normal pass.
  set +e
  "${cmd[@]}" >"$tmp/sanity.out" 2>"$tmp/sanity.err"
  local rc=$?
  set -e
  if ((rc != 0)); then
    echo "bench: sanity pass exited $rc (expected 0 = all healthy); stderr:" >&2
    tail -n 50 "$tmp/sanity.err" >&2
    exit 1
  fi

  local json=$tmp/hyperfine-$name.json
  # -N: no intermediate shell, so no shell-spawn overhead to subtract.
  hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$json" \
    "$(printf '%q ' "${cmd[@]}")" || die "hyperfine failed (a pass exited non-zero?)"
  [[ -n ${NEON_BENCH_JSON:-} ]] && cp "$json" "${NEON_BENCH_JSON%.json}-$name.json"

  python3 - "$json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
codes = set(r.get("exit_codes", []) or [0])
if codes != {0}:
    sys.exit(f"bench: non-zero exit codes during benchmark: {sorted(codes)}")
ms = lambda s: s * 1000.0
print(f"{sys.argv[2]}: median wall time: {ms(r['median']):.2f} ms "
      f"(mean {ms(r['mean']):.2f} ± {ms(r['stddev'] or 0):.2f} ms, "
      f"min {ms(r['min']):.2f}, max {ms(r['max']):.2f}, n={len(r['times'])})")
PY
  peak_rss "$name" "${cmd[@]}"
}

# ---- (d) peak RSS ---------------------------------------------------------
peak_rss() {
local name=$1; shift
local cmd=("$@")
time_bin=${NEON_BENCH_TIME:-/usr/bin/time}
if [[ -x $time_bin ]]; then
  set +e
  "$time_bin" -v -o "$tmp/time.txt" "${cmd[@]}" >/dev/null 2>"$tmp/rss.err"
  rc=$?
  set -e
  ((rc == 0)) || { tail -n 20 "$tmp/rss.err" >&2; die "RSS pass exited $rc"; }
  kib=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$tmp/time.txt")
  [[ $kib =~ ^[0-9]+$ ]] || die "could not parse $time_bin output: $(cat "$tmp/time.txt")"
  echo "$name: peak RSS: $kib KiB"
else
  # Fallback without GNU time: a python3 wrapper reads ru_maxrss (KiB on
  # Linux) from wait4(). A direct python child would be useless: exec()
  # keeps the pre-exec high-water mark of the forked python process (~10 MB).
  # So python becomes a child subreaper, /bin/sh forks the real command in the
  # background (forked from the small shell, not from python) and exits, and
  # python reaps the orphaned grandchild with wait4() to get its rusage alone.
  # The baseline (same wrapper running /bin/true) shows the floor (~shell RSS).
  cat >"$tmp/rss.py" <<'PY'
import ctypes, os, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
sh = subprocess.run(
    ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 & echo $!', "sh", *sys.argv[1:]],
    stdout=subprocess.PIPE, text=True, check=True)
pid = int(sh.stdout.strip())
_, status, ru = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss)
PY
  read -r rc kib < <(python3 "$tmp/rss.py" "${cmd[@]}") || die "RSS wrapper failed"
  ((rc == 0)) || die "RSS pass exited $rc"
  read -r _ base < <(python3 "$tmp/rss.py" /bin/true) || die "RSS wrapper failed"
  echo "$name: peak RSS: $kib KiB (python3 wait4 fallback; floor for /bin/true: $base KiB; install package 'time' for GNU time)"
fi
}

only=${NEON_BENCH_ONLY:-}
if [[ -z $only || $only == classic ]]; then
  classic >"$tmp/classic.yml"
  measure classic "$tmp/classic.yml"
fi
if [[ -z $only || $only == mixed ]]; then
  mixed >"$tmp/mixed.yml"
  measure mixed "$tmp/mixed.yml"
fi
