# mod_wsgi_rs: build, install, run and test against the installed Apache.
#   make                 release build of the module
#   make run             private Apache on 127.0.0.1:$(PORT) serving $(APP)
#   make test            unit tests + integration tests against real Apache
#   make install         apxs-style install (honours DESTDIR and APXS)
#   make -s module-path  absolute path of the built module
#   make bench           benchmark against C mod_wsgi (bench/results/)
#   make soak            the long reliability drills (docs/reliability.md)
#   make fuzz            fuzz the daemon protocol for FUZZ_SECONDS (default 60)

PYTHON ?= /usr/bin/python3
APXS ?= $(shell command -v apxs 2>/dev/null || echo /usr/bin/apxs)
PORT ?= 8000
APP ?= $(CURDIR)/conf-examples/hello.wsgi
CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
MODULE := $(CARGO_TARGET_DIR)/release/libmod_wsgi_rs.so

export PYO3_PYTHON := $(PYTHON)
export APXS
export CARGO_TARGET_DIR

# Debian packages the build and the tests need.
DEB_PACKAGES := apache2 apache2-dev python3-dev python3-venv libclang-dev curl libapache2-mod-wsgi-py3 python3-cryptography iproute2

.PHONY: all build deps module-path install run test unit-test integration-test clean bench soak fuzz

all: build

# Installs what is missing, and only that.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }

build: deps
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
	  echo "LoadModule wsgi_module $$libexec/mod_wsgi_rs.so" > "$(DESTDIR)$$sysconf/mods-available/wsgi_rs.load" && \
	  echo "installed $(DESTDIR)$$sysconf/mods-available/wsgi_rs.load (enable with: a2enmod wsgi_rs)"; \
	fi

run: build
	@scripts/run.sh "$(MODULE)" "$(PORT)" "$(APP)" "$(CARGO_TARGET_DIR)/run"

# Side by side with C mod_wsgi (bench/NOTES.md); BENCH_QUICK=1 for a smoke run.
bench: build
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

integration-test: build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release --tests

test: build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release

# The long drills (minutes each), kept out of `make test`.
soak: build
	MOD_WSGI_RS_SO=$(MODULE) $(CARGO) test --release --test reliability -- --ignored --test-threads=1 --nocapture

clean:
	$(CARGO) clean
