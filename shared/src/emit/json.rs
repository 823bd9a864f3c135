//! JSON text written by hand, straight into one buffer: what the generated objects are made of
//! (strings, integers, booleans, lists and objects whose keys we choose), without serde's
//! serializer state per value. Strings are escaped exactly as `serde_json` escapes them, so the
//! text is byte for byte what `serde_json::to_vec` writes for the same values.

use std::borrow::Cow;

/// A value that writes itself as compact JSON text.
pub trait Json {
    /// Appends the value's JSON text to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// The JSON text of `value`.
pub fn to_vec(value: &(impl Json + ?Sized)) -> Vec<u8> {
    let mut out = Vec::new();
    value.write_json(&mut out);
    out
}

/// The JSON text of `value` as a string.
pub fn to_string(value: &(impl Json + ?Sized)) -> String {
    // Cannot fail: the text is made of `str`s and ASCII.
    String::from_utf8(to_vec(value)).unwrap_or_default()
}

/// True for the bytes a JSON string cannot hold as they are: `"`, `\` and the control
/// characters U+0000 to U+001F (serde_json leaves U+007F and everything beyond ASCII as is).
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// True when some byte of `bytes` [`needs_escape`]: eight bytes at a time, each word tested for
/// a byte below 0x20, a `"` or a `\` with the classic zero-byte test (`x - 0x01.. & !x & 0x80..`
/// is non-zero exactly when a byte of `x` is zero, and below `n` for `x - n..` when `n <= 0x80`).
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let has = |x: u64, b: u8| below(x ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    let word_escapes = words.any(|w| {
        let x = u64::from_ne_bytes(w.try_into().unwrap_or_default());
        below(x, 0x20) || has(x, b'"') || has(x, b'\\')
    });
    word_escapes || words.remainder().iter().copied().any(needs_escape)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string, escaped as `serde_json` does: `\"`, `\\`, the short forms
/// `\b \t \n \f \r`, and `\u00xx` (lower-case hex) for the other control characters.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Nearly every string we write needs no escaping: copied in one go.
    if !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        start = i + 1;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            b'\t' => b't',
            b'\n' => b'n',
            0x0c => b'f',
            b'\r' => b'r',
            _ => {
                let hex = |nibble: u8| HEX[usize::from(nibble & 0xf)];
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Appends `n` in decimal.
pub fn unsigned(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// An object being written: `{`, then each field, then [`Object::end`]'s `}`.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    /// Starts an object in `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes the field `key` (a name that needs no escaping, as all of ours) with `value`.
    pub fn field(&mut self, key: &str, value: &(impl Json + ?Sized)) -> &mut Self {
        debug_assert!(!key.bytes().any(needs_escape), "{key}");
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        value.write_json(self.out);
        self
    }

    /// Writes the field `key` when `value` is set (an absent field is left out, not `null`).
    pub fn optional(&mut self, key: &str, value: Option<&(impl Json + ?Sized)>) -> &mut Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    /// Ends the object.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// `value`, unless it is empty: for [`Object::optional`], where an empty list or string is left
/// out, as Go's `omitempty` leaves it out of the API server's and Argo's own types.
pub fn non_empty<T: AsRef<[E]> + ?Sized, E>(value: &T) -> Option<&T> {
    (!value.as_ref().is_empty()).then_some(value)
}

impl Json for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl Json for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl Json for Cow<'_, str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl<T: Json + ?Sized> Json for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl Json for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl Json for u64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        unsigned(out, *self);
    }
}

impl Json for i64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        if *self < 0 {
            out.push(b'-');
        }
        unsigned(out, self.unsigned_abs());
    }
}

impl<T: Json> Json for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: Json> Json for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

impl<T: Json, const N: usize> Json for [T; N] {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn serde(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }

    #[test]
    fn every_control_character_is_escaped_as_serde_json_does() {
        for c in (0u8..0x20).map(char::from) {
            let s = format!("a{c}b");
            assert_eq!(to_string(s.as_str()), serde(&s), "{:#04x}", u32::from(c));
        }
        assert_eq!(to_string("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(to_string("\u{0}\u{1f}\u{1b}"), r#""\u0000\u001f\u001b""#);
    }

    #[test]
    fn quotes_backslashes_and_non_ascii() {
        assert_eq!(to_string(r#"say "hi" \ bye"#), r#""say \"hi\" \\ bye""#);
        for s in [
            "",
            "\"",
            "\\",
            "\\\"",
            "é ü ☃ 🦀",
            "\u{7f}",
            "x\u{2028}y",
            "ok",
        ] {
            assert_eq!(to_string(s), serde(s), "{s:?}");
        }
    }

    #[test]
    fn numbers_booleans_lists_and_objects() {
        let mut out = Vec::new();
        let mut o = Object::new(&mut out);
        o.field("b", &true)
            .optional("none", None::<&str>)
            .field("u", &u64::MAX)
            .field("i", &i64::MIN)
            .field("z", &0i64)
            .field("l", &["x", "y"])
            .field("e", &Vec::<String>::new());
        o.end();
        let expected = serde_json::json!({"b": true, "u": u64::MAX, "i": i64::MIN, "z": 0,
            "l": ["x", "y"], "e": []});
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).ok(),
            Some(expected)
        );
        assert_eq!(
            text,
            format!(
                r#"{{"b":true,"u":{},"i":{},"z":0,"l":["x","y"],"e":[]}}"#,
                u64::MAX,
                i64::MIN
            )
        );
        assert_eq!(to_string(&Vec::<String>::new()), "[]");
        let mut empty = Vec::new();
        Object::new(&mut empty).end();
        assert_eq!(empty, b"{}");
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            prop_assert_eq!(to_string(s.as_str()), serde(&s));
        }

        #[test]
        fn control_heavy_strings_too(s in "[\\x00-\\x7f\"\\\\é]{0,40}") {
            prop_assert_eq!(to_string(s.as_str()), serde(&s));
        }

        #[test]
        fn the_word_at_a_time_test_finds_exactly_the_bytes_to_escape(bytes in any::<Vec<u8>>()) {
            prop_assert_eq!(
                any_needs_escape(&bytes),
                bytes.iter().copied().any(needs_escape)
            );
        }

        #[test]
        fn any_integer_is_written_as_serde_json_writes_it(i in any::<i64>(), u in any::<u64>()) {
            prop_assert_eq!(to_string(&i), serde_json::to_string(&i).unwrap_or_default());
            prop_assert_eq!(to_string(&u), serde_json::to_string(&u).unwrap_or_default());
        }
    }
}
