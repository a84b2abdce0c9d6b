//! `apply`: one directive from Apache into ServerConfig / DirConfig.

use std::path::Path;

use super::daemon::{DaemonGroup, DaemonOptions};
use super::dir::{HandlerScript, MapHeadToGet, ScriptFile, TrustedProxy};
use super::directives::{Context, DIRECTIVES, DirectiveSpec, Status};
use super::server::{
    AliasMatcher, GroupRef, HashSeed, ImportScript, InterpreterOptions, InterpreterOptionsSection,
    RegexEngine, ScriptAlias, ScriptOptions, TelemetryService,
};
use super::values;
use super::{ConfigError, DirConfig, Origin, Scope, ServerConfig};

/// Apply directive `index` of [`DIRECTIVES`] with the words Apache split.
///
/// Validates everything that can be known from the directive alone
/// (values, ranges, users, files, regexes, duplicate group names within
/// this server); cross-server rules wait for [`check`](super::check).
/// Directives that are accepted but not implemented yet are stored all the
/// same and remembered in `server.used_not_yet` (except in .htaccess,
/// where `server` is never touched).
pub fn apply(
    index: usize,
    args: &[&str],
    scope: Scope,
    origin: &Origin,
    server: &mut ServerConfig,
    dir: &mut DirConfig,
    regex: &dyn RegexEngine,
) -> Result<(), ConfigError> {
    let Some(spec) = DIRECTIVES.get(index) else {
        return Err(ConfigError::new(
            "mod_wsgi",
            format!("internal error: no directive with index {index}"),
        ));
    };
    let mut cx = Cx {
        spec,
        args,
        scope,
        origin,
        server,
        dir,
        regex,
        counts_as_not_yet: true,
    };
    cx.check_scope()
        .and_then(|()| cx.run())
        .map_err(|message| ConfigError::new(spec.name, message))?;
    if let Status::NotYet(_) = spec.status
        && cx.counts_as_not_yet
        && scope != Scope::Htaccess
    {
        cx.server.note_not_yet(index);
    }
    Ok(())
}

/// `put!(place, value)`: evaluate `value` first (it may borrow the
/// context), then store it as `Some` and succeed.
macro_rules! put {
    ($place:expr, $value:expr) => {{
        let value = $value;
        $place = Some(value);
        Ok(())
    }};
}

/// Everything one directive needs while being applied.
struct Cx<'a, 'w> {
    spec: &'static DirectiveSpec,
    args: &'a [&'w str],
    scope: Scope,
    origin: &'a Origin,
    server: &'a mut ServerConfig,
    dir: &'a mut DirConfig,
    regex: &'a dyn RegexEngine,
    /// Cleared when this particular use works even though the directive is
    /// NotYet (e.g. WSGIApplicationGroup %{GLOBAL}), so no warning is due.
    counts_as_not_yet: bool,
}

const SCRIPT_ALIAS_OPTIONS: &[&str] = &[
    "process-group",
    "application-group",
    "callable-object",
    "pass-authorization",
];
const GROUP_OPTIONS: &[&str] = &["process-group", "application-group"];
const HANDLER_OPTIONS: &[&str] = &["process-group", "application-group", "pass-authorization"];
const ACCEPT_MUTEXES: &[&str] = &[
    "default", "flock", "fcntl", "sysvsem", "posixsem", "pthread",
];

impl<'a, 'w> Cx<'a, 'w> {
    /// Apache already enforces contexts through req_override; this repeats
    /// the rules it cannot express (server-only directives inside
    /// <VirtualHost>) and guards against an edge registering a directive
    /// with the wrong flags.
    fn check_scope(&self) -> Result<(), String> {
        use Context::*;
        use Scope::*;
        let ctx = self.spec.context;
        match (ctx, self.scope) {
            (ServerOnly, VirtualHost) => Err(
                "cannot occur within <VirtualHost> section; it applies to the whole server, \
                 so set it in the main server configuration"
                    .into(),
            ),
            (ServerOnly | ServerVhost, Directory) => {
                Err("cannot occur within <Directory>, <Location> or <Files> section".into())
            }
            (ServerOnly | ServerVhost | ServerVhostDir, Htaccess) => {
                Err("is not allowed in .htaccess files".into())
            }
            _ if self.scope == InterpreterOptions
                && !super::server::InterpreterOptions::DIRECTIVES.contains(&self.spec.name) =>
            {
                Err(format!(
                    "cannot occur inside <WSGIInterpreterOptions>; allowed there: {}",
                    super::server::InterpreterOptions::DIRECTIVES.join(", ")
                ))
            }
            (DirHtaccessAuth, Server | VirtualHost) => Err(
                "is only allowed inside <Directory>, <Location> or <Files> sections \
                 and in .htaccess files"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let name = self.spec.name;
        match name {
            "WSGIScriptAlias" | "WSGIScriptAliasMatch" => self.script_alias(),
            "WSGIDaemonProcess" => self.daemon_process(),
            "WSGIProcessGroup" => {
                let v = self.one_nonempty("a process group name")?;
                self.group_ref(v);
                if v == "%{GLOBAL}" {
                    self.counts_as_not_yet = false;
                }
                self.dir.process_group = Some(v.to_string());
                Ok(())
            }
            "WSGIApplicationGroup" => {
                let v = self.one_nonempty("an application group name")?;
                self.dir.application_group = Some(v.to_string());
                Ok(())
            }
            "WSGICallableObject" => {
                let v = self.one_nonempty("the name of the WSGI callable")?;
                self.dir.callable_object = Some(v.to_string());
                Ok(())
            }
            "WSGIRestrictProcess" => {
                let groups = self.at_least(1, "one or more process group names")?;
                for g in groups {
                    self.group_ref(g);
                }
                self.dir.restrict_process = groups.iter().map(|g| g.to_string()).collect();
                Ok(())
            }
            "WSGIRestrictEmbedded" => put!(self.server.restrict_embedded, self.flag()?),
            "WSGIImportScript" => self.import_script(),
            "WSGIDispatchScript" => {
                let script = self.script_file(GROUP_OPTIONS)?;
                self.dir.dispatch_script = Some(script);
                Ok(())
            }
            "WSGIHandlerScript" => self.handler_script(),
            "WSGIAccessScript" => {
                self.dir.access_script = Some(self.script_file(GROUP_OPTIONS)?);
                Ok(())
            }
            "WSGIAuthUserScript" => {
                self.dir.auth_user_script = Some(self.script_file(GROUP_OPTIONS)?);
                Ok(())
            }
            "WSGIAuthGroupScript" => {
                self.dir.auth_group_script = Some(self.script_file(GROUP_OPTIONS)?);
                Ok(())
            }
            "WSGIGroupAuthoritative" => put!(self.dir.group_authoritative, self.flag()?),

            // Python (server-wide).
            "WSGIPythonHome" => {
                let v = self.one_nonempty("a directory")?;
                put!(self.server.python.home, v.to_string())
            }
            "WSGIPythonPath" => {
                let v = self.one_nonempty("directories separated by ':'")?;
                let dirs = values::path_list(v);
                if dirs.is_empty() {
                    return Err(format!("expects directories separated by ':', got '{v}'"));
                }
                match self.section_options() {
                    Some(o) => put!(o.python_path, dirs),
                    None => {
                        self.server.python.path = dirs;
                        Ok(())
                    }
                }
            }
            "WSGIPythonOptimize" => {
                let v = self.one("0, 1 or 2")?;
                let level = match v {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(format!("expects 0, 1 or 2, got '{v}'")),
                };
                put!(self.server.python.optimize, level)
            }
            "WSGIPythonHashSeed" => {
                let v = self.one("random or a number")?;
                let seed = if v.eq_ignore_ascii_case("random") {
                    HashSeed::Random
                } else {
                    let n = values::whole(v, 0, u32::MAX.into()).map_err(|_| {
                        format!(
                            "expects 'random' or a whole number from 0 to 4294967295, got '{v}'"
                        )
                    })?;
                    HashSeed::Value(n as u32)
                };
                put!(self.server.python.hash_seed, seed)
            }
            "WSGIPythonWarnings" => {
                let v = self.one_nonempty("a warnings filter")?;
                self.server.python.warnings.push(v.to_string());
                Ok(())
            }
            "WSGIPythonEggs" => {
                let v = self.one_nonempty("a directory")?;
                put!(self.server.python.eggs, v.to_string())
            }
            "WSGIDontWriteBytecode" => put!(self.server.python.dont_write_bytecode, self.flag()?),
            "WSGIDestroyInterpreter" => {
                put!(self.server.python.destroy_interpreter, self.flag()?)
            }
            "WSGISwitchInterval" => {
                let v = values::positive_seconds(self.one("a number of seconds")?)?;
                match self.section_options() {
                    Some(o) => put!(o.switch_interval, v),
                    None => put!(self.server.python.switch_interval, v),
                }
            }
            "WSGIPerInterpreterGIL" => {
                let on = self.flag()?;
                match self.section_options() {
                    Some(o) => put!(o.per_interpreter_gil, on),
                    None => put!(self.server.python.per_interpreter_gil, on),
                }
            }
            "WSGIFreeThreading" => {
                let on = self.flag()?;
                match self.section_options() {
                    Some(o) => put!(o.free_threading, on),
                    None => put!(self.server.python.free_threading, on),
                }
            }
            "<WSGIInterpreterOptions" => self.interpreter_options(),
            "WSGIRestrictStdin" => {
                let on = self.flag()?;
                match self.section_options() {
                    Some(o) => put!(o.restrict_stdin, on),
                    None => put!(self.server.python.restrict_stdin, on),
                }
            }
            "WSGIRestrictStdout" => {
                let on = self.flag()?;
                match self.section_options() {
                    Some(o) => put!(o.restrict_stdout, on),
                    None => put!(self.server.python.restrict_stdout, on),
                }
            }
            "WSGIRestrictSignal" => {
                let on = self.flag()?;
                match self.section_options() {
                    Some(o) => put!(o.restrict_signal, on),
                    None => put!(self.server.python.restrict_signal, on),
                }
            }
            "WSGICaseSensitivity" => put!(self.server.python.case_sensitivity, self.flag()?),

            // Request handling (per directory).
            "WSGIPassAuthorization" => put!(self.dir.pass_authorization, self.flag()?),
            "WSGIScriptReloading" => put!(self.dir.script_reloading, self.flag()?),
            "WSGIErrorOverride" => put!(self.dir.error_override, self.flag()?),
            "WSGIChunkedRequest" => put!(self.dir.chunked_request, self.flag()?),
            "WSGIMapHEADToGET" => {
                let v = self.one("On, Off or Auto")?;
                let mode = match v.to_ascii_lowercase().as_str() {
                    "on" => MapHeadToGet::On,
                    "off" => MapHeadToGet::Off,
                    "auto" => MapHeadToGet::Auto,
                    _ => return Err(format!("expects On, Off or Auto, got '{v}'")),
                };
                put!(self.dir.map_head_to_get, mode)
            }
            "WSGIIgnoreActivity" => put!(self.dir.ignore_activity, self.flag()?),
            "WSGIEnableSendfile" => put!(self.dir.enable_sendfile, self.flag()?),
            "WSGITrustedProxyHeaders" => {
                let headers = self.at_least(1, "one or more header names")?;
                if let Some(bad) = headers.iter().find(|h| !is_header_name(h)) {
                    return Err(format!("'{bad}' is not a valid HTTP header name"));
                }
                // Repeated lines add up, as in mod_wsgi.
                let headers = headers.iter().map(|h| h.to_string());
                self.dir.trusted_proxy_headers.extend(headers);
                Ok(())
            }
            "WSGITrustedProxies" => {
                let addrs = self.at_least(1, "one or more addresses or networks")?;
                let proxies = addrs
                    .iter()
                    .map(|a| TrustedProxy::parse(a))
                    .collect::<Result<Vec<_>, _>>()?;
                self.dir.trusted_proxies.extend(proxies);
                Ok(())
            }
            "WSGIPassApacheRequest" => put!(self.dir.pass_apache_request, self.flag()?),

            // Daemon plumbing, metrics, misc (server-wide).
            "WSGISocketPrefix" => {
                let v = self.one_nonempty("a path prefix")?;
                put!(self.server.socket_prefix, v.to_string())
            }
            "WSGISocketRotation" => put!(self.server.socket_rotation, self.flag()?),
            "WSGIAcceptMutex" => {
                let v = self.one("a mutex mechanism")?;
                let lower = v.to_ascii_lowercase();
                if !ACCEPT_MUTEXES.contains(&lower.as_str()) {
                    return Err(format!(
                        "unknown mechanism '{v}'; allowed: {}",
                        ACCEPT_MUTEXES.join(", ")
                    ));
                }
                put!(self.server.accept_mutex, lower)
            }
            "WSGIServerMetrics" => put!(self.server.server_metrics, self.flag()?),
            "WSGISlowRequests" => {
                let v = self.one("a number of seconds")?;
                put!(self.server.slow_requests, values::seconds(v)?)
            }
            "WSGITelemetryService" => self.telemetry_service(),
            "WSGITelemetryOptions" => self.telemetry_options(),
            "WSGIVerboseDebugging" => {
                // mod_wsgi takes On/Off; both do nothing (LogLevel wsgi:debug
                // replaces it). A bare directive is tolerated too.
                let on = match self.args {
                    [] => true,
                    [v] => values::on_off(v)?,
                    _ => return Err(self.count_error("On or Off")),
                };
                put!(self.server.verbose_debugging, on)
            }
            other => Err(format!("internal error: no handler for {other}")),
        }
    }

    // ----- argument helpers -------------------------------------------

    fn count_error(&self, what: &str) -> String {
        format!(
            "expects exactly one argument ({what}), got {}",
            self.args.len()
        )
    }

    fn one(&self, what: &str) -> Result<&'w str, String> {
        match self.args {
            [v] => Ok(v),
            _ => Err(self.count_error(what)),
        }
    }

    fn one_nonempty(&self, what: &str) -> Result<&'w str, String> {
        let v = self.one(what)?;
        if v.is_empty() {
            return Err(format!("expects {what}, got an empty value"));
        }
        Ok(v)
    }

    fn flag(&self) -> Result<bool, String> {
        values::on_off(self.one("On or Off")?)
    }

    fn at_least(&self, n: usize, what: &str) -> Result<&'a [&'w str], String> {
        if self.args.len() < n {
            return Err(format!("expects {what}, got {} arguments", self.args.len()));
        }
        if let Some(i) = self.args.iter().position(|a| a.is_empty()) {
            return Err(format!("argument {} is empty", i + 1));
        }
        Ok(self.args)
    }

    /// Record a process-group name for `check()`. Names starting with "%{"
    /// (%{GLOBAL}, %{ENV:var}, ...) are resolved per request and cannot be
    /// checked; .htaccess never touches the server config.
    fn group_ref(&mut self, name: &str) {
        if self.scope == Scope::Htaccess || name.starts_with("%{") {
            return;
        }
        self.server.group_refs.push(GroupRef {
            name: name.to_string(),
            origin: self.origin.clone(),
            directive: self.spec.name,
        });
    }

    /// Parse `name=value` words allowed for this directive and record the
    /// group reference.
    fn script_options(
        &mut self,
        words: &[&str],
        allowed: &[&str],
    ) -> Result<ScriptOptions, String> {
        let mut opts = ScriptOptions::default();
        for word in words {
            let Some((name, value)) = values::split_option(word) else {
                return Err(format!(
                    "option '{word}' is not of the form name=value; allowed: {}",
                    allowed.join(", ")
                ));
            };
            if !allowed.contains(&name) {
                return Err(format!(
                    "unknown option '{name}'; allowed: {}",
                    allowed.join(", ")
                ));
            }
            if value.is_empty() {
                return Err(format!("option '{name}' has an empty value"));
            }
            match name {
                "process-group" => opts.process_group = Some(value.to_string()),
                "application-group" => opts.application_group = Some(value.to_string()),
                "callable-object" => opts.callable_object = Some(value.to_string()),
                "pass-authorization" => {
                    let on = values::on_off(value).map_err(|e| format!("option '{name}' {e}"))?;
                    opts.pass_authorization = Some(on);
                }
                _ => unreachable!("allowed lists only known options"),
            }
        }
        if let Some(pg) = &opts.process_group {
            let pg = pg.clone();
            self.group_ref(&pg);
        }
        Ok(opts)
    }

    // ----- directives with more to them --------------------------------

    fn script_alias(&mut self) -> Result<(), String> {
        let is_match = self.spec.name == "WSGIScriptAliasMatch";
        let args = self.args;
        let [url, target, rest @ ..] = args else {
            return Err(format!(
                "expects {} and a script path, then optional name=value options; got {} arguments",
                if is_match {
                    "a regular expression"
                } else {
                    "a URL path"
                },
                self.args.len()
            ));
        };
        if url.is_empty() || target.is_empty() {
            return Err("the URL and the script path must not be empty".into());
        }
        let matcher = if is_match {
            let re = self
                .regex
                .compile(url)
                .map_err(|e| format!("regular expression '{url}' does not compile: {e}"))?;
            AliasMatcher::Regex(re)
        } else {
            AliasMatcher::Prefix(url.to_string())
        };
        let options = self.script_options(rest, SCRIPT_ALIAS_OPTIONS)?;
        self.server.script_aliases.push(ScriptAlias {
            url: url.to_string(),
            matcher,
            target: target.to_string(),
            options,
            origin: self.origin.clone(),
        });
        Ok(())
    }

    fn daemon_process(&mut self) -> Result<(), String> {
        let args = self.args;
        let Some((&name, options)) = args.split_first() else {
            return Err("expects a group name, then optional name=value options".into());
        };
        validate_group_name(name)?;
        let options = DaemonOptions::parse(options)?;
        if let Some(first) = self.server.daemon_group(name) {
            return Err(format!(
                "daemon process group '{name}' is already defined at {}",
                first.origin
            ));
        }
        self.server.daemon_groups.push(DaemonGroup {
            name: name.to_string(),
            options,
            origin: self.origin.clone(),
        });
        Ok(())
    }

    fn import_script(&mut self) -> Result<(), String> {
        let args = self.args;
        let Some((&path, rest)) = args.split_first() else {
            return Err(
                "expects a script path, then process-group=NAME application-group=NAME".into(),
            );
        };
        if path.is_empty() {
            return Err("the script path must not be empty".into());
        }
        let opts = self.script_options(rest, GROUP_OPTIONS)?;
        let Some(process_group) = opts.process_group else {
            return Err(
                "requires the option process-group=NAME (%{GLOBAL} for embedded mode)".into(),
            );
        };
        let Some(application_group) = opts.application_group else {
            return Err(
                "requires the option application-group=NAME (%{GLOBAL} for the main interpreter)"
                    .into(),
            );
        };
        if !Path::new(path).is_file() {
            return Err(format!(
                "import script '{path}' does not exist or is not a file"
            ));
        }
        self.server.import_scripts.push(ImportScript {
            path: path.to_string(),
            process_group,
            application_group,
            origin: self.origin.clone(),
        });
        Ok(())
    }

    /// `path [options]` for the dispatch, access and auth scripts.
    fn script_file(&mut self, allowed: &[&str]) -> Result<ScriptFile, String> {
        let args = self.args;
        let Some((&path, rest)) = args.split_first() else {
            return Err(format!(
                "expects a script path, then optional options ({})",
                allowed.join(", ")
            ));
        };
        if path.is_empty() {
            return Err("the script path must not be empty".into());
        }
        let options = self.script_options(rest, allowed)?;
        Ok(ScriptFile {
            path: path.to_string(),
            options,
            origin: self.origin.clone(),
        })
    }

    fn handler_script(&mut self) -> Result<(), String> {
        let args = self.args;
        let [name, path, rest @ ..] = args else {
            return Err(format!(
                "expects a handler name and a script path, then optional options ({}); got {} arguments",
                HANDLER_OPTIONS.join(", "),
                self.args.len()
            ));
        };
        if name.is_empty() || path.is_empty() {
            return Err("the handler name and the script path must not be empty".into());
        }
        let options = self.script_options(rest, HANDLER_OPTIONS)?;
        self.dir.handler_scripts.retain(|h| h.name != *name);
        self.dir.handler_scripts.push(HandlerScript {
            name: name.to_string(),
            path: path.to_string(),
            options,
            origin: self.origin.clone(),
        });
        Ok(())
    }

    fn interpreter_options(&mut self) -> Result<(), String> {
        // Apache hands a section opener its arguments up to and including
        // the closing '>'; accept them with or without it.
        let mut args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        if let Some(last) = args.last_mut() {
            if let Some(stripped) = last.strip_suffix('>') {
                *last = stripped.to_string();
            }
            if last.is_empty() {
                args.pop();
            }
        }
        let mut section = InterpreterOptionsSection {
            process_group: None,
            application_group: None,
            options: InterpreterOptions::default(),
            origin: self.origin.clone(),
        };
        for word in &args {
            let Some((name, value)) = values::split_option(word) else {
                return Err(format!(
                    "selector '{word}' is not of the form name=value; allowed: {}",
                    GROUP_OPTIONS.join(", ")
                ));
            };
            // mod_wsgi compares selector names without regard to case, and
            // takes %{GLOBAL} (or nothing) for embedded mode / the main
            // interpreter.
            let slot = if name.eq_ignore_ascii_case("process-group") {
                &mut section.process_group
            } else if name.eq_ignore_ascii_case("application-group") {
                &mut section.application_group
            } else {
                return Err(format!(
                    "unknown selector '{name}'; allowed: {}",
                    GROUP_OPTIONS.join(", ")
                ));
            };
            if slot.is_some() {
                return Err(format!("selector '{name}' is given more than once"));
            }
            *slot = Some(if value == "%{GLOBAL}" { "" } else { value }.to_string());
        }
        // Not checked against the groups: a section at server level may
        // name a group any virtual host defines, as in mod_wsgi.
        self.server.python.interpreter_options.push(section);
        Ok(())
    }

    /// Inside `<WSGIInterpreterOptions>`: the options of the section being
    /// read (Apache walks a section's lines right after its opener).
    fn section_options(&mut self) -> Option<&mut InterpreterOptions> {
        if self.scope != Scope::InterpreterOptions {
            return None;
        }
        self.server
            .python
            .interpreter_options
            .last_mut()
            .map(|s| &mut s.options)
    }

    fn telemetry_service(&mut self) -> Result<(), String> {
        let args = self.args;
        let Some((&addr, rest)) = args.split_first() else {
            return Err("expects unix:/path/to/socket, then optional interval=SECONDS".into());
        };
        let socket = match addr.strip_prefix("unix:") {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => {
                return Err(format!(
                    "expects an address of the form unix:/path, got '{addr}'"
                ));
            }
        };
        let mut interval = None;
        for word in rest {
            match values::split_option(word) {
                Some(("interval", v)) => {
                    interval = Some(
                        values::positive_seconds(v)
                            .map_err(|e| format!("option 'interval' {e}"))?,
                    )
                }
                _ => return Err(format!("unknown option '{word}'; allowed: interval")),
            }
        }
        put!(
            self.server.telemetry_service,
            TelemetryService { socket, interval }
        )
    }

    fn telemetry_options(&mut self) -> Result<(), String> {
        let tokens = self.at_least(1, "[+|-]Flag ... or None or All")?;
        let absolute = tokens
            .iter()
            .filter(|t| t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("all"))
            .count();
        if absolute > 0 && tokens.len() > 1 {
            return Err("None and All must stand alone on the line".into());
        }
        let signed = |t: &&str| t.len() > 1 && (t.starts_with('+') || t.starts_with('-'));
        if absolute == 0
            && let Some(bad) = tokens.iter().find(|t| !signed(t))
        {
            return Err(format!(
                "expects +Flag or -Flag tokens, or None or All alone; got '{bad}'"
            ));
        }
        let tokens = tokens.iter().map(|t| t.to_string());
        self.server.telemetry_options.extend(tokens);
        Ok(())
    }
}

/// Daemon group names become socket file names and are matched against
/// WSGIProcessGroup values, which treat "%{...}" specially.
fn validate_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the daemon process group name must not be empty".into());
    }
    if name.contains('/') {
        return Err(format!(
            "daemon process group name '{name}' must not contain '/'"
        ));
    }
    if name.starts_with("%{") {
        return Err(format!(
            "daemon process group name '{name}' must not start with '%{{' (reserved for %{{GLOBAL}}, %{{ENV:...}})"
        ));
    }
    Ok(())
}

/// RFC 9110 token characters.
fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::directives;

    fn origin(line: u32) -> Origin {
        Origin {
            file: "/etc/apache2/wsgi.conf".into(),
            line,
        }
    }

    /// A server config and its default per-dir config, fed directives.
    #[derive(Default)]
    struct Conf {
        server: ServerConfig,
        dir: DirConfig,
        line: u32,
    }

    impl Conf {
        fn at(&mut self, scope: Scope, name: &str, args: &[&str]) -> Result<(), ConfigError> {
            self.line += 1;
            let index = directives::index_of(name).expect(name);
            apply(
                index,
                args,
                scope,
                &origin(self.line),
                &mut self.server,
                &mut self.dir,
                &super::super::server::RustRegex,
            )
        }
        fn ok(&mut self, name: &str, args: &[&str]) -> &mut Self {
            self.at(Scope::Server, name, args)
                .unwrap_or_else(|e| panic!("{name} {args:?}: {e}"));
            self
        }
        fn err(&mut self, name: &str, args: &[&str]) -> String {
            match self.at(Scope::Server, name, args) {
                Ok(()) => panic!("{name} {args:?} was accepted"),
                Err(e) => {
                    assert_eq!(e.directive, name);
                    e.to_string()
                }
            }
        }
    }

    fn conf() -> Conf {
        Conf::default()
    }

    #[test]
    fn bad_index_is_an_error_not_a_panic() {
        let mut c = conf();
        let e = apply(
            999,
            &[],
            Scope::Server,
            &origin(1),
            &mut c.server,
            &mut c.dir,
            &super::super::server::RustRegex,
        );
        assert!(e.unwrap_err().message.contains("index 999"));
    }

    #[test]
    fn script_alias_prefix_and_options() {
        let mut c = conf();
        c.ok(
            "WSGIScriptAlias",
            &[
                "/app",
                "/srv/app.wsgi",
                "process-group=grp",
                "application-group=%{GLOBAL}",
                "callable-object=app",
                "pass-authorization=on",
            ],
        );
        let a = &c.server.script_aliases[0];
        assert_eq!(a.url, "/app");
        assert_eq!(a.matcher, AliasMatcher::Prefix("/app".into()));
        assert_eq!(a.target, "/srv/app.wsgi");
        assert_eq!(a.options.process_group.as_deref(), Some("grp"));
        assert_eq!(a.options.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(a.options.callable_object.as_deref(), Some("app"));
        assert_eq!(a.options.pass_authorization, Some(true));
        assert_eq!(a.origin, origin(1));
        assert_eq!(c.server.group_refs[0].name, "grp");
        assert_eq!(c.server.group_refs[0].directive, "WSGIScriptAlias");
        // Implemented directive, %{GLOBAL} application group: nothing to warn.
        assert!(c.server.used_not_yet.is_empty());
    }

    #[test]
    fn script_alias_errors() {
        let mut c = conf();
        let e = c.err("WSGIScriptAlias", &["/app"]);
        assert!(e.contains("expects a URL path and a script path"), "{e}");
        let e = c.err("WSGIScriptAlias", &["/app", "/x.wsgi", "bogus=1"]);
        assert!(e.contains("unknown option 'bogus'; allowed: process-group, application-group, callable-object, pass-authorization"), "{e}");
        let e = c.err("WSGIScriptAlias", &["/app", "/x.wsgi", "process-group"]);
        assert!(e.contains("not of the form name=value"), "{e}");
        let e = c.err("WSGIScriptAlias", &["/app", "/x.wsgi", "process-group="]);
        assert!(
            e.contains("option 'process-group' has an empty value"),
            "{e}"
        );
        let e = c.err(
            "WSGIScriptAlias",
            &["/app", "/x.wsgi", "pass-authorization=yes"],
        );
        assert!(
            e.ends_with("option 'pass-authorization' expects On or Off, got 'yes'"),
            "{e}"
        );
        assert!(c.server.script_aliases.is_empty());
    }

    #[test]
    fn script_alias_match_compiles_and_maps() {
        let mut c = conf();
        c.ok("WSGIScriptAliasMatch", &["^/wsgi/([^/]+)", "/srv/$1.wsgi"]);
        let a = &c.server.script_aliases[0];
        assert_eq!(a.url, "^/wsgi/([^/]+)");
        assert_eq!(
            a.map(b"/wsgi/shop/cart"),
            Some((10, b"/srv/shop.wsgi".to_vec()))
        );
        let e = c.err("WSGIScriptAliasMatch", &["^/(unclosed", "/srv/$1.wsgi"]);
        assert!(
            e.starts_with(
                "WSGIScriptAliasMatch: regular expression '^/(unclosed' does not compile"
            ),
            "{e}"
        );
    }

    #[test]
    fn application_group_option_is_stored_without_warning() {
        let mut c = conf();
        c.ok(
            "WSGIScriptAlias",
            &["/a", "/a.wsgi", "application-group=shop"],
        );
        let a = &c.server.script_aliases[0];
        assert_eq!(a.options.application_group.as_deref(), Some("shop"));
        // Sub-interpreters are implemented: nothing to warn about.
        assert!(c.server.used_not_yet.is_empty());
    }

    #[test]
    fn daemon_process_is_stored_and_noted() {
        let mut c = conf();
        c.ok("WSGIDaemonProcess", &["shop", "processes=2", "threads=4"]);
        let g = &c.server.daemon_groups[0];
        assert_eq!(g.name, "shop");
        assert_eq!(g.options.processes, 2);
        assert_eq!(g.options.threads_total(), 7);
        assert_eq!(g.origin, origin(1));
        // Daemon mode is implemented: nothing to warn about.
        assert!(c.server.used_not_yet.is_empty());
        c.ok("WSGIDaemonProcess", &["other"]);
        assert_eq!(c.server.daemon_groups.len(), 2);
    }

    #[test]
    fn daemon_process_errors() {
        let mut c = conf();
        assert_eq!(
            c.err("WSGIDaemonProcess", &["g", "threads=abc"]),
            "WSGIDaemonProcess: option 'threads' must be a whole number >= 0, got 'abc'"
        );
        let e = c.err("WSGIDaemonProcess", &["g", "thread=4"]);
        assert!(e.starts_with("WSGIDaemonProcess: unknown option 'thread'; allowed: processes, threads, display-name"), "{e}");
        let e = c.err("WSGIDaemonProcess", &["g", "user=root"]);
        assert!(e.contains("daemon processes may not run as root"), "{e}");
        let e = c.err("WSGIDaemonProcess", &[]);
        assert!(e.contains("expects a group name"), "{e}");
        let e = c.err("WSGIDaemonProcess", &["a/b"]);
        assert!(e.contains("must not contain '/'"), "{e}");
        let e = c.err("WSGIDaemonProcess", &[""]);
        assert!(e.contains("must not be empty"), "{e}");
        let e = c.err("WSGIDaemonProcess", &["%{GLOBAL}"]);
        assert!(e.contains("must not start with '%{'"), "{e}");
        assert!(c.server.daemon_groups.is_empty());
    }

    #[test]
    fn duplicate_daemon_group_in_one_server_names_first_origin() {
        let mut c = conf();
        c.ok("WSGIDaemonProcess", &["shop"]);
        let e = c.err("WSGIDaemonProcess", &["shop", "threads=2"]);
        assert_eq!(
            e,
            "WSGIDaemonProcess: daemon process group 'shop' is already defined at /etc/apache2/wsgi.conf:1"
        );
    }

    #[test]
    fn server_only_directives_refused_in_vhost_and_sections() {
        let mut c = conf();
        let e = c
            .at(Scope::VirtualHost, "WSGIPythonHome", &["/opt/venv"])
            .unwrap_err();
        assert_eq!(e.directive, "WSGIPythonHome");
        assert!(
            e.message
                .starts_with("cannot occur within <VirtualHost> section"),
            "{e}"
        );
        let e = c
            .at(Scope::Directory, "WSGIImportScript", &["/x"])
            .unwrap_err();
        assert!(e.message.contains("<Directory>"), "{e}");
        let e = c
            .at(Scope::Directory, "WSGIScriptAlias", &["/a", "/b"])
            .unwrap_err();
        assert!(e.message.contains("<Directory>"), "{e}");
        let e = c
            .at(Scope::Htaccess, "WSGIProcessGroup", &["g"])
            .unwrap_err();
        assert!(e.message.contains(".htaccess"), "{e}");
        let e = c
            .at(Scope::Server, "WSGIAccessScript", &["/x"])
            .unwrap_err();
        assert!(e.message.contains("only allowed inside <Directory>"), "{e}");
        assert!(c.server.python.home.is_none());
        // ServerVhost directives are fine in a vhost.
        c.at(Scope::VirtualHost, "WSGIDaemonProcess", &["v"])
            .unwrap();
    }

    #[test]
    fn process_and_application_group() {
        let mut c = conf();
        c.at(Scope::Directory, "WSGIProcessGroup", &["shop"])
            .unwrap();
        assert_eq!(c.dir.process_group(), "shop");
        assert_eq!(c.server.group_refs.len(), 1);
        assert_eq!(c.server.group_refs[0].directive, "WSGIProcessGroup");
        c.ok("WSGIProcessGroup", &["%{GLOBAL}"]);
        c.ok("WSGIProcessGroup", &["%{ENV:GROUP}"]);
        assert_eq!(c.server.group_refs.len(), 1);
        let e = c.err("WSGIProcessGroup", &["a", "b"]);
        assert!(
            e.contains("expects exactly one argument (a process group name), got 2"),
            "{e}"
        );

        let mut c = conf();
        c.ok("WSGIApplicationGroup", &["%{GLOBAL}"]);
        c.ok("WSGIProcessGroup", &["%{GLOBAL}"]);
        c.ok("WSGIApplicationGroup", &["%{RESOURCE}"]);
        assert_eq!(c.dir.application_group(), "%{RESOURCE}");
        c.ok("WSGIApplicationGroup", &["shop"]);
        assert_eq!(c.dir.application_group(), "shop");
        assert!(c.server.used_not_yet.is_empty(), "all implemented");
    }

    #[test]
    fn callable_object_in_htaccess_leaves_server_alone() {
        let mut c = conf();
        c.at(Scope::Htaccess, "WSGICallableObject", &["app"])
            .unwrap();
        assert_eq!(c.dir.callable_object(), "app");
        c.at(Scope::Htaccess, "WSGIScriptReloading", &["Off"])
            .unwrap();
        c.at(
            Scope::Htaccess,
            "WSGIHandlerScript",
            &["h", "/h.py", "process-group=g"],
        )
        .unwrap();
        assert!(c.server.used_not_yet.is_empty());
        assert!(c.server.group_refs.is_empty());
        assert!(!c.dir.script_reloading());
    }

    #[test]
    fn on_off_flags_everywhere() {
        let flags = [
            "WSGIRestrictEmbedded",
            "WSGIDontWriteBytecode",
            "WSGIDestroyInterpreter",
            "WSGIPerInterpreterGIL",
            "WSGIFreeThreading",
            "WSGIRestrictStdin",
            "WSGIRestrictStdout",
            "WSGIRestrictSignal",
            "WSGICaseSensitivity",
            "WSGIPassAuthorization",
            "WSGIScriptReloading",
            "WSGIErrorOverride",
            "WSGIChunkedRequest",
            "WSGIIgnoreActivity",
            "WSGIEnableSendfile",
            "WSGIPassApacheRequest",
            "WSGISocketRotation",
            "WSGIServerMetrics",
            "WSGIVerboseDebugging",
        ];
        for name in flags {
            let mut c = conf();
            c.ok(name, &["ON"]).ok(name, &["off"]);
            assert_eq!(
                c.err(name, &["yes"]),
                format!("{name}: expects On or Off, got 'yes'")
            );
            let e = c.err(name, &["On", "Off"]);
            assert!(
                e.contains("expects exactly one argument (On or Off), got 2"),
                "{e}"
            );
        }
        let mut c = conf();
        c.ok("WSGIScriptReloading", &["Off"])
            .ok("WSGIDestroyInterpreter", &["Off"])
            .ok("WSGIRestrictEmbedded", &["On"]);
        assert!(!c.dir.script_reloading());
        assert!(!c.server.python.destroy_interpreter());
        assert!(c.server.restrict_embedded());
        // Auth flag lives in directories only.
        c.at(Scope::Directory, "WSGIGroupAuthoritative", &["Off"])
            .unwrap();
        assert!(!c.dir.group_authoritative());
        assert!(
            c.at(Scope::Directory, "WSGIGroupAuthoritative", &["no"])
                .is_err()
        );
    }

    #[test]
    fn map_head_to_get() {
        let mut c = conf();
        c.ok("WSGIMapHEADToGET", &["auto"]);
        assert_eq!(c.dir.map_head_to_get, Some(MapHeadToGet::Auto));
        c.ok("WSGIMapHEADToGET", &["Off"]);
        assert_eq!(c.dir.map_head_to_get(), MapHeadToGet::Off);
        assert_eq!(
            c.err("WSGIMapHEADToGET", &["sometimes"]),
            "WSGIMapHEADToGET: expects On, Off or Auto, got 'sometimes'"
        );
    }

    #[test]
    fn python_settings() {
        let mut c = conf();
        c.ok("WSGIPythonHome", &["/opt/venv"])
            .ok("WSGIPythonPath", &["/srv/a:/srv/b"])
            .ok("WSGIPythonOptimize", &["2"])
            .ok("WSGIPythonHashSeed", &["4294967295"])
            .ok("WSGIPythonWarnings", &["ignore::DeprecationWarning"])
            .ok("WSGIPythonWarnings", &["error"])
            .ok("WSGIPythonEggs", &["/tmp/eggs"])
            .ok("WSGISwitchInterval", &["0.002"]);
        let p = &c.server.python;
        assert_eq!(p.home.as_deref(), Some("/opt/venv"));
        assert_eq!(p.path, ["/srv/a", "/srv/b"]);
        assert_eq!(p.optimize(), 2);
        assert_eq!(p.hash_seed(), HashSeed::Value(u32::MAX));
        assert_eq!(p.warnings, ["ignore::DeprecationWarning", "error"]);
        assert_eq!(p.switch_interval, Some(Duration::from_millis(2)));
        c.ok("WSGIPythonHashSeed", &["random"]);
        assert_eq!(c.server.python.hash_seed(), HashSeed::Random);

        assert_eq!(
            c.err("WSGIPythonOptimize", &["3"]),
            "WSGIPythonOptimize: expects 0, 1 or 2, got '3'"
        );
        for bad in ["4294967296", "-1", "rand", "1.5"] {
            let e = c.err("WSGIPythonHashSeed", &[bad]);
            assert!(
                e.contains("'random' or a whole number from 0 to 4294967295"),
                "{e}"
            );
        }
        assert!(c.err("WSGISwitchInterval", &["0"]).contains("> 0"));
        assert!(
            c.err("WSGIPythonPath", &[":"])
                .contains("directories separated by ':'")
        );
        assert!(
            c.err("WSGIPythonHome", &[])
                .contains("expects exactly one argument")
        );
        assert!(c.err("WSGIPythonHome", &[""]).contains("empty value"));
    }

    #[test]
    fn import_script_requires_groups_and_file() {
        let script = std::env::temp_dir().join(format!("mwrs-import-{}.py", std::process::id()));
        std::fs::write(&script, "").unwrap();
        let path = script.to_str().unwrap();
        let mut c = conf();
        c.ok(
            "WSGIImportScript",
            &[path, "process-group=shop", "application-group=%{GLOBAL}"],
        );
        let i = &c.server.import_scripts[0];
        assert_eq!(
            (i.process_group.as_str(), i.application_group.as_str()),
            ("shop", "%{GLOBAL}")
        );
        assert_eq!(c.server.group_refs[0].directive, "WSGIImportScript");

        let e = c.err("WSGIImportScript", &[path, "application-group=%{GLOBAL}"]);
        assert!(e.contains("requires the option process-group=NAME"), "{e}");
        let e = c.err("WSGIImportScript", &[path, "process-group=%{GLOBAL}"]);
        assert!(
            e.contains("requires the option application-group=NAME"),
            "{e}"
        );
        let e = c.err(
            "WSGIImportScript",
            &[
                path,
                "process-group=g",
                "application-group=a",
                "callable-object=x",
            ],
        );
        assert!(
            e.contains(
                "unknown option 'callable-object'; allowed: process-group, application-group"
            ),
            "{e}"
        );
        let e = c.err(
            "WSGIImportScript",
            &[
                "/no/such/script.py",
                "process-group=%{GLOBAL}",
                "application-group=%{GLOBAL}",
            ],
        );
        assert!(
            e.contains("import script '/no/such/script.py' does not exist"),
            "{e}"
        );
        std::fs::remove_file(&script).unwrap();
    }

    #[test]
    fn script_directives_in_directories() {
        let mut c = conf();
        for name in [
            "WSGIAccessScript",
            "WSGIAuthUserScript",
            "WSGIAuthGroupScript",
        ] {
            c.at(
                Scope::Directory,
                name,
                &["/srv/auth.py", "application-group=auth"],
            )
            .unwrap();
            let e = c
                .at(
                    Scope::Directory,
                    name,
                    &["/srv/auth.py", "callable-object=x"],
                )
                .unwrap_err();
            assert!(
                e.message.contains("unknown option 'callable-object'"),
                "{e}"
            );
            assert!(c.at(Scope::Htaccess, name, &[]).is_err());
        }
        assert_eq!(c.dir.access_script.as_ref().unwrap().path, "/srv/auth.py");
        assert_eq!(
            c.dir
                .auth_user_script
                .as_ref()
                .unwrap()
                .options
                .application_group
                .as_deref(),
            Some("auth")
        );
        assert!(c.dir.auth_group_script.is_some());

        c.ok(
            "WSGIDispatchScript",
            &["/srv/dispatch.py", "process-group=g"],
        );
        assert_eq!(
            c.dir
                .dispatch_script
                .as_ref()
                .unwrap()
                .options
                .process_group
                .as_deref(),
            Some("g")
        );

        c.ok("WSGIHandlerScript", &["h", "/srv/h1.py"]).ok(
            "WSGIHandlerScript",
            &["h", "/srv/h2.py", "pass-authorization=Off"],
        );
        assert_eq!(c.dir.handler_scripts.len(), 1);
        assert_eq!(c.dir.handler_script("h").unwrap().path, "/srv/h2.py");
        assert!(
            c.err("WSGIHandlerScript", &["h"])
                .contains("expects a handler name and a script path")
        );
    }

    #[test]
    fn restrict_process_records_refs() {
        let mut c = conf();
        c.at(
            Scope::Directory,
            "WSGIRestrictProcess",
            &["a", "%{GLOBAL}", "b"],
        )
        .unwrap();
        assert_eq!(c.dir.restrict_process, ["a", "%{GLOBAL}", "b"]);
        let names: Vec<_> = c
            .server
            .group_refs
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(c.err("WSGIRestrictProcess", &[]).contains("one or more"));
    }

    #[test]
    fn trusted_proxies_and_headers() {
        let mut c = conf();
        c.ok(
            "WSGITrustedProxyHeaders",
            &["X-Forwarded-For", "X-Forwarded-Proto"],
        )
        .ok("WSGITrustedProxyHeaders", &["X-Real-IP"])
        .ok("WSGITrustedProxies", &["10.0.0.0/8", "::1"]);
        assert_eq!(c.dir.trusted_proxy_headers.len(), 3);
        assert!(c.dir.is_trusted_proxy("10.9.8.7".parse().unwrap()));
        assert!(!c.dir.is_trusted_proxy("192.168.0.1".parse().unwrap()));
        let e = c.err("WSGITrustedProxies", &["10.0.0.1", "proxy.example.com"]);
        assert!(
            e.contains("'proxy.example.com' is not an IP address or network"),
            "{e}"
        );
        assert_eq!(c.dir.trusted_proxies.len(), 2, "nothing added on error");
        assert!(
            c.err("WSGITrustedProxyHeaders", &["X Forwarded"])
                .contains("not a valid HTTP header name")
        );
        assert!(c.err("WSGITrustedProxies", &[]).contains("one or more"));
    }

    #[test]
    fn plumbing_directives() {
        let mut c = conf();
        c.ok("WSGISocketPrefix", &["run/wsgi"])
            .ok("WSGIAcceptMutex", &["FLOCK"])
            .ok("WSGISlowRequests", &["2.5"])
            .ok(
                "WSGITelemetryService",
                &["unix:/run/tele.sock", "interval=10"],
            )
            .ok("WSGITelemetryOptions", &["+CaptureUserAgent"])
            .ok("WSGITelemetryOptions", &["None"])
            .ok("WSGIVerboseDebugging", &[]);
        assert_eq!(c.server.socket_prefix.as_deref(), Some("run/wsgi"));
        assert_eq!(c.server.accept_mutex(), "flock");
        assert_eq!(c.server.slow_requests, Some(Duration::from_millis(2500)));
        let t = c.server.telemetry_service.as_ref().unwrap();
        assert_eq!(t.socket, "/run/tele.sock");
        assert_eq!(t.interval, Some(Duration::from_secs(10)));
        assert_eq!(c.server.telemetry_options, ["+CaptureUserAgent", "None"]);

        let e = c.err("WSGIAcceptMutex", &["spin"]);
        assert!(
            e.contains("unknown mechanism 'spin'; allowed: default, flock"),
            "{e}"
        );
        assert!(c.err("WSGISlowRequests", &["-1"]).contains("seconds >= 0"));
        assert!(
            c.err("WSGITelemetryService", &["/run/x.sock"])
                .contains("unix:/path")
        );
        assert!(
            c.err("WSGITelemetryService", &["unix:/x", "every=5"])
                .contains("unknown option")
        );
        assert!(
            c.err("WSGITelemetryOptions", &["All", "+X"])
                .contains("stand alone")
        );
        assert!(
            c.err("WSGITelemetryOptions", &["CaptureUserAgent"])
                .contains("+Flag")
        );
    }

    #[test]
    fn interpreter_options_section() {
        let mut c = conf();
        c.ok(
            "<WSGIInterpreterOptions",
            &["process-group=g", "application-group=a>"],
        )
        .ok("<WSGIInterpreterOptions", &[">"])
        .ok("<WSGIInterpreterOptions", &[]);
        let s = &c.server.python.interpreter_options;
        assert_eq!(s[0].process_group.as_deref(), Some("g"));
        assert_eq!(s[0].application_group.as_deref(), Some("a"));
        assert!(s[1].process_group.is_none() && s[2].application_group.is_none());
        c.ok("<WSGIInterpreterOptions", &["Application-Group=%{GLOBAL}>"]);
        assert_eq!(
            c.server.python.interpreter_options[3]
                .application_group
                .as_deref(),
            Some("")
        );
        let e = c.err(
            "<WSGIInterpreterOptions",
            &["process-group=a", "PROCESS-GROUP=b"],
        );
        assert!(e.contains("given more than once"), "{e}");
        let e = c.err("<WSGIInterpreterOptions", &["group=g>"]);
        assert!(
            e.starts_with("<WSGIInterpreterOptions: unknown selector 'group'"),
            "{e}"
        );
        let e = c
            .at(Scope::VirtualHost, "<WSGIInterpreterOptions", &[">"])
            .unwrap_err();
        assert!(e.message.contains("<VirtualHost>"));
    }

    /// The directives of a section set its options, the others are refused
    /// there; which sections apply to an interpreter follows mod_wsgi.
    #[test]
    fn interpreter_options_section_body() {
        let mut c = conf();
        c.ok("WSGIPythonPath", &["/server"]);
        c.ok("<WSGIInterpreterOptions", &["application-group=a>"]);
        c.at(Scope::InterpreterOptions, "WSGIPythonPath", &["/a1:/a2"])
            .unwrap();
        c.at(Scope::InterpreterOptions, "WSGIRestrictStdout", &["On"])
            .unwrap();
        let e = c
            .at(Scope::InterpreterOptions, "WSGIScriptAlias", &["/x", "/y"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "cannot occur inside <WSGIInterpreterOptions>; allowed there: WSGIPythonPath"
            ),
            "{e}"
        );
        c.ok(
            "<WSGIInterpreterOptions",
            &["process-group=g", "application-group=a>"],
        );
        c.at(Scope::InterpreterOptions, "WSGIPythonPath", &["/ga"])
            .unwrap();
        c.ok("<WSGIInterpreterOptions", &["process-group=g>"]);
        c.at(Scope::InterpreterOptions, "WSGIPythonPath", &["/g"])
            .unwrap();
        c.at(Scope::InterpreterOptions, "WSGIRestrictStdout", &["Off"])
            .unwrap();
        c.ok("WSGIDaemonProcess", &["g"]);
        // The server-wide value is untouched by the sections.
        assert_eq!(c.server.python.path, ["/server"]);
        let path = |g: &str, a: &str| c.server.python.interpreter_options_for(g, a).python_path;
        let dirs = |d: &[&str]| Some(d.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // Paths add up: less specific sections first, then file order.
        assert_eq!(path("g", "a"), dirs(&["/a1", "/a2", "/g", "/ga"]));
        assert_eq!(path("", "a"), dirs(&["/a1", "/a2"]));
        assert_eq!(path("g", "b"), dirs(&["/g"]));
        assert_eq!(path("", "b"), None);
        // Per setting: restrict-stdout is set by the application section
        // (On) and by the later, equally specific group section (Off).
        let o = c.server.python.interpreter_options_for("g", "a");
        assert_eq!(o.restrict_stdout, Some(false));
        assert_eq!(
            c.server
                .python
                .interpreter_options_for("", "a")
                .restrict_stdout,
            Some(true)
        );
    }

    /// WSGIFreeThreading is one setting per process: the server-wide
    /// value, a section for every process group over it, a section for the
    /// process's own group over that; a section naming an application
    /// group is ignored (and reported).
    #[test]
    fn free_threading_is_resolved_per_process_group() {
        let mut c = conf();
        assert!(!c.server.python.free_threading_for(""));
        c.ok("WSGIFreeThreading", &["On"]);
        c.ok("<WSGIInterpreterOptions", &["process-group=off>"]);
        c.at(Scope::InterpreterOptions, "WSGIFreeThreading", &["Off"])
            .unwrap();
        c.ok("<WSGIInterpreterOptions", &["application-group=a>"]);
        c.at(Scope::InterpreterOptions, "WSGIFreeThreading", &["Off"])
            .unwrap();
        let python = &c.server.python;
        assert!(python.free_threading_for(""));
        assert!(python.free_threading_for("g"));
        assert!(!python.free_threading_for("off"));
        assert_eq!(python.free_threading_scoped_to_groups().len(), 1);
        // A later section for every group overrides the server-wide value
        // but not the one naming the process group.
        c.ok("<WSGIInterpreterOptions", &[">"]);
        c.at(Scope::InterpreterOptions, "WSGIFreeThreading", &["Off"])
            .unwrap();
        c.ok("<WSGIInterpreterOptions", &["process-group=on>"]);
        c.at(Scope::InterpreterOptions, "WSGIFreeThreading", &["On"])
            .unwrap();
        let python = &c.server.python;
        assert!(!python.free_threading_for(""));
        assert!(python.free_threading_for("on"));
        assert!(!python.free_threading_for("off"));
    }

    #[test]
    fn not_yet_directives_are_recorded_once_and_implemented_ones_not() {
        let mut c = conf();
        c.ok("WSGIPerInterpreterGIL", &["On"])
            .ok("WSGIPerInterpreterGIL", &["Off"])
            .ok("WSGIPythonHome", &["/v"])
            .ok("WSGIIgnoreActivity", &["On"])
            .ok("WSGIFreeThreading", &["On"]);
        let names: Vec<_> = c
            .server
            .used_not_yet
            .iter()
            .map(|&i| DIRECTIVES[i].name)
            .collect();
        assert_eq!(names, ["WSGIPerInterpreterGIL"]);
        // A failed directive is not recorded.
        let _ = c.err("WSGIPerInterpreterGIL", &["x"]);
        assert_eq!(c.server.used_not_yet.len(), 1);
    }

    /// Every directive can be applied in some scope with some arguments:
    /// guards against a table entry without a handler.
    #[test]
    fn every_directive_has_a_handler() {
        for (i, spec) in DIRECTIVES.iter().enumerate() {
            let scope = match spec.context {
                Context::DirHtaccessAuth => Scope::Directory,
                _ => Scope::Server,
            };
            let mut c = conf();
            let r = apply(
                i,
                &["x", "y", "z"],
                scope,
                &origin(1),
                &mut c.server,
                &mut c.dir,
                &super::super::server::RustRegex,
            );
            if let Err(e) = r {
                assert!(!e.message.contains("internal error"), "{}: {e}", spec.name);
            }
        }
    }
}
