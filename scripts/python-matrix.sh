#!/bin/sh
# `make python-matrix`: the module built against, and tested with, each
# CPython of VERSIONS (default 3.10 3.11 3.12 3.13 3.13t).
# A version ending in `t` is the free-threaded build of X.Y (PEP 703,
# configured with --disable-gil; its files are named X.Yt: python3.13t,
# libpython3.13t.so, lib/python3.13t).
#
# usage: scripts/python-matrix.sh DIR [VERSION...]
#   DIR      cache and results (the Makefile passes target/python-matrix)
#   TESTS    the test files run against each version (default below)
#   PYENV_ROOT  where the Pythons come from (default /root/.pyenv)
#   PYTHON_SOURCE=debian  build from Debian's source even where pyenv has
#            the version (the path a machine without pyenv takes)
#
# For each version X.Y:
# 1. DIR/X.Y/python: a copy of pyenv's newest X.Y build that Apache's
#    children (www-data) can read. pyenv's builds live under /root, which
#    www-data cannot enter, and their python binary has a RUNPATH to the
#    original lib/; the copy gets $ORIGIN/../lib instead (patchelf), so it
#    runs on its own libpython. Its sysconfig still names the original
#    prefix (LIBDIR and the like): Python finds its own prefix from where
#    its binary is, and build.rs looks for libpython below that prefix.
#    Left out: site-packages (the tests make virtualenvs), the test suite
#    and the static library. Kept until the source build changes (a stamp).
#    Without a pyenv build of X.Y, CPython X.Y is built from Debian's source
#    package into DIR/X.Y/python instead (build_python below); X.Yt is
#    built so (with --disable-gil) unless pyenv has an X.Y.Zt build.
# 2. DIR/X.Y/target: the module built against the copy (its own
#    CARGO_TARGET_DIR, PYO3_PYTHON the copy), with a RUNPATH to the copy's
#    lib/.
# 3. The test files of TESTS with MOD_WSGI_RS_SO that module and
#    MOD_WSGI_RS_PYTHON the copy: the harness gives every Apache the copy as
#    WSGIPythonHome and makes the cached virtualenvs (Flask and Django
#    from PyPI) from it, under DIR/X.Y/target.
# A line per version goes to DIR/results.txt; the exit status is non-zero
# if any version failed.
set -eu
dir=$(mkdir -p "$1" && cd "$1" && pwd)
shift
versions=${*:-3.10 3.11 3.12 3.13 3.13t}
repo=$(cd "$(dirname "$0")/.." && pwd)
pyenv_root=${PYENV_ROOT:-/root/.pyenv}
tests=${TESTS:-embedded_basic embedded_python daemon_mode interpreters frameworks free_threading}
cargo=${CARGO:-cargo}

say() { echo "python-matrix: $*"; }
fail() { echo "python-matrix: FAILED: $*" >&2; exit 1; }

# Every directory down to DIR must be enterable by Apache's user, who
# reads the Python copies; else the cache goes to /var/tmp (as the tests'
# virtualenvs do, tests/common/venv.rs).
traversable() {
  p=$1
  while [ "$p" != / ]; do
    [ -n "$(find "$p" -maxdepth 0 -perm -o+x)" ] || return 1
    p=$(dirname "$p")
  done
}
if ! traversable "$dir"; then
  say "$dir cannot be reached by Apache's user; using /var/tmp/mod_wsgi_rs-python-matrix"
  dir=/var/tmp/mod_wsgi_rs-python-matrix
  mkdir -p "$dir"
fi
results=$dir/results.txt

command -v patchelf >/dev/null || {
  say "installing patchelf"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null
}

# The newest pyenv build of X.Y (X.Y.Z), or of X.Yt (pyenv's X.Y.Zt): its
# directory, or nothing.
pyenv_build() {
  base=${1%t} suffix=${1#"$base"}
  ls -d "$pyenv_root/versions/$base".* 2>/dev/null |
    grep -E "/$(echo "$base" | sed 's/\./\\./')\.[0-9]+$suffix\$" | sort -t. -k3 -n | tail -1
}

# DIR/X.Y/python from pyenv's build SRC.
copy_python() {
  version=$1 src=$2 copy=$dir/$1/python
  stamp="$src $(stat -c %Y "$src/lib/libpython$version.so.1.0")"
  if [ -f "$copy/.complete" ] && [ "$(cat "$copy/.complete")" = "$stamp" ]; then
    return 0
  fi
  say "$version: copying $src to $copy"
  rm -rf "$copy" && mkdir -p "$copy"
  lib=lib/python$version
  tar -C "$src" -cf - \
    --exclude="./$lib/site-packages/*" --exclude="./$lib/test" \
    --exclude="./$lib/config-*/*.a" --exclude="./$lib/idlelib/idle_test" \
    ./bin ./include ./lib | tar -C "$copy" -xf -
  finish_python "$version" "$stamp"
}

# DIR/X.Y/python built from Debian's pythonX.Y source package (its upstream
# tarball) where pyenv has no X.Y build: a clean machine without pyenv.
# The suites of SOURCE_SUITES are searched besides the machine's own
# (Debian 13, trixie, has 3.13; Debian 12 has 3.11). About 10 minutes on
# 2 cores; kept once built.
# X.Yt is configured with --disable-gil from the same source package.
build_python() {
  version=$1 copy=$dir/$1/python base=${1%t}
  cache=$dir/source-$base
  case $version in
    *t) flags=--disable-gil stamp="debian python$base free-threaded" ;;
    *) flags="" stamp="debian python$base" ;;
  esac
  if [ -f "$copy/.complete" ] && grep -q "^$stamp [^f]" "$copy/.complete"; then
    return 0
  fi
  missing=""
  for p in gcc make xz-utils libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev uuid-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  say "$version: fetching Debian's python$base source"
  # shellcheck disable=SC2086
  got=$("$repo/scripts/deb-source.sh" "$cache" "python$base" ${SOURCE_SUITES-trixie}) ||
    fail "$version: no pyenv build, and Debian's python$base source could not be fetched"
  rm -rf "$cache/build" "$copy" && mkdir -p "$cache/build"
  tar -C "$cache/build" -xf "$(ls "$cache/fetch/python${base}_"*.orig.tar.* | grep -v '\.asc$' | tail -1)"
  build=$(ls -d "$cache"/build/Python-* | tail -1)
  say "$version: building $(basename "$build")${flags:+ ($flags)} into $copy"
  # shellcheck disable=SC2086
  (cd "$build" &&
    ./configure --prefix="$copy" --enable-shared --with-ensurepip=install $flags >configure.log 2>&1 &&
    make -j "$(nproc)" >make.log 2>&1 &&
    make install >install.log 2>&1) || fail "$version: building Python: see the logs in $build"
  rm -rf "$cache/build"
  finish_python "$version" "$stamp $got"
}

# The Python in DIR/X.Y/python made self-contained and readable: its binary
# loads the libpython beside it, every file is readable by Apache's user,
# and www-data runs it from there (its prefix is the copy's).
finish_python() {
  version=$1 copy=$dir/$1/python
  patchelf --set-rpath '$ORIGIN/../lib' "$copy/bin/python$version"
  chmod -R a+rX "$copy"
  prefix=$(runuser -u www-data -- "$copy/bin/python$version" -c \
    'import sys, ssl, sqlite3, ctypes, venv; print(sys.prefix)') ||
    fail "$version: $copy/bin/python$version does not run as www-data"
  [ "$prefix" = "$copy" ] || fail "$version: the copy says its prefix is $prefix, not $copy"
  printf '%s' "$2" > "$copy/.complete"
}

# "N passed, M failed" of a cargo test log.
count() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "%d passed, %d failed", p, f }' "$1"
}

: > "$results"
status=0
for version in $versions; do
  started=$(date +%s)
  src=$(pyenv_build "$version")
  if [ -n "$src" ] && [ "${PYTHON_SOURCE:-}" != debian ]; then
    copy_python "$version" "$src"
  else
    build_python "$version"
  fi
  python=$dir/$version/python/bin/python$version
  full=$("$python" -c 'import platform; print(platform.python_version())')
  target=$dir/$version/target
  log=$dir/$version/test.log
  say "$version: building the module against $python (Python $full) in $target"
  built=$(date +%s)
  if ! CARGO_TARGET_DIR=$target PYO3_PYTHON=$python "$cargo" build --release --manifest-path "$repo/Cargo.toml" \
      > "$dir/$version/build.log" 2>&1; then
    tail -20 "$dir/$version/build.log" >&2
    echo "$version ($full): build FAILED (see $dir/$version/build.log)" >> "$results"
    status=1
    continue
  fi
  build_secs=$(( $(date +%s) - built ))
  module=$target/release/libmod_wsgi_rs.so
  say "$version: module RUNPATH $(readelf -d "$module" | sed -n 's/.*Library runpath: //p')"
  : > "$log"
  for t in $tests; do
    say "$version: cargo test --test $t"
    CARGO_TARGET_DIR=$target PYO3_PYTHON=$python MOD_WSGI_RS_SO=$module MOD_WSGI_RS_PYTHON=$python \
      "$cargo" test --release --manifest-path "$repo/Cargo.toml" --test "$t" > "$log.part" 2>&1 || status=1
    say "$version: $t: $(grep '^test result:' "$log.part" || echo "no result: see $log")"
    cat "$log.part" >> "$log" && rm -f "$log.part"
  done
  secs=$(( $(date +%s) - started ))
  line="$version ($full): $(count "$log") in $(echo "$tests" | wc -w) files ($tests); build ${build_secs}s, all ${secs}s"
  echo "$line" >> "$results"
  say "$line"
  grep -q '^failures:' "$log" && grep -A30 '^failures:$' "$log" | head -60 >&2 || true
done
echo "python-matrix: results ($results):"
cat "$results"
exit $status
