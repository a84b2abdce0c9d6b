//! Cached virtualenvs for tests that need packages from PyPI.
//!
//! A virtualenv is made from the Python the module under test was built
//! against (`super::python`), once per machine, under the cargo target
//! directory (`$CARGO_TARGET_DIR/<name>`, default `target/<name>`; with
//! another Python than the system's, `<name>-py<version>`), or under /var/tmp
//! when the target directory is not reachable by Apache's user. A stamp file
//! (`<venv>/.complete`) records the interpreter and the requirement list: a
//! change of either rebuilds the virtualenv. Builds are serialized across
//! processes with flock(1) on `<name>.lock` beside it, since several test
//! binaries and `cargo test` runs may want one at the same time. The whole
//! tree is made a+rX: Apache's children (www-data) import from it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Python, for tests that use its packages as tools.
pub const PYTHON: &str = super::python::SYSTEM;

/// True if every directory from / down to `p` may be entered by anyone
/// (Apache's User must reach the virtualenv).
pub fn world_traversable(p: &Path) -> bool {
    p.ancestors().all(|a| {
        std::fs::metadata(a)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// Where the virtualenv called `name` (for the Python under test) lives.
pub fn venv_dir(name: &str) -> PathBuf {
    let name = &super::python::cache_name(name);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    if world_traversable(&target) {
        target.join(name)
    } else {
        PathBuf::from(format!("/var/tmp/mod_wsgi_rs-{name}"))
    }
}

/// Builds the virtualenv `name` with `pip install <requirements>` unless a
/// complete one for exactly these requirements is there; returns its path.
pub fn ensure_venv(name: &str, requirements: &[&str]) -> PathBuf {
    ensure_venv_with_env(name, requirements, &[])
}

/// `ensure_venv`, with `envs` set for pip (and what it builds); the stamp
/// records them too, so a change of one rebuilds the virtualenv.
pub fn ensure_venv_with_env(name: &str, requirements: &[&str], envs: &[(&str, &str)]) -> PathBuf {
    let venv = venv_dir(name);
    let parent = venv.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let python = super::python::interpreter();
    let mut stamp_text = format!("{python} {}", requirements.join(" "));
    for (key, value) in envs {
        stamp_text.push_str(&format!(" {key}={value}"));
    }
    let script = r#"
set -e
venv="$1"; stamp="$2"; python="$3"; shift 3
if [ -f "$venv/.complete" ] && [ "$(cat "$venv/.complete")" = "$stamp" ]; then exit 0; fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
chmod -R a+rX "$venv"
printf '%s' "$stamp" > "$venv/.complete"
"#;
    let mut lock = venv.clone().into_os_string();
    lock.push(".lock");
    let out = Command::new("flock")
        .arg(&lock)
        .args(["sh", "-c", script, "sh"])
        .arg(&venv)
        .arg(&stamp_text)
        .arg(python)
        .args(requirements)
        .envs(envs.iter().copied())
        .output()
        .expect("running flock sh (util-linux)");
    assert!(
        out.status.success(),
        "building the test virtualenv {} failed:\n{}\n{}",
        venv.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    venv
}

/// What the frameworks virtualenv holds; a change here rebuilds it.
pub const FRAMEWORKS: &[&str] = &["flask>=3,<4", "django>=4.2,<6"];

/// The cached virtualenv with Flask and Django (`target/test-venv`), shared
/// by tests/frameworks.rs and tests/examples.rs.
pub fn frameworks_venv() -> PathBuf {
    ensure_venv("test-venv", FRAMEWORKS)
}

/// What the ASGI virtualenv holds; a change here rebuilds it.
pub const ASGI: &[&str] = &["fastapi>=0.110,<1", "django>=4.2,<6", "uvloop"];

/// The cached virtualenv with FastAPI (and Starlette, pydantic), Django
/// and uvloop for tests/asgi.rs.
pub fn asgi_venv() -> PathBuf {
    ensure_venv("test-venv-asgi", ASGI)
}
