//! Kubernetes object names derived from user-chosen names: every name Orkestra gives an object
//! it creates (HelmReleases, namespaces, revisions and their Workflows, HelmRepositories).

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::api::Application;

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
    dns1123(name, max).map(Cow::into_owned)
}

/// [`to_dns1123`], borrowing `name` when it already is a DNS-1123 label of at most `max`
/// characters (the usual case, so validating a large group copies no names).
pub fn dns1123(name: &str, max: usize) -> Option<Cow<'_, str>> {
    if name.len() <= max && is_dns1123_label(name) {
        return Some(Cow::Borrowed(name));
    }
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
        return Some(Cow::Owned(trimmed.to_string()));
    }
    let hash = short_hash(name);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix = trimmed[..keep].trim_end_matches('-');
    Some(Cow::Owned(format!("{prefix}-{hash}")))
}

/// The first 8 hex digits of the SHA-256 of `s`.
pub fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// One Helm release the group makes: an application's chart or one of its subcharts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseName {
    /// The application.
    pub application: String,
    /// The subchart, when this is a subchart's release.
    pub subchart: Option<String>,
    /// HelmRelease `metadata.name` and Helm release name.
    pub name: String,
    /// Namespace of the HelmRelease and of the release.
    pub namespace: String,
}

impl ReleaseName {
    /// `application "x"` or `subchart "y" of application "x"`.
    pub fn describe(&self) -> String {
        describe_release(&self.application, self.subchart.as_deref())
    }
}

/// `application "x"`, or `subchart "y" of application "x"` for a subchart's release.
pub fn describe_release(application: &str, subchart: Option<&str>) -> String {
    match subchart {
        None => format!("application {application:?}"),
        Some(s) => format!("subchart {s:?} of application {application:?}"),
    }
}

/// One release of an application as [`releases_of`] lists it, borrowing what it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef<'a> {
    /// The subchart, when this is a subchart's release.
    pub subchart: Option<&'a str>,
    /// HelmRelease `metadata.name` and Helm release name.
    pub name: Cow<'a, str>,
}

/// Name of the HelmRelease of an application's own chart: the application's name, readable,
/// shortened with a hash suffix only when Helm's 53-character limit requires it.
pub fn release_name(app: &str) -> String {
    app_label(app, HELM_RELEASE_NAME_MAX).into_owned()
}

/// An application's name as a DNS-1123 label of at most `max` characters (borrowed when it
/// already is one), or `app-` and its hash when it has no letters or digits.
fn app_label(app: &str, max: usize) -> Cow<'_, str> {
    dns1123(app, max).unwrap_or_else(|| Cow::Owned(format!("app-{}", short_hash(app))))
}

/// Name of the HelmRelease of a subchart: `<application>-<subchart>`.
pub fn subchart_release_name(app: &str, subchart: &str) -> String {
    release_name(&format!("{app}-{subchart}"))
}

/// Namespace an application is released into: `release.targetNamespace`, else its own name.
pub fn target_namespace(app: &Application) -> String {
    namespace_of(app).into_owned()
}

/// [`target_namespace`], borrowed from `app` where it can be.
pub fn namespace_of(app: &Application) -> Cow<'_, str> {
    match app
        .spec
        .release
        .as_ref()
        .and_then(|r| r.target_namespace.as_deref())
    {
        Some(ns) => Cow::Borrowed(ns),
        None => app_label(&app.name, DNS1123_LABEL_MAX),
    }
}

/// The namespace an application gets when it names none.
pub fn default_namespace(app: &str) -> String {
    app_label(app, DNS1123_LABEL_MAX).into_owned()
}

/// Every release an application makes: its subcharts first, then its own chart.
pub fn releases_of(app: &Application) -> Vec<ReleaseName> {
    let namespace = namespace_of(app);
    releases(app)
        .map(|r| ReleaseName {
            application: app.name.clone(),
            subchart: r.subchart.map(str::to_string),
            name: r.name.into_owned(),
            namespace: namespace.clone().into_owned(),
        })
        .collect()
}

/// [`releases_of`] without copies: the subcharts' releases, then the application's own, all in
/// [`namespace_of`] the application.
pub fn releases(app: &Application) -> impl Iterator<Item = ReleaseRef<'_>> {
    app.spec
        .subcharts
        .iter()
        .map(|s| ReleaseRef {
            subchart: Some(s.name.as_str()),
            name: Cow::Owned(subchart_release_name(&app.name, &s.name)),
        })
        .chain(std::iter::once(ReleaseRef {
            subchart: None,
            name: app_label(&app.name, HELM_RELEASE_NAME_MAX),
        }))
}

/// Name of revision `n` of a group, and of the Workflow releasing it: `<group>-r<n>`, with the
/// group's part shortened (and a hash of it added) when that would pass 63 characters, Argo's
/// limit for Workflow names.
pub fn revision_name(group: &str, n: i64) -> String {
    with_suffix(group, &format!("-r{n}"))
}

/// Name of the reverse Workflow that removes a deleted group's releases: `<group>-reverse`,
/// shortened as [`revision_name`] is.
pub fn reverse_name(group: &str) -> String {
    with_suffix(group, "-reverse")
}

fn with_suffix(group: &str, suffix: &str) -> String {
    if group.len() + suffix.len() <= DNS1123_LABEL_MAX {
        return format!("{group}{suffix}");
    }
    let hash = short_hash(group);
    let keep = DNS1123_LABEL_MAX.saturating_sub(suffix.len() + hash.len() + 1);
    let mut cut = keep.min(group.len());
    while !group.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}-{hash}{suffix}",
        group[..cut].trim_end_matches(['-', '.'])
    )
}

/// The HelmRepository name for a chart URL: readable, from the URL's host and path.
pub fn repository_name(url: &str) -> String {
    let bare = url.split_once("://").map_or(url, |(_, rest)| rest);
    to_dns1123(bare, DNS1123_LABEL_MAX).unwrap_or_else(|| format!("repo-{}", short_hash(url)))
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
    fn release_names_are_readable() {
        assert_eq!(release_name("Product_Page"), "product-page");
        assert_eq!(
            subchart_release_name("bookinfo", "reviews"),
            "bookinfo-reviews"
        );
        assert_eq!(release_name(&"x".repeat(60)).len(), HELM_RELEASE_NAME_MAX);
    }

    #[test]
    fn long_group_names_still_give_argo_valid_workflow_names() {
        assert_eq!(revision_name("shop", 12), "shop-r12");
        let long = "a".repeat(62);
        let n = revision_name(&long, 123);
        assert!(
            n.len() <= 63 && n.ends_with("-r123") && n.starts_with("aaaa"),
            "{n}"
        );
        assert_ne!(
            revision_name(&format!("{long}b"), 1),
            revision_name(&format!("{long}c"), 1)
        );
    }
}
