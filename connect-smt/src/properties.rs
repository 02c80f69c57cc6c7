//! A small reader and writer for Java `.properties` text (the format of Kafka Connect worker
//! and connector files), following `java.util.Properties.load`:
//!
//! * `#` or `!` as the first non-blank character starts a comment line; blank lines are skipped;
//! * a line ending in an odd number of backslashes continues on the next line, whose leading
//!   blanks are dropped;
//! * the key ends at the first unescaped `=`, `:` or blank; blanks around the separator are
//!   dropped; trailing blanks of the value are kept;
//! * escapes `\t \n \r \f \uXXXX` (UTF-16, surrogate pairs joined), and `\x` for any other `x`;
//! * a repeated key: the last one wins.
//!
//! Unlike Java (ISO-8859-1), the text is UTF-8, as Kafka reads it.

use std::collections::BTreeMap;

use crate::error::ConfigError;

/// Parses `.properties` text into a map.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (line_number, logical) in logical_lines(text) {
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|reason| ConfigError::PropertiesSyntax {
            line: line_number,
            key: raw_key.to_string(),
            reason,
        })?;
        let value = unescape(raw_value).map_err(|reason| ConfigError::PropertiesSyntax {
            line: line_number,
            key: key.clone(),
            reason,
        })?;
        out.insert(key, value);
    }
    Ok(out)
}

/// Writes a map as `.properties` text (one `key=value` line each, sorted), escaped so that
/// [`parse_properties`] gives the same map back.
pub fn write_properties(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (key, value) in map {
        escape_into(&mut out, key, true);
        out.push('=');
        escape_into(&mut out, value, false);
        out.push('\n');
    }
    out
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Joins continuation lines; yields (1-based number of the first natural line, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let natural = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // A lone '\r' also ends a line in Java.
    let natural = natural.flat_map(|l| l.split('\r'));
    for (index, line) in natural.enumerate() {
        let stripped = line.trim_start_matches(is_blank);
        let continuing = current.is_some();
        if !continuing && (stripped.is_empty() || stripped.starts_with(['#', '!'])) {
            continue;
        }
        let trailing_backslashes = stripped.chars().rev().take_while(|&c| c == '\\').count();
        let continues = trailing_backslashes % 2 == 1;
        let content = if continues {
            &stripped[..stripped.len() - 1]
        } else {
            stripped
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        entry.1.push_str(content);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// Splits a logical line (leading blanks already gone) into raw key and raw value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = i;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_blank);
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches(is_blank);
    }
    (key, rest)
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut pending_high_surrogate: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_surrogate(&mut pending_high_surrogate)?;
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            break; // a lone trailing backslash (end of text) is dropped, as in Java
        };
        if escaped != 'u' {
            flush_surrogate(&mut pending_high_surrogate)?;
        }
        match escaped {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = u16::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| format!("malformed \\uXXXX escape \\u{hex}"))?;
                match (pending_high_surrogate.take(), unit) {
                    (Some(high), 0xDC00..=0xDFFF) => {
                        let decoded = char::decode_utf16([high, unit]).next();
                        match decoded {
                            Some(Ok(c)) => out.push(c),
                            _ => return Err("invalid surrogate pair".into()),
                        }
                    }
                    (Some(_), _) => return Err("unpaired UTF-16 high surrogate".into()),
                    (None, 0xD800..=0xDBFF) => pending_high_surrogate = Some(unit),
                    (None, 0xDC00..=0xDFFF) => {
                        return Err("unpaired UTF-16 low surrogate".into());
                    }
                    (None, _) => out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}')),
                }
            }
            other => out.push(other),
        }
    }
    flush_surrogate(&mut pending_high_surrogate)?;
    Ok(out)
}

fn flush_surrogate(pending: &mut Option<u16>) -> Result<(), String> {
    match pending.take() {
        Some(_) => Err("unpaired UTF-16 high surrogate".into()),
        None => Ok(()),
    }
}

fn escape_into(out: &mut String, text: &str, is_key: bool) {
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '=' | ':' if is_key => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if is_key && i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_java_syntax() {
        let text = "# comment\n! also a comment\n\n  a=1\nb : 2\nc 3\nd\\ e=4\nf=x\\\n   y\\\n  z\n\
                    g=\\u0041\\t\\=\nh=\ni=trailing  \nlast=1\nlast=2\r\nemoji=\\ud83d\\ude00";
        let map = parse_properties(text).unwrap();
        let expected = [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d e", "4"),
            ("f", "xyz"),
            ("g", "A\t="),
            ("h", ""),
            ("i", "trailing  "),
            ("last", "2"),
            ("emoji", "😀"),
        ];
        let expected: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(map, expected);
    }

    #[test]
    fn malformed_unicode_escape_names_the_key() {
        let err = parse_properties("ok=1\ntransforms.a.header=\\u12G4").unwrap_err();
        assert_eq!(err.key(), "transforms.a.header");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    proptest! {
        #[test]
        fn write_then_parse_is_identity(
            map in proptest::collection::btree_map("[ -~\t\n\\\\=:#!é😀]{1,12}", "[ -~\t\n\r\\\\=:#!é😀]{0,12}", 0..8)
        ) {
            let text = write_properties(&map);
            prop_assert_eq!(parse_properties(&text).unwrap(), map);
        }
    }
}
