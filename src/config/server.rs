//! Per-server configuration: what the main server or one `<VirtualHost>`
//! says about URL mapping, daemon groups and process-wide Python settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Origin;
use super::daemon::DaemonGroup;

/// Per-server settings. Everything that is S V D [H] lives in
/// [`DirConfig`](super::DirConfig) instead.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// WSGIScriptAlias / WSGIScriptAliasMatch, in configuration order
    /// (first match wins, as mod_alias).
    pub script_aliases: Vec<ScriptAlias>,
    pub daemon_groups: Vec<DaemonGroup>,
    /// Process-group names this server refers to, checked by `check()`.
    pub group_refs: Vec<GroupRef>,
    /// Indexes into DIRECTIVES of NotYet directives seen, each once.
    pub used_not_yet: Vec<usize>,
    pub python: PythonSettings,
    pub restrict_embedded: Option<bool>,
    pub import_scripts: Vec<ImportScript>,
    /// As written; the edge resolves it against ServerRoot.
    pub socket_prefix: Option<String>,
    pub socket_rotation: Option<bool>,
    /// Lower-cased mechanism name ("default", "flock", ...).
    pub accept_mutex: Option<String>,
    pub server_metrics: Option<bool>,
    pub slow_requests: Option<Duration>,
    pub telemetry_service: Option<TelemetryService>,
    /// WSGITelemetryOptions tokens, all lines in order (they layer).
    pub telemetry_options: Vec<String>,
    /// WSGIVerboseDebugging: accepted for compatibility, has no effect.
    pub verbose_debugging: Option<bool>,
}

impl ServerConfig {
    /// Accessors for the server-wide flags, with mod_wsgi's defaults.
    pub fn restrict_embedded(&self) -> bool {
        self.restrict_embedded.unwrap_or(false)
    }
    pub fn socket_rotation(&self) -> bool {
        self.socket_rotation.unwrap_or(true)
    }
    pub fn accept_mutex(&self) -> &str {
        self.accept_mutex.as_deref().unwrap_or("default")
    }
    pub fn server_metrics(&self) -> bool {
        self.server_metrics.unwrap_or(false)
    }

    /// The daemon group called `name` defined in this server.
    pub fn daemon_group(&self, name: &str) -> Option<&DaemonGroup> {
        self.daemon_groups.iter().find(|g| g.name == name)
    }

    /// Config of a virtual host as Apache sees it: `base` is the main
    /// server, `add` the vhost.
    ///
    /// The vhost's script aliases are tried before the main server's
    /// (mod_alias order), its daemon groups are listed before the main
    /// server's, and all process-wide settings (Python, sockets, telemetry,
    /// import scripts) come from the main server, where they may only be
    /// set. `group_refs` stay the vhost's own: `check()` validates them on
    /// the unmerged configs.
    pub fn merge(base: &ServerConfig, add: &ServerConfig) -> ServerConfig {
        let mut merged = base.clone();
        merged.script_aliases = add
            .script_aliases
            .iter()
            .chain(&base.script_aliases)
            .cloned()
            .collect();
        merged.daemon_groups = add
            .daemon_groups
            .iter()
            .chain(&base.daemon_groups)
            .cloned()
            .collect();
        merged.group_refs = add.group_refs.clone();
        for &i in &add.used_not_yet {
            if !merged.used_not_yet.contains(&i) {
                merged.used_not_yet.push(i);
            }
        }
        merged
    }

    /// Remember that a NotYet directive was used (each index once).
    pub(crate) fn note_not_yet(&mut self, index: usize) {
        if !self.used_not_yet.contains(&index) {
            self.used_not_yet.push(index);
        }
    }
}

/// Process-wide Python settings (main server only). `None` = not set;
/// the accessors give mod_wsgi's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonSettings {
    pub home: Option<String>,
    /// WSGIPythonPath split on ':' (empty = not set).
    pub path: Vec<String>,
    pub optimize: Option<u8>,
    pub hash_seed: Option<HashSeed>,
    /// One entry per WSGIPythonWarnings line.
    pub warnings: Vec<String>,
    pub eggs: Option<String>,
    pub dont_write_bytecode: Option<bool>,
    pub destroy_interpreter: Option<bool>,
    /// None = Python's own (0.005 s).
    pub switch_interval: Option<Duration>,
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub case_sensitivity: Option<bool>,
    /// `<WSGIInterpreterOptions>` sections, in file order.
    pub interpreter_options: Vec<InterpreterOptionsSection>,
}

impl PythonSettings {
    pub fn optimize(&self) -> u8 {
        self.optimize.unwrap_or(0)
    }
    pub fn hash_seed(&self) -> HashSeed {
        self.hash_seed.unwrap_or(HashSeed::Random)
    }
    pub fn dont_write_bytecode(&self) -> bool {
        self.dont_write_bytecode.unwrap_or(false)
    }
    pub fn destroy_interpreter(&self) -> bool {
        self.destroy_interpreter.unwrap_or(true)
    }
    pub fn per_interpreter_gil(&self) -> bool {
        self.per_interpreter_gil.unwrap_or(false)
    }
    pub fn free_threading(&self) -> bool {
        self.free_threading.unwrap_or(false)
    }
    pub fn restrict_stdin(&self) -> bool {
        self.restrict_stdin.unwrap_or(false)
    }
    pub fn restrict_stdout(&self) -> bool {
        self.restrict_stdout.unwrap_or(false)
    }
    pub fn restrict_signal(&self) -> bool {
        self.restrict_signal.unwrap_or(true)
    }
    pub fn case_sensitivity(&self) -> bool {
        self.case_sensitivity.unwrap_or(true)
    }
}

/// WSGIPythonHashSeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    Random,
    Value(u32),
}

/// Options shared by WSGIScriptAlias(Match) and the script directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptOptions {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
}

/// Byte spans of the whole match (`[0]`) and of groups 1 to 9 (`None`
/// for a group that took no part), as `ap_regexec` reports them.
pub type Captures = [Option<(usize, usize)>; 10];

/// A compiled WSGIScriptAliasMatch expression. The Apache edge compiles it
/// with Apache's own engine (`ap_regcomp`, PCRE), so look-around and
/// back-references mean what they mean to mod_wsgi and mod_alias.
pub trait UrlRegex: fmt::Debug + Send + Sync {
    /// Where the expression matches first in `text` (a URL path's bytes,
    /// UTF-8 or not), with its groups.
    fn captures(&self, text: &[u8]) -> Option<Captures>;
}

/// Compiles WSGIScriptAliasMatch expressions for [`apply`](super::apply):
/// a refusal is the engine's message.
pub trait RegexEngine {
    fn compile(&self, pattern: &str) -> Result<Arc<dyn UrlRegex>, String>;
}

/// How a script alias recognises its URLs.
#[derive(Debug, Clone)]
pub enum AliasMatcher {
    /// WSGIScriptAlias: a URL-path prefix, matched as mod_alias does.
    Prefix(String),
    /// WSGIScriptAliasMatch: a regular expression on the URL path (its
    /// source is the alias's `url`).
    Regex(Arc<dyn UrlRegex>),
}

impl PartialEq for AliasMatcher {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AliasMatcher::Prefix(a), AliasMatcher::Prefix(b)) => a == b,
            (AliasMatcher::Regex(a), AliasMatcher::Regex(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// One WSGIScriptAlias or WSGIScriptAliasMatch.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptAlias {
    /// The prefix or the regex source, as written.
    pub url: String,
    pub matcher: AliasMatcher,
    /// Script file or directory; may hold $0-$9 for the regex form.
    pub target: String,
    pub options: ScriptOptions,
    pub origin: Origin,
}

impl ScriptAlias {
    /// Match `uri` (the decoded URL path's bytes, UTF-8 or not).
    ///
    /// Returns how many bytes of the URI matched (they become SCRIPT_NAME;
    /// for a prefix it may be longer than the alias when the URI doubled
    /// slashes) and the target with `$0`-`$9` substituted. The rest of the
    /// URI, `uri[matched..]`, is what mod_wsgi appends to the target to
    /// form the file name (for the alias "/" it appends the whole URI).
    pub fn map(&self, uri: &[u8]) -> Option<(usize, Vec<u8>)> {
        match &self.matcher {
            AliasMatcher::Prefix(prefix) => {
                let len = prefix_match_len(uri, prefix)?;
                Some((len, self.target.as_bytes().to_vec()))
            }
            AliasMatcher::Regex(re) => {
                let caps = re.captures(uri)?;
                let (_, end) = caps[0]?;
                // mod_wsgi ignores a match that covers nothing of the URI.
                if end == 0 {
                    return None;
                }
                Some((end, substitute(&self.target, uri, &caps)))
            }
        }
    }
}

/// mod_alias's prefix rule: returns how many bytes of `uri` the alias
/// covers, or None.
///
/// A '/' in the alias matches one or more '/' in the URI (and swallows
/// repeated ones in the alias), other bytes compare exactly, and the match
/// must end at a path-segment boundary unless the alias itself ends in '/'.
/// So "/app" matches "/app", "/app/x" and "//app//x" but not "/apple", and
/// "/app/" does not match "/app".
pub fn prefix_match_len(uri: &[u8], alias: &str) -> Option<usize> {
    let (a, u) = (alias.as_bytes(), uri);
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i] == b'/' {
            if u.get(j) != Some(&b'/') {
                return None;
            }
            while a.get(i) == Some(&b'/') {
                i += 1;
            }
            while u.get(j) == Some(&b'/') {
                j += 1;
            }
        } else {
            if u.get(j) != Some(&a[i]) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    if !alias.ends_with('/') && j < u.len() && u[j] != b'/' {
        return None;
    }
    // An empty alias would match everything with length 0: treat as no match.
    (j > 0).then_some(j)
}

/// Apache's ap_pregsub: `$0`-`$9` become the capture (empty when the group
/// did not take part), `\c` is a literal `c`, everything else is copied.
fn substitute(template: &str, text: &[u8], caps: &Captures) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|n| n.is_ascii_digit()) => {
                let n = chars.next().and_then(|d| d.to_digit(10)).unwrap_or(0) as usize;
                if let Some((start, end)) = caps[n] {
                    out.extend_from_slice(text.get(start..end).unwrap_or(b""));
                }
            }
            '\\' if chars.peek().is_some() => {
                let mut utf8 = [0u8; 4];
                if let Some(next) = chars.next() {
                    out.extend_from_slice(next.encode_utf8(&mut utf8).as_bytes());
                }
            }
            _ => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out
}

/// WSGIImportScript: both groups are required, as in mod_wsgi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    pub path: String,
    pub process_group: String,
    pub application_group: String,
    pub origin: Origin,
}

/// A daemon group name used somewhere, to be checked once all groups are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub name: String,
    pub origin: Origin,
    /// The directive that named it.
    pub directive: &'static str,
}

/// WSGITelemetryService unix:/path [interval=seconds].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryService {
    /// Path of the UNIX datagram socket (after "unix:").
    pub socket: String,
    pub interval: Option<Duration>,
}

/// The Python settings a `<WSGIInterpreterOptions>` section may give its
/// interpreters; `None` leaves the server-wide value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterpreterOptions {
    /// WSGIPythonPath: directories for the interpreter's sys.path.
    pub python_path: Option<Vec<String>>,
    pub switch_interval: Option<Duration>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
}

impl InterpreterOptions {
    /// The directives allowed inside the section.
    pub const DIRECTIVES: &[&str] = &[
        "WSGIPythonPath",
        "WSGISwitchInterval",
        "WSGIRestrictStdin",
        "WSGIRestrictStdout",
        "WSGIRestrictSignal",
        "WSGIPerInterpreterGIL",
        "WSGIFreeThreading",
    ];

    /// `other`'s settings over these, where `other` gives one; its
    /// python-path entries after these.
    fn overlay(&mut self, other: &InterpreterOptions) {
        if let Some(more) = &other.python_path {
            self.python_path
                .get_or_insert_with(Vec::new)
                .extend(more.iter().cloned());
        }
        macro_rules! take {
            ($($field:ident),*) => {$(
                if other.$field.is_some() {
                    self.$field = other.$field.clone();
                }
            )*};
        }
        take!(
            switch_interval,
            restrict_stdin,
            restrict_stdout,
            restrict_signal,
            per_interpreter_gil,
            free_threading
        );
    }
}

/// One `<WSGIInterpreterOptions process-group=G application-group=A>`
/// section: which interpreters it selects, and what it sets for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpreterOptionsSection {
    /// None matches any group; "" is embedded mode (%{GLOBAL}).
    pub process_group: Option<String>,
    /// None matches any interpreter; "" is the main one (%{GLOBAL}).
    pub application_group: Option<String>,
    pub options: InterpreterOptions,
    pub origin: Origin,
}

impl PythonSettings {
    /// The section settings for the interpreter `application_group` of a
    /// process in `process_group` ("" for Apache children), as mod_wsgi
    /// chooses them: a section matches when each selector it has is equal;
    /// per setting, the section naming more selectors wins, and among
    /// equals the later one. Paths add up instead: every matching section's
    /// WSGIPythonPath, the less specific first, each group in file order.
    pub fn interpreter_options_for(
        &self,
        process_group: &str,
        application_group: &str,
    ) -> InterpreterOptions {
        let mut matching: Vec<(usize, &InterpreterOptionsSection)> = self
            .interpreter_options
            .iter()
            .filter(|s| {
                s.process_group
                    .as_deref()
                    .is_none_or(|g| g == process_group)
            })
            .filter(|s| {
                s.application_group
                    .as_deref()
                    .is_none_or(|a| a == application_group)
            })
            .map(|s| {
                let specificity = usize::from(s.process_group.is_some())
                    + usize::from(s.application_group.is_some());
                (specificity, s)
            })
            .collect();
        // Stable: equal specificity keeps file order, so later sections win.
        matching.sort_by_key(|(specificity, _)| *specificity);
        let mut out = InterpreterOptions::default();
        for (_, section) in matching {
            out.overlay(&section.options);
        }
        out
    }

    /// WSGIFreeThreading for the processes of `process_group` ("" for
    /// Apache children): the server-wide value, over which sections
    /// without `application-group=` say it for their process group (the
    /// more specific, then the later, winning), as mod_wsgi resolves it.
    /// It is one setting for the whole process: a section naming an
    /// application group cannot scope it and is left out
    /// ([`Self::free_threading_scoped_to_groups`]).
    pub fn free_threading_for(&self, process_group: &str) -> bool {
        let mut chosen = self.free_threading;
        let mut specificity = 0;
        for section in &self.interpreter_options {
            if section.application_group.is_some() {
                continue;
            }
            let this = match section.process_group.as_deref() {
                None => 0,
                Some(g) if g == process_group => 1,
                Some(_) => continue,
            };
            if let Some(on) = section.options.free_threading
                && this >= specificity
            {
                chosen = Some(on);
                specificity = this;
            }
        }
        chosen.unwrap_or(false)
    }

    /// Where WSGIFreeThreading is given in a section with
    /// `application-group=`, which is ignored: the edge warns.
    pub fn free_threading_scoped_to_groups(&self) -> Vec<&Origin> {
        self.interpreter_options
            .iter()
            .filter(|s| s.application_group.is_some() && s.options.free_threading.is_some())
            .map(|s| &s.origin)
            .collect()
    }
}

/// The regex crate standing in for Apache's engine in unit tests (the
/// patterns used there mean the same in both).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct RustRegex;

#[cfg(test)]
impl RegexEngine for RustRegex {
    fn compile(&self, pattern: &str) -> Result<Arc<dyn UrlRegex>, String> {
        #[derive(Debug)]
        struct Compiled(regex::bytes::Regex);
        impl UrlRegex for Compiled {
            fn captures(&self, text: &[u8]) -> Option<Captures> {
                let caps = self.0.captures(text)?;
                let mut out = [None; 10];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = caps.get(i).map(|m| (m.start(), m.end()));
                }
                Some(out)
            }
        }
        regex::bytes::Regex::new(pattern)
            .map(|re| Arc::new(Compiled(re)) as Arc<dyn UrlRegex>)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: "t.conf".into(),
            line: 1,
        }
    }

    fn prefix(url: &str, target: &str) -> ScriptAlias {
        ScriptAlias {
            url: url.into(),
            matcher: AliasMatcher::Prefix(url.into()),
            target: target.into(),
            options: ScriptOptions::default(),
            origin: origin(),
        }
    }

    fn regex(re: &str, target: &str) -> ScriptAlias {
        ScriptAlias {
            url: re.into(),
            matcher: AliasMatcher::Regex(RustRegex.compile(re).unwrap()),
            target: target.into(),
            options: ScriptOptions::default(),
            origin: origin(),
        }
    }

    #[test]
    fn prefix_matches_at_segment_boundaries() {
        assert_eq!(prefix_match_len(b"/app", "/app"), Some(4));
        assert_eq!(prefix_match_len(b"/app/x/y", "/app"), Some(4));
        assert_eq!(prefix_match_len(b"/apple", "/app"), None);
        assert_eq!(prefix_match_len(b"/ap", "/app"), None);
        assert_eq!(prefix_match_len(b"/other", "/app"), None);
        assert_eq!(prefix_match_len(b"/anything", "/"), Some(1));
        assert_eq!(prefix_match_len(b"/", "/"), Some(1));
        assert_eq!(prefix_match_len(b"", "/"), None);
    }

    #[test]
    fn prefix_collapses_repeated_slashes() {
        assert_eq!(prefix_match_len(b"//app//x", "/app"), Some(5));
        assert_eq!(prefix_match_len(b"/a//b/c", "/a/b"), Some(5));
        assert_eq!(prefix_match_len(b"/a/b", "/a//b"), Some(4));
        assert_eq!(prefix_match_len(b"///", "/"), Some(3));
    }

    #[test]
    fn alias_ending_in_slash_needs_the_slash() {
        assert_eq!(prefix_match_len(b"/app", "/app/"), None);
        assert_eq!(prefix_match_len(b"/app/", "/app/"), Some(5));
        assert_eq!(prefix_match_len(b"/app/x", "/app/"), Some(5));
        assert_eq!(prefix_match_len(b"/app//x", "/app/"), Some(6));
    }

    #[test]
    fn prefix_map_returns_matched_part_and_target() {
        let a = prefix("/app", "/srv/app.wsgi");
        assert_eq!(a.map(b"/app/x"), Some((4, b"/srv/app.wsgi".to_vec())));
        assert_eq!(a.map(b"//app/x"), Some((5, b"/srv/app.wsgi".to_vec())));
        assert_eq!(a.map(b"/apple"), None);
        // A URL that is not UTF-8 (`/app/caf%E9` decoded) still matches.
        assert_eq!(a.map(b"/app/caf\xe9"), Some((4, b"/srv/app.wsgi".to_vec())));
    }

    #[test]
    fn regex_map_substitutes_groups() {
        let a = regex(r"^/wsgi/([^/]+)/(\w+)", "/srv/$1/$2.wsgi");
        assert_eq!(
            a.map(b"/wsgi/site/main/extra"),
            Some((15, b"/srv/site/main.wsgi".to_vec()))
        );
        assert_eq!(a.map(b"/static/x"), None);

        let a = regex(r"^/(a)?(b)", r"/x/$0-$1-$2-$9-\$1");
        assert_eq!(a.map(b"/b"), Some((2, b"/x//b--b--$1".to_vec())));
    }

    #[test]
    fn regex_map_ignores_empty_match_at_start() {
        let a = regex(r"^", "/srv/app.wsgi");
        assert_eq!(a.map(b"/x"), None);
    }

    #[test]
    fn python_defaults() {
        let p = PythonSettings::default();
        assert_eq!(p.optimize(), 0);
        assert_eq!(p.hash_seed(), HashSeed::Random);
        assert!(!p.dont_write_bytecode());
        assert!(p.destroy_interpreter());
        assert!(p.restrict_signal());
        assert!(!p.restrict_stdin());
        assert!(!p.restrict_stdout());
        assert!(p.case_sensitivity());
        assert!(!p.per_interpreter_gil());
        assert!(!p.free_threading());
    }

    #[test]
    fn merge_puts_vhost_aliases_first_and_keeps_main_globals() {
        let mut main = ServerConfig::default();
        main.script_aliases.push(prefix("/", "/srv/main.wsgi"));
        main.python.home = Some("/opt/venv".into());
        main.used_not_yet.push(3);
        let mut vhost = ServerConfig::default();
        vhost.script_aliases.push(prefix("/v", "/srv/v.wsgi"));
        vhost.used_not_yet.extend([3, 7]);
        vhost.group_refs.push(GroupRef {
            name: "g".into(),
            origin: origin(),
            directive: "WSGIProcessGroup",
        });

        let m = ServerConfig::merge(&main, &vhost);
        let urls: Vec<_> = m.script_aliases.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(urls, ["/v", "/"]);
        assert_eq!(m.python.home.as_deref(), Some("/opt/venv"));
        assert_eq!(m.used_not_yet, [3, 7]);
        assert_eq!(m.group_refs.len(), 1);
    }
}
