//! Splitting a directive's argument line into words, as Apache and mod_wsgi
//! do it.
//!
//! Most directives get their words from Apache, which splits with
//! `ap_getword_conf`: a word that starts with a single or double quote runs
//! to the matching quote (spaces included, `\"` or `\'` and `\\` unescaped
//! inside), any other word runs to the next space. mod_wsgi takes the
//! directives with `name=value` options as one raw line and reads each
//! option itself: the name runs to the `=`, and the value is read like a
//! word, so `home='/tmp'` and `display-name="(wsgi:my site)"` lose their
//! quotes and may hold spaces. Configurations written by mod_wsgi-express
//! quote every value, so this has to match to the letter.

/// How a directive's line is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgShape {
    /// Every word as `ap_getword_conf` reads it (Apache does this for us).
    Words,
    /// `leading` words, then `name=value` options with quotable values.
    Options { leading: usize },
    /// A section opener: words up to the closing `>`.
    Section,
}

/// Apache's `ap_getword_conf`: the next word of `line`, unquoted, and the
/// rest of the line after the spaces that follow it. Empty at the end.
pub fn next_word(line: &str) -> (String, &str) {
    let line = line.trim_start_matches(is_space);
    let bytes = line.as_bytes();
    let Some(&first) = bytes.first() else {
        return (String::new(), line);
    };
    let (word, rest) = if first == b'"' || first == b'\'' {
        let body = &line[1..];
        let end = quoted_end(body, first);
        let rest = body[end..]
            .strip_prefix(first as char)
            .unwrap_or(&body[end..]);
        (unescape(&body[..end], Some(first)), rest)
    } else {
        let end = line.find(is_space).unwrap_or(line.len());
        (unescape(&line[..end], None), &line[end..])
    };
    (word, rest.trim_start_matches(is_space))
}

/// mod_wsgi's `wsgi_parse_option`: `name=value` with the value read as a
/// word. `None` when the name is empty or not followed directly by `=`.
pub fn next_option(line: &str) -> Option<(String, String, &str)> {
    let line = line.trim_start_matches(is_space);
    let name_end = line.find(|c: char| c == '=' || is_space(c))?;
    if name_end == 0 || !line[name_end..].starts_with('=') {
        return None;
    }
    let (value, rest) = next_word_or_empty(&line[name_end + 1..]);
    Some((line[..name_end].to_string(), value, rest))
}

/// Split `line` as a directive of this shape is split.
///
/// Options come back as `name=value` words with the value unquoted, so the
/// directive sees the same words whether the value was quoted or not. A
/// word that is not an option (no `=` right after the name) comes back as
/// it was read, for the directive to refuse by name.
pub fn split(line: &str, shape: ArgShape) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line;
    let leading = match shape {
        ArgShape::Words => usize::MAX,
        ArgShape::Options { leading } => leading,
        ArgShape::Section => {
            // Apache hands a section opener everything up to the last '>'
            // (mod_wsgi cuts there too).
            rest = rest.rfind('>').map_or(rest, |end| &rest[..end]);
            usize::MAX
        }
    };
    while !rest.trim_start_matches(is_space).is_empty() {
        if words.len() >= leading
            && let Some((name, value, after)) = next_option(rest)
        {
            words.push(format!("{name}={value}"));
            rest = after;
            continue;
        }
        let (word, after) = next_word(rest);
        words.push(word);
        rest = after;
    }
    words
}

/// `ap_getword_conf` on the text right after an `=`: a value that is empty
/// because a space (or the end of the line) follows is empty, not the next
/// word.
fn next_word_or_empty(line: &str) -> (String, &str) {
    match line.chars().next() {
        None => (String::new(), line),
        Some(c) if is_space(c) => (String::new(), line.trim_start_matches(is_space)),
        Some(_) => next_word(line),
    }
}

/// Byte index in `body` of the closing `quote`, or its end; a backslash
/// before the quote or before another backslash escapes it.
fn quoted_end(body: &str, quote: u8) -> usize {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != quote {
        if bytes[i] == b'\\' && matches!(bytes.get(i + 1), Some(&n) if n == quote || n == b'\\') {
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

/// Apache's `substring_conf`: `\\` becomes `\`, and inside quotes `\q`
/// becomes `q` for the quote character; other backslashes stay.
fn unescape(s: &str, quote: Option<u8>) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escapes_next = bytes[i] == b'\\'
            && matches!(bytes.get(i + 1), Some(&n) if n == b'\\' || Some(n) == quote);
        if escapes_next {
            i += 1;
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII backslashes were dropped, so the bytes are still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `apr_isspace`: the C locale's white space.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line, ArgShape::Words)
    }

    #[test]
    fn plain_words_split_on_white_space() {
        assert_eq!(words("  a \tb\n c  "), ["a", "b", "c"]);
        assert!(words("").is_empty());
        assert!(words("   ").is_empty());
    }

    #[test]
    fn quoted_words_keep_spaces_and_lose_their_quotes() {
        assert_eq!(words("'a b' \"c d\""), ["a b", "c d"]);
        assert_eq!(words("'' x"), ["", "x"]);
        // A quote inside a word is part of it.
        assert_eq!(words("a'b c'd"), ["a'b", "c'd"]);
        // A word ends at its closing quote even when text follows.
        assert_eq!(words("'a'b"), ["a", "b"]);
        // An unclosed quote runs to the end of the line.
        assert_eq!(words("'a b"), ["a b"]);
    }

    #[test]
    fn backslashes_as_apache_reads_them() {
        assert_eq!(words(r#""say \"hi\"""#), [r#"say "hi""#]);
        assert_eq!(words(r"'it\'s'"), ["it's"]);
        assert_eq!(words(r#"'a\"b'"#), [r#"a\"b"#]);
        assert_eq!(words(r"a\\b c\d"), [r"a\b", r"c\d"]);
        assert_eq!(words(r"'a\\'"), [r"a\"]);
    }

    #[test]
    fn option_values_are_read_as_words() {
        let line = "'localhost:8000' display-name='(wsgi:localhost:8000:0)' home='/tmp' \
                    python-path='' threads=5 lang=\"en US\"";
        assert_eq!(
            split(line, ArgShape::Options { leading: 1 }),
            [
                "localhost:8000",
                "display-name=(wsgi:localhost:8000:0)",
                "home=/tmp",
                "python-path=",
                "threads=5",
                "lang=en US",
            ]
        );
    }

    #[test]
    fn empty_option_values() {
        let opts = |l| split(l, ArgShape::Options { leading: 0 });
        assert_eq!(opts("a= b=1"), ["a=", "b=1"]);
        assert_eq!(opts("a="), ["a="]);
        assert_eq!(opts("a=\"\""), ["a="]);
    }

    #[test]
    fn leading_words_are_not_options() {
        assert_eq!(
            split(
                "/x=y '/p q.wsgi' process-group=g",
                ArgShape::Options { leading: 2 }
            ),
            ["/x=y", "/p q.wsgi", "process-group=g"]
        );
    }

    #[test]
    fn words_that_are_not_options_come_back_for_the_directive_to_refuse() {
        let opts = |l| split(l, ArgShape::Options { leading: 0 });
        assert_eq!(opts("threads = 5"), ["threads", "=", "5"]);
        assert_eq!(opts("=5"), ["=5"]);
        assert_eq!(opts("threads"), ["threads"]);
        assert_eq!(opts("'threads=5'"), ["'threads=5'"]);
    }

    #[test]
    fn option_names_stop_at_the_equals_sign() {
        assert_eq!(split("a=b=c", ArgShape::Options { leading: 0 }), ["a=b=c"]);
        assert_eq!(
            next_option("a=b=c rest"),
            Some(("a".into(), "b=c".into(), "rest"))
        );
    }

    #[test]
    fn sections_end_at_the_last_angle_bracket() {
        assert_eq!(
            split(
                "process-group=g 'application-group=a b'>",
                ArgShape::Section
            ),
            ["process-group=g", "application-group=a b"]
        );
        assert_eq!(split(">", ArgShape::Section), Vec::<String>::new());
    }
}
