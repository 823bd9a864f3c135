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

/// Aligned columns as `kubectl get` prints them (comfy-table, no borders): UPPERCASE headers,
/// three spaces between columns, no trailing blanks, never wrapped to the terminal.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()))
        .add_rows(rows.iter().cloned());
    let last = headers.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i < last { 3 } else { 0 }));
    }
    table.trim_fmt() + "\n"
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn tables_read_as_kubectl_get() {
        let rows = [
            vec!["db".to_string(), "1".into(), "-".into()],
            vec!["  web/ui".to_string(), "12".into(), "a message".into()],
        ];
        assert_eq!(
            table(&["application", "WAVE", "MESSAGE"], &rows),
            "APPLICATION   WAVE   MESSAGE\n\
             db            1      -\n  \
             web/ui      12     a message\n"
        );
    }

    #[test]
    fn an_empty_last_column_leaves_no_trailing_blanks() {
        let rows = [vec!["a".to_string(), String::new()]];
        assert_eq!(table(&["NAME", "NOTE"], &rows), "NAME   NOTE\na\n");
    }
}
