//! The datagram format of mod_wsgi 6's telemetry stream (version 1): a
//! 24-byte header (magic "WSGI", version, kind, flags, pid, seq, stamp),
//! then TLV records (u16 field id, u8 type, u16 length for the variable
//! types, the value), all little-endian. Times are f64 seconds.

pub const VERSION: u8 = 1;

pub const KIND_REQUEST: u8 = 2;
pub const KIND_SLOW_REQUEST: u8 = 4;
pub const KIND_PROCESS_STARTED: u8 = 5;
pub const KIND_PROCESS_STOPPING: u8 = 6;
pub const KIND_PROCESS_STOPPED: u8 = 7;

const T_U64: u8 = 0x01;
const T_F64: u8 = 0x02;
const T_BYTES: u8 = 0x04;
const T_I32_ARRAY: u8 = 0x05;
const T_F64_ARRAY: u8 = 0x06;

/// Field ids (mod_wsgi 6.1.1's wsgi_telemetry.h).
pub mod f {
    pub const MOD_WSGI_VERSION: u16 = 1;
    pub const PYTHON_VERSION: u16 = 2;
    pub const APACHE_VERSION: u16 = 3;
    pub const MPM_NAME: u16 = 4;
    pub const HOSTNAME: u16 = 5;
    pub const PROCESS_GROUP: u16 = 6;
    pub const PROCESS_PARENT_PID: u16 = 7;
    pub const SAMPLE_PERIOD: u16 = 10;
    pub const TELEMETRY_INTERVAL: u16 = 11;
    pub const SLOW_REQUESTS_THRESHOLD: u16 = 12;
    pub const REQUEST_COUNT: u16 = 20;
    pub const REQUEST_THROUGHPUT: u16 = 21;
    pub const CAPACITY_UTILIZATION: u16 = 22;
    pub const CPU_USER_UTILIZATION: u16 = 30;
    pub const CPU_SYSTEM_UTILIZATION: u16 = 31;
    pub const CPU_UTILIZATION: u16 = 32;
    pub const MEMORY_RSS: u16 = 40;
    pub const MEMORY_MAX_RSS: u16 = 41;
    pub const REQUEST_THREADS_MAXIMUM: u16 = 50;
    pub const REQUEST_THREADS_STARTED: u16 = 51;
    pub const REQUEST_THREADS_ACTIVE: u16 = 52;
    /// Phase blocks: mean at 60 + i, min at 70 + i, max at 80 + i,
    /// buckets at 90 + i, i in phase order (server, queue, daemon,
    /// application, request, gil_wait, input_read, output_write).
    pub const PHASE_MEAN: u16 = 60;
    pub const PHASE_MIN: u16 = 70;
    pub const PHASE_MAX: u16 = 80;
    pub const PHASE_BUCKETS: u16 = 90;
    pub const INPUT_BYTES_TOTAL: u16 = 100;
    pub const INPUT_READS_TOTAL: u16 = 101;
    pub const OUTPUT_BYTES_TOTAL: u16 = 102;
    pub const OUTPUT_WRITES_TOTAL: u16 = 103;
    pub const REQUEST_THREADS_COMPLETED: u16 = 110;
    pub const REQUEST_THREADS_BUSY_TIME: u16 = 111;
    pub const REQUEST_THREADS_CPU_TIME: u16 = 112;
    pub const REQUEST_THREADS_CURRENT_ELAPSED: u16 = 113;
    pub const REQUEST_THREADS_MAX_DURATION: u16 = 114;
    pub const STATUS_1XX_TOTAL: u16 = 120;
    pub const SHUTDOWN_REASON: u16 = 130;
    pub const PROCESS_UPTIME: u16 = 131;
    pub const LIFETIME_REQUEST_COUNT: u16 = 132;
    pub const ACTIVE_REQUESTS_AT_DECISION: u16 = 133;
    pub const ACTIVE_REQUESTS_AT_EXIT: u16 = 134;
    pub const GRACEFUL_DRAIN: u16 = 135;
    pub const SLOW_RECORD_STATE: u16 = 200;
    pub const SLOW_START_STAMP: u16 = 201;
    pub const SLOW_DURATION: u16 = 202;
    pub const SLOW_THREAD_ID: u16 = 203;
    pub const SLOW_LOG_ID: u16 = 204;
    pub const SLOW_SERVER_PID: u16 = 205;
    pub const SLOW_METHOD: u16 = 210;
    pub const SLOW_SCHEME: u16 = 211;
    pub const SLOW_HOSTNAME: u16 = 212;
    pub const SLOW_SCRIPT_NAME: u16 = 213;
    pub const SLOW_PATH_INFO: u16 = 214;
    pub const SLOW_PROTOCOL: u16 = 215;
    pub const SLOW_PEER_IP: u16 = 216;
    pub const SLOW_USER_AGENT: u16 = 217;
    pub const SLOW_SERVER_TIME: u16 = 220;
    pub const SLOW_QUEUE_TIME: u16 = 221;
    pub const SLOW_DAEMON_TIME: u16 = 222;
    pub const SLOW_APPLICATION_TIME: u16 = 223;
    pub const SLOW_GIL_WAIT_TIME: u16 = 224;
    pub const SLOW_GIL_WAIT_COUNT: u16 = 225;
    pub const SLOW_INPUT_BYTES: u16 = 230;
    pub const SLOW_INPUT_READS: u16 = 231;
    pub const SLOW_OUTPUT_BYTES: u16 = 232;
    pub const SLOW_OUTPUT_WRITES: u16 = 233;
    pub const SLOW_INPUT_READ_TIME: u16 = 234;
    pub const SLOW_OUTPUT_WRITE_TIME: u16 = 235;
    pub const SLOW_STATUS: u16 = 240;
    pub const SLOW_CPU_USER_TIME: u16 = 250;
    pub const SLOW_CPU_SYSTEM_TIME: u16 = 251;
    pub const SLOW_ACTIVE_AT_START: u16 = 260;
    pub const SLOW_ACTIVE_AT_COMPLETION: u16 = 261;
}

/// One datagram being written.
pub struct Datagram(Vec<u8>);

impl Datagram {
    pub fn new(kind: u8, pid: u32, seq: u32, stamp: f64) -> Datagram {
        let mut b = Vec::with_capacity(2048);
        b.extend_from_slice(b"WSGI");
        b.push(VERSION);
        b.push(kind);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&pid.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&stamp.to_le_bytes());
        Datagram(b)
    }
    fn tag(&mut self, id: u16, ty: u8) {
        self.0.extend_from_slice(&id.to_le_bytes());
        self.0.push(ty);
    }
    pub fn u64(&mut self, id: u16, v: u64) -> &mut Self {
        self.tag(id, T_U64);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f64(&mut self, id: u16, v: f64) -> &mut Self {
        self.tag(id, T_F64);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Bytes, cut at 65535; skipped when empty (as mod_wsgi does).
    pub fn bytes(&mut self, id: u16, v: &[u8]) -> &mut Self {
        if v.is_empty() {
            return self;
        }
        let v = &v[..v.len().min(u16::MAX as usize)];
        self.tag(id, T_BYTES);
        self.0.extend_from_slice(&(v.len() as u16).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    pub fn i32s(&mut self, id: u16, v: &[i32]) -> &mut Self {
        let v = &v[..v.len().min(u16::MAX as usize)];
        self.tag(id, T_I32_ARRAY);
        self.0.extend_from_slice(&(v.len() as u16).to_le_bytes());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
        self
    }
    pub fn f64s(&mut self, id: u16, v: &[f64]) -> &mut Self {
        let v = &v[..v.len().min(u16::MAX as usize)];
        self.tag(id, T_F64_ARRAY);
        self.0.extend_from_slice(&(v.len() as u16).to_le_bytes());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Who is sending: static for the life of a process.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub pid: u32,
    pub parent_pid: u32,
    pub hostname: String,
    /// Daemon group name; empty in an Apache child.
    pub process_group: String,
    pub mod_wsgi_version: String,
    pub python_version: String,
    pub apache_version: String,
    pub mpm_name: String,
}

/// One phase of a request over an interval.
#[derive(Clone, Debug, Default)]
pub struct PhaseStats {
    /// Mean seconds per request.
    pub mean: f64,
    /// Min and max in microseconds; None when no request recorded it.
    pub min_max_us: Option<(u64, u64)>,
    pub buckets: Vec<i32>,
}

/// Per request-thread figures of an interval.
#[derive(Clone, Debug, Default)]
pub struct SlotStats {
    pub completed: u64,
    pub busy: f64,
    pub cpu: f64,
    pub current_elapsed: f64,
    pub max_duration: f64,
}

/// The periodic sample (KIND_REQUEST) of one interval.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub sample_period: f64,
    pub telemetry_interval: f64,
    pub slow_requests_threshold: f64,
    pub request_count: u64,
    pub request_throughput: f64,
    pub capacity_utilization: f64,
    pub cpu_user_utilization: f64,
    pub cpu_system_utilization: f64,
    pub memory_rss: u64,
    pub memory_max_rss: u64,
    pub request_threads_maximum: u64,
    pub request_threads_started: u64,
    pub request_threads_active: u64,
    /// Phases in wire order: server, queue, daemon, application, request,
    /// gil_wait, input_read, output_write.
    pub phases: [PhaseStats; 8],
    /// Queue and daemon phases are sent by daemon processes only.
    pub has_daemon_timing: bool,
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
    /// Responses by class, 1xx to 5xx.
    pub statuses: [u64; 5],
    pub slots: Vec<SlotStats>,
}

fn identity(d: &mut Datagram, id: &Identity, versions: bool) {
    if versions {
        d.bytes(f::MOD_WSGI_VERSION, id.mod_wsgi_version.as_bytes())
            .bytes(f::PYTHON_VERSION, id.python_version.as_bytes())
            .bytes(f::APACHE_VERSION, id.apache_version.as_bytes())
            .bytes(f::MPM_NAME, id.mpm_name.as_bytes());
    }
    d.bytes(f::HOSTNAME, id.hostname.as_bytes())
        .bytes(f::PROCESS_GROUP, id.process_group.as_bytes());
}

/// Indexes into `Sample::phases` (the offset of each phase's field ids).
const QUEUE: usize = 1;
const DAEMON: usize = 2;

pub fn encode_sample(id: &Identity, seq: u32, stamp: f64, s: &Sample) -> Vec<u8> {
    let mut d = Datagram::new(KIND_REQUEST, id.pid, seq, stamp);
    identity(&mut d, id, true);
    d.u64(f::PROCESS_PARENT_PID, u64::from(id.parent_pid))
        .f64(f::SAMPLE_PERIOD, s.sample_period)
        .f64(f::TELEMETRY_INTERVAL, s.telemetry_interval)
        .f64(f::SLOW_REQUESTS_THRESHOLD, s.slow_requests_threshold)
        .u64(f::REQUEST_COUNT, s.request_count)
        .f64(f::REQUEST_THROUGHPUT, s.request_throughput)
        .f64(f::CAPACITY_UTILIZATION, s.capacity_utilization)
        .f64(f::CPU_USER_UTILIZATION, s.cpu_user_utilization)
        .f64(f::CPU_SYSTEM_UTILIZATION, s.cpu_system_utilization)
        .f64(
            f::CPU_UTILIZATION,
            s.cpu_user_utilization + s.cpu_system_utilization,
        )
        .u64(f::MEMORY_RSS, s.memory_rss)
        .u64(f::MEMORY_MAX_RSS, s.memory_max_rss)
        .u64(f::REQUEST_THREADS_MAXIMUM, s.request_threads_maximum)
        .u64(f::REQUEST_THREADS_STARTED, s.request_threads_started)
        .u64(f::REQUEST_THREADS_ACTIVE, s.request_threads_active);
    let sent = |i: usize| s.has_daemon_timing || (i != QUEUE && i != DAEMON);
    for (i, p) in s.phases.iter().enumerate().filter(|(i, _)| sent(*i)) {
        d.f64(f::PHASE_MEAN + i as u16, p.mean);
    }
    for (i, p) in s.phases.iter().enumerate().filter(|(i, _)| sent(*i)) {
        if let Some((min, max)) = p.min_max_us {
            d.f64(f::PHASE_MIN + i as u16, min as f64 / 1e6)
                .f64(f::PHASE_MAX + i as u16, max as f64 / 1e6);
        }
    }
    for (i, p) in s.phases.iter().enumerate().filter(|(i, _)| sent(*i)) {
        d.i32s(f::PHASE_BUCKETS + i as u16, &p.buckets);
    }
    d.u64(f::INPUT_BYTES_TOTAL, s.input_bytes)
        .u64(f::INPUT_READS_TOTAL, s.input_reads)
        .u64(f::OUTPUT_BYTES_TOTAL, s.output_bytes)
        .u64(f::OUTPUT_WRITES_TOTAL, s.output_writes);
    for (i, n) in s.statuses.iter().enumerate() {
        d.u64(f::STATUS_1XX_TOTAL + i as u16, *n);
    }
    if !s.slots.is_empty() {
        let col = |g: fn(&SlotStats) -> f64| s.slots.iter().map(g).collect::<Vec<f64>>();
        let completed: Vec<i32> = s
            .slots
            .iter()
            .map(|x| i32::try_from(x.completed).unwrap_or(i32::MAX))
            .collect();
        d.i32s(f::REQUEST_THREADS_COMPLETED, &completed)
            .f64s(f::REQUEST_THREADS_BUSY_TIME, &col(|x| x.busy))
            .f64s(f::REQUEST_THREADS_CPU_TIME, &col(|x| x.cpu))
            .f64s(
                f::REQUEST_THREADS_CURRENT_ELAPSED,
                &col(|x| x.current_elapsed),
            )
            .f64s(f::REQUEST_THREADS_MAX_DURATION, &col(|x| x.max_duration));
    }
    d.finish()
}

/// PROCESS_STARTED: identity with versions; stamped with the start time.
pub fn encode_started(id: &Identity, seq: u32, started: f64) -> Vec<u8> {
    let mut d = Datagram::new(KIND_PROCESS_STARTED, id.pid, seq, started);
    identity(&mut d, id, true);
    d.u64(f::PROCESS_PARENT_PID, u64::from(id.parent_pid));
    d.finish()
}

/// PROCESS_STOPPING: shutdown decided, `active` requests still running.
pub fn encode_stopping(id: &Identity, seq: u32, stamp: f64, reason: &str, active: u64) -> Vec<u8> {
    let mut d = Datagram::new(KIND_PROCESS_STOPPING, id.pid, seq, stamp);
    identity(&mut d, id, false);
    d.bytes(f::SHUTDOWN_REASON, reason.as_bytes())
        .u64(f::ACTIVE_REQUESTS_AT_DECISION, active);
    d.finish()
}

/// What PROCESS_STOPPED reports.
#[derive(Clone, Debug, Default)]
pub struct Stopped<'a> {
    pub reason: &'a str,
    pub uptime: f64,
    pub lifetime_requests: u64,
    pub active_at_exit: u64,
}

pub fn encode_stopped(id: &Identity, seq: u32, stamp: f64, s: &Stopped<'_>) -> Vec<u8> {
    let mut d = Datagram::new(KIND_PROCESS_STOPPED, id.pid, seq, stamp);
    identity(&mut d, id, false);
    d.bytes(f::SHUTDOWN_REASON, s.reason.as_bytes())
        .f64(f::PROCESS_UPTIME, s.uptime)
        .u64(f::LIFETIME_REQUEST_COUNT, s.lifetime_requests)
        .u64(f::ACTIVE_REQUESTS_AT_EXIT, s.active_at_exit)
        .u64(f::GRACEFUL_DRAIN, u64::from(s.active_at_exit == 0));
    d.finish()
}

/// A completed request that took at least the WSGISlowRequests threshold.
#[derive(Clone, Debug, Default)]
pub struct SlowRecord {
    /// 0 while the request runs (sent each tick), 1 once it completed.
    pub state: u8,
    pub start_stamp: f64,
    pub duration: f64,
    pub thread_id: u64,
    pub server_pid: u64,
    /// Apache's log id of the request (empty without one).
    pub log_id: String,
    pub method: String,
    pub scheme: String,
    pub hostname: String,
    pub script_name: String,
    pub path_info: String,
    pub protocol: String,
    pub peer_ip: String,
    /// Only with WSGITelemetryOptions +CaptureUserAgent.
    pub user_agent: String,
    pub server_time: f64,
    pub queue_time: f64,
    pub daemon_time: f64,
    pub application_time: f64,
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
    pub input_read_time: f64,
    pub output_write_time: f64,
    pub status: u16,
    pub cpu_user_time: f64,
    pub cpu_system_time: f64,
    pub active_at_start: u64,
    pub active_at_completion: u64,
}

/// Cuts a string at `max` bytes (on a character boundary) with "..." at
/// the cut, as mod_wsgi bounds the identity strings of slow records.
fn bounded(s: &str, max: usize) -> String {
    if s.len() < max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(4);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// SLOW_REQUEST. A running request's record has no status, CPU or I/O
/// figures yet (zeros, as mod_wsgi sends them).
pub fn encode_slow(pid: u32, seq: u32, stamp: f64, s: &SlowRecord) -> Vec<u8> {
    let mut d = Datagram::new(KIND_SLOW_REQUEST, pid, seq, stamp);
    d.u64(f::SLOW_RECORD_STATE, u64::from(s.state))
        .f64(f::SLOW_START_STAMP, s.start_stamp)
        .f64(f::SLOW_DURATION, s.duration)
        .u64(f::SLOW_THREAD_ID, s.thread_id)
        .bytes(f::SLOW_LOG_ID, bounded(&s.log_id, 64).as_bytes())
        .u64(f::SLOW_SERVER_PID, s.server_pid)
        .bytes(f::SLOW_METHOD, bounded(&s.method, 16).as_bytes())
        .bytes(f::SLOW_SCHEME, bounded(&s.scheme, 16).as_bytes())
        .bytes(f::SLOW_HOSTNAME, bounded(&s.hostname, 256).as_bytes())
        .bytes(f::SLOW_SCRIPT_NAME, bounded(&s.script_name, 256).as_bytes())
        .bytes(f::SLOW_PATH_INFO, bounded(&s.path_info, 512).as_bytes())
        .bytes(f::SLOW_PROTOCOL, bounded(&s.protocol, 16).as_bytes())
        .bytes(f::SLOW_PEER_IP, bounded(&s.peer_ip, 46).as_bytes())
        .bytes(f::SLOW_USER_AGENT, bounded(&s.user_agent, 512).as_bytes())
        .f64(f::SLOW_SERVER_TIME, s.server_time)
        .f64(f::SLOW_QUEUE_TIME, s.queue_time)
        .f64(f::SLOW_DAEMON_TIME, s.daemon_time)
        .f64(f::SLOW_APPLICATION_TIME, s.application_time)
        .f64(f::SLOW_GIL_WAIT_TIME, 0.0)
        .u64(f::SLOW_GIL_WAIT_COUNT, 0)
        .u64(f::SLOW_INPUT_BYTES, s.input_bytes)
        .u64(f::SLOW_INPUT_READS, s.input_reads)
        .u64(f::SLOW_OUTPUT_BYTES, s.output_bytes)
        .u64(f::SLOW_OUTPUT_WRITES, s.output_writes)
        .f64(f::SLOW_INPUT_READ_TIME, s.input_read_time)
        .f64(f::SLOW_OUTPUT_WRITE_TIME, s.output_write_time)
        .u64(f::SLOW_STATUS, u64::from(s.status))
        .f64(f::SLOW_CPU_USER_TIME, s.cpu_user_time)
        .f64(f::SLOW_CPU_SYSTEM_TIME, s.cpu_system_time)
        .u64(f::SLOW_ACTIVE_AT_START, s.active_at_start)
        .u64(f::SLOW_ACTIVE_AT_COMPLETION, s.active_at_completion);
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small decoder of our own for the tests (the test suite checks
    /// against the real one, mod-wsgi-telemetry's).
    fn fields(buf: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 24;
        while off < buf.len() {
            let id = u16::from_le_bytes([buf[off], buf[off + 1]]);
            let ty = buf[off + 2];
            off += 3;
            let len = match ty {
                T_U64 | T_F64 => 8,
                _ => {
                    let n = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
                    off += 2;
                    n * match ty {
                        T_BYTES => 1,
                        T_I32_ARRAY => 4,
                        _ => 8,
                    }
                }
            };
            out.push((id, ty, buf[off..off + len].to_vec()));
            off += len;
        }
        out
    }

    fn ident() -> Identity {
        Identity {
            pid: 0x01020304,
            parent_pid: 7,
            hostname: "h".into(),
            ..Identity::default()
        }
    }

    #[test]
    fn header_is_24_little_endian_bytes() {
        let b = Datagram::new(KIND_REQUEST, 0x01020304, 9, 1.5).finish();
        assert_eq!(&b[..4], b"WSGI");
        assert_eq!(b[4], 1);
        assert_eq!(b[5], 2);
        assert_eq!(&b[6..8], &[0, 0]);
        assert_eq!(&b[8..12], &[4, 3, 2, 1]);
        assert_eq!(&b[12..16], &[9, 0, 0, 0]);
        assert_eq!(&b[16..24], &1.5f64.to_le_bytes());
    }

    #[test]
    fn tlv_types_and_lengths() {
        let mut d = Datagram::new(KIND_REQUEST, 1, 1, 0.0);
        d.u64(20, 3)
            .f64(10, 0.5)
            .bytes(5, b"ab")
            .bytes(6, b"")
            .i32s(90, &[1, -1])
            .f64s(111, &[2.0]);
        let f = fields(&d.finish());
        assert_eq!(f.len(), 5, "empty bytes are skipped");
        assert_eq!(f[0], (20, T_U64, 3u64.to_le_bytes().to_vec()));
        assert_eq!(f[1], (10, T_F64, 0.5f64.to_le_bytes().to_vec()));
        assert_eq!(f[2], (5, T_BYTES, b"ab".to_vec()));
        assert_eq!(f[3].0, 90);
        assert_eq!(f[3].2, [1i32.to_le_bytes(), (-1i32).to_le_bytes()].concat());
        assert_eq!(f[4], (111, T_F64_ARRAY, 2.0f64.to_le_bytes().to_vec()));
    }

    #[test]
    fn sample_has_statuses_and_skips_daemon_phases_in_a_child() {
        let mut s = Sample {
            request_count: 3,
            statuses: [0, 2, 0, 1, 0],
            ..Sample::default()
        };
        s.phases[0].min_max_us = Some((1000, 2000));
        let ids: Vec<u16> = fields(&encode_sample(&ident(), 1, 0.0, &s))
            .iter()
            .map(|f| f.0)
            .collect();
        for id in [
            20, 60, 63, 64, 70, 80, 90, 93, 94, 120, 121, 122, 123, 124, 7,
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for id in [61, 62, 71, 73, 91, 92, 110] {
            assert!(!ids.contains(&id), "{id} present in {ids:?}");
        }
        s.has_daemon_timing = true;
        let ids: Vec<u16> = fields(&encode_sample(&ident(), 1, 0.0, &s))
            .iter()
            .map(|f| f.0)
            .collect();
        assert!(ids.contains(&61) && ids.contains(&92));
    }

    #[test]
    fn lifecycle_records() {
        let b = encode_stopped(
            &ident(),
            4,
            2.0,
            &Stopped {
                reason: "shutdown_signal",
                uptime: 1.0,
                lifetime_requests: 5,
                active_at_exit: 0,
            },
        );
        assert_eq!(b[5], KIND_PROCESS_STOPPED);
        let f = fields(&b);
        assert!(f.contains(&(130, T_BYTES, b"shutdown_signal".to_vec())));
        assert!(f.contains(&(132, T_U64, 5u64.to_le_bytes().to_vec())));
        assert!(f.contains(&(135, T_U64, 1u64.to_le_bytes().to_vec())));
        let b = encode_stopping(&ident(), 3, 2.0, "", 2);
        assert_eq!(b[5], KIND_PROCESS_STOPPING);
        assert!(fields(&b).contains(&(133, T_U64, 2u64.to_le_bytes().to_vec())));
        assert!(!fields(&b).iter().any(|f| f.0 == 130));
        let b = encode_started(&ident(), 1, 2.0);
        assert_eq!(b[5], KIND_PROCESS_STARTED);
        assert!(fields(&b).contains(&(7, T_U64, 7u64.to_le_bytes().to_vec())));
    }

    #[test]
    fn slow_record_and_bounds() {
        let b = encode_slow(
            1,
            2,
            3.0,
            &SlowRecord {
                state: 1,
                method: "GET".into(),
                path_info: "x".repeat(600),
                status: 200,
                duration: 1.5,
                ..SlowRecord::default()
            },
        );
        assert_eq!(b[5], KIND_SLOW_REQUEST);
        let f = fields(&b);
        assert!(f.contains(&(200, T_U64, 1u64.to_le_bytes().to_vec())));
        assert!(f.contains(&(210, T_BYTES, b"GET".to_vec())));
        assert!(f.contains(&(240, T_U64, 200u64.to_le_bytes().to_vec())));
        assert!(f.contains(&(202, T_F64, 1.5f64.to_le_bytes().to_vec())));
        let path = &f.iter().find(|x| x.0 == 214).unwrap().2;
        assert!(path.len() < 512 && path.ends_with(b"..."));
        assert!(
            !f.iter().any(|x| x.0 == 217),
            "no user agent unless captured"
        );
    }
}
