#!/usr/bin/env bash
# neon-watchdog side by side with monit 5.33 and with the floor of the same work, per size
# (neon and the floor in alternate runs, then monit under hyperfine):
#   - the classic mix (40% process_name, 30% tcp_port, 30% command /bin/true) at N = 10, 100,
#     1000, 5000 targets: `neon-watchdog check`, the floor (bench/floor.c: the same /proc scan,
#     the same posix_spawns and loopback connects on 32 threads, one fsynced state write),
#     and `monit validate` on the equivalent monitrc (run with nofile 1024, as under systemd);
#   - a process-only pass (100 process_name checks) with 100 and with 2,000 extra processes on
#     the box, against a bare scan (floor --scan) and monit;
#   - 100 hung targets (a command that never ends, timeout 2 s) among 400.
# Prints median wall time, CPU (user + sys), the ratios and neon's peak RSS, writes the
# figures to bench/results.tsv and the plot of pass time against N to bench/pass-time.png.
#
# Usage:   bash bench/vs-monit.sh          (as root on Debian: installs monit, gnuplot-nox,
#                                           hyperfine, time and gcc if missing)
# Env:     NEON_WATCHDOG_BIN=/path/to/bin   use this binary, skip cargo build
#          NEON_BENCH_SIZES="10 100 1000 5000"
#          NEON_BENCH_RUNS=10               monit's runs under hyperfine (3 at 5000)
#          NEON_BENCH_PAIRS=20              paired runs of neon and the floor
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
sizes=${NEON_BENCH_SIZES:-"10 100 1000 5000"}
runs=${NEON_BENCH_RUNS:-10}
pairs=${NEON_BENCH_PAIRS:-20}

die() { echo "bench: $*" >&2; exit 1; }

# ---- tools ------------------------------------------------------------------------------
missing=()
command -v monit >/dev/null || missing+=(monit)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v gcc >/dev/null || missing+=(gcc)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: apt-get install them (or run as root)"
  echo "bench: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
monit -V | head -1

if [[ -n ${NEON_WATCHDOG_BIN:-} ]]; then
  bin=$NEON_WATCHDOG_BIN
else
  (cd "$repo" && cargo build --release --locked -q)
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/neon-watchdog
fi
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
[[ -x $bin ]] || die "$bin is not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/neon-vs-monit.XXXXXX")
pids=()
cleanup() {
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
gcc -O2 -pthread -o "$tmp/floor" "$here/floor.c"

# ---- helpers: 40 named processes, 3 listeners with a real backlog --------------------------
mkdir -p "$tmp/bin"
for ((i = 0; i < 40; i++)); do
  cp /bin/sleep "$tmp/bin/bench-sleep-$i"
  "$tmp/bin/bench-sleep-$i" 36000 &
  pids+=($!)
done
cat >"$tmp/listen.py" <<'PY'
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4096)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    s.accept()[0].close()
PY
ports=()
for i in 0 1 2; do
  python3 "$tmp/listen.py" "$tmp/port-$i" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $tmp/port-$i ]] && break; sleep 0.05; done
  ports+=("$(<"$tmp/port-$i")")
done

# ---- configs ----------------------------------------------------------------------------
# neon config, monitrc and floor arguments for np process, nt tcp and nc command checks
make_case() {
  local name=$1 np=$2 nt=$3 nc=$4 timeout=${5:-5} hung=${6:-0}
  local cfg=$tmp/$name.yml rc=$tmp/$name.monitrc
  mkdir -p "$tmp/state-$name"
  {
    echo "state_file: $tmp/state-$name/state.json"
    echo "timeout_seconds: $timeout"
    echo "targets:"
    for ((i = 0; i < np; i++)); do
      printf '  - {name: p%d, checks: [{process_name: bench-sleep-%d}], action: none}\n' "$i" $((i % 40))
    done
    for ((i = 0; i < nt; i++)); do
      printf '  - {name: t%d, checks: [{tcp_port: "127.0.0.1:%s"}], action: none}\n' "$i" "${ports[i % 3]}"
    done
    for ((i = 0; i < nc; i++)); do
      if ((i < hung)); then
        printf '  - {name: h%d, checks: [{command: ["/bin/sleep", "1000"]}], action: none}\n' "$i"
      else
        printf '  - {name: c%d, checks: [{command: ["/bin/true"]}], action: none}\n' "$i"
      fi
    done
  } >"$cfg"
  {
    echo "set daemon 30"
    echo "set idfile $tmp/$name.monit-id"
    echo "set statefile $tmp/$name.monit-state"
    echo "set pidfile $tmp/$name.monit-pid"
    echo "set logfile $tmp/$name.monit-log"
    for ((i = 0; i < np; i++)); do
      echo "check process p$i matching \"bench-sleep-$((i % 40)) \""
    done
    for ((i = 0; i < nt; i++)); do
      echo "check host t$i with address 127.0.0.1"
      echo "  if failed port ${ports[i % 3]} type tcp then alert"
    done
    for ((i = 0; i < nc; i++)); do
      echo "check program c$i with path /bin/true"
      echo "  if status != 0 then alert"
    done
  } >"$rc"
  chmod 600 "$rc"
  local f=("--scan" "--spawn" "$nc" "--targets" $((np + nt + nc)) "--state" "$tmp/state-$name/floor.json")
  for ((i = 0; i < nt; i++)); do f+=(--connect "${ports[i % 3]}"); done
  echo "${f[*]}" >"$tmp/$name.floor"
}

# neon and the floor run in turn (A B A B ...), so that a machine whose speed drifts during the
# run (a shared or busy machine) slows both alike: the ratio is the median of the pairs'
# ratios. monit then runs alone under hyperfine (its runs take up to half a minute).
# Prints and records one row.
results=$repo/bench/results.tsv
printf 'case\tneon_ms\tneon_cpu_ms\tfloor_ms\tneon_per_floor\tmonit_ms\tmonit_per_neon\tneon_rss_kib\n' >"$results"
measure() {
  local name=$1 r=$2 label=${3:-$1} floor_args
  floor_args=$(<"$tmp/$name.floor")
  "$bin" check -c "$tmp/$name.yml" >/dev/null 2>&1 || die "$name: the pass is not healthy"
  python3 - "$bin check -c $tmp/$name.yml" "$tmp/floor $floor_args" "$pairs" "$tmp/$name.pairs.json" <<'PY' ||
import json, os, sys, time
a, b, runs, out = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
quiet = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
         (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
         (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
def one(argv):
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
    _, _, ru = os.wait4(pid, 0)
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime
for _ in range(2):  # warm-up
    one(a), one(b)
pairs = [(one(a), one(b)) for _ in range(runs)]
json.dump(pairs, open(out, "w"))
PY
    die "$name: the paired runs failed"
  hyperfine -N -i --warmup 2 --runs "$r" --export-json "$tmp/$name.json" \
    "prlimit --nofile=1024 monit -c $tmp/$name.monitrc validate" >/dev/null 2>&1 ||
    die "$name: hyperfine failed"
  local rss
  /usr/bin/time -f '%M' -o "$tmp/rss" "$bin" check -c "$tmp/$name.yml" >/dev/null 2>&1 || true
  rss=$(tail -1 "$tmp/rss")
  python3 - "$tmp/$name.pairs.json" "$tmp/$name.json" "$label" "$rss" "$results" <<'PY'
import json, statistics as st, sys
pairs = json.load(open(sys.argv[1]))
neon = st.median(p[0][0] for p in pairs) * 1000
cpu = st.median(p[0][1] for p in pairs) * 1000
floor = st.median(p[1][0] for p in pairs) * 1000
ratio = st.median(p[0][0] / p[1][0] for p in pairs)
monit = json.load(open(sys.argv[2]))["results"][0]["median"] * 1000
row = [sys.argv[3], f"{neon:.1f}", f"{cpu:.1f}", f"{floor:.1f}", f"{ratio:.2f}",
       f"{monit:.1f}", f"{monit/neon:.1f}", sys.argv[4]]
print("  ".join(f"{h}={v}" for h, v in zip(
    ["case", "neon_ms", "neon_cpu_ms", "floor_ms", "neon/floor", "monit_ms", "monit/neon", "rss_KiB"], row)))
open(sys.argv[5], "a").write("\t".join(row) + "\n")
PY
}

echo "bench: classic mix, 40% process_name, 30% tcp_port, 30% command"
for n in $sizes; do
  np=$((n * 4 / 10)) nt=$((n * 3 / 10))
  make_case "classic-$n" "$np" "$nt" $((n - np - nt))
  r=$runs
  ((n >= 5000)) && r=3
  measure "classic-$n" "$r"
done

echo "bench: process-only pass (100 process_name checks) and extra processes on the box"
make_case procs 100 0 0
measure procs "$runs" "procs-extra-100"
extra=()
for _ in $(seq 2000); do
  sleep 36000 &
  extra+=($!)
done
pids+=("${extra[@]}")
# monit matches each process check's regex against every process: 15 s a pass here
measure procs 3 "procs-extra-2100"
kill "${extra[@]}" 2>/dev/null || true

echo "bench: 100 hung targets (command never ends, timeout 2 s) among 400"
make_case hung 100 100 200 2 100
best=
for _ in 1 2 3; do
  t0=$(date +%s%N)
  "$bin" check -c "$tmp/hung.yml" >/dev/null 2>&1 || true
  ms=$((($(date +%s%N) - t0) / 1000000))
  [[ -z $best || $ms -lt $best ]] && best=$ms
done
echo "  case=hung-100-of-400  neon_ms=$best (one timeout is 2000)"
printf 'hung-100-of-400\t%s\t\t\t\t\t\t\n' "$best" >>"$results"

# ---- the plot ------------------------------------------------------------------------------
grep '^classic-' "$results" | sed 's/^classic-//' >"$tmp/plot.tsv"
gnuplot <<GP
set terminal pngcairo size 900,560 font ",11"
set output "$repo/bench/pass-time.png"
set title "One pass over N targets (40% process, 30% tcp, 30% command): median wall time"
set xlabel "targets (N)"; set ylabel "milliseconds"
set logscale xy; set grid; set key top left
plot "$tmp/plot.tsv" using 1:6 with linespoints lw 2 title "monit 5.33 validate", \
     "$tmp/plot.tsv" using 1:2 with linespoints lw 2 title "neon-watchdog check", \
     "$tmp/plot.tsv" using 1:4 with linespoints lw 2 dt 2 title "floor (same work in C)"
GP
echo "bench: figures in $results, plot in $repo/bench/pass-time.png"
