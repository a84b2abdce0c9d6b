#!/bin/sh
# scripts/deb-source.sh CACHE PACKAGE [SUITE...]
#
# Downloads the newest version of Debian's source package PACKAGE that can
# be had into CACHE/fetch (`apt-get source --download-only`) and prints that
# version. apt works from lists of its own under CACHE/apt: deb-src twins
# of this machine's apt sources, plus SUITEs of the same archives (trixie,
# say, for a source that bookworm does not have). The machine's own apt
# configuration is left as it is.
set -eu
cache=$(mkdir -p "$1" && cd "$1" && pwd)
package=$2
shift 2
extra=$*

fail() { echo "deb-source: FAILED: $*" >&2; exit 1; }

apt_dir=$cache/apt
rm -rf "$apt_dir" && mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$cache/fetch"
# The extra suites go next to each archive's main suite (no "-security"
# or "-updates" in its name).
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  sed -n 's/^deb /deb-src /p' "$f" | while read -r type uri suite rest; do
    echo "$type $uri $suite $rest"
    case $suite in *-*) continue ;; esac
    for s in $extra; do echo "$type $uri $s $rest"; done
  done > "$apt_dir/sources.list.d/$(basename "$f")"
done
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  awk -v extra="$extra" '
    /^Types:/ { $0 = "Types: deb-src" }
    /^Suites:/ && extra != "" {
      main = 0; for (i = 2; i <= NF; i++) if ($i !~ /-/) main = 1
      if (main) $0 = $0 " " extra
    }
    { print }' "$f" > "$apt_dir/sources.list.d/$(basename "$f")"
done
opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$apt_dir/sources.list.d -o Dir::State::Lists=$apt_dir/lists"
# shellcheck disable=SC2086
apt-get $opts update -qq >/dev/null || fail "apt-get update of the deb-src lists"
# The newest version whose files can be had (a mirror may list a security
# update it does not serve).
# shellcheck disable=SC2086
versions=$(apt-cache $opts showsrc "$package" 2>/dev/null | sed -n 's/^Version: //p' | sort -rV | uniq)
[ -n "$versions" ] || fail "no source package $package in the deb-src lists (suites: the machine's${extra:+ and $extra})"
for v in $versions; do
  # shellcheck disable=SC2086
  if (cd "$cache/fetch" && apt-get $opts source --download-only -qq "$package=$v" >/dev/null 2>&1); then
    echo "$v"
    exit 0
  fi
  echo "deb-source: $package $v's source could not be fetched; trying an older one" >&2
done
fail "apt-get source $package (versions listed: $versions)"
