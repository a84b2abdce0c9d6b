//! The status page (`SetHandler wsgi-status`): every daemon process group,
//! its processes, what each request thread is doing, requests served,
//! restarts and how the last process of each slot ended. HTML for a person,
//! JSON (`?json`) for probes and monitoring. Read from the groups' boards
//! (`daemon::board`), so it costs the daemons nothing; access is Apache's
//! to control, as for mod_status (`<Location>` with `Require`).

use super::board::{End, ProcessView, ThreadView};
use super::exit_cause::ExitCause;
use crate::cgi::escape_html;
use std::fmt::Write;

/// One group as the page shows it.
pub struct GroupStatus<'a> {
    pub name: &'a str,
    pub processes: Vec<ProcessView>,
}

/// How a slot's last process ended, in words.
fn ended(end: Option<End>) -> String {
    match end {
        None => String::new(),
        Some(End::Reason(r)) => r.to_string(),
        Some(End::Exited(n)) => ExitCause::Exited(n).describe(),
        Some(End::Killed(n)) => ExitCause::Killed(n).describe(),
    }
}

fn seconds_since(then_ms: u64, now_ms: u64) -> f64 {
    now_ms.saturating_sub(then_ms) as f64 / 1000.0
}

/// How long the oldest request the process's event loop holds has run
/// (0 when it holds none).
fn loop_oldest_seconds(p: &ProcessView, now_ms: u64) -> f64 {
    if p.loop_held == 0 {
        0.0
    } else {
        seconds_since(p.loop_oldest_ms, now_ms)
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A URL as sent: its bytes shown one character per byte where they are
/// not UTF-8.
fn url_text(url: &[u8]) -> String {
    match std::str::from_utf8(url) {
        Ok(s) => s.to_string(),
        Err(_) => url.iter().map(|&b| b as char).collect(),
    }
}

/// The page as JSON.
pub fn json(groups: &[GroupStatus], now_ms: u64) -> String {
    let mut out = String::from("{\"groups\":[");
    for (gi, g) in groups.iter().enumerate() {
        if gi > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"name\":{},\"processes\":[", json_string(g.name));
        for (pi, p) in g.processes.iter().enumerate() {
            if pi > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"slot\":{pi},\"pid\":{},\"uptime\":{:.1},\"requests\":{},\"connections\":{},\"overbooked\":{},\"restarts\":{},\"last_end\":{},\"loop_held\":{},\"loop_oldest_seconds\":{:.1},\"threads\":[",
                p.pid,
                seconds_since(p.started_ms, now_ms),
                p.requests,
                p.connections,
                p.overbooked,
                p.restarts,
                json_string(&ended(p.last_end)),
                p.loop_held,
                loop_oldest_seconds(p, now_ms),
            );
            for (ti, t) in p.threads.iter().enumerate() {
                if ti > 0 {
                    out.push(',');
                }
                match t {
                    ThreadView::Idle => out.push_str("{\"state\":\"idle\"}"),
                    ThreadView::Busy { since_ms, url } => {
                        let _ = write!(
                            out,
                            "{{\"state\":\"busy\",\"seconds\":{:.1},\"url\":{}}}",
                            seconds_since(*since_ms, now_ms),
                            json_string(&url_text(url))
                        );
                    }
                }
            }
            out.push_str("]}");
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
}

/// The page as HTML.
pub fn html(groups: &[GroupStatus], now_ms: u64, banner: &str) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mod_wsgi_rs status</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:2px 6px;text-align:left}\
         .busy{background:#fde9a9}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>mod_wsgi_rs status</h1><p>{}</p>",
        escape_html(banner)
    );
    if groups.is_empty() {
        out.push_str("<p>No daemon process groups.</p>\n");
    }
    for g in groups {
        let busy: usize = g
            .processes
            .iter()
            .flat_map(|p| &p.threads)
            .filter(|t| matches!(t, ThreadView::Busy { .. }))
            .count();
        let threads: usize = g.processes.iter().map(|p| p.threads.len()).sum();
        let held: u64 = g.processes.iter().map(|p| p.loop_held).sum();
        let held = if held > 0 {
            format!(", {held} held by event loops")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<h2>Daemon process group {}</h2><p>{} processes, {busy} of {threads} request threads busy{held}</p>",
            escape_html(g.name),
            g.processes.len()
        );
        out.push_str(
            "<table><tr><th>slot</th><th>pid</th><th>up (s)</th><th>requests</th>\
             <th>restarts</th><th>last ended</th><th>thread</th><th>state</th><th>for (s)</th><th>URL</th></tr>\n",
        );
        for (pi, p) in g.processes.iter().enumerate() {
            // Requests the event loop holds have no thread: a row of their
            // own after the threads.
            let loop_row = p.loop_held > 0;
            for (ti, t) in p.threads.iter().enumerate() {
                let process_cells = if ti == 0 {
                    format!(
                        "<td rowspan=\"{}\">{pi}</td><td rowspan=\"{0}\">{}</td><td rowspan=\"{0}\">{:.0}</td><td rowspan=\"{0}\">{}</td><td rowspan=\"{0}\">{}</td><td rowspan=\"{0}\">{}</td>",
                        p.threads.len() + usize::from(loop_row),
                        p.pid,
                        seconds_since(p.started_ms, now_ms),
                        p.requests,
                        p.restarts,
                        escape_html(&ended(p.last_end)),
                    )
                } else {
                    String::new()
                };
                let thread_cells = match t {
                    ThreadView::Idle => format!("<td>{ti}</td><td>idle</td><td></td><td></td>"),
                    ThreadView::Busy { since_ms, url } => format!(
                        "<td>{ti}</td><td class=\"busy\">busy</td><td>{:.1}</td><td>{}</td>",
                        seconds_since(*since_ms, now_ms),
                        escape_html(&url_text(url))
                    ),
                };
                let _ = writeln!(out, "<tr>{process_cells}{thread_cells}</tr>");
            }
            if loop_row {
                let _ = writeln!(
                    out,
                    "<tr><td>loop</td><td class=\"busy\">{} held by the event loop</td><td>{:.1}</td><td>(oldest)</td></tr>",
                    p.loop_held,
                    loop_oldest_seconds(p, now_ms)
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ProcessView> {
        vec![ProcessView {
            pid: 42,
            started_ms: 1_000,
            requests: 7,
            connections: 5,
            overbooked: 1,
            restarts: 2,
            last_end: Some(End::Killed(9)),
            threads: vec![
                ThreadView::Idle,
                ThreadView::Busy {
                    since_ms: 2_000,
                    url: b"/slow?a=<b>&\"q\"".to_vec(),
                },
            ],
            loop_held: 3,
            loop_oldest_ms: 1_500,
        }]
    }

    #[test]
    fn json_carries_every_figure_escaped() {
        let groups = [GroupStatus {
            name: "g\"1",
            processes: sample(),
        }];
        let text = json(&groups, 4_500);
        assert_eq!(
            text,
            "{\"groups\":[{\"name\":\"g\\\"1\",\"processes\":[{\"slot\":0,\"pid\":42,\"uptime\":3.5,\"requests\":7,\"connections\":5,\"overbooked\":1,\"restarts\":2,\"last_end\":\"was killed by SIGKILL\",\"loop_held\":3,\"loop_oldest_seconds\":3.0,\"threads\":[{\"state\":\"idle\"},{\"state\":\"busy\",\"seconds\":2.5,\"url\":\"/slow?a=<b>&\\\"q\\\"\"}]}]}]}\n"
        );
    }

    #[test]
    fn html_escapes_what_the_client_sent() {
        let groups = [GroupStatus {
            name: "<g>",
            processes: sample(),
        }];
        let page = html(&groups, 4_500, "mod_wsgi_rs/0");
        assert!(page.contains("Daemon process group &lt;g&gt;"));
        assert!(page.contains("/slow?a=&lt;b&gt;&amp;&quot;q&quot;"));
        assert!(!page.contains("<b>&"));
        assert!(page.contains("1 of 2 request threads busy, 3 held by event loops"));
        assert!(page.contains("<td rowspan=\"3\">0</td>"));
        assert!(page.contains("3 held by the event loop</td><td>3.0</td>"));
        assert!(page.contains("was killed by SIGKILL"));
    }

    #[test]
    fn control_characters_are_escaped_in_json() {
        assert_eq!(json_string("a\nb\u{1}"), "\"a\\u000ab\\u0001\"");
    }
}
