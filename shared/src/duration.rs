//! Durations, in the one grammar every consumer accepts: Flux's
//! `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$` (the pattern of `HelmRelease.spec.interval`, `timeout` and
//! every other duration field of helm-controller v2 and source-controller v1). Every such string
//! is also a Go `time.Duration` (so Argo and `metav1.Duration` read it too); the reverse is not
//! true: Go also takes `0`, a sign, `.5h`, `us`/`µs`/`ns`, which Flux's API server refuses.

use std::time::Duration;

/// The pattern, as Flux's CRDs write it (for messages and docs).
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Parses a duration in Flux's grammar; `None` when it does not match [`PATTERN`] or is too large
/// to be meant (over 10^12 seconds).
pub fn parse(s: &str) -> Option<Duration> {
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = |s: &str| {
            s.bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(s.len())
        };
        let int_len = digits(rest);
        if int_len == 0 {
            return None;
        }
        let mut num_len = int_len;
        if let Some(frac) = rest[int_len..].strip_prefix('.') {
            let frac_len = digits(frac);
            if frac_len == 0 {
                return None;
            }
            num_len += 1 + frac_len;
        }
        let value: f64 = if num_len == int_len && int_len <= 15 {
            // A whole number below 10^15 is exact as an f64, and cheaper read as an integer.
            rest[..int_len].parse::<u64>().ok()? as f64
        } else {
            rest[..num_len].parse().ok()?
        };
        let tail = &rest[num_len..];
        let (seconds, unit_len) = if tail.starts_with("ms") {
            (1e-3, 2)
        } else {
            match tail.as_bytes().first() {
                Some(b's') => (1.0, 1),
                Some(b'm') => (60.0, 1),
                Some(b'h') => (3600.0, 1),
                _ => return None,
            }
        };
        total += value * seconds;
        rest = &tail[unit_len..];
    }
    (total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

/// Formats a duration for people: `1h2m`, `4m30s`, `850ms`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluxs_grammar() {
        assert_eq!(parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse("5m0s"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse("1m500ms"), Some(Duration::from_millis(60_500)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("360s"), Some(Duration::from_secs(360)));
        // Go accepts these; Flux's pattern does not.
        for go_only in [
            "0", "+5m", ".5h", "500us", "10ns", "1µs", "1μs", "-5m", "5.m",
        ] {
            assert_eq!(parse(go_only), None, "{go_only}");
        }
        for bad in ["", "5", "m", "5 minutes", "5mm", "1..5h", ".", "5M", "1d"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn human_form() {
        assert_eq!(human(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_secs(60)), "1m");
    }
}
