#!/bin/sh
# `make run`: mod_wsgi_rs-express, from the source tree, serving the example
# app with the module cargo built: a private Apache in the foreground, its
# server root under target/run; nothing is written to /etc. Ctrl-C stops
# Apache and all its processes.
# APACHE and APACHE_MODULES_DIR (the Makefile sets them from apxs) name the
# httpd binary and its modules directory; PYTHON is the Python the module
# was built against.
set -eu
module=$1 port=$2 app=$3 dir=$4
here=$(dirname "$(readlink -f "$0")")
apache=${APACHE:-/usr/sbin/apache2}
mods=${APACHE_MODULES_DIR:-/usr/lib/apache2/modules}

app=$(readlink -f "$app")
# Apache drops its children to www-data: the app must be readable by it.
chmod o+r "$app" 2>/dev/null || true

# The seed layout: three daemon processes of two threads each.
PYTHONPATH="$here/../python" MOD_WSGI_RS_MODULE="$module" exec "${PYTHON:-/usr/bin/python3}" \
  -m mod_wsgi_rs start-server "$app" \
  --host 127.0.0.1 --port "$port" --processes 3 --threads 2 \
  --working-directory "$(dirname "$app")" --server-root "$dir" --log-to-terminal \
  --httpd-executable "$apache" --modules-directory "$mods"
