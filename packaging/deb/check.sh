#!/usr/bin/env bash
# Check a built neon-watchdog .deb: what CI runs after packaging/deb/build.sh.
#
# Usage: packaging/deb/check.sh [--install] PACKAGE.deb
#
#  - control fields, the file list (paths, modes, owners), the conffiles, the maintainer
#    scripts (the timer enabled and started, the daemon unit never enabled);
#  - lintian --fail-on error;
#  - unpacked into a temp dir (dpkg -x): the config passes test-config, the units are
#    packaging/systemd's and pass systemd-analyze verify, the man pages (neon-watchdog(1),
#    neon-watchdog.yml(5)), the JSON Schemas and the completions are what the binary prints,
#    the man pages render with groff without a warning, and bash completes `neon-watchdog st`
#    to `status`;
#  - with --install (as root): apt-get install of the .deb on this machine, test-config and a pass with the
#    installed config, the timer enabled and the daemon not, a local edit of the config and
#    an operator's switch to the daemon kept by a reinstall, then a purge leaves
#    nothing behind (not /etc/neon-watchdog, its conf.d, nor /usr/share/neon-watchdog). Refused, and nothing touched, when neon-watchdog is installed already
#    or its paths exist.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
install=no
if [ "${1:-}" = --install ]; then install=yes; shift; fi
deb=${1:?usage: packaging/deb/check.sh [--install] PACKAGE.deb}
[ -f "$deb" ] || { echo "check.sh: $deb: no such file" >&2; exit 66; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- control ----------------------------------------------------------------------------
info=$(dpkg-deb -I "$deb")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
for field in "Package: neon-watchdog" "Version: $version-1" "Section: admin" \
             "Priority: optional" "Architecture: amd64"; do
  grep -qx " $field" <<<"$info" || fail "control lacks '$field'"
done
grep -q '^ Depends: .*libc6' <<<"$info" || fail "control: Depends does not name libc6 (\$auto)"
ok "control: $(grep -E '^ (Package|Version|Depends):' <<<"$info" | tr -s ' ' | tr '\n' ';')"

# --- files: path, mode, owner -----------------------------------------------------------
list=$(dpkg-deb -c "$deb")
expect() {  # MODE PATH
  local line
  line=$(awk -v p="./$2" '$6 == p' <<<"$list")
  if [ -z "$line" ]; then fail "the package lacks /$2"; return; fi
  [ "$(awk '{print $1}' <<<"$line")" = "$1" ] || fail "/$2 has mode $(awk '{print $1}' <<<"$line"), expected $1"
  case $(awk '{print $2}' <<<"$line") in 0/0|root/root) ;; *) fail "/$2 is not owned by root (0/0)" ;; esac
}
expect -rwxr-xr-x usr/bin/neon-watchdog
for u in neon-watchdog.service neon-watchdog.timer neon-watchdog-daemon.service; do
  expect -rw-r--r-- "usr/lib/systemd/system/$u"
done
expect -rw-r--r-- usr/share/man/man1/neon-watchdog.1.gz
expect -rw-r--r-- usr/share/man/man5/neon-watchdog.yml.5.gz
expect -rw-r--r-- usr/share/neon-watchdog/schema.json
expect -rw-r--r-- usr/share/neon-watchdog/included.schema.json
expect -rw-r--r-- usr/share/bash-completion/completions/neon-watchdog
expect -rw-r--r-- usr/share/zsh/vendor-completions/_neon-watchdog
expect -rw-r--r-- usr/share/fish/vendor_completions.d/neon-watchdog.fish
expect -rw------- etc/neon-watchdog/config.yml
# the drop-in directory, shipped (its README holds it: dpkg ships no empty directory simply),
# so that dpkg owns it and a purge removes it
expect drwxr-xr-x etc/neon-watchdog/conf.d/
expect -rw-r--r-- etc/neon-watchdog/conf.d/README
for d in copyright changelog.Debian.gz README.md changelog.gz; do
  expect -rw-r--r-- "usr/share/doc/neon-watchdog/$d"
done
expect -rw-r--r-- usr/share/lintian/overrides/neon-watchdog
# no unit where dpkg would install it twice (/lib and /usr/lib are one on merged-/usr)
if grep -qE '\./lib/' <<<"$list"; then fail "files under /lib: $(grep -E '\./lib/' <<<"$list")"; fi
extra=$(awk '$1 !~ /^d/ {print $6}' <<<"$list" | grep -vxE '\./(usr/bin/neon-watchdog|usr/lib/systemd/system/neon-watchdog(-daemon)?\.(service|timer)|usr/share/man/man1/neon-watchdog\.1\.gz|usr/share/man/man5/neon-watchdog\.yml\.5\.gz|usr/share/neon-watchdog/(included\.)?schema\.json|etc/neon-watchdog/conf\.d/README|usr/share/bash-completion/completions/neon-watchdog|usr/share/zsh/vendor-completions/_neon-watchdog|usr/share/fish/vendor_completions\.d/neon-watchdog\.fish|etc/neon-watchdog/config\.yml|usr/share/doc/neon-watchdog/(copyright|changelog\.Debian\.gz|README\.md|changelog\.gz)|usr/share/lintian/overrides/neon-watchdog)' || true)
[ -z "$extra" ] || fail "files nobody expects: $extra"
ok "files: $(awk '$1 !~ /^d/' <<<"$list" | wc -l) files with the expected paths, modes and owners"

# --- control files: conffiles, maintainer scripts ---------------------------------------
mkdir "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
[ "$(sort "$tmp/control/conffiles" 2>/dev/null | tr '\n' ' ')" = "/etc/neon-watchdog/conf.d/README /etc/neon-watchdog/config.yml " ] ||
  fail "conffiles are not exactly /etc/neon-watchdog/config.yml and conf.d/README: $(cat "$tmp/control/conffiles" 2>/dev/null)"
ok "conffiles: $(tr '\n' ' ' <"$tmp/control/conffiles")"
postinst=$(cat "$tmp/control/postinst")
prerm=$(cat "$tmp/control/prerm")
grep -q 'deb-systemd-helper enable neon-watchdog.timer' <<<"$postinst" || fail "postinst does not enable the timer"
grep -q 'deb-systemd-invoke start neon-watchdog.timer' <<<"$postinst" || fail "postinst does not start the timer"
if grep -qE 'deb-systemd-invoke (start|restart) .*neon-watchdog\.service' <<<"$postinst"; then
  fail "postinst starts neon-watchdog.service (a pass inside dpkg)"
fi
# the daemon: state recorded; enabled again only inside the `debian-installed` block (an
# operator had enabled it before), never on a fresh install
awk '/if deb-systemd-helper debian-installed neon-watchdog-daemon.service/ { inside = 1 }
     inside && /^\tfi$/ { inside = 0 }
     /deb-systemd-helper enable neon-watchdog-daemon.service/ && !inside { bad = 1 }
     END { exit bad }' <<<"$postinst" || fail "postinst enables neon-watchdog-daemon.service on a fresh install"
grep -q 'deb-systemd-helper debian-installed neon-watchdog-daemon.service' <<<"$postinst" ||
  fail "postinst does not treat neon-watchdog-daemon.service as a unit it must not enable"
grep -q 'deb-systemd-invoke try-restart neon-watchdog-daemon.service' <<<"$postinst" || fail "postinst does not try-restart the daemon on upgrade"
for u in neon-watchdog.service neon-watchdog.timer neon-watchdog-daemon.service; do
  grep -q "deb-systemd-invoke stop .*$u" <<<"$prerm" || fail "prerm does not stop $u on remove"
done
grep -q 'rm -rf /var/lib/neon-watchdog' "$tmp/control/postrm" || fail "postrm does not remove the state on purge"
for s in postinst prerm postrm; do sh -n "$tmp/control/$s" || fail "$s: sh -n"; done
ok "maintainer scripts: the timer enabled and started, the daemon not enabled, all stopped on remove"

# --- lintian ----------------------------------------------------------------------------
if command -v lintian >/dev/null; then
  if lintian --fail-on error --info "$deb" >"$tmp/lintian.txt" 2>&1; then
    ok "lintian --fail-on error: no error; $(grep -cE '^W: ' "$tmp/lintian.txt" || true) warnings"
  else
    fail "lintian reports errors"
  fi
  grep -v 'running with root privileges' "$tmp/lintian.txt" | sed 's/^/  /' || true
  # the overridden tags, each justified in packaging/deb/lintian-overrides (with
  # --show-overrides an overridden error fails --fail-on error, hence a second run)
  lintian --show-overrides --fail-on none "$deb" 2>/dev/null | grep '^O: ' | sed 's/^/  overridden: /' || true
else
  fail "lintian is not installed (apt-get install lintian)"
fi

# --- unpacked ---------------------------------------------------------------------------
root=$tmp/root
dpkg -x "$deb" "$root"
bin=$root/usr/bin/neon-watchdog
if out=$("$bin" test-config -c "$root/etc/neon-watchdog/config.yml" 2>&1); then
  ok "test-config passes the shipped config"
else
  fail "test-config rejects the shipped config:"$'\n'"$out"
fi
cmp -s "$root/etc/neon-watchdog/config.yml" "$repo/packaging/config.yml" || fail "the config is not packaging/config.yml"
for u in neon-watchdog.service neon-watchdog.timer neon-watchdog-daemon.service; do
  cmp -s "$root/usr/lib/systemd/system/$u" "$repo/packaging/systemd/$u" || fail "$u is not packaging/systemd/$u"
done
if command -v systemd-analyze >/dev/null; then
  bash "$repo/packaging/systemd/verify.sh" "$bin" >"$tmp/verify.txt" 2>&1 || { cat "$tmp/verify.txt"; fail "systemd-analyze verify"; }
  ok "units: packaging/systemd's, $(tail -n1 "$tmp/verify.txt")"
else
  fail "systemd-analyze is not installed"
fi
zcat "$root/usr/share/man/man1/neon-watchdog.1.gz" | cmp -s - <("$bin" man) || fail "the man page is not what \`neon-watchdog man\` prints"
zcat "$root/usr/share/man/man5/neon-watchdog.yml.5.gz" | cmp -s - <("$bin" man 5) || fail "neon-watchdog.yml(5) is not what \`neon-watchdog man 5\` prints"
cmp -s "$root/usr/share/neon-watchdog/schema.json" <("$bin" schema) || fail "schema.json is not what \`neon-watchdog schema\` prints"
cmp -s "$root/usr/share/neon-watchdog/included.schema.json" <("$bin" schema --included) || fail "included.schema.json is not what \`neon-watchdog schema --included\` prints"
grep -q 'include: \[conf.d/\*.yml\]' "$root/etc/neon-watchdog/conf.d/README" || fail "conf.d/README does not say how the config reads conf.d"
cmp -s "$root/usr/share/bash-completion/completions/neon-watchdog" <("$bin" completions bash) || fail "bash completion differs from the binary's"
cmp -s "$root/usr/share/zsh/vendor-completions/_neon-watchdog" <("$bin" completions zsh) || fail "zsh completion differs from the binary's"
cmp -s "$root/usr/share/fish/vendor_completions.d/neon-watchdog.fish" <("$bin" completions fish) || fail "fish completion differs from the binary's"
ok "man pages, schemas and completions are what the packaged binary prints"
warnings=$(zcat "$root/usr/share/man/man1/neon-watchdog.1.gz" | groff -man -Tutf8 -ww 2>&1 >"$tmp/man.txt") || fail "groff failed"
[ -z "$warnings" ] || fail "groff warns about the man page: $warnings"
grep -q 'EXIT STATUS' "$tmp/man.txt" || fail "the rendered man page has no EXIT STATUS"
ok "man page renders ($(wc -l <"$tmp/man.txt") lines, no groff warning)"
warnings=$(zcat "$root/usr/share/man/man5/neon-watchdog.yml.5.gz" | groff -man -Tutf8 -ww 2>&1 >"$tmp/man5.txt") || fail "groff failed on neon-watchdog.yml(5)"
[ -z "$warnings" ] || fail "groff warns about neon-watchdog.yml(5): $warnings"
grep -q 'the configuration of neon' "$tmp/man5.txt" || fail "the rendered neon-watchdog.yml(5) lacks its NAME line"
ok "neon-watchdog.yml(5) renders ($(wc -l <"$tmp/man5.txt") lines, no groff warning)"
# bash, as on TAB: the function `complete -p` names, with COMP_WORDS/COMP_CWORD
complete_bash() {  # WORDS... -> COMPREPLY, space-separated
  bash --norc -c '
    source "$1"; shift
    fn=$(complete -p neon-watchdog | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
    [ -n "$fn" ] || exit 3
    COMP_WORDS=(neon-watchdog "$@"); COMP_CWORD=$#
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
    "$fn" neon-watchdog "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "${COMPREPLY[*]}"' bash "$root/usr/share/bash-completion/completions/neon-watchdog" "$@"
}
got=$(complete_bash stat) || true
[ "$got" = status ] || fail "bash completes 'neon-watchdog stat' to '$got', not 'status'"
got=$(complete_bash status --f) || true
[ "$got" = --format ] || fail "bash completes 'neon-watchdog status --f' to '$got', not '--format'"
ok "bash completes 'neon-watchdog stat' to 'status' and 'status --f' to '--format'"

# --- a real install ---------------------------------------------------------------------
if [ "$install" = yes ]; then
  taken=()
  dpkg-query -W -f '${Status}' neon-watchdog 2>/dev/null | grep -q 'installed\|config-files' && taken+=("the package neon-watchdog")
  for p in /usr/bin/neon-watchdog /etc/neon-watchdog /var/lib/neon-watchdog \
           /etc/systemd/system/neon-watchdog.service /etc/systemd/system/neon-watchdog.timer \
           /etc/systemd/system/neon-watchdog-daemon.service; do
    [ -e "$p" ] || [ -L "$p" ] && taken+=("$p")
  done
  if [ "$(id -u)" != 0 ]; then
    fail "--install needs root"
  elif [ ${#taken[@]} -gt 0 ]; then
    fail "not installing: ${taken[*]} already there (not ours to overwrite or purge)"
  else
    # apt, as README says (`apt install ./neon-watchdog_*.deb`), waiting for a dpkg lock
    # another job may hold; --reinstall makes the second install an upgrade of the same
    # version (postinst runs with the old version, as on an upgrade)
    apt_() {
      DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 "$@" >"$tmp/apt.txt" 2>&1 ||
        { cat "$tmp/apt.txt"; fail "apt-get $*"; return 1; }
    }
    installed() { apt_ install --reinstall "$deb"; }
    purge() { apt_ purge neon-watchdog; }
    if installed; then
      ok "apt-get install $(basename "$deb")"
      stat -c '%a %U:%G' /etc/neon-watchdog/config.yml | grep -qx '600 root:root' || fail "/etc/neon-watchdog/config.yml is $(stat -c '%a %U:%G' /etc/neon-watchdog/config.yml)"
      stat -c '%a %U:%G' /etc/neon-watchdog/conf.d | grep -qx '755 root:root' || fail "/etc/neon-watchdog/conf.d is $(stat -c '%a %U:%G' /etc/neon-watchdog/conf.d 2>&1)"
      [ -f /usr/share/neon-watchdog/schema.json ] || fail "no /usr/share/neon-watchdog/schema.json"
      [ -f /usr/share/man/man5/neon-watchdog.yml.5.gz ] || fail "no /usr/share/man/man5/neon-watchdog.yml.5.gz"
      env -u NEON_WATCHDOG_CONFIG /usr/bin/neon-watchdog test-config >/dev/null 2>"$tmp/tc.txt" || { cat "$tmp/tc.txt"; fail "test-config rejects the installed config"; }
      [ -s "$tmp/tc.txt" ] && { cat "$tmp/tc.txt"; fail "test-config warns about the installed config"; }
      code=0; env -u NEON_WATCHDOG_CONFIG /usr/bin/neon-watchdog check 2>"$tmp/check.txt" || code=$?
      case $code in
        0|2) [ -f /var/lib/neon-watchdog/state.json ] || fail "a pass wrote no /var/lib/neon-watchdog/state.json" ;;
        *) cat "$tmp/check.txt"; fail "neon-watchdog check with the installed config exits $code" ;;
      esac
      [ -L /etc/systemd/system/timers.target.wants/neon-watchdog.timer ] || fail "the timer is not enabled"
      [ -e /etc/systemd/system/multi-user.target.wants/neon-watchdog-daemon.service ] && fail "the daemon is enabled"
      ok "installed: test-config and a pass (exit $code) with /etc/neon-watchdog/config.yml, the timer enabled, the daemon not"
      echo "# a local edit" >>/etc/neon-watchdog/config.yml
      if installed; then
        grep -q '^# a local edit' /etc/neon-watchdog/config.yml || fail "reinstalling lost a local edit of the conffile"
        ok "a reinstall keeps a local edit of the config (conffile)"
      fi
      # an operator's switch to the loop survives an upgrade (systemctl edits the symlinks
      # offline too; a reinstall runs postinst with the old version, as an upgrade does)
      if systemctl disable neon-watchdog.timer >/dev/null 2>&1 &&
         systemctl enable neon-watchdog-daemon.service >/dev/null 2>&1 && installed; then
        [ -e /etc/systemd/system/timers.target.wants/neon-watchdog.timer ] && fail "an upgrade enabled the timer an operator had disabled"
        [ -L /etc/systemd/system/multi-user.target.wants/neon-watchdog-daemon.service ] || fail "an upgrade disabled the daemon an operator had enabled"
        ok "an upgrade keeps an operator's choice of the daemon over the timer"
      else
        fail "systemctl disable/enable (offline) or the reinstall failed"
      fi
      purge
      left=()
      for p in /usr/bin/neon-watchdog /etc/neon-watchdog /var/lib/neon-watchdog \
               /usr/share/neon-watchdog /usr/share/man/man5/neon-watchdog.yml.5.gz \
               /usr/lib/systemd/system/neon-watchdog.timer \
               /etc/systemd/system/timers.target.wants/neon-watchdog.timer \
               /etc/systemd/system/multi-user.target.wants/neon-watchdog-daemon.service \
               /etc/systemd/system/neon-watchdog.timer /etc/systemd/system/neon-watchdog.service \
               /var/lib/systemd/deb-systemd-helper-enabled/neon-watchdog.timer.dsh-also \
               /var/lib/systemd/deb-systemd-helper-enabled/neon-watchdog.service.dsh-also \
               /var/lib/systemd/deb-systemd-helper-enabled/neon-watchdog-daemon.service.dsh-also; do
        [ -e "$p" ] || [ -L "$p" ] && left+=("$p")
      done
      [ ${#left[@]} -eq 0 ] || fail "purge left ${left[*]}"
      ok "apt-get purge removed the package, its config and conf.d, its state and its unit state"
    fi
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) of $(basename "$deb") failed" >&2
  exit 1
fi
echo "OK: $(basename "$deb")"
