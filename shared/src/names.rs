//! Kubernetes object names derived from user-chosen names.

use sha2::{Digest, Sha256};

/// Longest DNS-1123 label (namespaces, most object names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest Helm release name.
pub const HELM_RELEASE_NAME_MAX: usize = 53;
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 63;

/// True when `s` is a label value: at most 63 characters, alphanumerics, `-`, `_` and `.`,
/// starting and ending alphanumeric (or empty).
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= LABEL_VALUE_MAX
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// `s` as a label value: itself when it is one, else a readable prefix plus `-` and 8 hex digits
/// of its SHA-256 (object names go up to 253 characters, label values to 63).
pub fn label_value(s: &str) -> String {
    if is_label_value(s) {
        return s.to_string();
    }
    let hash = short_hash(s);
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let keep = LABEL_VALUE_MAX - hash.len() - 1;
    let prefix = mapped
        .get(..keep.min(mapped.len()))
        .unwrap_or_default()
        .trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// True when `s` is a DNS-1123 label: lowercase alphanumerics and `-`, starting and ending
/// alphanumeric, 1 to 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DNS1123_LABEL_MAX
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Converts a name to a DNS-1123 label of at most `max` characters: lowercase, every other
/// character mapped to `-`, no leading or trailing `-`. A name that has to be shortened keeps a
/// readable prefix and gains `-` plus 8 hex digits of its SHA-256, so distinct long names stay
/// distinct. `None` when nothing alphanumeric is left.
pub fn to_dns1123(name: &str, max: usize) -> Option<String> {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= max {
        return Some(trimmed.to_string());
    }
    let hash = short_hash(name);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix = trimmed[..keep].trim_end_matches('-');
    Some(format!("{prefix}-{hash}"))
}

/// The first 8 hex digits of the SHA-256 of `s`.
pub fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Names longer than this get no "did you mean" hint.
pub const HINT_MAX_CHARS: usize = 64;
/// Edit-distance cells one [`Hints`] may compute in all (about a millisecond).
pub const HINT_CELLS: usize = 1_000_000;

/// "Did you mean" hints with a bounded cost: each comparison costs the product of the two
/// lengths, and once [`HINT_CELLS`] are spent no more hints are given. One per validated object,
/// so a hostile object with thousands of long unknown names costs as much as a typo.
#[derive(Debug, Clone)]
pub struct Hints {
    cells_left: usize,
}

impl Default for Hints {
    fn default() -> Self {
        Self {
            cells_left: HINT_CELLS,
        }
    }
}

impl Hints {
    /// The candidate closest to `name`, when it is close enough to be a likely typo (at most a
    /// third of the characters differ) and the budget allows the comparison.
    pub fn closest<'a>(
        &mut self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let len = name.chars().count();
        if len > HINT_MAX_CHARS {
            return None;
        }
        let limit = (len / 3).max(1);
        let mut best: Option<(usize, &str)> = None;
        for c in candidates {
            if c == name || c.len() > 4 * (HINT_MAX_CHARS + limit) {
                continue;
            }
            let clen = c.chars().count();
            if clen.abs_diff(len) > limit {
                continue;
            }
            let cost = (len * clen).max(1);
            if cost > self.cells_left {
                self.cells_left = 0;
                break;
            }
            self.cells_left -= cost;
            let d = edit_distance(name, c);
            if d <= limit && best.is_none_or(|(b, _)| d < b) {
                best = Some((d, c));
            }
        }
        best.map(|(_, c)| c)
    }
}

/// The candidate closest to `name`, when it is close enough to be a likely typo (one
/// comparison, with its own [`Hints`] budget).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    Hints::default().closest(name, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_kubernetes_expects() {
        assert_eq!(
            to_dns1123("Product_Page", 63).as_deref(),
            Some("product-page")
        );
        assert_eq!(to_dns1123("--api--", 63).as_deref(), Some("api"));
        assert_eq!(to_dns1123("___", 63), None);
        let long = "a".repeat(80);
        let short = to_dns1123(&long, HELM_RELEASE_NAME_MAX).unwrap_or_default();
        assert_eq!(short.len(), HELM_RELEASE_NAME_MAX);
        assert!(is_dns1123_label(&short));
        assert_ne!(
            short,
            to_dns1123(&"a".repeat(81), HELM_RELEASE_NAME_MAX).unwrap_or_default()
        );
    }

    #[test]
    fn long_names_become_label_values() {
        assert_eq!(label_value("shop"), "shop");
        let long = format!("{}.example", "a".repeat(240));
        let v = label_value(&long);
        assert!(is_label_value(&v) && v.len() == LABEL_VALUE_MAX, "{v}");
        assert_ne!(v, label_value(&format!("{}.examplf", "a".repeat(240))));
        assert!(is_label_value(&label_value(&format!(
            "{}.b",
            "a".repeat(53)
        ))));
    }

    #[test]
    fn typo_hints() {
        assert_eq!(
            closest("postgress", ["postgres", "redis"]),
            Some("postgres")
        );
        assert_eq!(closest("kafka", ["postgres", "redis"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn hints_stop_when_their_budget_is_spent() {
        let names: Vec<String> = (0..1000).map(|i| format!("{i:060}")).collect();
        let mut hints = Hints::default();
        // 1,000 candidates of 60 characters: 3.6 M cells, more than one budget; the best of
        // those compared is still given, and then nothing more.
        assert!(
            hints
                .closest(&format!("{:060}", 1), names.iter().map(String::as_str))
                .is_some()
        );
        assert_eq!(hints.closest("postgress", ["postgres"]), None);
        assert_eq!(closest(&"p".repeat(HINT_MAX_CHARS + 1), ["p"]), None);
    }
}
