# mod_wsgi_rs: build, install, package, run and test.
#   make                 release build of the module (checks the build needs, installs nothing)
#   make install         apxs-style install (honours DESTDIR and APXS)
#   make -s module-path  absolute path of the built module
#   make deb             Debian package libapache2-mod-wsgi-rs_<version>_<arch>.deb in target/debian/
#   make run             mod_wsgi_rs-express from the source tree: a private Apache
#                        on 127.0.0.1:$(PORT) serving $(APP) in daemon mode
#   make test            unit tests + integration tests against real Apache
#   make test-httpd-layout  build Apache like the official httpd:2.4 image (cached
#                        under target/), install the module into it, serve in daemon mode
#   make python-matrix   build and test the module against CPython 3.10-3.13 and
#                        free-threaded 3.13t (PYTHON_VERSIONS=, MATRIX_TESTS=;
#                        docs/python-versions.md)
#   make bench           benchmark against C mod_wsgi (bench/results/)
#   make soak            the long reliability drills (docs/reliability.md)
#   make fuzz            fuzz the daemon protocol for FUZZ_SECONDS (default 60)
# run, test, bench, soak and fuzz first apt-install what they need (`make deps`).
# APXS=/path/to/apxs builds for another Apache; its binary and modules
# directory come from that apxs (APACHE= and APACHE_MODULES_DIR= override).

PYTHON ?= /usr/bin/python3
APXS ?= $(shell command -v apxs 2>/dev/null || echo /usr/bin/apxs)
PORT ?= 8000
APP ?= $(CURDIR)/conf-examples/hello.wsgi
CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
MODULE := $(CARGO_TARGET_DIR)/release/libmod_wsgi_rs.so

# The Apache the module is built for. Empty when apxs does not run
# (tests/common and scripts/run.sh then use Debian's paths).
APACHE ?= $(shell d=$$($(APXS) -q SBINDIR 2>/dev/null) && t=$$($(APXS) -q TARGET 2>/dev/null) && echo "$$d/$$t")
APACHE_MODULES_DIR ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null)

export PYO3_PYTHON := $(PYTHON)
# Passed on only when given, so that `make` and a plain `cargo build` (whose
# build.rs asks `apxs` on PATH) agree and do not rebuild each other's module.
ifneq ($(origin APXS),file)
export APXS
endif
export CARGO_TARGET_DIR
export MOD_WSGI_RS_APACHE := $(APACHE)
export MOD_WSGI_RS_MODULES_DIR := $(APACHE_MODULES_DIR)

# Debian packages: what building needs (checked by `make`, never installed
# by it) and what running the tests and the benchmark needs besides.
BUILD_PACKAGES := apache2-dev python3-dev libclang-dev gcc
TEST_PACKAGES := apache2 python3-venv curl libapache2-mod-wsgi-py3 python3-cryptography iproute2 dpkg-dev

# cargo-deb for `make deb`, installed once into the target dir.
CARGO_DEB_VERSION := 3.8.0
CARGO_DEB := $(CARGO_TARGET_DIR)/tools/bin/cargo-deb

.PHONY: all build check-build-deps deps module-path install deb package-deb run test test-httpd-layout python-matrix unit-test integration-test clean bench soak fuzz

all: build

# For run, test, bench, soak and fuzz: installs what is missing of both
# lists, and only that.
deps:
	@missing=""; \
	for p in $(BUILD_PACKAGES) $(TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

check-build-deps:
	@CARGO="$(CARGO)" PYTHON="$(PYTHON)" scripts/check-build-deps.sh

build: check-build-deps
	$(CARGO) build --release

$(MODULE): build

module-path:
	@echo $(MODULE)

install: build
	@libexec=$$($(APXS) -q LIBEXECDIR); sysconf=$$($(APXS) -q SYSCONFDIR); \
	install -d "$(DESTDIR)$$libexec" && \
	install -m 0644 $(MODULE) "$(DESTDIR)$$libexec/mod_wsgi_rs.so" && \
	echo "installed $(DESTDIR)$$libexec/mod_wsgi_rs.so"; \
	if [ -d "$$sysconf/mods-available" ]; then \
	  install -d "$(DESTDIR)$$sysconf/mods-available" && \
	  scripts/wsgi_rs-load.sh "$$libexec" > "$(DESTDIR)$$sysconf/mods-available/wsgi_rs.load" && \
	  echo "installed $(DESTDIR)$$sysconf/mods-available/wsgi_rs.load (enable with: a2enmod wsgi_rs)"; \
	fi

# The .deb is for Debian's apache2: its file list (Cargo.toml,
# [package.metadata.deb]) puts the module in Debian's modules directory,
# which must be what apxs says. package-deb packs the module already built
# (tests/packaging.rs runs it so that a test never rebuilds the module).
DEB_DIR ?= $(CARGO_TARGET_DIR)/debian

deb: build
	@$(MAKE) --no-print-directory package-deb

package-deb:
	@libexec=$$($(APXS) -q LIBEXECDIR); \
	if [ "$$libexec" != /usr/lib/apache2/modules ]; then \
	  echo "make deb packages for Debian's apache2 (modules in /usr/lib/apache2/modules); $(APXS) says $$libexec: use make install there" >&2; \
	  exit 1; \
	fi; \
	[ -f "$(MODULE)" ] || { echo "$(MODULE) is not built: make deb builds it" >&2; exit 1; }; \
	mkdir -p "$(CARGO_TARGET_DIR)/deb" && scripts/wsgi_rs-load.sh "$$libexec" > "$(CARGO_TARGET_DIR)/deb/wsgi_rs.load"
	@[ -x "$(CARGO_DEB)" ] && "$(CARGO_DEB)" --version | grep -qx "cargo-deb $(CARGO_DEB_VERSION)" || \
	  $(CARGO) install cargo-deb --version $(CARGO_DEB_VERSION) --locked --root "$(CARGO_TARGET_DIR)/tools"
	"$(CARGO_DEB)" --no-build --strip --quiet --output "$(DEB_DIR)"

run: deps
	@$(MAKE) --no-print-directory build
	@APACHE="$(APACHE)" APACHE_MODULES_DIR="$(APACHE_MODULES_DIR)" PYTHON="$(PYTHON)" \
	  scripts/run.sh "$(MODULE)" "$(PORT)" "$(APP)" "$(CARGO_TARGET_DIR)/run"

# Side by side with C mod_wsgi (bench/NOTES.md); BENCH_QUICK=1 for a smoke run.
bench: deps
	@$(MAKE) --no-print-directory build
	/usr/bin/python3 bench/run.py --module "$(MODULE)" --bench-dir "$(CARGO_TARGET_DIR)/bench"

# The protocol fuzz target (fuzz/fuzz_targets/decode.rs) under cargo-fuzz on
# the FUZZ_TOOLCHAIN toolchain, for FUZZ_SECONDS. The corpus is kept in
# $(FUZZ_CORPUS): seeds rewritten first by a unit test (a valid frame of every
# kind), then the inputs of this run that add coverage, up to FUZZ_MAX_LEN
# bytes each. A finding (a panic, a broken invariant, one allocation over
# 64 MiB) stops the target, its input in fuzz/artifacts/decode/.
FUZZ_SECONDS ?= 60
FUZZ_TOOLCHAIN ?= nightly
FUZZ_MAX_LEN ?= 4096
FUZZ_CORPUS := fuzz/corpus/decode
FUZZ := $(CARGO) +$(FUZZ_TOOLCHAIN) fuzz

fuzz: deps
	@$(CARGO) +$(FUZZ_TOOLCHAIN) --version >/dev/null 2>&1 || { echo "the $(FUZZ_TOOLCHAIN) toolchain is missing: rustup toolchain install $(FUZZ_TOOLCHAIN)"; exit 1; }
	@$(FUZZ) --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	MOD_WSGI_RS_WRITE_FUZZ_SEEDS=1 $(CARGO) test --release --lib -q fuzz_corpus_seeds
	@new=$$(mktemp -d) && trap 'rm -rf "$$new"' EXIT && \
	$(FUZZ) run --target-dir $(CURDIR)/fuzz/target decode "$$new" $(FUZZ_CORPUS) -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -malloc_limit_mb=64 && \
	$(FUZZ) run --target-dir $(CURDIR)/fuzz/target decode $(FUZZ_CORPUS) "$$new" -- \
	  -merge=1 -max_len=$(FUZZ_MAX_LEN) && \
	echo "corpus: $$(ls $(FUZZ_CORPUS) | wc -l) inputs in $(FUZZ_CORPUS)"

unit-test: deps
	$(CARGO) test --release --lib

integration-test: deps
	@$(MAKE) --no-print-directory build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release --tests

test: deps
	@$(MAKE) --no-print-directory build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release --no-fail-fast

# Apache built as the official httpd:2.4 image builds it (cached under
# $(CARGO_TARGET_DIR)/httpd-layout), the module built against it and
# installed with its apxs, a request served in daemon mode under event and
# prefork (scripts/test-httpd-layout.sh).
test-httpd-layout: deps
	CARGO="$(CARGO)" PYTHON="$(PYTHON)" scripts/test-httpd-layout.sh "$(CARGO_TARGET_DIR)/httpd-layout"

# The module built against each CPython of PYTHON_VERSIONS (readable copies
# of pyenv's builds, each with its own cargo target dir, all under
# $(CARGO_TARGET_DIR)/python-matrix) and the embedded- and daemon-mode test
# files of MATRIX_TESTS run against each (scripts/python-matrix.sh). 3.13t is
# CPython 3.13 built with --disable-gil from Debian's source package.
PYTHON_VERSIONS ?= 3.10 3.11 3.12 3.13 3.13t
MATRIX_TESTS ?= embedded_basic embedded_python daemon_mode interpreters frameworks free_threading

python-matrix: deps
	TESTS="$(MATRIX_TESTS)" CARGO="$(CARGO)" scripts/python-matrix.sh "$(CARGO_TARGET_DIR)/python-matrix" $(PYTHON_VERSIONS)

# The long drills (minutes each), kept out of `make test`.
soak: deps
	@$(MAKE) --no-print-directory build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release --test reliability -- --ignored --test-threads=1 --nocapture

clean:
	$(CARGO) clean
