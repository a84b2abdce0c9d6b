#!/bin/sh
# `make test-httpd-layout CACHE`: the official httpd:2.4 image's layout.
#
# 1. Apache from Debian's apache2 source package (its upstream tarball, as
#    the image builds upstream httpd), configured with the image's line:
#    --enable-mods-shared=reallyall --enable-mpms-shared=all --enable-pie and
#    Debian's hardening flags, User/Group www-data as the image sets them.
#    Built once and kept in CACHE (a stamp names the source and the line).
#    The prefix is CACHE/usr/local/apache2, not /usr/local/apache2, so that
#    the machine is not changed: the tree under the prefix (bin/httpd,
#    bin/apxs, modules/, conf/httpd.conf, include/, build/) is the image's,
#    and its apxs answers with real paths, which an install into DESTDIR
#    would not give.
# 2. `make install APXS=<that apxs>` (separate cargo target dir): the module
#    built against that server's headers, installed into its modules/.
# 3. Under event and prefork: that httpd with its own conf/httpd.conf (a
#    copy, on a private port) plus a daemon process group, a request through
#    it, the module seen in the server's memory, and a graceful stop
#    (SIGWINCH, the image's STOPSIGNAL) that leaves no process.
# 4. tests/daemon_mode.rs with that httpd, its modules and that module.
#
# The source: $HTTPD_SRC, else an unpacked tree in $APSRC (/tmp/apsrc) or
# CACHE/fetch, else fetched
# with `apt-get source` into CACHE from deb-src twins of this machine's apt
# sources (a clean CI machine; scripts/deb-source.sh).
set -eu
cache=$(mkdir -p "$1" && cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=$cache/usr/local/apache2
started=$(date +%s)

say() { echo "test-httpd-layout: $*"; }
fail() { echo "test-httpd-layout: FAILED: $*" >&2; exit 1; }

# What the image installs to build httpd (Debian names).
packages="gcc make dpkg-dev libapr1-dev libaprutil1-dev libpcre2-dev libssl-dev libxml2-dev
  libbrotli-dev zlib1g-dev libnghttp2-dev libcurl4-openssl-dev libjansson-dev liblua5.4-dev"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# ------------------------------------------------------------ the source
fetch_source() {
  "$repo/scripts/deb-source.sh" "$cache" apache2 >/dev/null || fail "apt-get source apache2"
  tar -xzf "$cache"/fetch/apache2_*.orig.tar.gz -C "$cache/fetch"
}

if [ -n "${HTTPD_SRC:-}" ]; then
  src=$HTTPD_SRC
else
  src=$(ls -d "${APSRC:-/tmp/apsrc}"/httpd-2.4.* "$cache"/fetch/httpd-2.4.* 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$src" ]; then
    say "fetching Debian's apache2 source package"
    fetch_source
    src=$(ls -d "$cache"/fetch/httpd-2.4.* | sort -V | tail -n 1)
  fi
fi
[ -f "$src/include/ap_release.h" ] || fail "no httpd source in $src"

# ------------------------------------------------------ Apache, cached
arch=$(dpkg-architecture --query DEB_BUILD_GNU_TYPE)
cflags="-pipe $(dpkg-buildflags --get CFLAGS)"
cppflags=$(dpkg-buildflags --get CPPFLAGS)
ldflags="-Wl,--as-needed $(dpkg-buildflags --get LDFLAGS)"
line="--build=$arch --prefix=$prefix --enable-mods-shared=reallyall --enable-mpms-shared=all --enable-pie"
stamp="$(basename "$src") $line $cflags $cppflags $ldflags"
if [ -x "$prefix/bin/httpd" ] && [ "$(cat "$cache/httpd.stamp" 2>/dev/null)" = "$stamp" ]; then
  say "Apache cached in $prefix"
else
  say "building $(basename "$src") into $prefix"
  t0=$(date +%s)
  rm -rf "$cache/build" "$prefix" "$cache/httpd.stamp"
  mkdir -p "$cache/build"
  cp -a "$src/." "$cache/build/"
  # shellcheck disable=SC2086
  (cd "$cache/build" &&
    ./configure $line CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags" >configure.log 2>&1 &&
    make -j "$(nproc)" >make.log 2>&1 &&
    make install >install.log 2>&1) || fail "building Apache: see the logs in $cache/build"
  sed -ri \
    -e 's!^(\s*User)\s+daemon\s*$!\1 www-data!' \
    -e 's!^(\s*Group)\s+daemon\s*$!\1 www-data!' \
    "$prefix/conf/httpd.conf"
  rm -rf "$cache/build"
  echo "$stamp" > "$cache/httpd.stamp"
  say "Apache built in $(($(date +%s) - t0)) s"
fi
"$prefix/bin/httpd" -v | head -n 1

# ------------------------------------------- the module, with that apxs
t0=$(date +%s)
rm -f "$prefix/modules/mod_wsgi_rs.so"
make -s -C "$repo" install APXS="$prefix/bin/apxs" CARGO_TARGET_DIR="$cache/cargo" \
  || fail "make install APXS=$prefix/bin/apxs"
[ -f "$prefix/modules/mod_wsgi_rs.so" ] || fail "mod_wsgi_rs.so not in $prefix/modules"
say "module built and installed in $(($(date +%s) - t0)) s"

# ---------------------------------- a request in daemon mode per MPM
run=$(mktemp -d /tmp/mwrs-httpd-layout-XXXXXX)
pid=""
# httpd runs in its own process group (setsid): everything it starts is
# in that group, found and, on a failure, killed by it.
group_left() { ps -o pid= -g "$1" 2>/dev/null || true; }
cleanup() {
  [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
chmod 0755 "$run"
cat > "$run/hello.wsgi" <<'EOF'
def application(environ, start_response):
    body = "group=%s mpm=%s\n" % (environ["mod_wsgi.process_group"], environ["MPM"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
EOF
chmod 0644 "$run/hello.wsgi"

for mpm in event prefork; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  conf=$run/httpd-$mpm.conf
  mkdir -p "$run/$mpm"
  # The image's own httpd.conf, as users extend it: its Listen moved to a
  # private port, the MPM chosen, logs and run files kept in $run.
  sed -e "s!^Listen .*!Listen 127.0.0.1:$port!" \
    -e 's!^\(LoadModule mpm_.*\)!#\1!' \
    -e "s!^ErrorLog .*!ErrorLog $run/$mpm/error.log!" \
    -e "s!^\(\s*\)CustomLog .*!\1CustomLog $run/$mpm/access.log common!" \
    "$prefix/conf/httpd.conf" > "$conf"
  cat >> "$conf" <<EOF
LoadModule mpm_${mpm}_module modules/mod_mpm_$mpm.so
PidFile $run/$mpm/httpd.pid
DefaultRuntimeDir $run/$mpm
ServerName 127.0.0.1
LoadModule wsgi_module modules/mod_wsgi_rs.so
WSGIDaemonProcess layout processes=1 threads=2
SetEnv MPM $mpm
WSGIScriptAlias /hello $run/hello.wsgi process-group=layout
<Directory $run>
    Require all granted
</Directory>
EOF
  "$prefix/bin/httpd" -d "$prefix" -f "$conf" -t >"$run/$mpm/configtest.log" 2>&1 \
    || fail "$mpm: httpd -t: $(cat "$run/$mpm/configtest.log")"
  setsid "$prefix/bin/httpd" -d "$prefix" -f "$conf" -DFOREGROUND &
  pid=$!
  body=""
  i=0
  while [ $i -lt 150 ]; do
    body=$(curl -sf "http://127.0.0.1:$port/hello" 2>/dev/null) && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
    i=$((i + 1))
  done
  log=$(cat "$run/$mpm/error.log" 2>/dev/null || true)
  [ "$body" = "group=layout mpm=$mpm" ] || fail "$mpm: GET /hello answered '$body'; error.log:
$log"
  grep -q "$prefix/modules/mod_wsgi_rs.so" "/proc/$pid/maps" || fail "$mpm: httpd has not loaded $prefix/modules/mod_wsgi_rs.so"
  grep -q "mod_wsgi_rs/.* configured -- resuming normal operations" "$run/$mpm/error.log" || fail "$mpm: no mod_wsgi_rs in the start line: $log"
  # Graceful stop, as `docker stop` sends it to the image (STOPSIGNAL SIGWINCH).
  kill -WINCH "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && fail "$mpm: httpd still running 30 s after SIGWINCH"
  wait "$pid" || true
  i=0
  while [ -n "$(group_left "$pid")" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  left=$(group_left "$pid")
  [ -z "$left" ] || fail "$mpm: processes left after the stop: $left"
  pid=""
  say "$mpm: served '$body' in daemon mode, stopped cleanly"
done

# ------------------------- the daemon-mode tests against that Apache
t0=$(date +%s)
(cd "$repo" && MOD_WSGI_RS_APACHE="$prefix/bin/httpd" MOD_WSGI_RS_MODULES_DIR="$prefix/modules" \
  MOD_WSGI_RS_SO="$cache/cargo/release/libmod_wsgi_rs.so" APXS="$prefix/bin/apxs" \
  CARGO_TARGET_DIR="$cache/cargo" "${CARGO:-cargo}" test --release -q --test daemon_mode) \
  || fail "tests/daemon_mode.rs against $prefix/bin/httpd"
say "tests/daemon_mode.rs passed against $prefix/bin/httpd in $(($(date +%s) - t0)) s"

say "passed in $(($(date +%s) - started)) s"
