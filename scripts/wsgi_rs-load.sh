#!/bin/sh
# Prints mods-available/wsgi_rs.load for Debian's a2enmod, the module in
# the modules directory $1 (`make install` and `make deb` write it).
# C mod_wsgi is `wsgi_module` too: the Conflicts line makes a2enmod refuse
# to enable wsgi_rs while C mod_wsgi's `wsgi` is enabled.
set -eu
printf '# Conflicts: wsgi\nLoadModule wsgi_module %s/mod_wsgi_rs.so\n' "$1"
