//! The custom executor of `examples/bookinfo-executors.yaml`, run here standing in for Argo: its
//! command with the arguments the generated template passes (the parameters substituted here the
//! way Argo substitutes them), with a stand-in `curl` on `PATH` that prints what it was asked to do.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use orkestra::admission::defaults;
use orkestra::emit::argo;
use orkestra::input::parse;
use serde_json::Value;

/// Replaces every `{{<prefix>.<name>}}` in `s` by `values[name]`.
fn substitute(s: &str, prefix: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{prefix}.{name}}}}}"), value);
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_bookinfo_smoke_test_reads_the_executor_arguments_and_calls_curl() {
    let text = include_str!("../../examples/bookinfo-executors.yaml");
    let docs = orkestra::input::load::documents(text).expect("the example parses");
    let object = defaults::default_object(&docs[0].value).expect("defaults");
    let spec = parse::parse_spec(&object).expect("spec");
    let meta = argo::WorkflowMeta {
        name: "bookinfo-with-keptn-r1".into(),
        namespace: "orkestra".into(),
        labels: vec![],
    };
    let wf = argo::workflow("bookinfo-with-keptn", &spec, &meta);
    let templates = wf["spec"]["templates"].as_array().expect("templates");
    let smoke = templates
        .iter()
        .find(|t| t["container"]["name"] == "smoke-test")
        .expect("the smoke-test template");
    let task = templates
        .iter()
        .flat_map(|t| t["dag"]["tasks"].as_array().into_iter().flatten())
        .find(|t| t["template"] == smoke["name"])
        .expect("the task running the smoke test");

    // Argo: workflow parameters into the task's arguments, those into the template's inputs.
    let workflow_params: BTreeMap<String, String> = wf["spec"]["arguments"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut inputs: BTreeMap<String, String> = smoke["inputs"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                p["default"].as_str()?.to_string(),
            ))
        })
        .collect();
    for p in task["arguments"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let value = substitute(
            p["value"].as_str().unwrap_or(""),
            "workflow.parameters",
            &workflow_params,
        );
        inputs.insert(p["name"].as_str().unwrap_or("").to_string(), value);
    }
    let command = strings(&smoke["container"]["command"]);
    assert!(
        !command.is_empty(),
        "without a command, curl's own entrypoint gets --spec ... and exits 2"
    );
    let args: Vec<String> = strings(&smoke["container"]["args"])
        .iter()
        .map(|a| substitute(a, "inputs.parameters", &inputs))
        .collect();
    assert!(
        args.iter().all(|a| !a.contains("{{")),
        "unsubstituted: {args:?}"
    );

    let bin = std::env::temp_dir().join(format!("orkestra-example-{}", std::process::id()));
    std::fs::create_dir_all(&bin).expect("temp dir");
    let curl = bin.join("curl");
    std::fs::write(&curl, "#!/bin/sh\necho \"curl $*\"\n").expect("stand-in curl");
    std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&command[0])
        .args(&command[1..])
        .args(&args)
        .env("PATH", path)
        .output()
        .expect("running the smoke test's command");
    let _ = std::fs::remove_dir_all(&bin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let url = "http://istio-ingressgateway.istio-system/healthz/ready";
    assert!(
        out.status.success()
            && stdout.contains(&format!("smoke test: GET {url}"))
            && stdout
                .lines()
                .any(|l| l.starts_with("curl ") && l.ends_with(url)),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
