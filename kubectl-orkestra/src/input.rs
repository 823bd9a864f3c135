//! Reading `-f` paths into documents: files, directories and stdin.
//!
//! Every input is bounded: a file or stdin is read up to [`MAX_INPUT_BYTES`] (so `/dev/zero` ends),
//! a directory tree is walked once per directory even through symlink loops, and a file that is
//! not UTF-8 text, or that cannot be read, is reported with its name like a YAML error instead of
//! ending the whole run.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use orkestra::input::load::{self, Document, LoadError};

use crate::cli::FileArgs;
use crate::output::write_stderr;

/// Largest input read from one file or stdin. Kubernetes stores at most 1.5 MiB per object, so
/// this leaves room for many groups in one file.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Every document of one source, or why it could not be read.
pub struct Source {
    /// The path as given (`-` for stdin).
    pub name: String,
    /// Its documents, or why there are none.
    pub documents: Result<Vec<Document>, LoadError>,
}

/// Reads every `-f` path. A path given on the command line that does not exist is an error;
/// everything found in a directory, and every read or parse error, belongs to its source and is
/// reported with it.
pub fn read(args: &FileArgs) -> Result<Vec<Source>> {
    let mut walk = Walk {
        recursive: args.recursive,
        seen_dirs: HashSet::new(),
        seen_files: HashSet::new(),
        out: Vec::new(),
    };
    for path in &args.files {
        walk.top(path)?;
    }
    Ok(walk
        .out
        .into_iter()
        .map(|entry| match entry {
            Entry::Path(path) => Source {
                name: path.display().to_string(),
                documents: read_text(&path).and_then(|text| load::documents(&text)),
            },
            Entry::Broken(path, message) => Source {
                name: path.display().to_string(),
                documents: Err(LoadError { message }),
            },
        })
        .collect())
}

/// The error when no ApplicationGroup was found in the paths given.
pub fn no_groups(args: &FileArgs) -> anyhow::Error {
    let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    anyhow::anyhow!("no ApplicationGroup found in {}", names.join(", "))
}

enum Entry {
    Path(PathBuf),
    /// A directory entry that could not be looked at (a dangling or looping symlink).
    Broken(PathBuf, String),
}

struct Walk {
    recursive: bool,
    /// (device, inode) of every directory entered: a symlink loop enters each once.
    seen_dirs: HashSet<(u64, u64)>,
    /// (device, inode) of every file listed: reached twice through links, read once.
    seen_files: HashSet<(u64, u64)>,
    out: Vec<Entry>,
}

impl Walk {
    fn top(&mut self, path: &Path) -> Result<()> {
        if path.as_os_str() == "-" {
            self.out.push(Entry::Path(path.to_path_buf()));
            return Ok(());
        }
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            self.dir(path, &meta)
        } else {
            self.file(path, &meta);
            Ok(())
        }
    }

    fn file(&mut self, path: &Path, meta: &fs::Metadata) {
        if self.seen_files.insert((meta.dev(), meta.ino())) {
            self.out.push(Entry::Path(path.to_path_buf()));
        }
    }

    fn dir(&mut self, path: &Path, meta: &fs::Metadata) -> Result<()> {
        if !self.seen_dirs.insert((meta.dev(), meta.ino())) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading directory {}", path.display()))?;
        entries.sort();
        for entry in entries {
            let meta = match fs::metadata(&entry) {
                Ok(m) => m,
                Err(e) => {
                    if is_manifest(&entry) {
                        self.out
                            .push(Entry::Broken(entry, format!("cannot be read: {e}")));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if self.recursive {
                    self.dir(&entry, &meta)?;
                }
            } else if is_manifest(&entry) {
                self.file(&entry, &meta);
            }
        }
        Ok(())
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The text of a file (or stdin for `-`), at most [`MAX_INPUT_BYTES`], as UTF-8.
fn read_text(path: &Path) -> Result<String, LoadError> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        fs::File::open(path).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
    };
    if let Err(e) = read {
        return Err(LoadError {
            message: format!("cannot be read: {e}"),
        });
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(LoadError {
            message: format!(
                "larger than {} MiB; not read (no Kubernetes object comes near that)",
                MAX_INPUT_BYTES >> 20
            ),
        });
    }
    String::from_utf8(bytes).map_err(|e| LoadError {
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// One ApplicationGroup of the input that the webhook would accept, as it would store it.
pub struct ValidGroup {
    /// The source it came from (the path as given, `-` for stdin).
    pub source: String,
    /// `metadata.name`.
    pub name: String,
    /// The spec, defaulted and with the templates injected.
    pub spec: orkestra::api::ApplicationGroupSpec,
}

/// The ApplicationGroups of every `-f` path that the webhook would accept, in order, as it would
/// store them. A source that cannot be read, and every violation of a group it would refuse, is
/// written to stderr; the flag says whether there was any.
pub fn valid_groups(args: &FileArgs) -> Result<(Vec<ValidGroup>, bool)> {
    use orkestra::admission::validate;
    let mut groups = Vec::new();
    let mut failed = false;
    for source in read(args)? {
        let documents = match source.documents {
            Ok(d) => d,
            Err(e) => {
                write_stderr(&format!("{}: {}\n", source.name, e.message));
                failed = true;
                continue;
            }
        };
        for doc in documents.iter().filter(|d| d.kind() == orkestra::api::KIND) {
            let checked = validate::check(&doc.value);
            if !checked.report.is_valid() {
                for v in &checked.report.errors {
                    write_stderr(&format!("{}: {v}\n", doc.name()));
                }
                failed = true;
                continue;
            }
            let object = checked.mutated.as_ref().unwrap_or(&doc.value);
            groups.push(ValidGroup {
                source: source.name.clone(),
                name: doc.name().to_string(),
                spec: orkestra::input::parse::parse_spec(object)?,
            });
        }
    }
    Ok((groups, failed))
}
