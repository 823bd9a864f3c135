//! Completion in real shells: bash, zsh and fish load `kubectl-orkestra completion SHELL`, and
//! kubectl's own bash completion reaches `kubectl_complete-orkestra`; keys are typed into each
//! shell under tmux (a private tmux server per test) and the screen is read back.
//!
//! Needs tmux, bash, zsh and fish (tests/run installs them); kubectl from ORKESTRA_TEST_KUBECTL
//! or PATH. Skipped with a message when a tool is missing, except in CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn find(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("ORKESTRA_E2E_REQUIRED").is_some()
}

/// The tool, or `None` after saying why the test is skipped (a failure in CI).
fn tool(name: &str) -> Option<PathBuf> {
    let found = find(name);
    if found.is_none() {
        assert!(
            !required(),
            "{name} is not installed: tests/run installs it"
        );
        eprintln!("skipped: {name} not found on PATH (apt-get install {name}); CI runs this test");
    }
    found
}

/// A private tmux server with one window running `shell` in a clean environment whose PATH
/// starts with a directory holding `kubectl-orkestra` and `kubectl_complete-orkestra`.
struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    fn start(name: &str, shell: &str, extra_path: Option<&Path>) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("completion-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let exe = Path::new(env!("CARGO_BIN_EXE_kubectl-orkestra"));
        std::os::unix::fs::symlink(exe, bin.join("kubectl-orkestra")).expect("link plugin");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("completion/kubectl_complete-orkestra");
        std::fs::copy(&script, bin.join("kubectl_complete-orkestra"))
            .expect("copy completion script");
        for shell in ["bash", "zsh", "fish"] {
            let out = Command::new(exe)
                .args(["completion", shell])
                .output()
                .expect("completion");
            assert!(out.status.success());
            std::fs::write(dir.join(format!("orkestra.{shell}")), out.stdout)
                .expect("write script");
        }
        let mut path = format!("{}", bin.display());
        if let Some(p) = extra_path {
            path.push_str(&format!(":{}", p.display()));
        }
        path.push_str(":/usr/local/bin:/usr/bin:/bin");
        let socket = format!("orkestra-completion-{name}-{}", std::process::id());
        let command = format!(
            "env -i HOME={home} PATH={path} TERM=xterm-256color LANG=C.UTF-8 {shell}",
            home = dir.display()
        );
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
                &command,
            ])
            .status()
            .expect("tmux");
        assert!(status.success(), "tmux new-session");
        Self { socket, dir }
    }

    /// Sends keys one at a time, leaving the shell time to answer each (a second Tab must
    /// arrive after the first one's completion, or the shell takes both as one).
    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = Command::new("tmux")
                .args(["-L", &self.socket, "send-keys", "-t", "0", key])
                .status()
                .expect("tmux send-keys");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(400));
        }
    }

    /// Types `line` literally (no Enter).
    fn type_text(&self, line: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0", "-l", line])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows every one of `wanted`.
    fn expect(&self, what: &str, wanted: &[&str]) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if wanted.iter().all(|w| screen.contains(w)) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{what}: expected {wanted:?} on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a command line and waits for `marker` to be printed.
    fn run(&self, line: &str, marker: &str) {
        self.type_text(&format!("{line}; echo {marker}"));
        self.keys(&["Enter"]);
        self.expect(line, &[&format!("\n{marker}")]);
    }

    /// Clears the screen and the line being edited.
    fn reset(&self) {
        self.keys(&["C-c"]);
        std::thread::sleep(Duration::from_millis(200));
        self.keys(&["C-l"]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The cases every shell must get right: a subcommand's options (clap's bash bug broke all of
/// them), a flag's values (broken bash offered file names), subcommand names.
fn check(t: &Tmux, tab: &[&str]) {
    t.type_text("kubectl-orkestra status shop --wa");
    t.keys(tab);
    t.expect("status --wa<TAB>", &["--watch", "--wait"]);
    t.reset();
    t.type_text("kubectl-orkestra validate -o ");
    t.keys(tab);
    t.expect("validate -o <TAB>", &["json", "text"]);
    t.reset();
    t.type_text("kubectl-orkestra imp");
    t.keys(&["Tab"]);
    // (tmux drops the trailing space of the completed word)
    t.expect("imp<TAB>", &["kubectl-orkestra impact"]);
    t.reset();
}

#[test]
fn bash_completes_subcommand_options_and_values() {
    let (Some(_), Some(_)) = (tool("tmux"), tool("bash")) else {
        return;
    };
    let t = Tmux::start("bash", "bash --norc --noprofile", None);
    t.run(
        &format!("source {}/orkestra.bash", t.dir.display()),
        "LOADED",
    );
    check(&t, &["Tab", "Tab"]);
}

#[test]
fn zsh_completes_subcommand_options_and_values() {
    let (Some(_), Some(_)) = (tool("tmux"), tool("zsh")) else {
        return;
    };
    let t = Tmux::start("zsh", "zsh -f", None);
    t.run(
        &format!(
            "autoload -U compinit && compinit -u && source {}/orkestra.zsh",
            t.dir.display()
        ),
        "LOADED",
    );
    check(&t, &["Tab", "Tab"]);
}

#[test]
fn fish_completes_subcommand_options_and_values() {
    let (Some(_), Some(_)) = (tool("tmux"), tool("fish")) else {
        return;
    };
    let t = Tmux::start("fish", "fish --no-config", None);
    t.run(
        &format!("source {}/orkestra.fish", t.dir.display()),
        "LOADED",
    );
    check(&t, &["Tab", "Tab"]);
}

#[test]
fn kubectl_orkestra_completes_through_kubectl_complete_orkestra() {
    let kubectl = std::env::var_os("ORKESTRA_TEST_KUBECTL")
        .map(PathBuf::from)
        .or_else(|| find("kubectl"));
    let Some(kubectl) = kubectl else {
        assert!(
            !required(),
            "no kubectl: ORKESTRA_TEST_KUBECTL is set by tests/cluster/cluster.sh up"
        );
        eprintln!("skipped: no kubectl (set ORKESTRA_TEST_KUBECTL or put kubectl on PATH)");
        return;
    };
    let (Some(_), Some(_)) = (tool("tmux"), tool("bash")) else {
        return;
    };
    let t = Tmux::start("kubectl", "bash --norc --noprofile", kubectl.parent());
    // kubectl's bash completion needs the bash-completion package (tests/run installs it).
    let bash_completion = Path::new("/usr/share/bash-completion/bash_completion");
    if !bash_completion.is_file() {
        assert!(
            !required(),
            "bash-completion is not installed: tests/run installs it"
        );
        eprintln!(
            "skipped: {} missing (apt-get install bash-completion)",
            bash_completion.display()
        );
        return;
    }
    t.run(
        &format!(
            "source {} && source <(kubectl completion bash)",
            bash_completion.display()
        ),
        "LOADED",
    );
    t.type_text("kubectl orkestra st");
    t.keys(&["Tab"]);
    t.expect("kubectl orkestra st<TAB>", &["kubectl orkestra status"]);
    t.reset();
    t.type_text("kubectl orkestra graph shop -o ");
    t.keys(&["Tab", "Tab"]);
    t.expect(
        "kubectl orkestra graph -o <TAB>",
        &["svg", "mermaid", "levels"],
    );
    t.reset();
    t.type_text("kubectl orkestra retry shop --");
    t.keys(&["Tab", "Tab"]);
    t.expect(
        "kubectl orkestra retry --<TAB>",
        &["--wait", "--kubeconfig"],
    );
}
