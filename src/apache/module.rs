//! The module record Apache loads (`LoadModule wsgi_module ...`) and the
//! `extern "C"` trampolines behind it. Each trampoline turns raw pointers
//! into the safe wrappers, runs the safe code in `crate::dispatch` under
//! `guard` (no panic crosses into Apache), and maps the result back.

use super::hooks::{self, CmdParms, CmdScope, ModuleCallbacks, ModuleCell, ModuleList, Order};
use super::pool::Pool;
use super::request::Request;
use super::{ffi, guard, log, status};
use crate::config::{self, ArgShape, DIRECTIVES, DirConfig, Origin, Scope, ServerConfig};
use crate::dispatch;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

const N: usize = DIRECTIVES.len();
const NAME_LEN: usize = 40;
const HELP_LEN: usize = 200;

/// Directive names and help texts as C strings, built at compile time from
/// the pure directive table.
static NAMES: [[u8; NAME_LEN]; N] = {
    let mut out = [[0u8; NAME_LEN]; N];
    let mut i = 0;
    while i < N {
        out[i] = hooks::c_buffer::<NAME_LEN>(DIRECTIVES[i].name);
        i += 1;
    }
    out
};
static HELPS: [[u8; HELP_LEN]; N] = {
    let mut out = [[0u8; HELP_LEN]; N];
    let mut i = 0;
    while i < N {
        out[i] = hooks::c_buffer::<HELP_LEN>(DIRECTIVES[i].help);
        i += 1;
    }
    out
};

const fn req_override(context: config::Context) -> c_int {
    use config::Context::*;
    match context {
        ServerOnly | ServerVhost => ffi::MWRS_RSRC_CONF,
        ServerVhostDir => ffi::MWRS_RSRC_CONF | ffi::MWRS_ACCESS_CONF,
        ServerVhostDirHtaccess => {
            ffi::MWRS_RSRC_CONF | ffi::MWRS_ACCESS_CONF | ffi::MWRS_OR_FILEINFO
        }
        DirHtaccessAuth => ffi::MWRS_ACCESS_CONF | ffi::MWRS_OR_AUTHCFG,
    }
}

static COMMANDS: hooks::CommandTable<{ N + 1 }> = {
    let mut table = [hooks::END_OF_COMMANDS; N + 1];
    let mut i = 0;
    while i < N {
        let spec = &DIRECTIVES[i];
        let name = NAMES[i].as_ptr().cast::<c_char>();
        let help = HELPS[i].as_ptr().cast::<c_char>();
        let how = req_override(spec.context);
        table[i] = match spec.kind {
            ArgShape::Words => hooks::command_argv(name, directive_argv, i, how, help),
            ArgShape::Options { .. } | ArgShape::Section => {
                hooks::command_raw(name, directive_raw, i, how, help)
            }
        };
        i += 1;
    }
    hooks::CommandTable(table)
};

/// The exported record. Named as mod_wsgi's so existing LoadModule lines
/// work; "mod_wsgi.c" makes `LogLevel wsgi:debug` select our lines.
#[unsafe(no_mangle)]
pub static wsgi_module: ModuleCell = ModuleCell::new(
    c"mod_wsgi.c",
    COMMANDS.0.as_ptr(),
    ModuleCallbacks {
        create_dir_config,
        merge_dir_config,
        create_server_config,
        merge_server_config,
        register_hooks,
    },
);

fn scope_of(s: CmdScope) -> Scope {
    match s {
        CmdScope::Server => Scope::Server,
        CmdScope::VirtualHost => Scope::VirtualHost,
        CmdScope::Directory => Scope::Directory,
        CmdScope::Htaccess => Scope::Htaccess,
        CmdScope::InterpreterOptions => Scope::InterpreterOptions,
    }
}

/// The config of a server (main or virtual host).
fn server_config<'a>(s: *mut ffi::server_rec) -> Option<&'a mut ServerConfig> {
    // SAFETY: our create/merge_server_config put a ServerConfig in every
    // server's vector; Apache keeps it alive in pconf.
    unsafe { wsgi_module.config::<ServerConfig>(hooks::server_module_config(s)) }
}

fn apply_directive(
    parms: &CmdParms<'_>,
    mconfig: *mut c_void,
    args: &[&str],
) -> Result<(), String> {
    let index = parms.data();
    let scope = scope_of(parms.scope());
    let (file, line) = parms.origin();
    let origin = Origin { file, line };
    // SAFETY: Apache passes our own per-dir config (from create_dir_config).
    let dir =
        unsafe { (mconfig as *mut DirConfig).as_mut() }.ok_or("no per-directory configuration")?;
    // .htaccess is read per request, possibly by many threads: it never
    // writes to the shared server config.
    let mut scratch = ServerConfig::default();
    let server = match scope {
        Scope::Htaccess => &mut scratch,
        _ => server_config(parms.server()).ok_or("no server configuration")?,
    };
    config::apply(
        index,
        args,
        scope,
        &origin,
        server,
        dir,
        &super::regex::ApacheRegexEngine,
    )
    .map_err(|e| e.to_string())?;
    // Hook scripts sit in <Directory>/<Location> configs, which child_init
    // cannot walk: remember, for this generation, that one is configured.
    // (.htaccess is read in the children, too late to start Python.)
    if scope != Scope::Htaccess
        && DIRECTIVES
            .get(index)
            .is_some_and(|spec| crate::hooks::RUN_IN_CHILDREN.contains(&spec.name))
    {
        hooks::mark_pool(parms.pool(), HOOK_SCRIPTS_KEY);
    }
    Ok(())
}

/// Configuration-pool marker: a directive of `hooks::RUN_IN_CHILDREN` was
/// read for this generation.
const HOOK_SCRIPTS_KEY: &std::ffi::CStr = c"mod_wsgi_rs.hook_scripts";

unsafe extern "C" fn directive_argv(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache calls us with live cmd_parms and argc C strings.
    let parms = unsafe { CmdParms::from_raw(cmd) };
    let result = guard("directive", Err("internal error".to_string()), || {
        // SAFETY: as above.
        let args = unsafe { hooks::argv_strings(argc, argv) }?;
        apply_directive(&parms, mconfig, &args)
    });
    match result {
        Ok(()) => std::ptr::null(),
        Err(message) => parms.error(&message),
    }
}

/// Directives mod_wsgi reads from the raw line (options with quotable
/// values, section openers): split here as mod_wsgi splits them.
unsafe extern "C" fn directive_raw(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    raw: *const c_char,
) -> *const c_char {
    // SAFETY: Apache calls us with live cmd_parms and the rest of the line.
    let parms = unsafe { CmdParms::from_raw(cmd) };
    // SAFETY: as above; the line is a C string in the configuration pool.
    let line = unsafe { super::cstr(raw) }.unwrap_or("").to_string();
    let result = guard("directive", Err("internal error".to_string()), || {
        let shape = DIRECTIVES
            .get(parms.data())
            .map_or(ArgShape::Words, |spec| spec.kind);
        let words = config::args::split(&line, shape);
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        apply_directive(&parms, mconfig, &args)?;
        if shape == ArgShape::Section {
            parms.walk_section_body()?;
        }
        Ok(())
    });
    match result {
        Ok(()) => std::ptr::null(),
        Err(message) => parms.error(&message),
    }
}

unsafe extern "C" fn create_dir_config(p: *mut ffi::apr_pool_t, _dir: *mut c_char) -> *mut c_void {
    // SAFETY: Apache's configuration pool, live for the generation.
    let pool = unsafe { Pool::from_raw(p) };
    pool.adopt(DirConfig::default()).cast()
}

unsafe extern "C" fn merge_dir_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: both come from our create/merge_dir_config.
    let (base, add) = unsafe { (&*(base as *const DirConfig), &*(add as *const DirConfig)) };
    let merged = guard("merge_dir_config", add.clone(), || {
        DirConfig::merge(base, add)
    });
    // SAFETY: as in create_dir_config.
    unsafe { Pool::from_raw(p) }.adopt(merged).cast()
}

unsafe extern "C" fn create_server_config(
    p: *mut ffi::apr_pool_t,
    _s: *mut ffi::server_rec,
) -> *mut c_void {
    // SAFETY: Apache's configuration pool.
    unsafe { Pool::from_raw(p) }
        .adopt(ServerConfig::default())
        .cast()
}

unsafe extern "C" fn merge_server_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: both come from our create/merge_server_config.
    let (base, add) = unsafe {
        (
            &*(base as *const ServerConfig),
            &*(add as *const ServerConfig),
        )
    };
    let merged = guard("merge_server_config", add.clone(), || {
        ServerConfig::merge(base, add)
    });
    // SAFETY: Apache's configuration pool.
    unsafe { Pool::from_raw(p) }.adopt(merged).cast()
}

/// Main server config plus every virtual host's.
fn all_server_configs<'a>(
    s: *mut ffi::server_rec,
) -> (Option<&'a ServerConfig>, Vec<&'a ServerConfig>) {
    let mut main = None;
    let mut vhosts = Vec::new();
    for server in hooks::servers(s) {
        if let Some(cfg) = server_config(server) {
            // SAFETY: `server` comes from Apache's list of live server_recs.
            if unsafe { hooks::server_is_virtual(server) } {
                vhosts.push(&*cfg);
            } else {
                main = Some(&*cfg);
            }
        }
    }
    (main, vhosts)
}

unsafe extern "C" fn check_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    guard("check_config", status::HTTP_INTERNAL_SERVER_ERROR, || {
        log::set_main_server(s);
        let (main, vhosts) = all_server_configs(s);
        let Some(main) = main else { return status::OK };
        match dispatch::check_config(main, &vhosts) {
            Ok(()) => status::OK,
            Err(message) => {
                log::startup(log::Level::Emerg, &message);
                status::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    })
}

unsafe extern "C" fn post_config(
    pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    guard("post_config", status::OK, || {
        // SAFETY: the configuration pool of this generation.
        let pconf = unsafe { Pool::from_raw(pconf) };
        hooks::add_version_component(pconf, &dispatch::banner());
        // Apache runs post_config once to check, then again for real; act
        // (warn, later: start daemons) only on the real pass. The marker lives
        // in the process pool because this module's statics do not survive
        // the unload/reload of each generation.
        // SAFETY: `s` is the live main server post_config was given.
        let process_pool = unsafe { hooks::process_pool(s) };
        if hooks::first_time_in_pool(process_pool, c"mod_wsgi_rs.post_config") {
            return status::OK;
        }
        log::set_main_server(s);
        let (main, vhosts) = all_server_configs(s);
        let Some(main) = main else { return status::OK };
        for line in dispatch::startup_lines(main, &vhosts) {
            log::server(Some(s), line.0, &line.1);
        }
        crate::wsgi::metrics::configure_server_metrics(main, &vhosts);
        crate::telemetry::configure(main);
        // As mod_wsgi: daemon processes are forked once the scoreboard
        // exists, so they inherit it (mod_wsgi.server_metrics() reads it).
        // At the first start it is made just before the MPM runs (pre_mpm);
        // a restart keeps it, so the daemons start now.
        if super::scoreboard::exists() {
            start_daemons(pconf, s)
        } else {
            DEFERRED_POOL.store(pconf.as_ptr(), Ordering::SeqCst);
            DEFERRED_SERVER.store(s, Ordering::SeqCst);
            hooks::pre_mpm_last(pre_mpm);
            status::OK
        }
    })
}

/// The configuration pool and main server post_config left the daemon
/// start to pre_mpm with (the first start only).
static DEFERRED_POOL: AtomicPtr<ffi::apr_pool_t> = AtomicPtr::new(std::ptr::null_mut());
static DEFERRED_SERVER: AtomicPtr<ffi::server_rec> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn pre_mpm(_p: *mut ffi::apr_pool_t, _sb_type: ffi::ap_scoreboard_e) -> c_int {
    guard("pre_mpm", status::OK, || {
        let pconf = DEFERRED_POOL.swap(std::ptr::null_mut(), Ordering::SeqCst);
        let s = DEFERRED_SERVER.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if pconf.is_null() || s.is_null() {
            return status::OK;
        }
        // SAFETY: the configuration pool post_config was given, which lives
        // for this whole generation (pre_mpm runs within it).
        start_daemons(unsafe { Pool::from_raw(pconf) }, s)
    })
}

/// Forks the daemon process groups of this generation.
fn start_daemons(pconf: Pool, s: *mut ffi::server_rec) -> c_int {
    let (main, vhosts) = all_server_configs(s);
    let Some(main) = main else { return status::OK };
    // SAFETY: `s` is the live main server of this generation.
    let title = unsafe { super::process::ProcessTitle::of(s) };
    // SAFETY: as above; the main server's Timeout directive.
    let server_timeout = std::time::Duration::from_micros(unsafe { (*s).timeout }.max(0) as u64);
    match dispatch::start_daemons(pconf, title, main, &vhosts, server_timeout) {
        Ok(()) => status::OK,
        Err(message) => {
            log::server(Some(s), log::Level::Emerg, &message);
            status::HTTP_INTERNAL_SERVER_ERROR
        }
    }
}

unsafe extern "C" fn child_init(p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    guard("child_init", (), || {
        // As mod_wsgi: when the child ends (its pool goes, before Python is
        // finalized at exit), the applications' shutdown callbacks run.
        // SAFETY: the child pool Apache passed, destroyed when the child exits.
        unsafe { Pool::from_raw(p) }.on_cleanup(|| {
            crate::wsgi::events::process_stopping("");
            crate::telemetry::child_exiting();
        });
        // SAFETY: `s` is the live main server child_init was given.
        let pconf = unsafe { super::process::configuration_pool_of(s) };
        let daemons = pconf.generation_userdata::<crate::daemon::supervisor::Daemons>(
            crate::daemon::supervisor::POOL_KEY,
        );
        dispatch::adopt_daemons(daemons);
        super::stop_sweep::arm();
        let hook_scripts = hooks::pool_marked(pconf, HOOK_SCRIPTS_KEY);
        if let Some(main) = server_config(s)
            && let Err(message) = dispatch::child_init(main, hook_scripts)
        {
            log::server(Some(s), log::Level::Crit, &message);
        }
    })
}

/// An Apache child told to stop at once (`-k stop`, `-k restart`): the
/// requests it relays to daemons are abandoned now, as Apache closes its
/// clients' connections, rather than holding the child (and Apache's stop)
/// until the daemons answer. Any stop: the connections held through the
/// MPM's sweep of its workers' sockets go on (see stop_sweep).
unsafe extern "C" fn child_stopping(_p: *mut ffi::apr_pool_t, graceful: std::ffi::c_int) {
    guard("child_stopping", (), || {
        super::stop_sweep::sweep_over();
        if graceful == 0 {
            dispatch::child_stopping_now();
        }
    })
}

/// A new client connection: held through a stop at once (see stop_sweep).
unsafe extern "C" fn pre_connection(c: *mut ffi::conn_rec, _csd: *mut c_void) -> c_int {
    guard("pre_connection", status::DECLINED, || {
        // SAFETY: Apache passes the live connection; its pool lives until
        // the connection ends.
        super::stop_sweep::hold_connection(unsafe { Pool::from_raw((*c).pool) });
        status::DECLINED
    })
}

unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> c_int {
    guard("translate_name", status::DECLINED, || {
        // SAFETY: Apache passes the live request to this hook.
        let request = unsafe { Request::from_raw(r) };
        match server_config(request.server()) {
            Some(cfg) => dispatch::translate_name(request, cfg),
            None => status::DECLINED,
        }
    })
}

unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    guard("handler", status::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache passes the live request to this hook.
        let request = unsafe { Request::from_raw(r) };
        // SAFETY: per_dir_config holds our merged DirConfig for this request.
        let dir = unsafe { wsgi_module.config::<DirConfig>(hooks::request_dir_config(r)) };
        if !dispatch::is_our_handler(request.handler(), dir.as_deref()) {
            return status::DECLINED;
        }
        let server = server_config(request.server());
        match (server, dir) {
            (Some(server), Some(dir)) => dispatch::handler(request, server, dir),
            _ => status::DECLINED,
        }
    })
}

/// mod_alias must see requests first so that `Alias /static` next to
/// `WSGIScriptAlias /` keeps serving files, as with mod_wsgi.
static RUN_AFTER: ModuleList<2> = ModuleList([c"mod_alias.c".as_ptr(), std::ptr::null()]);
static RUN_BEFORE: ModuleList<3> = ModuleList([
    c"mod_userdir.c".as_ptr(),
    c"mod_vhost_alias.c".as_ptr(),
    std::ptr::null(),
]);

unsafe extern "C" fn register_hooks(_p: *mut ffi::apr_pool_t) {
    guard("register_hooks", (), || {
        log::set_module_index(wsgi_module.index());
        hooks::check_config(check_config, Order::Middle);
        hooks::post_config(post_config, Order::Middle);
        hooks::child_init(child_init, Order::Middle);
        // First: the connections held for the stop wait for it (stop_sweep).
        hooks::child_stopping(child_stopping, Order::ReallyFirst);
        hooks::pre_connection(pre_connection, Order::Middle);
        hooks::translate_name(translate_name, &RUN_AFTER, &RUN_BEFORE, Order::Middle);
        hooks::handler(handler, Order::Middle);
        // SAFETY: `_p` is the pool Apache passed to register_hooks.
        unsafe { super::auth::register(_p) };
    })
}
