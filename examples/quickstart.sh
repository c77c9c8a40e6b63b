#!/usr/bin/env bash
# The quickstart, as one command: build, then two passes over examples/quickstart.yml.
#   pass 1: the demo web server (python3, 127.0.0.1:8765) is down -> neon-watchdog starts it, exit 2
#   pass 2: it is up -> exit 0
# Needs only cargo and python3; no root. The demo keeps running afterwards:
#   bash examples/quickstart.sh stop
set -u
cd "$(dirname "$0")/.."
dir=/tmp/neon-watchdog-quickstart

# the demo's pid, if the pid file names a live demo server (never some other process)
demo_pid() {
  local pid
  pid=$(cat "$dir/demo.pid" 2>/dev/null) || return 1
  { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -q 'http.server 8765' && echo "$pid"
}

if [ "${1:-}" = stop ]; then
  if pid=$(demo_pid); then
    kill "$pid" && echo "demo server (pid $pid) stopped"
  else
    echo "no demo server running"
  fi
  exit 0
fi

# cargo's progress stays on the terminal (a silent first build looks hung); the binary's
# path comes from cargo itself, wherever CARGO_TARGET_DIR or a cargo config put it
echo "== building neon-watchdog (release; the first build compiles for a few minutes)"
bin=$(set -o pipefail
      cargo build --release --locked --message-format=json-render-diagnostics |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "neon-watchdog" and m.get("executable"):
        print(m["executable"])') || { echo "quickstart: the build failed (see above)" >&2; exit 1; }
[ -x "$bin" ] || { echo "quickstart: cargo built no neon-watchdog binary" >&2; exit 1; }
cfg=examples/quickstart.yml

# start from a clean slate: no demo of an earlier run, none of its state
if pid=$(demo_pid); then kill "$pid"; sleep 0.5; fi
mkdir -p "$dir"
rm -f "$dir/state.json" "$dir/state.json.lock" "$dir/demo.pid" "$dir/demo.log"
if (exec 3<>/dev/tcp/127.0.0.1/8765) 2>/dev/null; then
  echo "port 8765 is taken by another program: stop it, or change the port in examples/quickstart.yml" >&2
  exit 1
fi

echo "== pass 1: the demo server is down; expect exit 2 and a start"
"$bin" check -c "$cfg"
first=$?
echo "== exit $first"
sleep 1   # give the demo server a moment to bind its port
echo "== pass 2: expect exit 0 (healthy)"
"$bin" check -c "$cfg"
second=$?
echo "== exit $second"
if [ "$first" -eq 2 ] && [ "$second" -eq 0 ]; then
  echo "quickstart OK: the watchdog found the demo down, started it, and saw it healthy."
  echo "demo: http://127.0.0.1:8765/   stop it: bash examples/quickstart.sh stop"
  echo "state: $dir/state.json"
  exit 0
fi
echo "quickstart FAILED: expected exits 2 then 0, got $first then $second" >&2
exit 1
