#!/bin/sh
# `make`'s check of what building needs: a Rust toolchain, a C compiler,
# libclang (bindgen), the httpd and APR headers of the Apache to build
# against (its apxs) and the Python headers. It installs nothing: it names
# everything missing at once, with the Debian package that brings it.
# Environment: APXS, PYTHON, CARGO (the Makefile exports them).
set -u
apxs=${APXS:-apxs} python=${PYTHON:-/usr/bin/python3} cargo=${CARGO:-cargo}
missing=""
need() { missing="$missing
  - $1"; }

command -v "$cargo" >/dev/null 2>&1 || need "cargo (Rust): https://rustup.rs"
command -v "${CC:-cc}" >/dev/null 2>&1 || need "a C compiler: apt-get install gcc"

if includedir=$("$apxs" -q INCLUDEDIR 2>/dev/null) && [ -n "$includedir" ]; then
  [ -f "$includedir/httpd.h" ] || need "httpd.h in $includedir (apxs: $apxs): apt-get install apache2-dev"
  aprdir=$("$apxs" -q APR_BINDIR 2>/dev/null)
  if [ -x "${APR_CONFIG:-$aprdir/apr-1-config}" ]; then
    aprinc=$("${APR_CONFIG:-$aprdir/apr-1-config}" --includedir)
  elif command -v apr-1-config >/dev/null 2>&1; then
    aprinc=$(apr-1-config --includedir)
  else
    aprinc=""
  fi
  [ -n "$aprinc" ] && [ -f "$aprinc/apr.h" ] || need "the APR headers (apr-1-config, apr.h): apt-get install libapr1-dev libaprutil1-dev"
else
  need "apxs ($apxs does not run): apt-get install apache2-dev, or APXS=/path/to/apxs of the Apache to build for"
fi

if pyinc=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null); then
  [ -f "$pyinc/Python.h" ] || need "Python.h for $python in $pyinc: apt-get install python3-dev"
else
  need "Python ($python does not run): apt-get install python3-dev, or PYTHON=/path/to/python3"
fi

# clang-sys looks in LIBCLANG_PATH, then llvm-config's libdir, then the
# usual library directories.
found_clang=""
for dir in ${LIBCLANG_PATH:-} $(llvm-config --libdir 2>/dev/null) /usr/lib/llvm-*/lib /usr/lib/*-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
  for f in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.*; do
    [ -e "$f" ] && found_clang=$f && break 2
  done
done
[ -n "$found_clang" ] || need "libclang (for bindgen): apt-get install libclang-dev"

if [ -n "$missing" ]; then
  echo "cannot build mod_wsgi_rs, missing:$missing" >&2
  echo "(\`make test\` and \`make run\` install Debian's packages for these themselves)" >&2
  exit 1
fi
