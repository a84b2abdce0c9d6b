//! What mod_wsgi_rs does at each Apache phase, in safe Rust: the
//! `apache::module` trampolines call these with typed arguments.

use crate::apache::log::Level;
use crate::apache::request::Request;
use crate::apache::{mpm_info, status};
use crate::config::{self, DirConfig, ServerConfig};
use crate::daemon::supervisor::{self, Daemons};
use crate::embedded::{self, RequestOptions};
use crate::hooks;
use std::sync::OnceLock;

/// This Apache child's view of the daemon groups of its generation (set in
/// child_init; a child lives in one generation only).
static DAEMONS: OnceLock<&'static Daemons> = OnceLock::new();

/// Handler names we serve: WSGIScriptAlias sets the first; AddHandler /
/// SetHandler users may use either, as with mod_wsgi.
const HANDLERS: &[&str] = &["wsgi-script", "application/x-httpd-wsgi"];
/// Note on the request naming the WSGIScriptAlias that matched.
const ALIAS_NOTE: &str = "mod_wsgi_rs.alias";

pub fn banner() -> String {
    format!(
        "mod_wsgi_rs/{} Python/{}",
        crate::VERSION,
        crate::PYTHON_VERSION
    )
}

/// Modification time of a file in microseconds (as Apache's finfo.mtime),
/// 0 when it cannot be read.
pub fn file_mtime(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64)
}

/// Whether the request's handler is ours: one of the built-in names, or a
/// name registered by WSGIHandlerScript in the request's configuration.
pub fn is_our_handler(handler: Option<&str>, dir: Option<&DirConfig>) -> bool {
    handler.is_some_and(|h| {
        HANDLERS.contains(&h)
            || h == STATUS_HANDLER
            || dir.is_some_and(|d| d.handler_script(h).is_some())
    })
}

/// The handler name of the status page (`SetHandler wsgi-status`).
const STATUS_HANDLER: &str = "wsgi-status";

/// The status page: HTML, or JSON when the query string is `json`.
fn status_page(r: &mut Request) -> i32 {
    let groups: Vec<crate::daemon::status::GroupStatus> = DAEMONS
        .get()
        .map(|d| {
            d.groups
                .iter()
                .map(|g| crate::daemon::status::GroupStatus {
                    name: &g.name,
                    processes: g.board.view(),
                })
                .collect()
        })
        .unwrap_or_default();
    let now = crate::daemon::board::now_ms();
    let (content_type, body) = if r.args() == Some("json") {
        (
            "application/json",
            crate::daemon::status::json(&groups, now),
        )
    } else {
        (
            "text/html; charset=utf-8",
            crate::daemon::status::html(&groups, now, &banner()),
        )
    };
    r.set_content_type(content_type.as_bytes());
    r.headers_out().set(r.pool(), "Cache-Control", "no-store");
    if !r.is_head() && r.write(body.as_bytes()).is_err() {
        r.log(
            Level::Info,
            "client went away while the status page was sent",
        );
    }
    status::OK
}

/// The cross-reference checks that need the whole configuration.
pub fn check_config(main: &ServerConfig, vhosts: &[&ServerConfig]) -> Result<(), String> {
    config::check(main, vhosts).map_err(|e| e.to_string())
}

/// Lines logged once per generation when Apache starts serving.
pub fn startup_lines(main: &ServerConfig, vhosts: &[&ServerConfig]) -> Vec<(Level, String)> {
    let mut lines = Vec::new();
    let embedded = if main.restrict_embedded() {
        "embedded mode disabled by WSGIRestrictEmbedded"
    } else {
        "embedded mode available"
    };
    let groups = supervisor::collect_groups(main, vhosts);
    let daemon = match groups.len() {
        0 => "no daemon process groups".to_string(),
        n => format!(
            "{n} daemon process group{}: {}",
            if n == 1 { "" } else { "s" },
            groups
                .iter()
                .map(|g| format!(
                    "'{}' {}x{} threads",
                    g.name, g.options.processes, g.options.threads
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    lines.push((
        Level::Notice,
        format!(
            "{} configured: {embedded}, {daemon} (pid {})",
            banner(),
            std::process::id()
        ),
    ));
    if main.accept_mutex.is_some() && !groups.is_empty() {
        // mod_wsgi serialises its daemons' accept() with this mutex to
        // avoid waking every process for one connection; ours wait in an
        // epoll set with EPOLLEXCLUSIVE, where the kernel already wakes one.
        lines.push((
            Level::Info,
            format!(
                "WSGIAcceptMutex {}: daemon processes need no accept mutex (the kernel hands each connection to one waiting thread)",
                main.accept_mutex()
            ),
        ));
    }
    lines.extend(free_threading_lines(&main.python));
    for (directive, missing) in config::not_yet_used(main, vhosts) {
        lines.push((
            Level::Warning,
            format!("{directive} is accepted but not implemented yet: {missing}"),
        ));
    }
    lines
}

/// What WSGIFreeThreading cannot do as configured: On where the module's
/// Python has a GIL it cannot run without, and in a section that names an
/// application group, since it is one setting for a whole process. (How a
/// free-threaded build runs is said by each process as Python starts.)
fn free_threading_lines(python: &config::PythonSettings) -> Vec<(Level, String)> {
    let mut lines = Vec::new();
    let asked = python.free_threading == Some(true)
        || python
            .interpreter_options
            .iter()
            .any(|s| s.options.free_threading == Some(true));
    if asked && !crate::python::FREE_THREADED_BUILD {
        lines.push((
            Level::Warning,
            format!(
                "WSGIFreeThreading On has no effect: Python {} (this module's) is not a free-threaded build (PEP 703); the GIL stays. Build the module against a Python configured with --disable-gil to use it",
                crate::PYTHON_VERSION
            ),
        ));
    }
    for origin in python.free_threading_scoped_to_groups() {
        lines.push((
            Level::Warning,
            format!(
                "WSGIFreeThreading in <WSGIInterpreterOptions> with application-group= at {origin} is ignored: free-threading is one setting for a whole process, not per application group"
            ),
        ));
    }
    lines
}

/// Starts the daemon process groups (post_config, real pass, in the parent).
pub fn start_daemons(
    pconf: crate::apache::pool::Pool,
    title: Option<crate::apache::process::ProcessTitle>,
    main: &ServerConfig,
    vhosts: &[&ServerConfig],
    server_timeout: std::time::Duration,
) -> Result<(), String> {
    supervisor::start(pconf, title, main, vhosts, server_timeout)
}

/// In a new Apache child: remember the daemon groups and close their
/// listener sockets, which only the daemons may accept on.
pub fn adopt_daemons(daemons: Option<&'static Daemons>) {
    if let Some(d) = daemons {
        crate::apache::process::restore_child_exit_signal();
        d.close_listeners();
        let _ = DAEMONS.set(d);
    }
}

/// This Apache child stops at once: its relays to daemons end now.
pub fn child_stopping_now() {
    crate::relays::abandon_all();
    crate::daemon::kept::close_all();
}

/// The process group a request runs in: "" for embedded, else a group
/// name (%{ENV:var} taken from the request's environment).
fn resolve_process_group(r: &Request, configured: &str) -> Result<String, String> {
    if configured.is_empty() || configured == "%{GLOBAL}" {
        return Ok(String::new());
    }
    if let Some(var) = configured
        .strip_prefix("%{ENV:")
        .and_then(|v| v.strip_suffix('}'))
    {
        let value = r.env_var(var).unwrap_or_default();
        return Ok(if value == "%{GLOBAL}" {
            String::new()
        } else {
            value
        });
    }
    if configured.starts_with("%{") {
        return Err(format!("unsupported process group '{configured}'"));
    }
    Ok(configured.to_string())
}

/// What an application group name is expanded from.
pub struct GroupFacts<'a> {
    /// ServerName of the (virtual) server handling the request.
    pub server_hostname: &'a str,
    /// The port Apache reports for the request (SERVER_PORT).
    pub port: u16,
    /// The host the client asked for (Host header), if any.
    pub hostname: Option<&'a str>,
    /// The request's URI path and the PATH_INFO Apache split off it.
    pub uri: &'a str,
    pub path_info: &'a str,
    /// WSGICaseSensitivity (On by default on Linux): Off lower-cases the
    /// script name %{RESOURCE} uses.
    pub case_sensitive: bool,
}

/// "host" or "host:port", the port left out when it is 80 or 443, as
/// mod_wsgi names groups.
fn host_and_port(host: &str, port: u16) -> String {
    match port {
        80 | 443 => host.to_string(),
        port => format!("{host}:{port}"),
    }
}

/// SCRIPT_NAME as mod_wsgi 6 computes it for %{RESOURCE}: the URI up to
/// where PATH_INFO starts, runs of '/' collapsed, in lower case only when
/// the file system is taken as case-insensitive (WSGICaseSensitivity Off;
/// mod_wsgi 4 lowered it always).
fn resource_script_name(uri: &str, path_info: &str, case_sensitive: bool) -> String {
    let u = uri.as_bytes();
    let p = path_info.as_bytes();
    let mut end = u.len();
    if !p.is_empty() {
        // Walk back over the common tail of the URI and PATH_INFO; a '/' of
        // PATH_INFO may stand for several in the URI.
        let (mut lu, mut lp) = (u.len(), p.len());
        while lu > 0 && lp > 0 && u[lu - 1] == p[lp - 1] {
            lu -= 1;
            lp -= 1;
            if p[lp] == b'/' {
                while lu > 0 && u[lu - 1] == b'/' {
                    lu -= 1;
                }
            }
        }
        end = lu;
        while end < u.len() && u[end] != b'/' {
            end += 1;
        }
    }
    let mut out = String::with_capacity(end);
    for c in uri[..end].chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        if case_sensitive {
            out.push(c);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The application group a request runs in, as mod_wsgi expands
/// WSGIApplicationGroup / application-group=: %{GLOBAL} is "" (the main
/// interpreter); %{SERVER} the ServerName, with ":port" unless 80 or 443;
/// %{HOST} the same with the requested host; %{RESOURCE} (the default)
/// %{SERVER} then "|" and the lower-cased SCRIPT_NAME; %{ENV:var} the
/// variable from the request's notes, its environment (SetEnv, ...) or the
/// process environment, itself expanded when it is one of the other forms;
/// anything else is the name itself.
pub fn expand_application_group(
    configured: &str,
    facts: &GroupFacts<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let server = || host_and_port(facts.server_hostname, facts.port);
    match configured {
        "%{GLOBAL}" => String::new(),
        "%{SERVER}" => server(),
        "%{HOST}" => host_and_port(
            facts
                .hostname
                .filter(|h| !h.is_empty())
                .unwrap_or(facts.server_hostname),
            facts.port,
        ),
        "%{RESOURCE}" => format!(
            "{}|{}",
            server(),
            resource_script_name(facts.uri, facts.path_info, facts.case_sensitive)
        ),
        other => match other
            .strip_prefix("%{ENV:")
            .and_then(|v| v.strip_suffix('}'))
            .and_then(env)
        {
            Some(value) if value.starts_with('%') && !value.starts_with("%{ENV:") => {
                expand_application_group(&value, facts, env)
            }
            Some(value) => value,
            None => other.to_string(),
        },
    }
}

/// The application group of a request, from its configured form.
pub fn resolve_application_group(r: &Request, configured: &str) -> String {
    let server_hostname = r.server_hostname();
    let facts = GroupFacts {
        server_hostname: &server_hostname,
        port: r.server_port(),
        hostname: r.hostname(),
        uri: r.uri(),
        path_info: r.path_info(),
        case_sensitive: crate::wsgi::scripts::case_sensitive(),
    };
    let env = |name: &str| {
        r.notes()
            .get(name)
            .map(str::to_string)
            .or_else(|| r.env_var(name))
            .or_else(|| std::env::var(name).ok())
    };
    expand_application_group(configured, &facts, &env)
}

/// Whether Python starts in Apache children, as mod_wsgi decides it
/// (wsgi_python_required): for embedded-mode applications unless
/// WSGIRestrictEmbedded is On, and whatever that says when something else
/// always runs there: a hook script of `hooks::RUN_IN_CHILDREN` in the
/// server configuration (`hook_scripts`) or a WSGIImportScript for
/// process-group=%{GLOBAL}. (A WSGIHandlerScript does not count: an
/// embedded one is refused with WSGIRestrictEmbedded On, as an application
/// is.)
pub fn python_in_children(main: &ServerConfig, hook_scripts: bool) -> bool {
    !main.restrict_embedded() || hook_scripts || main.import_scripts.iter().any(imports_embedded)
}

/// A WSGIImportScript loaded in the Apache children.
fn imports_embedded(script: &config::ImportScript) -> bool {
    script.process_group == "%{GLOBAL}" || script.process_group.is_empty()
}

/// Brings Python up in a new Apache child when [`python_in_children`]
/// says so; `hook_scripts`: a hook script is configured.
pub fn child_init(main: &ServerConfig, hook_scripts: bool) -> Result<(), String> {
    crate::wsgi::scripts::set_case_sensitive(main.python.case_sensitivity());
    if !python_in_children(main, hook_scripts) {
        return Ok(());
    }
    crate::apache::exit_note::guard_apache_child();
    let settings = crate::python::InitSettings::from_config(&main.python);
    crate::python::initialize(&settings).map_err(|e| {
        format!(
            "cannot start Python in Apache child (pid {}): {e}",
            std::process::id()
        )
    })?;
    // WSGIImportScript for embedded mode (process-group=%{GLOBAL}).
    for script in main.import_scripts.iter().filter(|s| imports_embedded(s)) {
        if let Err(e) = crate::wsgi::scripts::preload(&script.path, &script.application_group) {
            crate::apache::log::server(
                None,
                Level::Error,
                &format!(
                    "WSGIImportScript {} (pid {}): {e}",
                    script.path,
                    std::process::id()
                ),
            );
        }
    }
    if !main.restrict_embedded() {
        crate::telemetry::start("");
    }
    Ok(())
}

/// WSGIRestrictEmbedded On and a request for embedded mode: one line
/// saying so (Python may run in this child all the same, for hook scripts).
fn refuse_embedded(r: &Request, script: &str) {
    let pid = std::process::id();
    let message = if crate::python::is_initialized() {
        format!(
            "embedded mode is off (WSGIRestrictEmbedded On): this Apache child (pid {pid}) runs Python for hook scripts only, cannot serve '{script}'; use WSGIProcessGroup or process-group= to send it to a daemon process group"
        )
    } else {
        format!(
            "Python is not running in this Apache child (pid {pid}): embedded mode is off (WSGIRestrictEmbedded On), cannot serve '{script}'; use WSGIProcessGroup or process-group= to send it to a daemon process group"
        )
    };
    r.log(Level::Error, &message);
}

/// Joins a script alias target and the rest of the URI into the file name
/// Apache's directory walk then splits into script and PATH_INFO.
fn alias_filename(target: &[u8], matched: usize, uri: &[u8]) -> Vec<u8> {
    let rest = &uri[matched.min(uri.len())..];
    // A slash the alias consumed stays in PATH_INFO ("/" of the URL "/"
    // under `WSGIScriptAlias /`), as with C mod_wsgi: SCRIPT_NAME "",
    // PATH_INFO "/" and PATH_TRANSLATED straight from Apache.
    let slash_consumed = uri[..matched.min(uri.len())].ends_with(b"/") && !target.ends_with(b"/");
    let mut out = target.to_vec();
    if (slash_consumed || !rest.is_empty()) && !rest.starts_with(b"/") && !target.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
    out
}

/// WSGIScriptAlias / WSGIScriptAliasMatch: map the URL to the script. The
/// URL's bytes are matched as they are (UTF-8 or not), as mod_alias and
/// mod_wsgi do.
pub fn translate_name(r: &mut Request, cfg: &ServerConfig) -> i32 {
    let uri = r.uri_bytes().to_vec();
    if !uri.starts_with(b"/") {
        return status::DECLINED;
    }
    for (index, alias) in cfg.script_aliases.iter().enumerate() {
        if let Some((matched, target)) = alias.map(&uri) {
            let filename = alias_filename(&target, matched, &uri);
            r.set_filename_bytes(&filename);
            r.set_handler(HANDLERS[0]);
            r.notes().set(r.pool(), ALIAS_NOTE, &index.to_string());
            return status::OK;
        }
    }
    status::DECLINED
}

/// The content handler: runs the WSGI application for this request.
pub fn handler(r: &mut Request, server: &ServerConfig, dir: &DirConfig) -> i32 {
    if r.handler() == Some(STATUS_HANDLER) {
        return status_page(r);
    }
    // SetHandler / AddHandler naming a WSGIHandlerScript: its script serves
    // the file Apache matched (which stays r->filename, SCRIPT_FILENAME).
    let handler_script = hooks::handler::named(r.handler(), HANDLERS, dir);
    if handler_script.is_none() && !is_our_handler(r.handler(), None) {
        return status::DECLINED;
    }
    let Some(filename) = r.filename().map(str::to_string) else {
        return status::DECLINED;
    };
    // A handler script serves whatever URL reaches it, file or not (as
    // mod_wsgi: mod_wsgi-express routes every unmatched URL to one); a
    // WSGI script must be an existing file where ExecCGI is on, unless a
    // WSGIScriptAlias mapped it.
    if handler_script.is_none() {
        let script_aliased = r.notes().get(ALIAS_NOTE).is_some();
        if !script_aliased && !r.allows_exec_cgi() {
            r.log(
                Level::Error,
                &format!("Options ExecCGI is off in this directory: {filename}"),
            );
            return status::HTTP_FORBIDDEN;
        }
        if r.is_directory() {
            r.log(
                Level::Error,
                &format!("Attempt to invoke directory as WSGI application: {filename}"),
            );
            return status::HTTP_FORBIDDEN;
        }
        if !r.is_regular_file() {
            r.log(
                Level::Error,
                &format!("Target WSGI script not found or unable to stat: {filename}"),
            );
            return status::HTTP_NOT_FOUND;
        }
    }
    let script = match handler_script {
        Some(h) => {
            hooks::handler::note(r, h);
            h.path.clone()
        }
        None => filename,
    };
    let alias = r
        .notes()
        .get(ALIAS_NOTE)
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| server.script_aliases.get(i));
    let opts = match handler_script {
        Some(h) => Some(&h.options),
        None => alias.map(|a| &a.options),
    };
    let fixed_callable = handler_script.map(|_| hooks::handler::CALLABLE.to_string());
    let pick = |from_alias: Option<&String>, default: &str| {
        from_alias.cloned().unwrap_or_else(|| default.to_string())
    };
    let mpm = mpm_info();
    let request = RequestOptions {
        script,
        callable_object: fixed_callable.unwrap_or_else(|| {
            pick(
                opts.and_then(|o| o.callable_object.as_ref()),
                dir.callable_object(),
            )
        }),
        application_group: pick(
            opts.and_then(|o| o.application_group.as_ref()),
            dir.application_group(),
        ),
        process_group: pick(
            opts.and_then(|o| o.process_group.as_ref()),
            dir.process_group(),
        ),
        pass_authorization: opts
            .and_then(|o| o.pass_authorization)
            .unwrap_or(dir.pass_authorization()),
        script_reloading: dir.script_reloading(),
        chunked_request: dir.chunked_request(),
        multithread: mpm.multithread(),
        multiprocess: mpm.multiprocess(),
        enable_sendfile: dir.enable_sendfile(),
        proxy: crate::wsgi::proxy::ProxyTrust::from_dir(dir),
        error_override: dir.error_override(),
        pass_apache_request: dir.pass_apache_request(),
        map_head_to_get: dir.map_head_to_get(),
        ignore_activity: dir.ignore_activity(),
    };
    // WSGIDispatchScript: may replace the three choices (in their
    // configured forms, expanded below as the directives' are).
    let mut request = request;
    if let Some(dispatch) = dir.dispatch_script.as_ref() {
        let current = resolve_application_group(r, &request.application_group);
        match hooks::dispatch::run(r, dir, dispatch, &current) {
            Ok(choice) => {
                if let Some(g) = choice.process_group {
                    request.process_group = g;
                }
                if let Some(g) = choice.application_group {
                    request.application_group = g;
                }
                if let Some(c) = choice.callable_object {
                    request.callable_object = c;
                }
            }
            Err(hooks::Refused) => return status::HTTP_INTERNAL_SERVER_ERROR,
        }
    }
    // Expanded here, where the request's server, port and URI are known:
    // daemon mode sends the daemon the resulting name.
    let request = RequestOptions {
        application_group: resolve_application_group(r, &request.application_group),
        ..request
    };
    let group = match resolve_process_group(r, &request.process_group) {
        Ok(g) => g,
        Err(message) => {
            r.log(Level::Error, &message);
            return status::HTTP_INTERNAL_SERVER_ERROR;
        }
    };
    if group.is_empty() {
        if server.restrict_embedded() {
            refuse_embedded(r, &request.script);
            return status::HTTP_SERVICE_UNAVAILABLE;
        }
        return embedded::handle(r, &request);
    }
    // WSGIRestrictProcess: the groups this location may delegate to.
    if !dir.restrict_process.is_empty() && !dir.restrict_process.contains(&group) {
        r.log(
            Level::Error,
            &format!(
                "daemon process group '{group}' may not be used for '{}': WSGIRestrictProcess allows only {}",
                request.script,
                dir.restrict_process.join(", ")
            ),
        );
        return status::HTTP_FORBIDDEN;
    }
    match DAEMONS.get().and_then(|d| d.group(&group)) {
        Some(runtime) => {
            let timeout = r.server_timeout();
            crate::daemon::worker::handle(r, &request, runtime, timeout)
        }
        None => {
            r.log(
                Level::Error,
                &format!(
                    "no WSGI daemon process group '{group}' is configured (requested for '{}')",
                    request.script
                ),
            );
            status::HTTP_INTERNAL_SERVER_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        GroupFacts, alias_filename, expand_application_group, python_in_children,
        resource_script_name,
    };
    use crate::config::{ImportScript, ServerConfig};

    #[test]
    fn python_starts_in_children_as_mod_wsgi_decides() {
        let mut main = ServerConfig::default();
        assert!(python_in_children(&main, false), "embedded mode by default");
        main.restrict_embedded = Some(true);
        assert!(!python_in_children(&main, false), "nothing needs it");
        assert!(python_in_children(&main, true), "a hook script");
        let import = |group: &str| ImportScript {
            path: "/srv/import.py".into(),
            process_group: group.into(),
            application_group: "%{GLOBAL}".into(),
            origin: Default::default(),
        };
        main.import_scripts.push(import("daemon"));
        assert!(!python_in_children(&main, false), "imported in a daemon");
        main.import_scripts.push(import("%{GLOBAL}"));
        assert!(python_in_children(&main, false), "imported in the children");
    }

    #[test]
    fn application_group_names_follow_mod_wsgi() {
        let facts = GroupFacts {
            server_hostname: "www.example.com",
            port: 8080,
            hostname: Some("alias.example.com"),
            uri: "/Shop/Cart/items",
            path_info: "/items",
            case_sensitive: false,
        };
        let env = |name: &str| match name {
            "GROUP" => Some("from-env".to_string()),
            "INDIRECT" => Some("%{SERVER}".to_string()),
            _ => None,
        };
        let expand = |c: &str| expand_application_group(c, &facts, &env);
        assert_eq!(expand("%{GLOBAL}"), "");
        assert_eq!(expand("%{SERVER}"), "www.example.com:8080");
        assert_eq!(expand("%{HOST}"), "alias.example.com:8080");
        assert_eq!(expand("%{RESOURCE}"), "www.example.com:8080|/shop/cart");
        assert_eq!(expand("%{ENV:GROUP}"), "from-env");
        assert_eq!(expand("%{ENV:INDIRECT}"), "www.example.com:8080");
        assert_eq!(expand("%{ENV:MISSING}"), "%{ENV:MISSING}");
        assert_eq!(expand("shop"), "shop");
        let standard = GroupFacts {
            port: 443,
            hostname: None,
            ..facts
        };
        let expand = |c: &str| expand_application_group(c, &standard, &env);
        assert_eq!(expand("%{SERVER}"), "www.example.com");
        assert_eq!(expand("%{HOST}"), "www.example.com");
        assert_eq!(expand("%{RESOURCE}"), "www.example.com|/shop/cart");
        // WSGICaseSensitivity On, the default: the case is kept.
        let sensitive = GroupFacts {
            case_sensitive: true,
            ..standard
        };
        let expand = |c: &str| expand_application_group(c, &sensitive, &env);
        assert_eq!(expand("%{RESOURCE}"), "www.example.com|/Shop/Cart");
    }

    #[test]
    fn resource_script_name_is_the_uri_before_path_info() {
        assert_eq!(resource_script_name("/", "", false), "/");
        assert_eq!(resource_script_name("/", "/", false), "");
        assert_eq!(resource_script_name("/app", "", false), "/app");
        assert_eq!(resource_script_name("/app/x/y", "/x/y", false), "/app");
        assert_eq!(resource_script_name("/app//x", "/x", false), "/app");
        assert_eq!(resource_script_name("//App///b", "", false), "/app/b");
        assert_eq!(resource_script_name("//App///b", "", true), "/App/b");
    }

    #[test]
    fn alias_filename_keeps_path_info_separate() {
        assert_eq!(alias_filename(b"/srv/app.wsgi", 1, b"/"), b"/srv/app.wsgi/");
        assert_eq!(
            alias_filename(b"/srv/app.wsgi", 1, b"/foo"),
            b"/srv/app.wsgi/foo"
        );
        assert_eq!(
            alias_filename(b"/srv/app.wsgi", 0, b"/foo"),
            b"/srv/app.wsgi/foo"
        );
        assert_eq!(
            alias_filename(b"/srv/app.wsgi", 4, b"/app/x"),
            b"/srv/app.wsgi/x"
        );
        assert_eq!(
            alias_filename(b"/srv/dir/", 3, b"/d/a.wsgi"),
            b"/srv/dir/a.wsgi"
        );
        // Bytes that are not UTF-8 pass as they are.
        assert_eq!(
            alias_filename(b"/srv/app.wsgi", 4, b"/app/caf\xe9"),
            b"/srv/app.wsgi/caf\xe9"
        );
    }
}
