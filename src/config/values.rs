//! Small value parsers shared by directives and WSGIDaemonProcess options.
//!
//! Each returns `Err` with a message fragment that says what is allowed and
//! what was given ("must be a whole number >= 1, got 'abc'"); the caller
//! prefixes the directive or option name. Keeping the wording here makes
//! every directive describe the same kind of value the same way.

use std::time::Duration;

/// On/Off, case-insensitive, as Apache's FLAG directives.
pub fn on_off(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(format!("expects On or Off, got '{v}'"))
    }
}

/// A whole number in `min..=max`.
///
/// Digits only (an optional leading '-' when `min` is negative), so "1e3",
/// "0x10", "+5" and "12abc" are refused rather than half-read as C's atoi
/// would.
pub fn whole(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let describe = || {
        if max == i64::MAX {
            format!("must be a whole number >= {min}, got '{v}'")
        } else {
            format!("must be a whole number from {min} to {max}, got '{v}'")
        }
    };
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(describe());
    }
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(describe()),
    }
}

/// A non-negative whole number that fits `T` (counts, byte sizes).
pub fn count<T: TryFrom<i64>>(v: &str, min: i64) -> Result<T, String> {
    let max = max_of::<T>();
    let n = whole(v, min, max)?;
    T::try_from(n).map_err(|_| format!("must be a whole number >= {min}, got '{v}'"))
}

/// Largest i64 that converts into `T` (found by halving; T is an integer type).
fn max_of<T: TryFrom<i64>>() -> i64 {
    let mut max = i64::MAX;
    while T::try_from(max).is_err() {
        max = (max >> 1).max(0);
        if max == 0 {
            break;
        }
    }
    max
}

/// A byte size that is either 0 ("use the default") or at least `min`.
pub fn size_or_zero(v: &str, min: u64, zero_means: &str) -> Result<u64, String> {
    let describe = || format!("must be 0 ({zero_means}) or a whole number >= {min}, got '{v}'");
    let n = whole(v, 0, i64::MAX).map_err(|_| describe())? as u64;
    if n != 0 && n < min {
        return Err(describe());
    }
    Ok(n)
}

/// Seconds, whole or decimal ("30", "0.5", "2."), >= 0.
///
/// mod_wsgi reads whole seconds with atoi; decimals are a compatible
/// superset that sub-second settings (switch interval, slow requests) need.
pub fn seconds(v: &str) -> Result<Duration, String> {
    let describe = || format!("must be a number of seconds >= 0 (e.g. 30 or 0.5), got '{v}'");
    let mut dots = 0;
    let mut digits = 0;
    for b in v.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return Err(describe()),
        }
    }
    if digits == 0 || dots > 1 {
        return Err(describe());
    }
    let f: f64 = v.parse().map_err(|_| describe())?;
    Duration::try_from_secs_f64(f).map_err(|_| describe())
}

/// Seconds that must be strictly positive (Python refuses a 0 switch interval).
pub fn positive_seconds(v: &str) -> Result<Duration, String> {
    let d = seconds(v)?;
    if d.is_zero() {
        return Err(format!("must be a number of seconds > 0, got '{v}'"));
    }
    Ok(d)
}

/// An octal permission mask such as 0022 or 007 (at most 07777).
pub fn octal_umask(v: &str) -> Result<u32, String> {
    let describe = || format!("must be an octal mask from 0 to 07777 (e.g. 0022), got '{v}'");
    if v.is_empty() || !v.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(describe());
    }
    match u32::from_str_radix(v, 8) {
        Ok(n) if n <= 0o7777 => Ok(n),
        _ => Err(describe()),
    }
}

/// Split a `name=value` option word. `None` when there is no '=' or no name.
pub fn split_option(word: &str) -> Option<(&str, &str)> {
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// Split a colon-separated path list, dropping empty entries ("a::b" -> a, b).
pub fn path_list(v: &str) -> Vec<String> {
    v.split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_off_is_case_insensitive() {
        assert_eq!(on_off("On"), Ok(true));
        assert_eq!(on_off("oFF"), Ok(false));
        assert_eq!(on_off("yes").unwrap_err(), "expects On or Off, got 'yes'");
        assert!(on_off("").is_err());
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(whole("15", 0, i64::MAX), Ok(15));
        assert_eq!(whole("-20", -20, 19), Ok(-20));
        assert!(whole("-1", 0, i64::MAX).unwrap_err().contains(">= 0"));
        assert!(whole("20", -20, 19).unwrap_err().contains("from -20 to 19"));
        for bad in [
            "",
            "abc",
            "1.5",
            "+5",
            "1e3",
            "0x10",
            "12abc",
            "-",
            "99999999999999999999",
        ] {
            assert!(whole(bad, 0, i64::MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_fit_their_type() {
        assert_eq!(count::<u32>("4294967295", 0), Ok(u32::MAX));
        assert!(count::<u32>("4294967296", 0).is_err());
        assert_eq!(count::<usize>("3", 1), Ok(3));
        assert!(count::<usize>("0", 1).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size_or_zero("0", 512, "system default"), Ok(0));
        assert_eq!(size_or_zero("512", 512, "system default"), Ok(512));
        let e = size_or_zero("511", 512, "system default").unwrap_err();
        assert_eq!(
            e,
            "must be 0 (system default) or a whole number >= 512, got '511'"
        );
        assert!(size_or_zero("-1", 512, "x").is_err());
    }

    #[test]
    fn seconds_whole_and_decimal() {
        assert_eq!(seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("0"), Ok(Duration::ZERO));
        assert_eq!(seconds(".25"), Ok(Duration::from_millis(250)));
        for bad in ["", "-1", "abc", "1.2.3", "1e3", "inf", "nan", ".", "5s"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert!(positive_seconds("0").is_err());
        assert_eq!(positive_seconds("0.002"), Ok(Duration::from_millis(2)));
    }

    #[test]
    fn umask_is_octal() {
        assert_eq!(octal_umask("0022"), Ok(0o22));
        assert_eq!(octal_umask("007"), Ok(0o7));
        assert_eq!(octal_umask("7777"), Ok(0o7777));
        for bad in ["", "8", "0x12", "-022", "17777", "abc"] {
            assert!(octal_umask(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_and_paths() {
        assert_eq!(split_option("a=b=c"), Some(("a", "b=c")));
        assert_eq!(split_option("a="), Some(("a", "")));
        assert_eq!(split_option("=b"), None);
        assert_eq!(split_option("ab"), None);
        assert_eq!(path_list("/a::/b:"), ["/a", "/b"]);
    }
}
