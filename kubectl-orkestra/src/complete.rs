//! Shell completion: the scripts clap_complete generates (with its hyphenated-binary bug in bash
//! worked around), and the answers `kubectl orkestra <TAB>` asks for.
//!
//! kubectl (1.26 and later) completes a plugin by running `kubectl_complete-<plugin> ARGS... WORD`
//! and reading Cobra's protocol back: one candidate a line (`value<TAB>description`), then
//! `:<directive>` (`kubernetes/kubectl pkg/cmd/plugin/plugin_completion.go`). We ship that
//! executable as a two-line script running `kubectl-orkestra __complete ARGS... WORD`, answered
//! here from the same clap command tree the parser uses.

use clap::{Arg, ArgAction, Command, ValueHint};

/// Cobra: complete file names (the shell's default).
const DIRECTIVE_DEFAULT: u32 = 0;
/// Cobra: do not fall back to file names.
const DIRECTIVE_NO_FILE: u32 = 4;

/// The completion script for `shell`, for the binary `kubectl-orkestra`.
pub fn script(shell: clap_complete::Shell, cmd: &mut Command) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, crate::BIN, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    match shell {
        clap_complete::Shell::Bash => fix_bash_states(&text),
        _ => text,
    }
}

/// clap_complete 4 escapes a hyphenated binary name in bash in two different ways: the loop
/// that follows the words builds states like `kubectl__orkestra__subcmd__status`, the `case`
/// arms are labelled `kubectl__subcmd__orkestra__subcmd__status`, so no subcommand's options
/// ever complete (clap-rs/clap#6421, #6529). Relabel the arms the way the loop spells them; once
/// clap is fixed there is nothing left to replace and the script passes through unchanged.
fn fix_bash_states(script: &str) -> String {
    let wrong = format!("{}__subcmd__", crate::BIN.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", crate::BIN.replace('-', "__"));
    script.replace(&wrong, &right)
}

/// The answer to `__complete ARGS... WORD`: candidates, then Cobra's directive line.
pub fn answer(cmd: &Command, words: &[String]) -> String {
    let (done, current) = match words.split_last() {
        Some((last, rest)) => (rest, last.as_str()),
        None => (&[][..], ""),
    };
    let (candidates, directive) = candidates(cmd, done, current);
    let mut out = String::new();
    for (value, help) in candidates {
        out.push_str(&value);
        if !help.is_empty() {
            out.push('\t');
            out.push_str(&help);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

fn help_of(arg: &Arg) -> String {
    arg.get_help()
        .map(|h| h.to_string().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

/// Options of `cmd` and the global ones of its ancestors.
fn options<'a>(path: &[&'a Command]) -> Vec<&'a Arg> {
    let mut out: Vec<&Arg> = Vec::new();
    for (i, c) in path.iter().enumerate() {
        for a in c.get_arguments() {
            let own = i + 1 == path.len();
            if !a.is_positional()
                && (own || a.is_global_set())
                && !out.iter().any(|o| o.get_id() == a.get_id())
            {
                out.push(a);
            }
        }
    }
    out
}

fn values(arg: &Arg, current: &str) -> (Vec<(String, String)>, u32) {
    let possible = arg.get_possible_values();
    if possible.is_empty() {
        let files = matches!(
            arg.get_value_hint(),
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
        ) || arg
            .get_value_names()
            .is_some_and(|n| n.iter().any(|n| n.as_str().contains("PATH")));
        return (
            Vec::new(),
            if files {
                DIRECTIVE_DEFAULT
            } else {
                DIRECTIVE_NO_FILE
            },
        );
    }
    let list = possible
        .iter()
        .filter(|v| !v.is_hide_set() && v.get_name().starts_with(current))
        .map(|v| {
            (
                v.get_name().to_string(),
                v.get_help().map(|h| h.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    (list, DIRECTIVE_NO_FILE)
}

/// What may follow `done` when the word being typed is `current`.
fn candidates(root: &Command, done: &[String], current: &str) -> (Vec<(String, String)>, u32) {
    let mut path: Vec<&Command> = vec![root];
    let mut pending: Option<&Arg> = None;
    let mut positionals = 0usize;
    for word in done {
        if pending.take().is_some() {
            continue;
        }
        let cmd = *path.last().unwrap_or(&root);
        if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                continue;
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some(a) = options(&path)
                .into_iter()
                .find(|a| a.get_long() == Some(name))
                && takes_value(a)
                && !inline
            {
                pending = Some(a);
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let opts = options(&path);
            // `-o` takes the next word, `-ojson` and `-wo` carry it along.
            for (k, c) in shorts.chars().enumerate() {
                if let Some(a) = opts.iter().find(|a| a.get_short() == Some(c))
                    && takes_value(a)
                {
                    if k + 1 == shorts.len() {
                        pending = Some(a);
                    }
                    break;
                }
            }
        } else if positionals == 0
            && let Some(sub) = cmd
                .get_subcommands()
                .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
        {
            path.push(sub);
        } else {
            positionals += 1;
        }
    }
    let cmd = *path.last().unwrap_or(&root);
    if let Some(arg) = pending {
        return values(arg, current);
    }
    if let Some((name, typed)) = current.strip_prefix("--").and_then(|l| l.split_once('=')) {
        if let Some(a) = options(&path)
            .into_iter()
            .find(|a| a.get_long() == Some(name))
        {
            let (list, directive) = values(a, typed);
            let list = list
                .into_iter()
                .map(|(v, h)| (format!("--{name}={v}"), h))
                .collect();
            return (list, directive);
        }
        return (Vec::new(), DIRECTIVE_NO_FILE);
    }
    if current.starts_with('-') {
        let mut list: Vec<(String, String)> = Vec::new();
        for a in options(&path).into_iter().filter(|a| !a.is_hide_set()) {
            if let Some(l) = a.get_long() {
                list.push((format!("--{l}"), help_of(a)));
            }
            if current.len() <= 2
                && !current.starts_with("--")
                && let Some(s) = a.get_short()
            {
                list.push((format!("-{s}"), help_of(a)));
            }
        }
        if !cmd.is_disable_help_flag_set() {
            list.push(("--help".into(), "Print help".into()));
        }
        if path.len() == 1 && !cmd.is_disable_version_flag_set() && cmd.get_version().is_some() {
            list.push(("--version".into(), "Print version".into()));
        }
        list.retain(|(v, _)| v.starts_with(current));
        return (list, DIRECTIVE_NO_FILE);
    }
    if positionals == 0 && cmd.has_subcommands() {
        let list = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name().starts_with(current))
            .map(|s| {
                (
                    s.get_name().to_string(),
                    s.get_about().map(|a| a.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        return (list, DIRECTIVE_NO_FILE);
    }
    // A positional: its possible values, else nothing (names of groups and applications are
    // the user's to type).
    match cmd.get_positionals().nth(positionals) {
        Some(a) => values(a, current),
        None => (Vec::new(), DIRECTIVE_NO_FILE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(words: &[&str]) -> String {
        let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
        answer(
            &cmd,
            &words.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn subcommands_flags_and_values() {
        let top = ask(&["st"]);
        assert!(top.starts_with("status\tShow the live state"), "{top}");
        assert!(top.ends_with(":4\n"), "{top}");
        let flags = ask(&["status", "shop", "--w"]);
        assert!(
            flags.contains("--watch\t") && flags.contains("--wait\t"),
            "{flags}"
        );
        assert!(
            !flags.contains("--interval"),
            "hidden flags stay hidden: {flags}"
        );
        assert_eq!(
            ask(&["validate", "-o", ""]),
            "text\tOne line per finding: `<group>: <path>: <message>`\njson\tA JSON report\n:4\n"
        );
        assert_eq!(
            ask(&["graph", "shop", "-o", "s"]),
            "svg\tSVG picture (open in a browser): waves as columns, status colours, critical path in red\n:4\n"
        );
        assert!(ask(&["graph", "--output=m"]).starts_with("--output=mermaid\t"));
        // -f takes a path: the shell completes file names.
        assert_eq!(ask(&["validate", "-f", ""]), ":0\n");
        // Global kubectl flags everywhere.
        assert!(ask(&["why", "--kubec"]).starts_with("--kubeconfig\t"));
    }

    #[test]
    fn the_bash_script_names_its_states_as_its_loop_does() {
        let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
        let s = script(clap_complete::Shell::Bash, &mut cmd);
        assert!(
            s.contains("kubectl__orkestra__subcmd__status)"),
            "arm for status"
        );
        assert!(!s.contains("kubectl__subcmd__orkestra"));
    }
}
