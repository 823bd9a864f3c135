//! Kubernetes object names derived from user-chosen names.

use sha2::{Digest, Sha256};

/// Longest DNS-1123 label (namespaces, most object names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest Helm release name.
pub const HELM_RELEASE_NAME_MAX: usize = 53;

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

/// The candidate closest to `name`, when it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
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
    fn typo_hints() {
        assert_eq!(
            closest("postgress", ["postgres", "redis"]),
            Some("postgres")
        );
        assert_eq!(closest("kafka", ["postgres", "redis"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
