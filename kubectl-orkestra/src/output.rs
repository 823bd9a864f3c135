//! Writing to stdout and stderr without panicking when the reader goes away.

use std::io::{self, Write};

use anyhow::Result;

/// Writes `text` to stdout; a closed pipe comes back as an error `main` treats as success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes `text` to stderr, ignoring failures (there is nowhere left to report them).
pub fn write_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
