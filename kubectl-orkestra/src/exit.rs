//! The exit codes, one scheme for the plugin and the executor (README "Exit codes"; `--help`).

/// Done: valid, released, deleted.
pub const EXIT_OK: u8 = 0;
/// Checked and found wanting: a group is invalid, or a release failed.
pub const EXIT_FAILED: u8 = 1;
/// Could not check: a bad flag or input, an unreadable file, an API or I/O error.
pub const EXIT_ERROR: u8 = 2;
/// The timeout passed before the release ended (`--wait`, the executor's `--timeout`).
pub const EXIT_TIMEOUT: u8 = 3;

/// What `--help` says about them.
pub const HELP: &str = "Exit codes: 0 done (valid, released), 1 invalid or release failed, \
2 usage, I/O or API error, 3 timed out.";
