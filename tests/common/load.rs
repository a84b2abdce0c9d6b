//! A load client for the reliability drills: `connections` threads, each
//! sending GET requests one after another over one HTTP/1.1 keep-alive
//! connection, reading every answer whole (Content-Length or chunked), and
//! sorting each outcome into what a drill needs to tell apart.
//!
//! One outcome is not a failure: a server may close a keep-alive connection
//! it holds idle at any moment (RFC 9112, 9.3.1; Apache does so for every
//! idle connection at a graceful restart), and a client then retries the
//! request on a new connection, as browsers and HTTP libraries do for
//! idempotent requests. Such a close, with not one byte of the answer
//! received on a connection that already carried a request, is counted as
//! `idle_closed` and the request is sent again; a drill measures its rate
//! with a static file as the baseline. Everything else that does not end
//! in a whole 2xx answer is a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a drill asks of the load.
#[derive(Clone)]
pub struct LoadSpec {
    pub port: u16,
    pub path: String,
    pub connections: usize,
    /// How long an answer may take before it counts as a timeout.
    pub answer_timeout: Duration,
    /// When set, every 2xx body must be exactly this.
    pub expect_body: Option<Vec<u8>>,
}

/// Outcomes of one run.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Whole 2xx answers (with the expected body, when one was given).
    pub ok: u64,
    /// Answers with another status: (status, count).
    pub non_2xx: Vec<(u16, u64)>,
    /// A 2xx answer whose body was not the expected one.
    pub wrong_body: u64,
    /// Keep-alive connections the server closed before any byte of the
    /// answer; the request was sent again (not a failure; see the module).
    pub idle_closed: u64,
    /// Connections that ended inside an answer, or before any byte of the
    /// answer on a connection that carried no request before.
    pub cut: u64,
    /// Answers that did not come within `answer_timeout`.
    pub timeouts: u64,
    /// Connection attempts refused or failed.
    pub connect_errors: u64,
    /// Longest time one request took (retries included).
    pub slowest: Duration,
    pub elapsed: Duration,
    /// Whole 2xx answers per second of the run, in order.
    pub per_second: Vec<u64>,
    /// The first few failures, for the assertion message.
    pub samples: Vec<String>,
}

impl LoadReport {
    pub fn failed(&self) -> u64 {
        self.non_2xx.iter().map(|(_, n)| n).sum::<u64>()
            + self.wrong_body
            + self.cut
            + self.timeouts
            + self.connect_errors
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// One line with every figure, for the test output and the docs.
    pub fn summary(&self) -> String {
        format!(
            "ok={} failed={} (non-2xx={:?} wrong-body={} cut={} timeouts={} connect-errors={}) idle-closed-and-retried={} rate={:.0}/s slowest={:.2}s elapsed={:.1}s",
            self.ok,
            self.failed(),
            self.non_2xx,
            self.wrong_body,
            self.cut,
            self.timeouts,
            self.connect_errors,
            self.idle_closed,
            self.rate(),
            self.slowest.as_secs_f64(),
            self.elapsed.as_secs_f64()
        )
    }

    fn merge(&mut self, other: LoadReport) {
        self.ok += other.ok;
        for (status, n) in other.non_2xx {
            match self.non_2xx.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.non_2xx.push((status, n)),
            }
        }
        self.wrong_body += other.wrong_body;
        self.idle_closed += other.idle_closed;
        self.cut += other.cut;
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.slowest = self.slowest.max(other.slowest);
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (i, n) in other.per_second.iter().enumerate() {
            self.per_second[i] += n;
        }
        for s in other.samples {
            if self.samples.len() < 10 {
                self.samples.push(s);
            }
        }
    }
}

/// A load running in the background until `finish`.
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    threads: Vec<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(spec: &LoadSpec) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads = (0..spec.connections)
            .map(|_| {
                let spec = spec.clone();
                let stop = stop.clone();
                std::thread::spawn(move || client(&spec, &stop, started))
            })
            .collect();
        Load {
            stop,
            started,
            threads,
        }
    }

    /// Stops sending (requests in flight are finished) and adds it all up.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = LoadReport::default();
        for t in self.threads {
            total.merge(t.join().expect("load thread panicked"));
        }
        total.elapsed = self.started.elapsed();
        total
    }
}

/// Runs a load for `duration` and reports.
pub fn run_for(spec: &LoadSpec, duration: Duration) -> LoadReport {
    let load = Load::start(spec);
    std::thread::sleep(duration);
    load.finish()
}

enum Answer {
    Whole {
        status: u16,
        body: Vec<u8>,
        close: bool,
    },
    /// Closed before any byte of the answer.
    ClosedEarly,
    /// Closed or failed inside the answer.
    Cut(String),
    TimedOut,
}

fn client(spec: &LoadSpec, stop: &AtomicBool, started: Instant) -> LoadReport {
    let mut report = LoadReport::default();
    let mut conn: Option<(BufReader<TcpStream>, u64)> = None;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: mwrs-drill\r\n\r\n",
        spec.path, spec.port
    );
    while !stop.load(Ordering::SeqCst) {
        let began = Instant::now();
        // One request, sent again after an idle close (bounded: a server
        // that closes every connection at once is a failure, not a retry).
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            if conn.is_none() {
                match TcpStream::connect(("127.0.0.1", spec.port)) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(spec.answer_timeout));
                        conn = Some((BufReader::new(s), 0));
                    }
                    Err(e) => {
                        report.connect_errors += 1;
                        note(&mut report, format!("connect: {e}"));
                        std::thread::sleep(Duration::from_millis(50));
                        break None;
                    }
                }
            }
            let (reader, used) = conn.as_mut().expect("connected");
            let reused = *used > 0;
            let answer = match reader.get_mut().write_all(request.as_bytes()) {
                Ok(()) => read_answer(reader),
                Err(_) => Answer::ClosedEarly,
            };
            *used += 1;
            match answer {
                Answer::ClosedEarly if reused && attempts < 5 => {
                    report.idle_closed += 1;
                    conn = None;
                }
                other => break Some(other),
            }
        };
        let Some(outcome) = outcome else { continue };
        report.slowest = report.slowest.max(began.elapsed());
        match outcome {
            Answer::Whole {
                status,
                body,
                close,
            } => {
                if close {
                    conn = None;
                }
                if !(200..300).contains(&status) {
                    match report.non_2xx.iter_mut().find(|(s, _)| *s == status) {
                        Some((_, n)) => *n += 1,
                        None => report.non_2xx.push((status, 1)),
                    }
                    note(
                        &mut report,
                        format!("status {status}: {}", String::from_utf8_lossy(&body)),
                    );
                } else if spec.expect_body.as_ref().is_some_and(|b| *b != body) {
                    report.wrong_body += 1;
                    note(
                        &mut report,
                        format!("wrong body: {:?}", String::from_utf8_lossy(&body)),
                    );
                } else {
                    report.ok += 1;
                    let second = started.elapsed().as_secs() as usize;
                    if report.per_second.len() <= second {
                        report.per_second.resize(second + 1, 0);
                    }
                    report.per_second[second] += 1;
                }
            }
            Answer::ClosedEarly => {
                conn = None;
                report.cut += 1;
                note(&mut report, "closed before the answer".into());
            }
            Answer::Cut(why) => {
                conn = None;
                report.cut += 1;
                note(&mut report, format!("cut: {why}"));
            }
            Answer::TimedOut => {
                conn = None;
                report.timeouts += 1;
                note(&mut report, "no answer in time".into());
            }
        }
    }
    report
}

fn note(report: &mut LoadReport, what: String) {
    if report.samples.len() < 10 {
        report.samples.push(what);
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Reads one answer: head, then the body by Content-Length or chunks.
fn read_answer(reader: &mut BufReader<TcpStream>) -> Answer {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Answer::ClosedEarly,
        Ok(_) => {}
        Err(e) if is_timeout(&e) => return Answer::TimedOut,
        Err(_) => return Answer::ClosedEarly,
    }
    let status: u16 = match line.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
        Some(s) => s,
        None => return Answer::Cut(format!("bad status line {line:?}")),
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = line.starts_with("HTTP/1.0");
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Answer::Cut("inside the head".into()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Answer::TimedOut,
            Err(e) => return Answer::Cut(format!("inside the head: {e}")),
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let body = if chunked {
        read_chunked(reader)
    } else if let Some(n) = length {
        let mut body = vec![0u8; n];
        reader
            .read_exact(&mut body)
            .map(|()| body)
            .map_err(|e| format!("inside a body of {n} bytes: {e}"))
    } else {
        // Delimited by the close.
        close = true;
        let mut body = Vec::new();
        reader
            .read_to_end(&mut body)
            .map(|_| body)
            .map_err(|e| e.to_string())
    };
    match body {
        Ok(body) => Answer::Whole {
            status,
            body,
            close,
        },
        Err(why) => Answer::Cut(why),
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("inside the chunks (no last chunk)".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("inside the chunks: {e}")),
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => return Err("inside the trailers".into()),
                    Ok(_) if line.trim_end().is_empty() => return Ok(body),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("inside a chunk: {e}"))?;
        body.truncate(start + size);
    }
}
