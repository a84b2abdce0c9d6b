"""Builds the Apache module with cargo and installs it inside the package.

The module is a cdylib that Apache loads with LoadModule, not a Python
extension: Python never imports it. So no Rust-extension backend is used
(setuptools-rust's NoBinding would still name it like an importable
extension, maturin wants pyo3 extension bindings or a binary); a build_py
step runs cargo and copies the library into the package, and the wheel is
marked platform specific.

Environment:
  APXS              the apxs of the Apache to build for (default: apxs on PATH,
                    then /usr/bin/apxs)
  CARGO             the cargo to run (default: cargo)
  CARGO_TARGET_DIR  where cargo builds (default: target/ in the source tree)
The module embeds the Python running this build (PYO3_PYTHON is set to it).
"""

import os
import re
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_FILE = "mod_wsgi_rs.so"
# What the installed package needs to know about the Apache it was built for.
APXS_VARIABLES = ("SBINDIR", "TARGET", "LIBEXECDIR", "SYSCONFDIR")


def cargo_version():
    with open(os.path.join(HERE, "Cargo.toml")) as f:
        return re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def find_apxs():
    apxs = os.environ.get("APXS") or shutil.which("apxs") or "/usr/bin/apxs"
    if not os.access(apxs, os.X_OK):
        sys.exit(
            "error: apxs not found (%s): install Apache's development files "
            "(Debian: apt-get install apache2-dev) or set APXS=/path/to/apxs" % apxs
        )
    return apxs


def query_apxs(apxs):
    values = {}
    for name in APXS_VARIABLES:
        out = subprocess.run([apxs, "-q", name], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit("error: %s -q %s failed: %s" % (apxs, name, out.stderr.strip()))
        values[name] = out.stdout.strip()
    return values


class BuildWithCargo(build_py):
    def run(self):
        super().run()
        apxs = find_apxs()
        target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "target")
        env = dict(os.environ, APXS=apxs, PYO3_PYTHON=sys.executable,
                   CARGO_TARGET_DIR=target_dir)
        cargo = os.environ.get("CARGO", "cargo")
        # build.rs records this Python's library directory in the module
        # (RUNPATH) when the loader would not find it by itself.
        command = [cargo, "build", "--release", "--lib",
                   "--manifest-path", os.path.join(HERE, "Cargo.toml")]
        print("building the module: %s (APXS=%s PYO3_PYTHON=%s)"
              % (" ".join(command), apxs, sys.executable), file=sys.stderr)
        try:
            subprocess.run(command, env=env, check=True)
        except FileNotFoundError:
            sys.exit("error: %s not found: install Rust (https://rustup.rs) "
                     "or set CARGO=/path/to/cargo" % cargo)
        except subprocess.CalledProcessError as e:
            sys.exit("error: cargo build failed (exit status %d)" % e.returncode)

        package_dir = os.path.join(self.build_lib, "mod_wsgi_rs")
        os.makedirs(package_dir, exist_ok=True)
        built = os.path.join(target_dir, "release", "libmod_wsgi_rs.so")
        shutil.copyfile(built, os.path.join(package_dir, MODULE_FILE))
        with open(os.path.join(package_dir, "apxs_config.py"), "w") as f:
            f.write("# Written by setup.py from %s at build time.\n" % apxs)
            f.write("APXS = %r\n" % apxs)
            for name, value in query_apxs(apxs).items():
                f.write("%s = %r\n" % (name, value))


class PlatformDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform and Python."""

    def has_ext_modules(self):
        return True


setup(
    version=cargo_version(),
    cmdclass={"build_py": BuildWithCargo},
    distclass=PlatformDistribution,
)
