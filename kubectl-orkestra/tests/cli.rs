//! The offline commands, run as the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-orkestra"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .expect("stdin accepts input");
    }
    child.wait_with_output().expect("the binary exits")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn valid_examples_exit_zero() {
    let out = run(&["validate", "-f", "examples"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "free5gc: valid\nbookinfo-with-keptn: valid\nbookinfo: valid\n"
    );
}

#[test]
fn invalid_group_exits_one_with_group_path_and_message() {
    let out = run(
        &["validate", "-f", "tests/fixtures/invalid/cycle.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "cycle: spec.applications[0].dependencies[0]: dependency cycle: db -> api -> cache -> db\n\
         cycle: spec.applications[0].dependencies[0]: dependency cycle: db -> api -> db\n"
    );
}

#[test]
fn warnings_are_marked_and_do_not_fail() {
    let out = run(
        &["validate", "-f", "tests/fixtures/warnings/warnings.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("warnings: spec.applications[0].spec.chart.version: warning: application \"db\": chart version \"*\" is not pinned"), "{text}");
    assert!(text.ends_with("warnings: valid (5 warnings)\n"), "{text}");
}

#[test]
fn stdin_multi_document_and_skipped_kinds() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n---\n".to_string()
        + &std::fs::read_to_string(repo().join("examples/bookinfo.yaml")).expect("example exists");
    let out = run(&["validate", "-f", "-"], Some(&input));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "bookinfo: valid\n");
    assert_eq!(
        stderr(&out),
        "-: document 1: skipped ConfigMap settings (not an ApplicationGroup)\n"
    );
}

#[test]
fn unparsable_yaml_names_file_line_and_column() {
    let out = run(
        &["validate", "-f", "-"],
        Some("kind: ApplicationGroup\nspec:\n  applications: [\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "-: line 3 column 17: unclosed bracket '['\n");
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = run(&["validate", "-f", "no/such/file.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: reading no/such/file.yaml: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_report() {
    let out = run(
        &[
            "validate",
            "-o",
            "json",
            "-f",
            "tests/fixtures/invalid/self-dependency.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(report["groups"][0]["valid"], false);
    assert_eq!(
        report["groups"][0]["errors"][0]["path"],
        "spec.applications[0].dependencies[0]"
    );
    assert_eq!(
        report["groups"][0]["errors"][0]["message"],
        "application \"api\" depends on itself"
    );
}

#[test]
fn show_mutated_prints_what_the_webhook_would_store() {
    let out = run(
        &["validate", "--show-mutated", "-f", "examples/bookinfo.yaml"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let docs = orkestra::input::load::documents(&stdout(&out)).expect("YAML on stdout");
    let spec = &docs[0].value["spec"];
    assert_eq!(spec["applications"][0]["spec"]["release"]["timeout"], "5m");
    assert_eq!(spec["workflowTemplate"]["namespace"], "orkestra");
    assert_eq!(spec["workflowTemplate"]["templates"][0]["name"], "entry");
    assert_eq!(stderr(&out), "bookinfo: valid\n");
}

#[test]
fn show_workflow_prints_the_workflow_a_first_promote_creates() {
    let out = run(
        &[
            "validate",
            "--show-workflow",
            "-f",
            "examples/bookinfo.yaml",
            "-f",
            "examples/5g-core.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = orkestra::input::load::documents(&stdout(&out)).expect("YAML on stdout");
    assert_eq!(docs.len(), 2);
    let wf = &docs[0].value;
    assert_eq!(wf["kind"], "Workflow");
    assert_eq!(wf["metadata"]["name"], "bookinfo-r1");
    assert_eq!(wf["metadata"]["namespace"], "orkestra");
    assert_eq!(wf["metadata"].get("ownerReferences"), None);
    assert_eq!(wf["spec"]["entrypoint"], "entry");
    // Exactly what the library builds for promote's first revision.
    let group = orkestra::input::load::documents(
        &std::fs::read_to_string(format!(
            "{}/../examples/bookinfo.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("example"),
    )
    .expect("YAML");
    let stored = orkestra::admission::validate::check(&group[0].value)
        .mutated
        .expect("defaulted");
    assert_eq!(
        wf,
        &orkestra::emit::revision::first_workflow(&stored).expect("workflow")
    );
    assert_eq!(stderr(&out), "bookinfo: valid\nfree5gc: valid\n");
}

#[test]
fn graph_formats() {
    let levels = run(&["graph", "-f", "examples/bookinfo.yaml"], None);
    assert_eq!(levels.status.code(), Some(0));
    assert!(stdout(&levels).contains("wave 2\n  * bookinfo    bookinfo@v1       needs ambassador\n      subcharts: [ratings, details] -> [reviews] -> [productpage] -> [bookinfo]\n"), "{}", stdout(&levels));
    let dot = run(
        &["graph", "-o", "dot", "-f", "examples/bookinfo.yaml"],
        None,
    );
    assert!(stdout(&dot).starts_with("digraph \"bookinfo\" {"));
    let mermaid = run(
        &["graph", "-o", "mermaid", "-f", "examples/5g-core.yaml"],
        None,
    );
    assert!(stdout(&mermaid).starts_with("flowchart LR\n"));
    let json = run(
        &["graph", "-o", "json", "-f", "examples/5g-core.yaml"],
        None,
    );
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(view["waves"].as_array().map(Vec::len), Some(7));
    assert_eq!(view["criticalPath"][0], "mongodb");
}

#[test]
fn graph_of_an_invalid_group_prints_violations_and_exits_one() {
    let out = run(&["graph", "-f", "tests/fixtures/invalid/cycle.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("dependency cycle: db -> api -> cache -> db"));
}

#[test]
fn broken_pipe_exits_quietly() {
    // `| head -1`: the reader goes away after one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-orkestra"))
        .args([
            "graph", "-o", "json", "-f", "examples", "-f", "examples", "-f", "examples",
        ])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("the binary exits");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn crd_subcommand_prints_the_checked_in_crd() {
    let out = run(&["crd"], None);
    let on_disk = std::fs::read_to_string(repo().join("manifests/crd/applicationgroups.yaml"))
        .expect("CRD file");
    assert_eq!(stdout(&out), on_disk);
}

#[test]
fn help_and_completion() {
    let help = run(&["--help"], None);
    assert!(
        stdout(&help).contains("Usage: kubectl orkestra [OPTIONS] <COMMAND>"),
        "{}",
        stdout(&help)
    );
    let bash = run(&["completion", "bash"], None);
    assert_eq!(bash.status.code(), Some(0));
    assert!(stdout(&bash).contains("kubectl-orkestra"));
    let version = run(&["--version"], None);
    assert_eq!(
        stdout(&version),
        format!("kubectl-orkestra {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_flags_are_usage_errors_in_the_plugin_and_the_executor_alike() {
    assert_eq!(run(&["validate", "--bogus"], None).status.code(), Some(2));
    // One scheme for both: 2 an error, 3 a timeout (Argo shows the executor's code).
    assert_eq!(
        run(&["executor", "helmrelease", "--bogus"], None)
            .status
            .code(),
        Some(2)
    );
    let help = stdout(&run(&["--help"], None));
    assert!(
        help.contains("Exit codes: 0 done (valid, released), 1 invalid or release failed, 2 usage, I/O or API error, 3 timed out."),
        "{help}"
    );
}

// === hostile and odd input (every input is bounded and every problem names its file) ===

/// A fresh directory for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("orkestra-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary, killing it if it takes longer than `secs` (a run that never ends fails).
fn run_bounded(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-orkestra"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("kubectl-orkestra {args:?} ran longer than {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("the binary exits")
}

#[test]
fn symlink_loops_end_and_each_file_is_read_once() {
    let dir = Scratch::new("loop");
    std::fs::copy(
        repo().join("examples/bookinfo.yaml"),
        dir.0.join("bookinfo.yaml"),
    )
    .expect("copy");
    std::fs::create_dir(dir.0.join("sub")).expect("sub");
    std::os::unix::fs::symlink("..", dir.0.join("sub/up")).expect("loop");
    std::os::unix::fs::symlink(".", dir.0.join("here")).expect("loop");
    let out = run_bounded(&["validate", "-f", &dir.path(""), "-R"], 20);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "bookinfo: valid\n");

    // A symlink to itself is named and makes the run invalid, without ending it.
    std::os::unix::fs::symlink("self.yaml", dir.0.join("self.yaml")).expect("self loop");
    let out = run_bounded(&["validate", "-f", &dir.path(""), "-R"], 20);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("bookinfo: valid\n"), "{text}");
    assert!(
        text.contains(&format!("{}: cannot be read: ", dir.path("self.yaml"))),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_utf8_is_named_and_the_others_are_still_checked() {
    let dir = Scratch::new("utf8");
    std::fs::copy(repo().join("examples/bookinfo.yaml"), dir.0.join("a.yaml")).expect("copy");
    std::fs::write(
        dir.0.join("b.yaml"),
        b"kind: ApplicationGroup\nname: \xff\xfe\n",
    )
    .expect("write");
    let out = run_bounded(&["validate", "-f", &dir.path("")], 20);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "bookinfo: valid\n{}: not UTF-8 text (invalid byte at offset 29)\n",
            dir.path("b.yaml")
        )
    );
}

#[test]
fn graph_of_an_empty_file_says_there_is_no_group() {
    let dir = Scratch::new("empty");
    let empty = dir.path("empty.yaml");
    std::fs::write(&empty, "").expect("write");
    let out = run_bounded(&["graph", "-f", &empty], 20);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!("error: no ApplicationGroup found in {empty}\n")
    );
}

#[test]
fn a_directory_without_yaml_is_named() {
    let dir = Scratch::new("noyaml");
    std::fs::write(dir.0.join("README.txt"), "not a manifest").expect("write");
    let out = run_bounded(&["validate", "-f", &dir.path("")], 20);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("error: no ApplicationGroup found in {}\n", dir.path(""))
    );
}

#[test]
fn endless_input_is_read_up_to_a_bound() {
    let out = run_bounded(&["validate", "-f", "/dev/zero"], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "/dev/zero: larger than 64 MiB; not read (no Kubernetes object comes near that)\n"
    );
}

#[test]
fn negative_parallelism_is_refused_as_the_crd_does() {
    let text = std::fs::read_to_string(repo().join("examples/bookinfo.yaml")).expect("example");
    let text = text.replace(
        "spec:\n  applications:",
        "spec:\n  workflowTemplate:\n    parallelism: -1\n  applications:",
    );
    let out = run(&["validate", "-f", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "bookinfo: spec.workflowTemplate.parallelism: must be at least 1 (got -1)\n"
    );
}

#[test]
fn reader_limits_are_told_in_words() {
    let dir = Scratch::new("budget");
    let file = dir.path("many.yaml");
    std::fs::write(&file, format!("[{}]\n", vec!["0"; 250_001].join(","))).expect("write");
    let out = run_bounded(&["validate", "-f", &file], 30);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{file}: too many YAML values: at most 250000 in one input\n")
    );
}

// === kubectl's global flags, before the subcommand as after it ===

/// A kubeconfig with one context `first` (cluster `one`, nothing listening).
fn kubeconfig(dir: &Scratch) -> String {
    let path = dir.path("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: first\n\
         clusters: [{name: one, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         contexts: [{name: first, context: {cluster: one, user: me, namespace: team}}]\n\
         users: [{name: me, user: {token: abc}}]\n",
    )
    .expect("write");
    path
}

#[test]
fn kubectl_flags_before_the_subcommand_reach_the_client() {
    let dir = Scratch::new("globals");
    let config = kubeconfig(&dir);
    let loading = format!("error: loading kubeconfig {config}: ");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--context", "second"],
            "failed to load current context: second",
        ),
        (
            &["--cluster", "two"],
            "failed to load the cluster of context: two",
        ),
        (
            &["--context=second", "-n", "ns"],
            "failed to load current context: second",
        ),
        (
            &["-n", "ns", "--context", "second"],
            "failed to load current context: second",
        ),
    ];
    for (flags, want) in cases {
        for command in [
            &["status", "g"][..],
            &["history", "g"],
            &["promote", "g"],
            &["audit"],
        ] {
            let mut args = vec!["--kubeconfig", config.as_str()];
            args.extend_from_slice(flags);
            args.extend_from_slice(command);
            let out = run_bounded(&args, 20);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert_eq!(stderr(&out), format!("{loading}{want}\n"), "{args:?}");
        }
    }
    // After the subcommand, as before; the later of two wins, as in kubectl.
    let out = run_bounded(
        &[
            "--context",
            "first",
            "status",
            "g",
            "--kubeconfig",
            &config,
            "--context",
            "second",
        ],
        20,
    );
    assert_eq!(
        stderr(&out),
        format!("{loading}failed to load current context: second\n")
    );
    let missing = dir.path("missing");
    let out = run_bounded(&["--kubeconfig", &missing, "-n", "ns", "why", "a", "g"], 20);
    assert!(
        stderr(&out).starts_with(&format!("error: reading kubeconfig {missing}: ")),
        "{}",
        stderr(&out)
    );
    // The executor, two levels down, reads them too.
    let out = run_bounded(
        &[
            "--kubeconfig",
            &missing,
            "executor",
            "helmrelease",
            "--action",
            "install",
            "--manifest",
            "{}",
        ],
        20,
    );
    assert!(
        stderr(&out).contains(&format!("reading kubeconfig {missing}: ")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn request_timeout_before_the_subcommand_is_checked() {
    let out = run(&["--request-timeout", "soon", "status", "g"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(
            "error: invalid value 'soon' for '--request-timeout <DURATION>': \"soon\" is not a duration"
        ),
        "{}",
        stderr(&out)
    );
    let help = stdout(&run(&["--help"], None));
    for flag in [
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--request-timeout",
        "-n, --namespace",
    ] {
        assert!(help.contains(flag), "{flag} in:\n{help}");
    }
}

#[test]
fn verbosity_as_kubectl_shows_the_client_logs_on_stderr() {
    let dir = Scratch::new("verbose");
    let config = kubeconfig(&dir);
    let quiet = run_bounded(&["--kubeconfig", &config, "status", "g"], 20);
    assert!(
        !stderr(&quiet).contains("kube client configured"),
        "{}",
        stderr(&quiet)
    );
    for flags in [&["-v", "4"][..], &["-v=6"], &["--v", "5"]] {
        let mut args = flags.to_vec();
        args.extend(["--kubeconfig", &config, "status", "g"]);
        let out = run_bounded(&args, 20);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("kube client configured server=https://127.0.0.1:1/ namespace=team"),
            "{args:?}: {err}"
        );
        assert!(!err.contains('\x1b'), "colours in a pipe: {err}");
    }
    let info = run_bounded(&["-v", "2", "--kubeconfig", &config, "status", "g"], 20);
    assert!(
        !stderr(&info).contains("kube client configured"),
        "{}",
        stderr(&info)
    );
}
