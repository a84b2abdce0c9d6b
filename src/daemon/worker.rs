//! The Apache child's side of daemon mode: hand the request to a daemon of
//! the group over its Unix socket and relay the answer to the client.
//!
//! Every failure ends in one log line that says what happened, to which
//! group and (when known) which daemon pid: mod_wsgi's catch-all
//! "Truncated or oversized response headers" is split into its real causes.

use super::GroupRuntime;
use crate::apache::body_buf::BodyBuf;
use crate::apache::log::Level;
use crate::apache::request::{FileSend, Request, SendFileError};
use crate::apache::status;
use crate::embedded::RequestOptions;
use crate::protocol::{self, Frame, Limits, ProtocolError};
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Connects to the group's socket, retrying while the daemons are busy or
/// (re)starting, for up to connect-timeout; with the number of attempts.
fn connect(group: &GroupRuntime) -> Result<(UnixStream, u32), String> {
    let deadline = Instant::now() + group.options.connect_timeout;
    let mut pause = Duration::from_millis(10);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match UnixStream::connect(&group.socket_path) {
            Ok(s) => return Ok((s, attempts)),
            Err(e) => {
                let retry = matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::WouldBlock
                ) || e.raw_os_error() == Some(libc::EAGAIN);
                if !retry || Instant::now() >= deadline {
                    let hint = if e.kind() == ErrorKind::PermissionDenied {
                        " (the socket directory of WSGISocketPrefix must be reachable by Apache's User)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "cannot connect to daemon process group '{}' at {} after {:.1}s: {e}{hint}",
                        group.name,
                        group.socket_path.display(),
                        group.options.connect_timeout.as_secs_f64()
                    ));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Why a request could not be handed to the group.
enum SendError {
    /// No connection (the message says why).
    Connect(String),
    /// The request could not be written on a new connection.
    Write(std::io::Error),
    /// Sent on a kept connection, no answer within socket-timeout.
    TimedOut,
}

/// Hands the request over: on a connection this child kept to a process
/// with a thread waiting for it (`kept`), else on a new one. A kept
/// connection the daemon closed meanwhile (it stops, or keeps no more)
/// shows as an end of stream before any answer: the request is then sent
/// again on a new connection, unless the board shows that a daemon took
/// it (its ticket), which only a process that then died can have done.
/// Returns the connection, noted as a relay in progress.
fn send_request(
    group: &GroupRuntime,
    mut vars: Vec<crate::cgi::Var<'_>>,
    ticket: u64,
    timeout: Duration,
) -> Result<(UnixStream, crate::relays::Relay), SendError> {
    let Some(first) = super::kept::take(group) else {
        let (stream, connects) = connect(group).map_err(SendError::Connect)?;
        vars.push((
            crate::cgi::DAEMON_CONNECTS.into(),
            connects.to_string().into(),
        ));
        return write_new(group, stream, &encode_request(&vars)?, timeout);
    };
    vars.push((crate::cgi::DAEMON_CONNECTS.into(), "1".into()));
    let request = match encode_request(&vars) {
        Ok(request) => request,
        Err(e) => {
            group.board.give_seat_back(first.slot);
            return Err(e);
        }
    };
    let mut kept = Some(first);
    while let Some(seated) = kept {
        let relay = crate::relays::begin(&seated.stream);
        let mut writer = &seated.stream;
        let answer = match writer.write_all(&request) {
            Ok(()) => answer_coming(&seated.stream),
            Err(_) => Answer::Closed,
        };
        match answer {
            Answer::Coming => return Ok((seated.stream, relay)),
            Answer::TimedOut => return Err(SendError::TimedOut),
            // This child stops: the relay loop says so.
            Answer::Closed if crate::relays::abandoned() => return Ok((seated.stream, relay)),
            Answer::Closed => {}
        }
        // Not taken here: the seat goes back (to a process that closed the
        // connection because it stops, which then takes no more anyway).
        group.board.give_seat_back(seated.slot);
        if group.board.holder(ticket).is_some() {
            // Taken by a daemon that died on it: not sent twice; the relay
            // loop reports the close, naming that process.
            return Ok((seated.stream, relay));
        }
        drop(relay);
        kept = super::kept::take(group);
    }
    let (stream, _) = connect(group).map_err(SendError::Connect)?;
    write_new(group, stream, &request, timeout)
}

/// The `Request` frame's bytes (an environ over the protocol's limits is
/// an `InvalidInput` error).
fn encode_request(vars: &[crate::cgi::Var<'_>]) -> Result<Vec<u8>, SendError> {
    let mut bytes = Vec::new();
    let pairs = vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
    protocol::encode_request(protocol::PROTOCOL_VERSION, pairs, &mut bytes)
        .map_err(|e| SendError::Write(std::io::Error::new(ErrorKind::InvalidInput, e)))?;
    Ok(bytes)
}

/// Sets up a new connection and writes the request on it.
fn write_new(
    group: &GroupRuntime,
    stream: UnixStream,
    request: &[u8],
    timeout: Duration,
) -> Result<(UnixStream, crate::relays::Relay), SendError> {
    set_buffer_sizes(&stream, group);
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let relay = crate::relays::begin(&stream);
    let mut writer = &stream;
    writer.write_all(request).map_err(SendError::Write)?;
    Ok((stream, relay))
}

/// What came back on a kept connection a request was just written to.
enum Answer {
    /// The daemon's first bytes.
    Coming,
    /// An end of stream (or a reset) before any byte.
    Closed,
    /// Nothing within socket-timeout.
    TimedOut,
}

/// Waits for the daemon's first byte on a kept connection (or the
/// socket-timeout) without taking it.
fn answer_coming(stream: &UnixStream) -> Answer {
    let mut byte = [0u8; 1];
    loop {
        match nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            &mut byte,
            nix::sys::socket::MsgFlags::MSG_PEEK,
        ) {
            Ok(0) => return Answer::Closed,
            Ok(_) => return Answer::Coming,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Answer::TimedOut,
            Err(_) => return Answer::Closed,
        }
    }
}

/// Relays one request to the daemon group; returns the hook status.
pub fn handle(
    r: &mut Request,
    opts: &RequestOptions,
    group: &GroupRuntime,
    server_timeout: Duration,
) -> i32 {
    if let Err(message) = check_script_owner(r, &opts.script, group) {
        r.log(Level::Error, &message);
        return status::HTTP_FORBIDDEN;
    }
    if let Err(code) = r.setup_body(opts.chunked_request) {
        return code;
    }
    if opts.pass_apache_request {
        warn_no_request_rec(r, &group.name);
    }
    let mut vars = crate::cgi::vars(r, opts.pass_authorization, &opts.proxy);
    crate::cgi::map_head_to_get(r, &mut vars, opts.map_head_to_get);
    vars.push(("mod_wsgi.process_group".into(), group.name.as_str().into()));
    // Expanded (%{RESOURCE} etc.) by the dispatcher, where the request's
    // server, port and URI are known: the daemon gets the name.
    vars.push((
        "mod_wsgi.application_group".into(),
        opts.application_group.as_str().into(),
    ));
    vars.push((
        "mod_wsgi.callable_object".into(),
        opts.callable_object.as_str().into(),
    ));
    // For the daemon process only (not in the application's environ).
    let flag = |on: bool| if on { "1" } else { "0" }.into();
    vars.push((
        crate::cgi::SCRIPT_RELOADING.into(),
        flag(opts.script_reloading),
    ));
    vars.push((
        crate::cgi::IGNORE_ACTIVITY.into(),
        flag(opts.ignore_activity),
    ));
    let queue_start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    // Daemons that end from now on may be the one that takes the request.
    let asked_ms = super::board::now_ms();
    let timeout = if group.options.socket_timeout.is_zero() {
        server_timeout
    } else {
        group.options.socket_timeout
    };
    let ticket = super::board::next_ticket();
    vars.push((
        crate::cgi::QUEUE_START_US.into(),
        queue_start.to_string().into(),
    ));
    vars.push((crate::cgi::TICKET.into(), ticket.to_string().into()));
    vars.push((crate::cgi::KEEP_CONNECTION.into(), "1".into()));
    let name = &group.name;
    let (stream, _relay) = match send_request(group, vars, ticket, timeout) {
        Ok(sent) => sent,
        Err(SendError::Connect(message)) => {
            r.log(Level::Error, &message);
            return status::HTTP_SERVICE_UNAVAILABLE;
        }
        Err(SendError::Write(e)) => {
            r.log(
                Level::Error,
                &format!("cannot send the request to daemon process group '{name}': {e}"),
            );
            return status::HTTP_BAD_GATEWAY;
        }
        Err(SendError::TimedOut) => {
            let who = match group.board.holder(ticket) {
                Some(pid) => format!("daemon process group '{name}' (pid {pid})"),
                None => format!("daemon process group '{name}'"),
            };
            let e = ProtocolError::Io(ErrorKind::TimedOut.into());
            return relay_failure(r, &who, None, &e, timeout);
        }
    };
    let limits = Limits {
        max_header: group.options.header_buffer_size,
        ..Limits::default()
    };
    // Reads and writes share the one socket through `&UnixStream` (a
    // try_clone would cost a dup and a close per request).
    let mut writer = &stream;
    // Frames are small and come in bursts (head, body, end): read them
    // through a buffer, a syscall per burst rather than two per frame.
    // Small: a large frame's payload is read past the buffer anyway. Read
    // with recvmsg: a `ResponseFile`'s descriptor may come with any read.
    let mut reader =
        std::io::BufReader::with_capacity(8 * 1024, super::fd_passing::Receiver::new(&stream));
    // Who serves this request, for every log line: the group, and the
    // daemon's pid once it has said it took the request.
    let describe = |pid: Option<u32>| match pid {
        Some(pid) => format!("daemon process group '{name}' (pid {pid})"),
        None => format!("daemon process group '{name}'"),
    };
    let mut who = describe(None);
    let mut named = false;
    let mut daemon_pid: Option<u32> = None;
    // A daemon that fails before naming itself is found on the board: by
    // the request's ticket once it took the request, else, killed between
    // accepting the connection and reading the request, as the one process
    // of the group that ended meanwhile.
    let name_from_board = |who: &mut String, named: bool| {
        if named {
            return;
        }
        if let Some(pid) = group
            .board
            .holder(ticket)
            .or_else(|| sole_process_gone(&group.board, asked_ms))
        {
            *who = describe(Some(pid));
        }
    };
    let mut head_sent = false;
    // The head was a 101 (Switching Protocols): a `Tunnel` follows.
    let mut switching = false;
    // Body bytes passed to Apache: how much of a cut response the client got.
    let mut relayed: u64 = 0;
    // WSGIErrorOverride: the error status the application answered, whose
    // body is discarded so that Apache's ErrorDocument makes it instead.
    let mut overridden: Option<i32> = None;
    // Status 200 with a local Location (the CGI rule): the URL Apache
    // serves instead once the daemon has finished, the body discarded.
    let mut redirect: Option<String> = None;
    // Room for the body reads, allocated on the first ReadBody only: most
    // requests have no body, and with hundreds of Apache threads per child
    // the memory adds up. Always empty: reads go to its spare capacity.
    let mut body: Vec<u8> = Vec::new();
    // response-flush-delay and response-buffer-size, as mod_wsgi 6.1.1's
    // wsgi_transfer_response has them: body bytes go down the output
    // filters without a flush while the daemon keeps sending; a flush when
    // nothing more came within the delay, and after every buffer-size
    // bytes whatever else happens (a guard against a filter that holds
    // what it is given until it is flushed).
    let flush_delay = group.options.response_flush_delay;
    let buffer_size = group.options.response_buffer_size.max(1);
    // Body bytes passed to Apache since the last flush.
    let mut unflushed: usize = 0;
    // The response head's Content-Length, when the application gave one.
    let mut declared_length: Option<u64> = None;
    // No process of the group serves yet (they are starting, or keep
    // dying at startup): wait for the first answer a second at a time, and
    // give up at once when every process keeps dying, rather than hold the
    // client until socket-timeout for a daemon that will not come.
    if !group.board.any_ready() {
        let waiting = Instant::now();
        while !more_within(&reader, Duration::from_secs(1)) && waiting.elapsed() < timeout {
            if group.board.keeps_dying() {
                r.log(
                    Level::Error,
                    &format!(
                        "daemon process group '{name}' has no process to serve the request: each keeps dying at startup (the parent's lines say how)"
                    ),
                );
                return status::HTTP_SERVICE_UNAVAILABLE;
            }
        }
    }
    let location = loop {
        let frame = match protocol::read_frame(&mut reader, &limits) {
            Ok(f) => f,
            Err(_) if overridden.is_some() => return overridden.unwrap_or(status::OK),
            // Apache answered itself (a body it refused): nothing to add.
            Err(_) if r.response_ended() => return status::DONE,
            Err(_) if crate::relays::abandoned() => {
                let why = format!("Apache child stopping: request to {who} abandoned");
                if head_sent {
                    return cut_short(r, &why, relayed);
                }
                // Apache cuts this child's connections; one its sweep
                // missed is cut the same way rather than answered 503: a
                // client retries a request whose kept-alive connection
                // closed before any byte, never a 503.
                r.log(
                    Level::Info,
                    &format!("{why}; connection closed without a response"),
                );
                r.drop_connection();
                return status::DONE;
            }
            Err(e) => {
                name_from_board(&mut who, named);
                return relay_failure(r, &who, head_sent.then_some(relayed), &e, timeout);
            }
        };
        match frame {
            // Apache answered the request itself while the body was read
            // (a body it refused): what the daemon answers is dropped.
            Frame::ResponseHead { .. } | Frame::ResponseBody(_) | Frame::ResponseFile { .. }
                if r.response_ended() => {}
            Frame::ResponseEnd | Frame::Failure { .. } if r.response_ended() => {
                return status::DONE;
            }
            Frame::ReadBody { max } => {
                // The application reads its input while responding: what
                // it has answered so far goes out before this thread waits
                // for the client, who may be waiting for it.
                if unflushed > 0 {
                    unflushed = 0;
                    if r.flush().is_err() {
                        r.log(
                            Level::Info,
                            &format!("client went away while {who} was responding"),
                        );
                        return status::OK;
                    }
                }
                if body.capacity() == 0 {
                    body.reserve_exact(64 * 1024);
                }
                let n = (max as usize).min(body.capacity());
                let mut buf = BodyBuf::uninit(&mut body.spare_capacity_mut()[..n]);
                let reply = match r.read_body(&mut buf) {
                    Ok(0) => Frame::BodyEnd,
                    Ok(_) => Frame::Body(buf.filled().to_vec()),
                    Err(e) => Frame::body_error(e.to_string()),
                };
                if protocol::write_frame(&mut writer, &reply)
                    .and_then(|_| writer.flush())
                    .is_err()
                {
                    name_from_board(&mut who, named);
                    let why = format!("{who} closed the connection while reading the request body");
                    if head_sent {
                        return cut_short(r, &why, relayed);
                    }
                    r.log(Level::Error, &why);
                    return status::HTTP_BAD_GATEWAY;
                }
            }
            Frame::Accepted { pid } => {
                who = describe(Some(pid));
                named = true;
                daemon_pid = Some(pid);
            }
            Frame::ResponseHead { status: code, .. }
                if opts.error_override && code >= 400 && !head_sent =>
            {
                overridden = Some(i32::from(code));
            }
            Frame::ResponseHead {
                status: code,
                headers,
                ..
            } if !head_sent && local_location(code, &headers).is_some() => {
                redirect = local_location(code, &headers);
            }
            Frame::ResponseBody(_) | Frame::ResponseFile { .. } if redirect.is_some() => {}
            Frame::ResponseEnd if redirect.is_some() => {
                break redirect.take().unwrap_or_default();
            }
            Frame::Failure { kind, message } if redirect.is_some() => {
                // Nothing reached the client: an ordinary error status
                // rather than the redirect.
                r.log(
                    Level::Info,
                    &format!("{who} failed the request ({}): {message}", kind.name()),
                );
                return kind.http_status() as i32;
            }
            Frame::ResponseBody(_)
            | Frame::ResponseFile { .. }
            | Frame::ResponseEnd
            | Frame::Failure { .. }
                if overridden.is_some() =>
            {
                if matches!(frame, Frame::ResponseEnd | Frame::Failure { .. }) {
                    return overridden.unwrap_or(status::OK);
                }
            }
            Frame::ResponseHead {
                status: code,
                reason,
                headers,
            } => {
                // Status line and headers are the latin-1 bytes the
                // application's text stands for: Apache sends them as they are.
                let mut line = code.to_string().into_bytes();
                if !reason.is_empty() {
                    line.push(b' ');
                    line.extend_from_slice(&reason);
                }
                r.set_status(code as i32, &line);
                let out = r.headers_out();
                for (k, v) in headers {
                    if k.eq_ignore_ascii_case(b"content-type") {
                        r.set_content_type(&v);
                    } else {
                        if k.eq_ignore_ascii_case(b"content-length") {
                            declared_length = std::str::from_utf8(&v)
                                .ok()
                                .and_then(|v| v.trim().parse().ok());
                        }
                        out.add_bytes(r.pool(), &k, &v);
                    }
                }
                head_sent = true;
                switching = code == 101;
            }
            Frame::ResponseBody(data) => {
                if !head_sent {
                    r.log(
                        Level::Error,
                        &format!("{who} sent body bytes before the response headers"),
                    );
                    return status::HTTP_BAD_GATEWAY;
                }
                // A flush after each response-buffer-size bytes, then one
                // when the daemon has nothing more within
                // response-flush-delay: streamed responses stay streamed,
                // while blocks sent back to back go to Apache together.
                // Unlike mod_wsgi, no flush before the end: a body whose
                // end follows within the delay is passed with it, so Apache
                // can give the response a Content-Length. A body that has
                // reached the Content-Length the application declared is
                // complete: it goes to the client at once, without waiting
                // for the end (the application's close() may take a while),
                // so a keep-alive client's next request can be there when
                // this one ends, and Apache serves it on this thread.
                let mut sent = Ok(());
                for piece in pieces(&data, buffer_size, &mut unflushed) {
                    sent = r
                        .write(piece.bytes)
                        .and_then(|()| if piece.flush { r.flush() } else { Ok(()) });
                    if sent.is_err() {
                        break;
                    }
                    relayed += piece.bytes.len() as u64;
                }
                let complete = declared_length == Some(relayed);
                if sent.is_ok() && unflushed > 0 && (complete || !more_within(&reader, flush_delay))
                {
                    unflushed = 0;
                    sent = r.flush();
                }
                if sent.is_err() {
                    r.log(
                        Level::Info,
                        &format!("client went away while {who} was responding"),
                    );
                    return status::OK;
                }
            }
            Frame::ResponseFile { offset, length } => {
                let passed = reader.get_mut().take_fd();
                if !head_sent {
                    r.log(
                        Level::Error,
                        &format!("{who} sent a file before the response headers"),
                    );
                    return status::HTTP_BAD_GATEWAY;
                }
                let file = match passed {
                    Err(why) => Err(why.to_string()),
                    Ok(fd) => {
                        super::fd_passing::passed_file(fd, offset, length, &daemon_uids(group))
                            .map_err(|e| e.to_string())
                    }
                };
                let passed = match file {
                    Ok(passed) => passed,
                    Err(why) => {
                        let why = format!(
                            "{who} passed a file to send ({length} bytes from offset {offset}) that cannot be: {why}"
                        );
                        return cut_short(r, &why, relayed);
                    }
                };
                // Memory-mapped (where EnableMMAP allows) only when the
                // daemon's user cannot truncate the file: under a map that
                // shrinks this child would die of SIGBUS. Verified: a file
                // that shrinks while Apache reads it must not end in a
                // response that looks complete.
                let how = FileSend {
                    sendfile: opts.enable_sendfile,
                    mmap: passed.mappable,
                    verify: true,
                };
                let file = passed.file;
                // What came before it goes out with it (the FLUSH after the
                // file takes it along).
                unflushed = 0;
                match r.send_file(file, offset, length, how) {
                    Ok(()) => {
                        relayed += length;
                        r.log(
                            Level::Debug,
                            &format!(
                                "sent {length} bytes from offset {offset} of the file {who} passed, as a file bucket ({})",
                                if how.sendfile {
                                    "sendfile"
                                } else if how.mmap {
                                    "mmap"
                                } else {
                                    "read"
                                }
                            ),
                        );
                    }
                    Err(SendFileError::Shrunk { size, end }) => {
                        let why = format!(
                            "the file {who} passed shrank to {size} bytes while being sent, short of the {end} the response needed"
                        );
                        return cut_short(r, &why, relayed);
                    }
                    Err(SendFileError::Failed) => {
                        r.log(
                            Level::Info,
                            &format!("client went away while {who} was responding"),
                        );
                        return status::OK;
                    }
                }
            }
            Frame::ResponseEnd => {
                if !head_sent {
                    return status::HTTP_BAD_GATEWAY;
                }
                // The exchange is over and nothing of it is left: the
                // connection may carry this child's next request to the
                // group.
                if named
                    && reader.buffer().is_empty()
                    && reader.get_ref().nothing_queued()
                    && !crate::relays::abandoned()
                    && let Some(pid) = daemon_pid
                {
                    drop(reader);
                    drop(_relay);
                    super::kept::put(group, pid, stream);
                }
                return status::OK;
            }
            Frame::Failure { kind, message } => {
                // The daemon logged what the application did (a traceback,
                // or mod_wsgi's RequestTimeout line): only a pointer here.
                let why = format!("{who} failed the request ({}): {message}", kind.name());
                // A 101 head has not reached the client (it goes out with
                // the Tunnel): an ordinary error response is still possible.
                if head_sent && !switching {
                    return cut_short(r, &why, relayed);
                }
                let level = if matches!(
                    kind,
                    protocol::FailureKind::ApplicationError | protocol::FailureKind::RequestTimeout
                ) {
                    Level::Info
                } else {
                    Level::Error
                };
                r.log(level, &why);
                return kind.http_status() as i32;
            }
            Frame::Tunnel if switching => {
                // Daemon bytes read with the frame belong to the tunnel.
                let early = reader.buffer().to_vec();
                return crate::tunnel::carry(
                    r,
                    &stream,
                    &early,
                    timeout,
                    &who,
                    status::HTTP_BAD_GATEWAY,
                );
            }
            other => {
                let why = format!("{who} sent {} out of turn", other.name());
                if head_sent {
                    return cut_short(r, &why, relayed);
                }
                r.log(Level::Error, &why);
                return status::HTTP_BAD_GATEWAY;
            }
        }
    };
    // The daemon is done with the request: let it go before Apache serves
    // the new one (which may well be sent to the same group).
    drop(reader);
    drop(stream);
    r.log(
        Level::Debug,
        &format!("{who} answered 200 with Location '{location}': internal redirect"),
    );
    r.internal_redirect(&location);
    status::OK
}

/// A piece of a response body block, and whether a flush follows it.
#[derive(Debug, PartialEq)]
struct Piece<'a> {
    bytes: &'a [u8],
    flush: bool,
}

/// Splits `data` so that at most `limit` bytes go downstream without a
/// flush (response-buffer-size); `unflushed` counts the bytes passed since
/// the last flush, before and after.
fn pieces<'a>(
    data: &'a [u8],
    limit: usize,
    unflushed: &'a mut usize,
) -> impl Iterator<Item = Piece<'a>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let room = limit.saturating_sub(*unflushed).max(1);
        let (now, later) = rest.split_at(rest.len().min(room));
        rest = later;
        *unflushed += now.len();
        let flush = *unflushed >= limit;
        if flush {
            *unflushed = 0;
        }
        Some(Piece { bytes: now, flush })
    })
}

/// The one process of the group that ended since `since_ms`, waiting a
/// little for the parent to see it go (it reaps a killed daemon within
/// milliseconds); none when no process or several ended.
fn sole_process_gone(board: &super::board::GroupBoard, since_ms: u64) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match board.gone_since(since_ms).as_slice() {
            [pid] => return Some(*pid),
            [] if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Whether more from the daemon is ready within `linger`
/// (response-flush-delay): a frame, or part of one, already read, or the
/// socket readable (an end of stream counts: the next read says what it
/// is). Zero only looks.
fn more_within(
    reader: &std::io::BufReader<super::fd_passing::Receiver<'_>>,
    linger: Duration,
) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    if !reader.buffer().is_empty() {
        return true;
    }
    let stream = reader.get_ref().stream();
    let deadline = Instant::now() + linger;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => {}
            Err(_) => return false,
        }
    }
}

/// The local URL of a response head that asks for an internal redirect.
fn local_location(code: u16, headers: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    crate::wsgi::response::local_redirect(
        code,
        headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
    )
    .map(latin1)
}

/// WSGIPassApacheRequest On in front of a daemon process group: said once
/// per Apache child. As with mod_wsgi, the key is left out: the daemon has
/// no request_rec, the request lives in this process.
fn warn_no_request_rec(r: &Request, group: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        r.log(
            Level::Warning,
            &format!(
                "WSGIPassApacheRequest On has no effect in daemon mode (daemon process group '{group}'): environ has no 'apache.request_rec' there, as with mod_wsgi (said once per Apache child, pid {})",
                std::process::id()
            ),
        );
    }
}

/// A response whose head went to Apache but that cannot be finished: one
/// line saying why and how much of the body the client got, and the
/// client connection aborted, so that the client sees the cut instead of
/// a response that looks complete.
fn cut_short(r: &mut Request, why: &str, relayed: u64) -> i32 {
    r.log(
        Level::Error,
        &format!("{why}; response cut short after {relayed} body bytes, connection aborted"),
    );
    r.abort_response();
    status::DONE
}

/// One clear line for a connection that broke, and the status to answer.
/// `relayed`: the body bytes passed to Apache, once the head went to it.
fn relay_failure(
    r: &mut Request,
    who: &str,
    relayed: Option<u64>,
    e: &ProtocolError,
    timeout: Duration,
) -> i32 {
    let when = if relayed.is_some() {
        "after the response started"
    } else {
        "before sending the response headers"
    };
    let (message, code) = match e {
        ProtocolError::Closed | ProtocolError::UnexpectedEof => (
            format!("{who} closed the connection {when}: the daemon process died or was restarted"),
            status::HTTP_BAD_GATEWAY,
        ),
        ProtocolError::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            (
                format!(
                    "timed out after {:.0}s waiting for {who} {when} (socket-timeout)",
                    timeout.as_secs_f64()
                ),
                status::HTTP_GATEWAY_TIME_OUT,
            )
        }
        ProtocolError::TooLarge { what, size, limit } => (
            format!(
                "{who} sent {what} of {size} bytes, over the limit of {limit} (header-buffer-size)"
            ),
            status::HTTP_BAD_GATEWAY,
        ),
        other => (
            format!("bad response from {who} {when}: {other}"),
            status::HTTP_BAD_GATEWAY,
        ),
    };
    match relayed {
        Some(relayed) => cut_short(r, &message, relayed),
        None => {
            r.log(Level::Error, &message);
            code
        }
    }
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// script-user / script-group: the script must be owned by them (403
/// otherwise), as mod_wsgi checks before handing the request over.
fn check_script_owner(r: &Request, script: &str, group: &GroupRuntime) -> Result<(), String> {
    let (uid, gid) = r.file_owner();
    let o = &group.options;
    if let Some(user) = &o.script_user
        && user.uid != uid
    {
        return Err(format!(
            "script '{script}' is owned by uid {uid}, not by script-user={} (uid {}) of daemon process group '{}'",
            user.name, user.uid, group.name
        ));
    }
    if let Some(g) = &o.script_group
        && g.gid != gid
    {
        return Err(format!(
            "script '{script}' belongs to gid {gid}, not to script-group={} (gid {}) of daemon process group '{}'",
            g.name, g.gid, group.name
        ));
    }
    Ok(())
}

/// The uids the group's daemon processes may run as: user= (or Apache's
/// User), and this child's own when Apache did not start as root (the
/// daemons then keep the parent's uid, which is the children's).
fn daemon_uids(group: &GroupRuntime) -> [u32; 2] {
    let configured = group
        .options
        .user
        .as_ref()
        .map_or(crate::apache::process::worker_identity().uid, |u| u.uid);
    [configured, nix::unistd::geteuid().as_raw()]
}

/// send-buffer-size / receive-buffer-size on one end of a daemon socket.
pub fn set_buffer_sizes(stream: &UnixStream, group: &GroupRuntime) {
    use nix::sys::socket::{setsockopt, sockopt};
    let o = &group.options;
    if o.send_buffer_size > 0 {
        let _ = setsockopt(stream, sockopt::SndBuf, &(o.send_buffer_size as usize));
    }
    if o.receive_buffer_size > 0 {
        let _ = setsockopt(stream, sockopt::RcvBuf, &(o.receive_buffer_size as usize));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: &[u8], limit: usize, unflushed: &mut usize) -> Vec<(usize, bool)> {
        pieces(data, limit, unflushed)
            .map(|p| (p.bytes.len(), p.flush))
            .collect()
    }

    #[test]
    fn a_flush_after_every_limit_bytes() {
        let mut n = 0;
        assert_eq!(
            split(&[0; 10], 4, &mut n),
            [(4, true), (4, true), (2, false)]
        );
        assert_eq!(n, 2);
        assert_eq!(split(&[0; 3], 4, &mut n), [(2, true), (1, false)]);
        assert_eq!(n, 1);
        assert_eq!(split(&[0; 2], 4, &mut n), [(2, false)]);
        assert_eq!(n, 3);
        assert_eq!(split(&[], 4, &mut n), []);
        assert_eq!(n, 3);
    }
}
