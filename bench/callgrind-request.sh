#!/bin/bash
# Instructions per request of one module, counted by callgrind (repeatable,
# whatever else the machine does): Apache serves the bench app from
# bench/apps, keep-alive requests from one client; N1 requests warm it up,
# then every process's counters are zeroed (callgrind_control) and the
# next N2 requests are counted, so start-up, warm-up and shut-down stay out.
#
#   bench/callgrind-request.sh MODULE [PATH] [APP] [N1] [N2]
#   MODULE  our target/release/libmod_wsgi_rs.so, or C mod_wsgi's .so
#   PATH    /hello (default), /64k, /api (APP flask) ...
#   APP     bench (default: bench/apps/bench.wsgi), flask or django (/page;
#           both need target/bench/apps-venv, which `make bench` installs)
#
# MODE=embedded (default): Apache -X, one process. MODE=daemon: the
# application in a daemon process (processes=1 threads=2), Apache as usual
# (parent, one child, the daemon); the count is the sum over all of them.
#
# KEEP=DIR keeps there the counters as read and a callgrind dump of each
# process taken right after them (for callgrind_annotate).
#
# Runs as www-data (valgrind's output must stay writable after Apache
# would have switched users); needs valgrind and curl.
set -euo pipefail
module=$(readlink -f "$1"); path=${2:-/hello}; app=${3:-bench}
n1=${4:-200}; n2=${5:-1200}; mode=${MODE:-embedded}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/callgrind-request.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
modules=$(apxs -q LIBEXECDIR)
case $app in
    flask) script=flask_app.py; home="WSGIPythonHome $here/../target/bench/apps-venv" ;;
    django) script=django_app.py; home="WSGIPythonHome $here/../target/bench/apps-venv" ;;
    *) script=bench.wsgi; home="" ;;
esac
case $mode in
    embedded) one_process=-X; group="" ;;
    daemon) one_process=""; group="WSGIDaemonProcess bench processes=1 threads=2
WSGIProcessGroup bench" ;;
    *) echo "MODE is embedded or daemon, not '$mode'" >&2; exit 2 ;;
esac

run() {
    local n=$1 root=$work/$1 port=$((20000 + RANDOM % 20000))
    mkdir -p "$root/run" "$root/logs" "$root/site"
    cp "$here/apps/bench.wsgi" "$here/apps/flask_app.py" "$here/apps/django_app.py" "$root/site/"
    if [ "$app" = django ]; then
        cp -r "$here/apps/benchsite" "$root/site/"
        /usr/bin/python3 -c "import sys; sys.path.insert(0, '$here'); import run; run.make_database('$root/site/bench.sqlite3')"
    fi
    head -c 1048576 /dev/zero > "$root/site/file"
    cat > "$root/httpd.conf" <<CONF
ServerRoot "$root"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$root/run/httpd.pid"
DefaultRuntimeDir "$root/run"
Mutex file:$root/run default
ErrorLog "$root/logs/error.log"
LogLevel warn
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule mime_module $modules/mod_mime.so
LoadModule alias_module $modules/mod_alias.so
TypesConfig /etc/mime.types
LoadModule mpm_event_module $modules/mod_mpm_event.so
StartServers 1
ServerLimit 1
ThreadsPerChild 4
ThreadLimit 4
MaxRequestWorkers 4
KeepAlive On
MaxKeepAliveRequests 0
DocumentRoot "$root/site"
<Directory "$root/site">
    Require all granted
</Directory>
LoadModule wsgi_module $module
WSGISocketPrefix "$root/run/wsgi"
WSGIApplicationGroup %{GLOBAL}
$home
$group
WSGIScriptAlias / "$root/site/$script"
CONF
    chown -R www-data "$root"
    runuser -u www-data -- valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$root/run/callgrind.%p.out" \
        /usr/sbin/apache2 $one_process -DFOREGROUND -f "$root/httpd.conf" > "$root/valgrind.log" 2>&1 &
    local pid=$!
    for _ in $(seq 120); do
        curl -s -o /dev/null "http://127.0.0.1:$port$path" && break
        sleep 1
    done
    send() {
        /usr/bin/python3 - "$port" "$path" "$1" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for _ in range(int(sys.argv[3])):
    c.request("GET", sys.argv[2]); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
    }
    # Warm up, zero every process's counters, serve, read the counters:
    # start-up, warm-up and shut-down stay out of the count.
    send "$n1"
    local pids
    pids=$(pgrep -f "$root/httpd.conf" | grep -vx "$pid" | tr "\n" " ")
    # shellcheck disable=SC2086
    runuser -u www-data -- callgrind_control -z $pids > /dev/null
    send "$n2"
    # shellcheck disable=SC2086
    runuser -u www-data -- callgrind_control -e Ir $pids > "$root/counters.txt"
    if [ -n "${KEEP:-}" ]; then
        # shellcheck disable=SC2086
        runuser -u www-data -- callgrind_control --dump=measured $pids > /dev/null
        mkdir -p "$KEEP" && cp "$root/counters.txt" "$root"/run/callgrind.* "$KEEP/"
    fi
    kill -TERM "$pid"; wait "$pid" || true
    # A "Th N  1,234" row per thread of each process.
    awk '$1 == "Th" {gsub(",", "", $3); s += $3} END {print s + 0}' "$root/counters.txt"
}

total=$(run x)
echo "$(basename "$module") $path ($mode): $(( total / n2 )) instructions per request ($n2 requests after $n1 to warm up: $total)"
