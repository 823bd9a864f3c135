//! Chart versions as Helm reads them: pinned (an exact version) or a range left to Flux, and
//! whether the revision Flux attempted satisfies the version applied.

/// Numeric parts (one to three written, missing ones 0) and pre-release of a version (a leading
/// `v` and build metadata dropped).
fn parse_version(s: &str) -> Option<([u64; 3], &str)> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let s = s.split_once('+').map_or(s, |(v, _)| v);
    let (core, pre) = s.split_once('-').unwrap_or((s, ""));
    let mut parts = [0; 3];
    let mut written = core.split('.');
    for part in &mut parts {
        match written.next() {
            Some(p) => *part = p.parse().ok()?,
            None => break,
        }
    }
    written.next().is_none().then_some((parts, pre))
}

/// A version the chart must be exactly (Helm reads a bare version as `=`): `1.2.3`, `v1`, `=1.2.3`,
/// `1.12.0-alpha.1`. Ranges (`^1`, `~1.2`, `>=1 <2`, `1.x`, `*`) leave the choice to Flux. The one
/// answer for validation (unpinned versions warn) and for the executor's judgement.
pub fn is_pinned(spec: &str) -> bool {
    parse_version(spec.strip_prefix('=').unwrap_or(spec)).is_some()
}

/// Whether the attempted revision satisfies the applied version. Pinned versions compare as
/// versions, missing minor/patch being 0 (`v1` = `1.0.0`) and build metadata ignored
/// (`6.6.1+0cc9a8446c95` = `6.6.1`); a range is satisfied by any revision, since
/// `observedGeneration` already ties the attempt to the applied spec.
pub fn version_matches(spec: &str, revision: &str) -> bool {
    let spec = spec.trim();
    let Some((want, want_pre)) = parse_version(spec.strip_prefix('=').unwrap_or(spec)) else {
        return true;
    };
    let Some((got, got_pre)) = parse_version(revision) else {
        return spec.trim_start_matches(['=', 'v', 'V']) == revision.trim_start_matches(['v', 'V']);
    };
    want == got && want_pre == got_pre
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_versions() {
        for v in ["1.2.3", "v1", "6.6.0", "1.12.0-alpha.1", "=1.2.3"] {
            assert!(is_pinned(v), "{v}");
        }
        for v in [
            "",
            "*",
            "1.x",
            ">=1.0",
            "^1.2",
            "~1.2",
            "1.0 - 2.0",
            "1.2.3.4",
        ] {
            assert!(!is_pinned(v), "{v}");
        }
    }

    #[test]
    fn versions_compare_as_helm_pins_them() {
        assert!(version_matches("6.6.1", "6.6.1+0cc9a8446c95"));
        assert!(version_matches("v1", "v1"));
        assert!(version_matches("v1", "1.0.0"));
        assert!(version_matches("=2.1.0", "2.1.0"));
        assert!(!version_matches("2.1.0", "2.1.1"));
        assert!(!version_matches("2.1.0", "2.1.0-rc.1"));
        assert!(version_matches("1.0.0-rc.1", "1.0.0-rc.1"));
        // Ranges are Flux's choice: any revision.
        for range in ["*", "6.x", "^6.0", ">=1.0.0 <2.0.0", "~1.2"] {
            assert!(version_matches(range, "6.5.3"), "{range}");
        }
    }
}
