//! The Python the module under test was built against.
//!
//! `MOD_WSGI_RS_PYTHON` names its interpreter when that is not Debian's
//! `/usr/bin/python3` (`make python-matrix` sets it to a readable copy of
//! another CPython, with `MOD_WSGI_RS_SO` the module built against it).
//! The harness then makes every Apache use that Python's home
//! (`WSGIPythonHome`, which a test's own setting overrides), and the cached
//! virtualenvs are made from it, under names of their own.

use std::process::Command;
use std::sync::OnceLock;

/// Debian's Python: the default, and the one whose Debian packages
/// (python3-cryptography) some tests use as tools.
pub const SYSTEM: &str = "/usr/bin/python3";

/// The interpreter the module under test was built against.
pub fn interpreter() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var("MOD_WSGI_RS_PYTHON")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| SYSTEM.to_string())
    })
}

/// True when the module under test is built against another Python than
/// the system's.
pub fn is_other() -> bool {
    interpreter() != SYSTEM
}

/// `sys.base_prefix`, "major.minor" of [`interpreter`] and whether it is a
/// free-threaded build.
fn facts() -> &'static (String, String, bool) {
    static FACTS: OnceLock<(String, String, bool)> = OnceLock::new();
    FACTS.get_or_init(|| {
        let python = interpreter();
        let out = Command::new(python)
            .args([
                "-c",
                "import sys, sysconfig; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2]); \
                 print(1 if sysconfig.get_config_var('Py_GIL_DISABLED') else 0)",
            ])
            .output()
            .unwrap_or_else(|e| panic!("running {python}: {e}"));
        assert!(
            out.status.success(),
            "{python} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let home = lines.next().unwrap_or_default().to_string();
        let version = lines.next().unwrap_or_default().to_string();
        let free_threaded = lines.next() == Some("1");
        (home, version, free_threaded)
    })
}

/// `sys.base_prefix` of [`interpreter`]: where it finds its standard library.
pub fn home() -> &'static str {
    &facts().0
}

/// "3.13": what the banner says after `Python/`.
pub fn version() -> &'static str {
    &facts().1
}

/// Whether [`interpreter`] is a free-threaded build (PEP 703, 3.13t).
pub fn free_threaded() -> bool {
    facts().2
}

/// The `WSGIPythonHome` line every Apache of the harness gets when the
/// module is built against another Python: that Python's own prefix, since
/// the module's libpython would otherwise look for its standard library
/// where it was built (a pyenv build's prefix under /root, say).
pub fn home_directive() -> String {
    if is_other() {
        format!("WSGIPythonHome {}\n", home())
    } else {
        String::new()
    }
}

/// `name` for a cache built with [`interpreter`]: the name itself for the
/// system's Python (the caches it always had), `name-py3.13` for another,
/// so that versions do not take each other's caches.
pub fn cache_name(name: &str) -> String {
    if is_other() {
        format!("{name}-py{}", version())
    } else {
        name.to_string()
    }
}
