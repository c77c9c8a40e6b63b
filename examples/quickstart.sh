#!/usr/bin/env bash
# The quickstart, as one command: build, then two passes over examples/quickstart.yml.
#   pass 1: the demo web server (python3 on 127.0.0.1) is down -> neon-watchdog starts it, exit 2
#   pass 2: it is up -> exit 0
# Needs only cargo and python3; no root. The demo keeps running afterwards:
#   bash examples/quickstart.sh stop
#
# Each user gets a directory and a port of their own, so two users (or root and a user) can
# run it side by side: the directory is $XDG_RUNTIME_DIR/neon-watchdog-quickstart-UID (else
# under $TMPDIR or /tmp), the port a free one, chosen on the first run and kept in the
# directory's `port` file while it stays free. The config the passes run is
# examples/quickstart.yml with that directory and port written in (DIR/quickstart.yml).
# NEON_WATCHDOG_BIN=PATH runs that binary instead of building one.
set -u
cd "$(dirname "$0")/.."

uid=$(id -u)
base=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}
base=${base%/}
dir=$base/neon-watchdog-quickstart-$uid
# the path goes into a YAML file and a sed expression: plain characters only
if ! [[ $dir =~ ^/[A-Za-z0-9/._-]+$ ]]; then
  echo "quickstart: $dir: use a directory whose path has only letters, digits and / . _ - (set TMPDIR)" >&2
  exit 1
fi

port=$(cat "$dir/port" 2>/dev/null)
[[ $port =~ ^[0-9]+$ ]] || port=

# the demo's pid, if the pid file names a live demo server of this directory (never some
# other process, nor another user's demo)
demo_pid() {
  local pid
  pid=$(cat "$dir/demo.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -n $port ]] || return 1
  { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null |
    grep -qF -- "http.server $port --bind 127.0.0.1 --directory $dir" && echo "$pid"
}

# kill the demo and wait until it is gone (its port free again)
stop_demo() {
  local pid=$1 i state
  kill "$pid" 2>/dev/null || return 1
  for ((i = 0; i < 300; i++)); do
    # gone, or a zombie its parent has yet to reap (dead all the same)
    state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null)
    case $state in ''|Z|X) return 0 ;; esac
    sleep 0.1
  done
  echo "quickstart: the demo server (pid $pid) did not stop within 30 s" >&2
  return 1
}

if [ "${1:-}" = stop ]; then
  if pid=$(demo_pid); then
    stop_demo "$pid" && echo "demo server (pid $pid, port $port) stopped"
  else
    echo "no demo server running (for $dir)"
  fi
  exit 0
fi

if [ -n "${NEON_WATCHDOG_BIN:-}" ]; then
  bin=$NEON_WATCHDOG_BIN
  [ -x "$bin" ] || { echo "quickstart: NEON_WATCHDOG_BIN=$bin is not an executable" >&2; exit 1; }
else
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
fi

# start from a clean slate: no demo of an earlier run, none of its state
if pid=$(demo_pid); then stop_demo "$pid" || exit 1; fi
# the directory is this user's own: created 0700, and one that exists must be a real
# directory of ours (in a shared /tmp another user could have put anything there)
mkdir -m 0700 -p "$dir" 2>/dev/null
if [ -L "$dir" ] || [ ! -d "$dir" ] || [ ! -O "$dir" ]; then
  echo "quickstart: $dir is not a directory of yours: remove it, or set TMPDIR to another directory" >&2
  exit 1
fi
chmod 0700 "$dir"
rm -f "$dir/state.json" "$dir/state.json.lock" "$dir/demo.pid" "$dir/demo.log"

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# the port of the last run while it is free, else one the kernel says is free now
if [ -z "$port" ] || port_taken "$port"; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    { echo "quickstart: python3 could not find a free port" >&2; exit 1; }
fi
echo "$port" >"$dir/port"

# examples/quickstart.yml with this user's directory and port
cfg=$dir/quickstart.yml
{ echo "# Written by examples/quickstart.sh from examples/quickstart.yml: this user's directory and port."
  sed -e '/yaml-language-server/d' \
      -e "s|/tmp/neon-watchdog-quickstart|$dir|g" -e "s|8765|$port|g" examples/quickstart.yml
} >"$cfg" || { echo "quickstart: cannot write $cfg" >&2; exit 1; }
echo "== $cfg: directory $dir, port $port"

echo "== pass 1: the demo server is down; expect exit 2 and a start"
"$bin" check -c "$cfg"
first=$?
echo "== exit $first"
# the demo was started detached: wait for it to listen (a loaded machine may take seconds)
for ((i = 0; i < 300; i++)); do port_taken "$port" && break; sleep 0.1; done
echo "== pass 2: expect exit 0 (healthy)"
"$bin" check -c "$cfg"
second=$?
echo "== exit $second"
if [ "$first" -eq 2 ] && [ "$second" -eq 0 ]; then
  echo "quickstart OK: the watchdog found the demo down, started it, and saw it healthy."
  echo "demo: http://127.0.0.1:$port/   stop it: bash examples/quickstart.sh stop"
  echo "state: $dir/state.json   config: $cfg"
  echo "again: $bin check -c $cfg"
  exit 0
fi
echo "quickstart FAILED: expected exits 2 then 0, got $first then $second" >&2
exit 1
