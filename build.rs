//! Generates the httpd/APR bindings from the headers of the Apache we will be
//! loaded into. Everything is asked of the installed server (`apxs`,
//! `apr-1-config`); nothing is hard-coded. `APXS=/path/to/apxs` points the build
//! at another httpd (e.g. the Docker image's /usr/local/apache2/bin/apxs).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the build with one line that says what to install.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    println!("cargo::error={message}");
    std::process::exit(1);
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn find_apr_config(apxs: &str) -> String {
    if let Ok(p) = env::var("APR_CONFIG") {
        return p;
    }
    // apxs knows the APR it was built with; fall back to the one on PATH.
    if let Some(bindir) = run(apxs, &["-q", "APR_BINDIR"]) {
        for name in ["apr-1-config", "apr-config"] {
            let p = Path::new(&bindir).join(name);
            if p.exists() {
                return p.to_string_lossy().into_owned();
            }
        }
    }
    "apr-1-config".to_string()
}

/// Splits a compiler flag string into the -I/-D flags clang needs.
fn clang_flags(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|f| f.starts_with("-I") || f.starts_with("-D"))
        .map(str::to_string)
        .collect()
}

/// What build.rs needs to know of the Python the module is built against.
struct PythonFacts {
    /// "3.13": the banner's `Python/3.13`.
    version: String,
    /// The directory the module must find libpython in at load time, when
    /// the loader's own search would not: a Python outside the system's
    /// library path (pyenv, /opt, a relocated copy) or beside another
    /// libpython of the same name.
    runpath: Option<String>,
    /// A free-threaded build (PEP 703, configured with `--disable-gil`).
    free_threaded: bool,
}

/// Asks the interpreter for its version, headers and shared library.
/// Its library is looked for where the interpreter lives now
/// (`sys.base_prefix`, so a venv's base): a relocated Python (a copy, a
/// standalone build) still names its build-time LIBDIR in sysconfig.
const PYTHON_PROBE: &str = r#"
import os, sys, sysconfig
var = sysconfig.get_config_var
print("%d.%d" % sys.version_info[:2])
print(sysconfig.get_paths()["include"])
soname = var("INSTSONAME") or ""
libdir = ""
if var("Py_ENABLE_SHARED") and soname:
    built = var("LIBDIR") or ""
    here = [d for d in [built] if d.startswith(sys.base_prefix + os.sep)]
    moved = [os.path.join(sys.base_prefix, d) for d in ("lib", "lib64")]
    for d in here + moved + [built]:
        if d and os.path.isfile(os.path.join(d, soname)):
            libdir = d
            break
print(soname)
print(libdir)
print(1 if var("Py_GIL_DISABLED") else 0)
"#;

fn check_python() -> PythonFacts {
    let python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let Some(out) = run(&python, &["-c", PYTHON_PROBE]) else {
        fail(&format!(
            "cannot run the Python interpreter {python}: install python3 (apt-get install python3-dev) or set PYTHON="
        ));
    };
    let mut lines = out.lines().map(str::trim);
    let version = lines.next().unwrap_or("").to_string();
    let include = lines.next().unwrap_or("");
    let soname = lines.next().unwrap_or("");
    let libdir = lines.next().unwrap_or("");
    let free_threaded = lines.next() == Some("1");
    if !Path::new(include).join("Python.h").exists() {
        fail(&format!(
            "Python.h not found in {include}: apt-get install python3-dev"
        ));
    }
    let runpath = (!libdir.is_empty() && !loader_finds(soname, libdir)).then(|| libdir.to_string());
    PythonFacts {
        version,
        runpath,
        free_threaded,
    }
}

/// True if the dynamic loader, with no RUNPATH, loads `soname` from `libdir`
/// (the system's Python: no RUNPATH, which Debian's packaging rules frown on).
/// Asks the loader's cache (`ldconfig -p`); when that cannot be read the
/// answer is no, and the module gets a RUNPATH it may not have needed.
fn loader_finds(soname: &str, libdir: &str) -> bool {
    let Some(cache) = ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .find_map(|ldconfig| run(ldconfig, &["-p"]))
    else {
        return false;
    };
    let wanted = std::fs::canonicalize(libdir).ok();
    cache
        .lines()
        .filter(|line| line.trim_start().starts_with(&format!("{soname} (")))
        .filter_map(|line| line.split("=> ").nth(1))
        .map(|found| Path::new(found.trim()).parent().map(std::fs::canonicalize))
        .any(|dir| matches!((dir, &wanted), (Some(Ok(d)), Some(w)) if &d == w))
}

fn main() {
    println!("cargo::rerun-if-changed=apache-headers/wrapper.h");
    println!("cargo::rerun-if-env-changed=APXS");
    println!("cargo::rerun-if-env-changed=APR_CONFIG");
    println!("cargo::rerun-if-env-changed=PYO3_PYTHON");

    let python = check_python();
    println!("cargo::rustc-env=MWRS_PYTHON_VERSION={}", python.version);
    // The name pyo3 gives the same fact: code for a free-threaded build.
    println!("cargo::rustc-check-cfg=cfg(Py_GIL_DISABLED)");
    if python.free_threaded {
        println!("cargo::rustc-cfg=Py_GIL_DISABLED");
    }
    if let Some(libdir) = &python.runpath {
        // The module (and this package's test binaries, which link
        // libpython too) find libpython there; linked against it as well.
        println!("cargo::rustc-link-search=native={libdir}");
        println!("cargo::rustc-link-arg=-Wl,-rpath,{libdir}");
    }

    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".into());
    // `apxs -q A B C` joins the values with ";;".
    let Some(apxs_out) = run(&apxs, &["-q", "INCLUDEDIR", "CFLAGS", "EXTRA_CPPFLAGS"]) else {
        fail(&format!(
            "`{apxs} -q INCLUDEDIR` failed: apt-get install apache2-dev (or set APXS=/path/to/apxs)"
        ));
    };
    let mut parts = apxs_out.split(";;");
    let includedir = parts.next().unwrap_or("").trim().to_string();
    if !Path::new(&includedir).join("httpd.h").exists() {
        fail(&format!(
            "httpd.h not found in {includedir}: apt-get install apache2-dev"
        ));
    }
    let mut flags = vec![format!("-I{includedir}")];
    for rest in parts {
        flags.extend(clang_flags(rest));
    }
    let apr_config = find_apr_config(&apxs);
    let Some(apr_out) = run(&apr_config, &["--includes", "--cppflags"]) else {
        fail(&format!(
            "`{apr_config} --includes` failed: apt-get install libapr1-dev (comes with apache2-dev)"
        ));
    };
    flags.extend(clang_flags(&apr_out));

    let builder = bindgen::Builder::default()
        .header("apache-headers/wrapper.h")
        .clang_args(&flags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_var("MWRS_.*")
        .allowlist_var("AP_SERVER_BASEVERSION")
        .allowlist_type("request_rec|server_rec|conn_rec|cmd_parms|command_rec|module|process_rec")
        .allowlist_type("apr_table_entry_t|apr_array_header_t|ap_directive_t|apr_finfo_t")
        .allowlist_function("ap_hook_(post_config|child_init|child_stopping|pre_connection|translate_name|handler|check_config|pre_config|open_logs)")
        .allowlist_function("ap_log_error_|ap_log_rerror_|ap_add_version_component|ap_mpm_query")
        .allowlist_function("ap_add_common_vars|ap_add_cgi_vars|ap_rwrite|ap_rflush|ap_set_content_type")
        .allowlist_function("ap_setup_client_block|ap_should_client_block")
        .allowlist_function("ap_get_brigade|apr_brigade_flatten|apr_brigade_destroy|apr_strerror")
        .allowlist_function("ap_check_cmd_context|ap_get_server_description|ap_server_root_relative")
        .allowlist_function("ap_exists_config_define")
        .allowlist_function("ap_get_server_port|ap_get_server_name|ap_run_generate_log_id")
        .allowlist_function("apr_palloc|apr_pstrdup|apr_pstrmemdup|apr_pool_cleanup_register|apr_pool_cleanup_null")
        .allowlist_function("apr_pool_userdata_get|apr_pool_userdata_set|apr_pool_parent_get|ap_state_query")
        .allowlist_function("apr_proc_other_child_register|apr_proc_other_child_unregister")
        .allowlist_function("ap_close_listeners|ap_runtime_dir_relative")
        .allowlist_function("ap_hook_access_checker|ap_register_auth_provider|ap_get_useragent_host")
        .allowlist_type("authn_provider|authz_provider|authn_status|authz_status")
        .allowlist_var("AUTHN_PROVIDER_GROUP|AUTHZ_PROVIDER_GROUP|AUTHN_PROVIDER_VERSION|AUTHZ_PROVIDER_VERSION")
        .allowlist_var("ap_unixd_config|apr_bucket_type_eos")
        .allowlist_type("apr_proc_t|unixd_config_rec")
        .allowlist_function("apr_table_get|apr_table_set|apr_table_setn|apr_table_add|apr_table_addn|apr_table_unset")
        .allowlist_function("apr_os_file_put|apr_brigade_create|apr_brigade_insert_file|apr_bucket_file_enable_mmap|apr_bucket_file_set_buf_size")
        .allowlist_function("ap_pass_brigade|ap_get_core_module_config")
        .allowlist_function("ap_bucket_error_create|apr_bucket_eos_create|apr_bucket_flush_create")
        .allowlist_function("ap_internal_redirect_handler|ap_discard_request_body")
        .allowlist_function("ap_get_server_banner|ap_get_server_name_for_url|ap_document_root|ap_run_http_scheme")
        .allowlist_function("ap_context_prefix|ap_context_document_root|ap_find_path_info|apr_hash_get|apr_uri_unparse")
        .allowlist_type("core_dir_config")
        .allowlist_function("ap_regcomp|ap_regexec_len|ap_regfree|ap_regerror|ap_walk_config")
        .allowlist_function("ap_allow_options")
        .allowlist_type("ap_regex_t|ap_regmatch_t")
        .allowlist_function("ap_exists_scoreboard_image|ap_get_scoreboard_global|ap_get_scoreboard_process")
        .allowlist_function("ap_get_scoreboard_worker_from_indexes|ap_hook_pre_mpm")
        .allowlist_type("global_score|process_score|worker_score")
        .allowlist_function("ap_show_mpm|ap_get_server_built")
        .allowlist_function("ap_send_interim_response|ap_get_conn_socket|apr_os_sock_get|apr_bucket_transient_create|apr_brigade_cleanup")
        .allowlist_function("ap_remove_input_filter_byhandle|ap_remove_output_filter_byhandle")
        .derive_debug(false)
        .derive_default(false)
        .layout_tests(false)
        .generate_comments(false);

    // bindgen panics when it cannot load libclang; turn that into the one-line fix.
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(&format!(
            "bindgen could not read the Apache headers ({e}): apt-get install apache2-dev"
        )),
        Err(_) => fail("bindgen could not load libclang: apt-get install libclang-dev"),
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("apache_bindings.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
}
