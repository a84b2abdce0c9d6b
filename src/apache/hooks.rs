//! Building blocks for the module record: `const fn` constructors in place of
//! httpd's STANDARD20_MODULE_STUFF / AP_INIT_* macros, hook registration, and
//! typed access to per-module configuration and directive parameters.

use super::{cstr, ffi, pool::Pool};
use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_void};

pub type CmdArgv = unsafe extern "C" fn(
    *mut ffi::cmd_parms,
    *mut c_void,
    c_int,
    *const *mut c_char,
) -> *const c_char;
pub type CmdRaw =
    unsafe extern "C" fn(*mut ffi::cmd_parms, *mut c_void, *const c_char) -> *const c_char;

/// Copies a Rust string into a NUL-terminated buffer at compile time, so the
/// command table can point at C strings built from the pure directive table.
pub const fn c_buffer<const L: usize>(s: &str) -> [u8; L] {
    let bytes = s.as_bytes();
    assert!(bytes.len() < L, "string too long for its C buffer");
    let mut out = [0u8; L];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// AP_INIT_TAKE_ARGV: the directive receives every word Apache parsed.
pub const fn command_argv(
    name: *const c_char,
    func: CmdArgv,
    data: usize,
    req_override: c_int,
    help: *const c_char,
) -> ffi::command_rec {
    ffi::command_rec {
        name,
        func: ffi::cmd_func {
            take_argv: Some(func),
        },
        cmd_data: std::ptr::without_provenance_mut(data),
        req_override,
        args_how: ffi::cmd_how_TAKE_ARGV,
        errmsg: help,
    }
}

/// AP_INIT_RAW_ARGS: the directive receives the rest of the line (sections).
pub const fn command_raw(
    name: *const c_char,
    func: CmdRaw,
    data: usize,
    req_override: c_int,
    help: *const c_char,
) -> ffi::command_rec {
    ffi::command_rec {
        name,
        func: ffi::cmd_func {
            raw_args: Some(func),
        },
        cmd_data: std::ptr::without_provenance_mut(data),
        req_override,
        args_how: ffi::cmd_how_RAW_ARGS,
        errmsg: help,
    }
}

/// The all-zero entry that ends a command table.
pub const END_OF_COMMANDS: ffi::command_rec = ffi::command_rec {
    name: std::ptr::null(),
    func: ffi::cmd_func { no_args: None },
    cmd_data: std::ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: std::ptr::null(),
};

/// A command table that can live in a `static`.
#[repr(transparent)]
pub struct CommandTable<const N: usize>(pub [ffi::command_rec; N]);
// SAFETY: the table is immutable and only holds pointers to static data.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

pub struct ModuleCallbacks {
    pub create_dir_config: unsafe extern "C" fn(*mut ffi::apr_pool_t, *mut c_char) -> *mut c_void,
    pub merge_dir_config:
        unsafe extern "C" fn(*mut ffi::apr_pool_t, *mut c_void, *mut c_void) -> *mut c_void,
    pub create_server_config:
        unsafe extern "C" fn(*mut ffi::apr_pool_t, *mut ffi::server_rec) -> *mut c_void,
    pub merge_server_config:
        unsafe extern "C" fn(*mut ffi::apr_pool_t, *mut c_void, *mut c_void) -> *mut c_void,
    pub register_hooks: unsafe extern "C" fn(*mut ffi::apr_pool_t),
}

/// The exported module record. Apache writes into it (module_index, next,
/// dynamic_load_handle), hence the UnsafeCell; the symbol is the record itself.
#[repr(transparent)]
pub struct ModuleCell(UnsafeCell<ffi::module>);
// SAFETY: Apache mutates the record only while loading modules in the parent,
// before any thread exists; afterwards it is read-only.
unsafe impl Sync for ModuleCell {}

impl ModuleCell {
    /// STANDARD20_MODULE_STUFF plus our callbacks. `name` is what
    /// `LogLevel` matches ("mod_wsgi.c" -> "wsgi").
    pub const fn new(
        name: &'static CStr,
        cmds: *const ffi::command_rec,
        cb: ModuleCallbacks,
    ) -> ModuleCell {
        ModuleCell(UnsafeCell::new(ffi::module {
            version: ffi::MWRS_MODULE_MAGIC_NUMBER_MAJOR,
            minor_version: ffi::MWRS_MODULE_MAGIC_NUMBER_MINOR,
            module_index: -1,
            name: name.as_ptr(),
            dynamic_load_handle: std::ptr::null_mut(),
            next: std::ptr::null_mut(),
            magic: ffi::MWRS_MODULE_MAGIC_COOKIE,
            rewrite_args: None,
            create_dir_config: Some(cb.create_dir_config),
            merge_dir_config: Some(cb.merge_dir_config),
            create_server_config: Some(cb.create_server_config),
            merge_server_config: Some(cb.merge_server_config),
            cmds,
            register_hooks: Some(cb.register_hooks),
            flags: 0,
        }))
    }

    pub fn index(&self) -> i32 {
        // SAFETY: a plain read of an int Apache wrote during loading.
        unsafe { (*self.0.get()).module_index }
    }

    /// This module's entry in a configuration vector (ap_get_module_config).
    ///
    /// # Safety
    /// `vector` must be a live ap_conf_vector_t whose entry for this module
    /// was created by our create_*_config as a `T`.
    pub unsafe fn config<'a, T>(&self, vector: *mut ffi::ap_conf_vector_t) -> Option<&'a mut T> {
        if vector.is_null() {
            return None;
        }
        let index = self.index();
        if index < 0 {
            return None;
        }
        // SAFETY: the vector is an array of void* indexed by module_index.
        unsafe { (*(vector as *mut *mut T).add(index as usize)).as_mut() }
    }
}

/// Hook ordering, APR_HOOK_* from the headers.
#[derive(Clone, Copy)]
pub enum Order {
    ReallyFirst,
    First,
    Middle,
    Last,
}

impl Order {
    fn raw(self) -> c_int {
        match self {
            Order::ReallyFirst => ffi::MWRS_APR_HOOK_REALLY_FIRST,
            Order::First => ffi::MWRS_APR_HOOK_FIRST,
            Order::Middle => ffi::MWRS_APR_HOOK_MIDDLE,
            Order::Last => ffi::MWRS_APR_HOOK_LAST,
        }
    }
}

/// A NULL-terminated list of module names for hook ordering; static because
/// APR keeps the pointers.
#[repr(transparent)]
pub struct ModuleList<const N: usize>(pub [*const c_char; N]);
// SAFETY: immutable list of pointers to static strings.
unsafe impl<const N: usize> Sync for ModuleList<N> {}

pub static NO_MODULES: ModuleList<1> = ModuleList([std::ptr::null()]);

pub type PostConfigFn = unsafe extern "C" fn(
    *mut ffi::apr_pool_t,
    *mut ffi::apr_pool_t,
    *mut ffi::apr_pool_t,
    *mut ffi::server_rec,
) -> c_int;
pub type ChildInitFn = unsafe extern "C" fn(*mut ffi::apr_pool_t, *mut ffi::server_rec);
pub type ChildStoppingFn = unsafe extern "C" fn(*mut ffi::apr_pool_t, c_int);
pub type PreMpmFn = unsafe extern "C" fn(*mut ffi::apr_pool_t, ffi::ap_scoreboard_e) -> c_int;
pub type RequestFn = unsafe extern "C" fn(*mut ffi::request_rec) -> c_int;
pub type ConnectionFn = unsafe extern "C" fn(*mut ffi::conn_rec, *mut c_void) -> c_int;

pub fn post_config(f: PostConfigFn, order: Order) {
    // SAFETY: registering a hook with a valid function pointer and static lists.
    unsafe { ffi::ap_hook_post_config(Some(f), std::ptr::null(), std::ptr::null(), order.raw()) };
}
pub fn check_config(f: PostConfigFn, order: Order) {
    // SAFETY: as above.
    unsafe { ffi::ap_hook_check_config(Some(f), std::ptr::null(), std::ptr::null(), order.raw()) };
}
/// Registered after the hooks were sorted (from post_config), so it runs
/// after every pre_mpm hook registered before it, the scoreboard's
/// creation included.
pub fn pre_mpm_last(f: PreMpmFn) {
    // SAFETY: as above.
    unsafe {
        ffi::ap_hook_pre_mpm(
            Some(f),
            std::ptr::null(),
            std::ptr::null(),
            ffi::MWRS_APR_HOOK_REALLY_LAST,
        )
    };
}
pub fn child_init(f: ChildInitFn, order: Order) {
    // SAFETY: as above.
    unsafe { ffi::ap_hook_child_init(Some(f), std::ptr::null(), std::ptr::null(), order.raw()) };
}
/// Apache 2.4.49 and later: a child was told to stop (graceful or not).
pub fn child_stopping(f: ChildStoppingFn, order: Order) {
    // SAFETY: as above.
    unsafe {
        ffi::ap_hook_child_stopping(Some(f), std::ptr::null(), std::ptr::null(), order.raw())
    };
}
/// A new client connection, before its first request is read.
pub fn pre_connection(f: ConnectionFn, order: Order) {
    // SAFETY: as above.
    unsafe {
        ffi::ap_hook_pre_connection(Some(f), std::ptr::null(), std::ptr::null(), order.raw())
    };
}
pub fn handler(f: RequestFn, order: Order) {
    // SAFETY: as above.
    unsafe { ffi::ap_hook_handler(Some(f), std::ptr::null(), std::ptr::null(), order.raw()) };
}
pub fn access_checker(f: RequestFn, order: Order) {
    // SAFETY: as above.
    unsafe {
        ffi::ap_hook_access_checker(Some(f), std::ptr::null(), std::ptr::null(), order.raw())
    };
}
pub fn translate_name<const A: usize, const B: usize>(
    f: RequestFn,
    before: &'static ModuleList<A>,
    after: &'static ModuleList<B>,
    order: Order,
) {
    // SAFETY: as above; the lists are static and NULL-terminated.
    unsafe {
        ffi::ap_hook_translate_name(Some(f), before.0.as_ptr(), after.0.as_ptr(), order.raw())
    };
}

/// Adds "product/version" to the Server header and banner.
pub fn add_version_component(pool: Pool, component: &str) {
    // SAFETY: the string is copied into the configuration pool first.
    unsafe { ffi::ap_add_version_component(pool.as_ptr(), pool.strdup(component)) };
}

/// Where a directive appeared, as the config layer needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdScope {
    Server,
    VirtualHost,
    Directory,
    Htaccess,
    /// Directly inside `<WSGIInterpreterOptions>`.
    InterpreterOptions,
}

/// The parameters Apache passes to a directive handler. Kept as the raw
/// pointer (read field by field) because walking a section's body hands
/// the same cmd_parms back to Apache, which writes to it.
pub struct CmdParms<'a>(
    *mut ffi::cmd_parms,
    std::marker::PhantomData<&'a ffi::cmd_parms>,
);

impl<'a> CmdParms<'a> {
    /// # Safety
    /// `cmd` must be the live cmd_parms of the current directive call.
    pub unsafe fn from_raw(cmd: *mut ffi::cmd_parms) -> CmdParms<'a> {
        CmdParms(cmd, std::marker::PhantomData)
    }

    fn get(&self) -> &ffi::cmd_parms {
        // SAFETY: live for the call (from_raw's contract); the borrow ends
        // before anything hands the pointer to Apache again.
        unsafe { &*self.0 }
    }

    /// Whether the directive sits directly inside a section named `name`
    /// (compared as Apache compares directive names, ignoring case).
    pub fn in_section(&self, name: &str) -> bool {
        let d = self.get().directive;
        if d.is_null() {
            return false;
        }
        // SAFETY: the directive tree lives in pconf for the whole read.
        let parent = unsafe { (*d).parent };
        if parent.is_null() {
            return false;
        }
        // SAFETY: as above; the name is a pool string.
        unsafe { cstr((*parent).directive) }.is_some_and(|n| n.eq_ignore_ascii_case(name))
    }

    /// Applies the lines inside the section being opened, as a section
    /// handler must (ap_walk_config over its children).
    pub fn walk_section_body(&self) -> Result<(), String> {
        let cmd = self.0;
        // SAFETY: cmd is live; directive is the section's node (non-null
        // while a section handler runs) and its children live in pconf.
        let (first, context) = unsafe {
            let d = (*cmd).directive;
            if d.is_null() {
                return Ok(());
            }
            ((*d).first_child, (*cmd).context)
        };
        if first.is_null() {
            return Ok(());
        }
        // SAFETY: Apache's own walk with its own cmd_parms; no Rust
        // reference into *cmd is alive across the call.
        let error = unsafe { ffi::ap_walk_config(first, cmd, context) };
        // SAFETY: null or a pool string with Apache's message.
        match unsafe { cstr(error) } {
            None if error.is_null() => Ok(()),
            message => Err(message.unwrap_or("error in section").to_string()),
        }
    }

    /// The cmd_data of our command_rec: the directive's index.
    pub fn data(&self) -> usize {
        self.get().info as usize
    }

    pub fn scope(&self) -> CmdScope {
        // ap_check_cmd_context recognises .htaccess the same way.
        let cmd = self.get();
        if self.in_section("<WSGIInterpreterOptions") {
            CmdScope::InterpreterOptions
        } else if cmd.pool == cmd.temp_pool {
            CmdScope::Htaccess
        } else if !cmd.path.is_null() {
            CmdScope::Directory
        } else if self.server_is_virtual() {
            CmdScope::VirtualHost
        } else {
            CmdScope::Server
        }
    }

    fn server_is_virtual(&self) -> bool {
        let server = self.get().server;
        // SAFETY: cmd->server is the live server being configured.
        !server.is_null() && unsafe { (*server).is_virtual } != 0
    }

    pub fn server(&self) -> *mut ffi::server_rec {
        self.get().server
    }

    pub fn pool(&self) -> Pool {
        // SAFETY: the configuration pool outlives the directive call.
        unsafe { Pool::from_raw(self.get().pool) }
    }

    /// File and line of the directive being processed.
    pub fn origin(&self) -> (String, u32) {
        let d = self.get().directive;
        if d.is_null() {
            return (String::new(), 0);
        }
        // SAFETY: the directive node is live during the call; its filename
        // is a pool string.
        let (file, line) = unsafe { (cstr((*d).filename), (*d).line_num) };
        (file.unwrap_or("").to_string(), line.max(0) as u32)
    }

    /// Turns an error message into the pool string Apache prints.
    pub fn error(&self, message: &str) -> *const c_char {
        self.pool().strdup(message)
    }
}

/// Borrows argv as UTF-8 strings; Err names the first word that is not.
///
/// # Safety
/// argv must hold argc live C strings.
pub unsafe fn argv_strings<'a>(
    argc: c_int,
    argv: *const *mut c_char,
) -> Result<Vec<&'a str>, String> {
    let mut out = Vec::with_capacity(argc.max(0) as usize);
    for i in 0..argc.max(0) as usize {
        // SAFETY: i < argc per the caller's contract.
        let p = unsafe { *argv.add(i) };
        // SAFETY: Apache's argv entries are NUL-terminated pool strings.
        let bytes = unsafe { CStr::from_ptr(p) };
        match bytes.to_str() {
            Ok(s) => out.push(s),
            Err(_) => return Err(format!("argument {} is not valid UTF-8", i + 1)),
        }
    }
    Ok(out)
}

/// Walks the server list (main server first, then each virtual host).
pub fn servers(main: *mut ffi::server_rec) -> impl Iterator<Item = *mut ffi::server_rec> {
    let mut cur = main;
    std::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        let s = cur;
        // SAFETY: server_recs form a NULL-terminated list living in pconf.
        cur = unsafe { (*cur).next };
        Some(s)
    })
}

/// The server's module_config vector.
///
/// # Safety
/// `s` must be a live server_rec from Apache.
pub unsafe fn server_module_config(s: *mut ffi::server_rec) -> *mut ffi::ap_conf_vector_t {
    // SAFETY: a live server_rec from Apache.
    unsafe { (*s).module_config }
}

/// Whether `s` is a `<VirtualHost>`.
///
/// # Safety
/// `s` must be a live server_rec from Apache.
pub unsafe fn server_is_virtual(s: *mut ffi::server_rec) -> bool {
    // SAFETY: a live server_rec from Apache.
    unsafe { (*s).is_virtual != 0 }
}

/// Process-pool userdata: survives restart generations (module statics don't).
///
/// # Safety
/// `s` must be a live server_rec from Apache.
pub unsafe fn process_pool(s: *mut ffi::server_rec) -> Pool {
    // SAFETY: server->process->pool is the process-lifetime pool.
    unsafe { Pool::from_raw((*(*s).process).pool) }
}

/// Returns true the first time it is called for `key` in this pool.
pub fn first_time_in_pool(pool: Pool, key: &'static CStr) -> bool {
    if pool_marked(pool, key) {
        return false;
    }
    mark_pool(pool, key);
    true
}

/// Whether [`mark_pool`] was called for `key` in this pool (since it was
/// last cleared).
pub fn pool_marked(pool: Pool, key: &'static CStr) -> bool {
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: userdata lookup in a live pool; the key is static.
    unsafe { ffi::apr_pool_userdata_get(&mut data, key.as_ptr(), pool.as_ptr()) };
    !data.is_null()
}

/// Leaves a marker under `key` in the pool, gone when the pool is cleared
/// (for the configuration pool: at the next restart generation).
pub fn mark_pool(pool: Pool, key: &'static CStr) {
    // SAFETY: any non-null marker will do; it is never dereferenced.
    unsafe {
        ffi::apr_pool_userdata_set(
            std::ptr::without_provenance(1),
            key.as_ptr(),
            Some(ffi::apr_pool_cleanup_null),
            pool.as_ptr(),
        )
    };
}

/// Per-directory config vector of a request.
///
/// # Safety
/// `r` must be a live request_rec from Apache.
pub unsafe fn request_dir_config(r: *mut ffi::request_rec) -> *mut ffi::ap_conf_vector_t {
    // SAFETY: a live request.
    unsafe { (*r).per_dir_config }
}
