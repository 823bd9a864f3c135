//! Reading `-f` paths into documents: files, directories and stdin.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use orkestra::load::{self, Document, LoadError};

use crate::cli::FileArgs;

/// Every document of one source, or why it could not be read.
pub struct Source {
    /// The path as given (`-` for stdin).
    pub name: String,
    /// Its documents, or the parse error.
    pub documents: Result<Vec<Document>, LoadError>,
}

/// Reads every `-f` path. I/O errors (missing file, unreadable directory) are errors; YAML
/// errors belong to their source and are reported with it.
pub fn read(args: &FileArgs) -> Result<Vec<Source>> {
    let mut paths = Vec::new();
    for path in &args.files {
        expand(path, args.recursive, true, &mut paths)?;
    }
    paths
        .into_iter()
        .map(|path| {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                io::stdin()
                    .read_to_string(&mut s)
                    .context("reading stdin")?;
                s
            } else {
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
            };
            Ok(Source {
                name: path.display().to_string(),
                documents: load::documents(&text),
            })
        })
        .collect()
}

fn expand(path: &Path, recursive: bool, top: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.as_os_str() == "-" {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if !top && !recursive {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .with_context(|| format!("reading directory {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading directory {}", path.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            expand(&entry, recursive, false, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}
