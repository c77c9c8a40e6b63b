#!/usr/bin/env bash
# Verify the neon-watchdog systemd units with `systemd-analyze verify`.
#
# Usage: packaging/systemd/verify.sh [BINARY]
#   BINARY  absolute path of an executable to stand in for
#           /usr/bin/neon-watchdog (default: target/release/neon-watchdog
#           of this repo). Use /bin/true to check the units before a build.
#
# The units name /usr/bin/neon-watchdog (the Debian package's path), which does
# not exist on a build/CI machine, and systemd-analyze verify rejects units
# whose ExecStart= binary is missing. So we copy the units into a temp dir,
# rewrite that path in their ExecStart= lines to BINARY, as
# `neon-watchdog install` does, and verify the copies. Works without systemd as
# PID 1. (The integration tests verify what `install --root` writes, too.)
#
# Fails (exit 1) on any diagnostic systemd-analyze prints about our units,
# including warnings such as unknown keys or bad values, which
# `systemd-analyze verify` itself only reports but does not fail on.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$repo/target}/release/neon-watchdog}

case $bin in
  /*) ;;
  *) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;;
esac
if [[ ! -x $bin ]]; then
  echo "verify.sh: $bin is not an executable (build first, or pass e.g. /bin/true)" >&2
  exit 64
fi
command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze not found" >&2; exit 69; }

units=(neon-watchdog.service neon-watchdog.timer neon-watchdog-daemon.service)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for u in "${units[@]}"; do
  sed "s|^ExecStart=/usr/bin/neon-watchdog |ExecStart=$bin |" "$here/$u" >"$tmp/$u"
  grep -q "^ExecStart=$bin " "$tmp/$u" || [[ $u == *.timer ]] || {
    echo "verify.sh: $u has no line ExecStart=/usr/bin/neon-watchdog ..." >&2; exit 1; }
done
# The config path is only an argument to the binary; verify does not open it,
# so nothing to fake there.

cd "$tmp"
status=0
# --man=no: no man pages to look up. --generators=no: don't run the host's
# generators. --recursive-errors=one: check our units and their immediate
# dependencies only, not the whole host unit tree (timers.target etc. on a
# non-systemd host may be incomplete).
out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --generators=no \
        --recursive-errors=one "${units[@]/#/$tmp/}" 2>&1) || status=$?

# Keep only lines that mention one of our units / the temp dir; other lines
# are noise about the host's own units.
ours=$(grep -F -e "$tmp" -e neon-watchdog <<<"$out" || true)

# systemd-analyze does not complain about references to units that do not
# exist (e.g. a typo in the timer's Unit=), so cross-check references to our
# own units by hand.
for u in "${units[@]}"; do
  while IFS= read -r ref; do
    [[ -f $here/$ref ]] || ours+="${ours:+$'\n'}$u: references missing unit $ref"
  done < <(grep -E '^(Unit|Also|Conflicts|After|Before|Wants|Requires|BindsTo|PartOf)=' "$here/$u" \
             | cut -d= -f2- | tr ' ' '\n' | grep -E '^neon' || true)
done

echo "systemd-analyze $(systemd-analyze --version | head -n1 | cut -d' ' -f2) verify: ${units[*]}"
echo "  (ExecStart binary: $bin)"
if [[ -n $out ]]; then
  echo "--- systemd-analyze output ---"
  sed 's/^/  /' <<<"$out"
fi
if (( status != 0 )) || [[ -n $ours ]]; then
  echo "FAIL: systemd-analyze exit status $status; diagnostics about our units:" >&2
  [[ -n $ours ]] && sed 's/^/  /' <<<"$ours" >&2
  exit 1
fi
echo "OK: all ${#units[@]} units verified clean"
