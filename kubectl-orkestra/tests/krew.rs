//! The krew manifest against krew's rules (REFERENCE §6.2: `pkg/index/validation/validate.go` and the
//! plugin-manifest guide), and `krew/release.sh manifest` filling it from archives.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Every rule of REFERENCE §6.2; `filled` demands real checksums instead of placeholders.
fn check(m: &Value, file_stem: &str, version: &str, filled: bool) {
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    let name = m["metadata"]["name"].as_str().unwrap_or_default();
    assert_eq!(name, file_stem, "metadata.name must equal the file name");
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    );
    let spec = &m["spec"];
    assert_eq!(
        spec["version"], version,
        "spec.version: semver with a v prefix"
    );
    let short = spec["shortDescription"].as_str().unwrap_or_default();
    assert!(
        !short.is_empty() && short.len() <= 60 && !short.contains("--"),
        "shortDescription: a few words, no flags"
    );
    let description = spec["description"].as_str().unwrap_or_default();
    assert!(
        description.len() > 100 && !description.contains(" --"),
        "description says what it does, not its flags"
    );
    let platforms = spec["platforms"].as_array().cloned().unwrap_or_default();
    let mut seen = Vec::new();
    for p in &platforms {
        let labels = p["selector"]["matchLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(!labels.is_empty(), "a nil or empty selector is rejected");
        assert!(
            labels.keys().all(|k| k == "os" || k == "arch"),
            "selector over os and arch only: {labels:?}"
        );
        assert!(p["selector"].get("matchExpressions").is_none());
        let (os, arch) = (
            labels["os"].as_str().unwrap_or_default(),
            labels["arch"].as_str().unwrap_or_default(),
        );
        seen.push(format!("{os}/{arch}"));
        let uri = p["uri"].as_str().unwrap_or_default();
        assert!(
            uri.starts_with("https://") && uri.ends_with(".tar.gz"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("/{version}/")) && uri.contains(&format!("-{os}-{arch}.tar.gz")),
            "{uri}"
        );
        let sha = p["sha256"].as_str().unwrap_or_default();
        let placeholder = format!("SHA256_{}_{}", os.to_uppercase(), arch.to_uppercase());
        assert!(
            is_sha256(sha) || (!filled && sha == placeholder),
            "sha256 of {os}/{arch}: {sha}"
        );
        assert_eq!(
            p["bin"], "kubectl-orkestra",
            "the executable's path in the archive"
        );
        assert!(
            p.get("files").is_none(),
            "the default files (from * to .) is the recommended choice"
        );
    }
    for wanted in ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"] {
        assert!(
            seen.iter().any(|s| s == wanted),
            "missing platform {wanted}"
        );
    }
}

#[test]
fn manifest_follows_krew_rules_and_the_crate_version() {
    let m = load(&repo().join("krew/orkestra.yaml"));
    check(
        &m,
        "orkestra",
        &format!("v{}", env!("CARGO_PKG_VERSION")),
        false,
    );
}

#[test]
fn release_script_fills_version_and_checksums() {
    let dist = std::env::temp_dir().join(format!("orkestra-krew-test-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap_or_else(|e| panic!("{e}"));
    for p in ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"] {
        std::fs::write(dist.join(format!("kubectl-orkestra-v9.8.7-{p}.tar.gz")), p)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = Command::new("bash")
        .arg(repo().join("krew/release.sh"))
        .args(["manifest", "v9.8.7"])
        .arg(&dist)
        .output()
        .unwrap_or_else(|e| panic!("running release.sh: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = load(&dist.join("orkestra.yaml"));
    check(&m, "orkestra", "v9.8.7", true);
    // sha256("linux-amd64"), the fake archive's content.
    assert_eq!(
        m["spec"]["platforms"][0]["sha256"],
        "abb35c616421af72198ad7c2aeeef38516f08f6a7afb2a728cf0068a8a712ddc"
    );
    let bad = Command::new("bash")
        .arg(repo().join("krew/release.sh"))
        .args(["manifest", "9.8.7"])
        .arg(&dist)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !bad.status.success(),
        "a version without the v prefix is refused"
    );
    let _ = std::fs::remove_dir_all(&dist);
}
