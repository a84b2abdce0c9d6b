#!/bin/sh
# `make run`: a private Apache in the foreground serving the example app
# through the seed configuration. Everything lives under target/run; nothing
# is written to /etc. Ctrl-C stops Apache and all its processes.
# APACHE and APACHE_MODULES_DIR (the Makefile sets them from apxs) name the
# httpd binary and its modules directory; Debian's are the default.
set -eu
module=$1 port=$2 app=$3 dir=$4

app=$(readlink -f "$app")
mkdir -p "$dir/run" "$dir/htdocs"
chmod 0755 "$dir" "$dir/run" "$dir/htdocs"
# Apache drops its children to www-data: the app must be readable by it.
chmod o+r "$app" 2>/dev/null || true

user_lines=""
if [ "$(id -u)" = 0 ]; then
  if command -v runuser >/dev/null && ! runuser -u www-data -- test -r "$app"; then
    echo "warning: www-data cannot read $app (check the permissions of its directories)" >&2
  fi
  user_lines="User www-data
Group www-data"
fi

apache=${APACHE:-/usr/sbin/apache2}
mods=${APACHE_MODULES_DIR:-/usr/lib/apache2/modules}
# The httpd image has no /etc/mime.types; the app's responses need none.
types=/etc/mime.types
[ -f "$types" ] || { types="$dir/mime.types"; : > "$types"; }
cat > "$dir/httpd.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/run/httpd.pid"
DefaultRuntimeDir "$dir/run"
Mutex file:$dir/run default
ErrorLog /dev/stderr
LogLevel warn wsgi:info
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
LoadModule alias_module $mods/mod_alias.so
TypesConfig "$types"
$user_lines
LoadModule wsgi_module $module
DocumentRoot "$dir/htdocs"
<Directory />
    Require all denied
</Directory>
<Directory "$(dirname "$app")">
    Require all granted
</Directory>

# The seed layout: three daemon processes of two threads each.
WSGIDaemonProcess mysite processes=3 threads=2 display-name=mod_wsgi
WSGIProcessGroup mysite
WSGIScriptAlias / "$app"
CONF

echo "mod_wsgi_rs: serving $app at http://127.0.0.1:$port/ (daemon mode: group 'mysite', 3 processes x 2 threads, shown as 'mod_wsgi' in ps; Ctrl-C stops)"
exec "$apache" -f "$dir/httpd.conf" -DFOREGROUND
