//! Reading HTML forms and cookies out of responses (CSRF round trips).

use super::Response;

/// The value of `name="..." value="..."` in an HTML input.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    Some(tag[v..v + tag[v..].find('"')?].to_string())
}

/// The value a response's Set-Cookie headers give the cookie `name`.
pub fn cookie_value(r: &Response, name: &str) -> Option<String> {
    r.header_all("Set-Cookie").iter().find_map(|c| {
        c.split(';')
            .next()?
            .trim()
            .strip_prefix(&format!("{name}="))
            .map(str::to_string)
    })
}
