//! Unit tests of the review logic on JSON fixtures. Rules are faked where the test is about the
//! answer's shape, and real (`Rules::ORKESTRA`) where it is about what users will see.

use super::*;
use base64::Engine as _;
use serde_json::{Value, json};

const CREATE_BOOKINFO: &str = include_str!("../../tests/fixtures/review-create-bookinfo.json");
const UPDATE_CYCLE: &str = include_str!("../../tests/fixtures/review-update-cycle.json");

fn parse(a: &Answer) -> Value {
    serde_json::from_slice(&a.body).expect("answers are JSON")
}

fn response(a: &Answer) -> Value {
    assert_eq!(a.http_status, 200, "{}", String::from_utf8_lossy(&a.body));
    let v = parse(a);
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

fn fixture(s: &str) -> Value {
    serde_json::from_str(s).expect("fixture is JSON")
}

fn review_of(object: Value) -> Value {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["object"] = object;
    r
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serializable")
}

fn no_rules_broken(_: &GroupObject, _: Option<&GroupObject>) -> Report {
    Report::default()
}

fn two_errors_one_warning(_: &GroupObject, _: Option<&GroupObject>) -> Report {
    Report {
        errors: vec![
            Violation {
                path: "spec.applications[1].dependencies[0]".into(),
                message: "application \"b\" depends on \"x\", which is not an application".into(),
            },
            Violation {
                path: "spec.applications".into(),
                message: "dependency cycle: a -> b -> a".into(),
            },
        ],
        warnings: vec![Violation {
            path: "spec.applications[0].spec.chart.version".into(),
            message: "chart version \"*\" is not pinned".into(),
        }],
    }
}

fn many_long_errors(_: &GroupObject, _: Option<&GroupObject>) -> Report {
    Report {
        errors: (0..150)
            .map(|i| Violation {
                path: format!("spec.applications[{i}].dependencies[0]"),
                message: format!("{} is wrong\nin a very long way", "x".repeat(200)),
            })
            .collect(),
        warnings: vec![],
    }
}

fn no_patch(_: &[u8]) -> Result<Patch, DefaultsError> {
    Ok(Patch::default())
}

fn label_patch(_: &[u8]) -> Result<Patch, DefaultsError> {
    let mut patch = Patch::default();
    patch.add(
        &["spec", "applications", "0", "spec", "release", "interval"],
        "5m",
    );
    patch.add(&["metadata", "labels"], &json!({"orkestra": "defaulted"}));
    Ok(patch)
}

type Validate = fn(&GroupObject, Option<&GroupObject>) -> Report;

fn fake(enforcement: Enforcement, validate: Validate) -> Admission {
    Admission {
        enforcement,
        rules: Rules {
            validate,
            mutate: no_patch,
        },
        policy: Default::default(),
    }
}

fn mutator(mutate: fn(&[u8]) -> Result<Patch, DefaultsError>) -> Admission {
    Admission {
        enforcement: Enforcement::Deny,
        rules: Rules {
            validate: no_rules_broken,
            mutate,
        },
        policy: Default::default(),
    }
}

// === answer shape ===

#[test]
fn allowed_answer_echoes_uid() {
    let a = fake(Enforcement::Deny, no_rules_broken)
        .review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none() && r.get("patchType").is_none());
    assert!(r.get("warnings").is_none());
    assert_eq!(a.verdict, Verdict::Allowed);
}

#[test]
fn escaped_strings_in_the_review_are_read_as_json_says() {
    // The review's strings are borrowed from the body unless they hold escapes: those are
    // decoded, in the uid echoed back and in the fields checked.
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["uid"] = json!("uid-\"quoted\"-\u{e9}");
    r["request"]["userInfo"]["username"] = json!("tab\there");
    let text = String::from_utf8(bytes(&r)).unwrap_or_default();
    let text = text.replace("ApplicationGroup\"", "Application\\u0047roup\"");
    assert!(
        text.contains("\\u0047roup"),
        "the kind is escaped in the body"
    );
    let a = fake(Enforcement::Deny, no_rules_broken).review(Endpoint::Validate, text.as_bytes());
    let res = response(&a);
    assert_eq!(res["uid"], "uid-\"quoted\"-\u{e9}");
    assert_eq!(res["allowed"], true, "{res}");
}

#[test]
fn denial_lists_every_violation_with_path_and_causes() {
    let a = fake(Enforcement::Deny, two_errors_one_warning)
        .review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["allowed"], false);
    assert_eq!(a.verdict, Verdict::Denied);
    let status = &r["status"];
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["status"], "Failure");
    assert_eq!(
        status["message"],
        "ApplicationGroup \"bookinfo\" is invalid: spec.applications[1].dependencies[0]: \
         application \"b\" depends on \"x\", which is not an application; \
         spec.applications: dependency cycle: a -> b -> a"
    );
    let causes = status["details"]["causes"].as_array().expect("causes");
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0]["field"], "spec.applications[1].dependencies[0]");
    assert_eq!(causes[0]["reason"], "FieldValueInvalid");
    assert_eq!(causes[1]["field"], "spec.applications");
    assert_eq!(causes[1]["message"], "dependency cycle: a -> b -> a");
    assert_eq!(status["details"]["name"], "bookinfo");
    assert_eq!(status["details"]["kind"], "ApplicationGroup");
    assert_eq!(status["details"]["group"], GROUP);
    // Warnings travel with a denial too.
    assert_eq!(
        r["warnings"],
        json!(["spec.applications[0].spec.chart.version: chart version \"*\" is not pinned"])
    );
}

#[test]
fn warn_enforcement_admits_with_violations_as_warnings() {
    let a = fake(Enforcement::Warn, two_errors_one_warning)
        .review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(r["allowed"], true);
    assert_eq!(a.verdict, Verdict::Warned);
    let w: Vec<&str> = r["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(w.len(), 3);
    assert!(w[0].starts_with("not enforced: spec.applications[1].dependencies[0]: "));
    assert_eq!(
        w[1],
        "not enforced: spec.applications: dependency cycle: a -> b -> a"
    );
    assert!(w[2].starts_with("spec.applications[0].spec.chart.version"));
    assert_eq!(r["auditAnnotations"]["violations"], "2");
}

#[test]
fn warnings_are_short_and_few_and_denials_bounded() {
    let a = fake(Enforcement::Warn, many_long_errors)
        .review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    let w = r["warnings"].as_array().expect("warnings");
    assert_eq!(w.len(), MAX_WARNINGS);
    for s in w.iter().filter_map(Value::as_str) {
        assert!(s.chars().count() < 120, "{s}");
        assert!(!s.contains('\n'));
    }
    assert!(
        w[MAX_WARNINGS - 1]
            .as_str()
            .is_some_and(|s| s.starts_with("131 more warnings"))
    );

    let a = fake(Enforcement::Deny, many_long_errors)
        .review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    let causes = r["status"]["details"]["causes"].as_array().expect("causes");
    assert_eq!(causes.len(), MAX_LISTED_VIOLATIONS);
    let msg = r["status"]["message"].as_str().expect("message");
    assert!(msg.contains("spec.applications[99].dependencies[0]"));
    assert!(!msg.contains("spec.applications[100].dependencies[0]"));
    assert!(msg.ends_with("and 50 more (run `kubectl orkestra validate -f` for the full list)"));
}

#[test]
fn warning_truncation_respects_char_boundaries() {
    assert_eq!(warning("", "short"), "short");
    let exact: String = "é".repeat(WARNING_MAX_CHARS);
    assert_eq!(warning("", &exact), exact);
    let long: String = "é".repeat(WARNING_MAX_CHARS + 1);
    let w = warning("p: ", &long);
    assert_eq!(w.chars().count(), WARNING_MAX_CHARS);
    assert!(w.starts_with("p: é") && w.ends_with('…'));
    assert_eq!(warning("", "a\tb\u{1b}c"), "a b c");
}

// === mutation ===

#[test]
fn patch_is_base64_json_patch_and_deterministic() {
    let m = mutator(label_patch);
    let a = m.review(Endpoint::Mutate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(a.verdict, Verdict::Patched);
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch");
    let b64 = r["patch"]
        .as_str()
        .expect("patch is a base64 string, not a number array");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("canonical base64");
    let ops: Value = serde_json::from_slice(&raw).expect("patch is JSON");
    assert_eq!(ops[0]["op"], "add");
    assert_eq!(ops[1]["path"], "/metadata/labels");
    let again = m.review(Endpoint::Mutate, CREATE_BOOKINFO.as_bytes());
    assert_eq!(a.body, again.body, "identical input, identical answer");
}

#[test]
fn empty_patch_sends_no_patch() {
    let a = mutator(no_patch).review(Endpoint::Mutate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none() && r.get("patchType").is_none());
    assert_eq!(a.verdict, Verdict::Allowed);
}

#[test]
fn unparseable_spec_is_admitted_unpatched_with_a_warning() {
    let m = Admission::new(Enforcement::Deny);
    let mut review = fixture(CREATE_BOOKINFO);
    review["request"]["object"]["spec"] = json!({"applications": "not a list"});
    let a = m.review(Endpoint::Mutate, &bytes(&review));
    let r = response(&a);
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none());
    // The spec cannot be read, so defaulting says so in a warning instead of denying.
    let warnings = r["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{r}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|s| s.starts_with("defaults not applied: ")),
        "{r}"
    );
}

// === malformed reviews: every one answered, uid echoed whenever there is one ===

fn expect_malformed(body: &[u8], uid: &str, needle: &str) {
    let a = fake(Enforcement::Deny, no_rules_broken).review(Endpoint::Validate, body);
    let r = response(&a);
    assert_eq!(r["uid"], uid);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    let msg = r["status"]["message"].as_str().expect("message");
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    assert_eq!(a.verdict, Verdict::Malformed);
}

fn expect_400(body: &[u8], needle: &str) {
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let a = fake(Enforcement::Deny, no_rules_broken).review(endpoint, body);
        assert_eq!(a.http_status, 400);
        let v = parse(&a);
        assert_eq!(v["kind"], "Status");
        let msg = v["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    }
}

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

#[test]
fn broken_json_with_a_uid_is_denied_with_that_uid() {
    let whole = CREATE_BOOKINFO.as_bytes();
    expect_malformed(
        &whole[..whole.len() / 2],
        UID,
        "not a valid AdmissionReview",
    );
    let mut bad_utf8 = whole.to_vec();
    let at = CREATE_BOOKINFO.find("ambassador").expect("fixture text");
    bad_utf8[at] = 0xff;
    expect_malformed(&bad_utf8, UID, "not a valid AdmissionReview");
}

#[test]
fn broken_json_without_uid_is_a_400() {
    expect_400(b"", "not a valid AdmissionReview");
    expect_400(b"{", "not a valid AdmissionReview");
    expect_400(b"\xff\xfe", "not a valid AdmissionReview");
    expect_400(&[b'['; 300], "not a valid AdmissionReview");
}

#[test]
fn missing_uid_or_request_is_a_400() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"].as_object_mut().map(|m| m.remove("uid"));
    expect_400(&bytes(&r), "request.uid is missing");
    r["request"]["uid"] = json!("");
    expect_400(&bytes(&r), "request.uid is missing");
    r["request"]["uid"] = json!(42);
    expect_400(&bytes(&r), "request.uid is missing");
    expect_400(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        "request is missing",
    );
    expect_400(b"[]", "request is missing");
    expect_400(b"null", "request is missing");
}

#[test]
fn wrong_review_version_or_kind_is_denied() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["apiVersion"] = json!("admission.k8s.io/v1beta1");
    expect_malformed(
        &bytes(&r),
        UID,
        "unsupported AdmissionReview apiVersion \"admission.k8s.io/v1beta1\"",
    );
    let mut r = fixture(CREATE_BOOKINFO);
    r["kind"] = json!("ConversionReview");
    expect_malformed(
        &bytes(&r),
        UID,
        "expected kind AdmissionReview, got \"ConversionReview\"",
    );
    let mut r = fixture(CREATE_BOOKINFO);
    r.as_object_mut().map(|m| m.remove("apiVersion"));
    expect_malformed(&bytes(&r), UID, "apiVersion (none)");
}

#[test]
fn wrong_resource_kind_is_denied() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    expect_malformed(&bytes(&r), UID, "not /v1 Pod");
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["kind"]["version"] = json!("v1beta9");
    expect_malformed(&bytes(&r), UID, "v1beta9");
}

#[test]
fn missing_or_odd_object_is_denied() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"].as_object_mut().map(|m| m.remove("object"));
    expect_malformed(&bytes(&r), UID, "request.object is missing on a Create");
    r["request"]["object"] = Value::Null;
    expect_malformed(&bytes(&r), UID, "request.object is missing");
    r["request"]["object"] = json!([1, 2]);
    expect_malformed(&bytes(&r), UID, "request.object is not a JSON object");
}

#[test]
fn malformed_request_fields_are_denied_with_the_decoder_reason() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"].as_object_mut().map(|m| m.remove("userInfo"));
    expect_malformed(&bytes(&r), UID, "userInfo");
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["operation"] = json!("EXPLODE");
    expect_malformed(
        &bytes(&r),
        UID,
        "malformed AdmissionReview request: request.operation: unknown variant `EXPLODE`",
    );
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["kind"] = json!("ApplicationGroup");
    expect_malformed(
        &bytes(&r),
        UID,
        "malformed AdmissionReview request: request.kind: invalid type: string \"ApplicationGroup\"",
    );
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["userInfo"]["groups"] = json!("system:masters");
    expect_malformed(&bytes(&r), UID, "request.userInfo.groups: invalid type");
}

#[test]
fn delete_is_allowed_without_looking() {
    let mut r = fixture(CREATE_BOOKINFO);
    r["request"]["operation"] = json!("DELETE");
    r["request"]["oldObject"] = r["request"]["object"].take();
    let a = fake(Enforcement::Deny, two_errors_one_warning).review(Endpoint::Validate, &bytes(&r));
    assert_eq!(response(&a)["allowed"], true);
}

#[test]
fn scan_uid_finds_request_uid_only() {
    assert_eq!(
        scan_uid(br#"{"request": {"uid" : "abc-1", "object": {"#).as_deref(),
        Some("abc-1")
    );
    assert_eq!(scan_uid(br#"{"metadata":{"uid":"not-this"}}"#), None);
    assert_eq!(scan_uid(br#"{"request":{"uid":"a\"b"}"#), None);
    assert_eq!(scan_uid(br#"{"request":{"uid":"#), None);
}

// === the real rules, as users meet them ===

#[test]
fn valid_group_is_admitted_by_the_real_rules() {
    let a =
        Admission::new(Enforcement::Deny).review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    let r = response(&a);
    assert_eq!(r["allowed"], true, "{r:#}");
    assert_eq!(r["uid"], UID);
}

#[test]
fn update_introducing_a_cycle_is_denied_by_the_real_rules() {
    let a = Admission::new(Enforcement::Deny).review(Endpoint::Validate, UPDATE_CYCLE.as_bytes());
    let r = response(&a);
    assert_eq!(r["uid"], "a3b1c2d4-0000-4000-8000-00000000cafe");
    assert_eq!(r["allowed"], false);
    let msg = r["status"]["message"].as_str().expect("message");
    assert!(msg.contains("cycle"), "{msg}");
    assert!(
        msg.contains("ambassador -> bookinfo -> ambassador")
            || msg.contains("bookinfo -> ambassador -> bookinfo"),
        "{msg}"
    );
    let causes = r["status"]["details"]["causes"].as_array().expect("causes");
    assert!(
        causes
            .iter()
            .all(|c| c["field"].as_str().is_some_and(|f| f.starts_with("spec.")))
    );
}

#[test]
fn self_dependency_and_unknown_dependency_are_denied_with_paths() {
    let mut obj = fixture(CREATE_BOOKINFO)["request"]["object"].clone();
    obj["spec"]["applications"][0]["dependencies"] = json!(["ambassador", "redis"]);
    let a = Admission::new(Enforcement::Deny).review(Endpoint::Validate, &bytes(&review_of(obj)));
    let r = response(&a);
    assert_eq!(r["allowed"], false);
    let fields: Vec<&str> = r["status"]["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"spec.applications[0].dependencies[0]"),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"spec.applications[0].dependencies[1]"),
        "{fields:?}"
    );
}

#[test]
fn deep_nesting_and_huge_lists_get_clear_answers() {
    // 10k nested arrays in values: serde_json's recursion limit trips; the uid is recovered.
    let mut body = CREATE_BOOKINFO.replacen(
        "\"replicaCount\": 1",
        &format!(
            "\"replicaCount\": {}1{}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
        1,
    );
    assert!(body.len() > 20_000);
    let a = Admission::new(Enforcement::Deny).review(Endpoint::Validate, body.as_bytes());
    let r = response(&a);
    assert_eq!(r["uid"], UID);
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("recursion limit"))
    );

    // One application with 50k dependencies on missing applications.
    let mut obj = fixture(CREATE_BOOKINFO)["request"]["object"].clone();
    let deps: Vec<String> = (0..50_000).map(|i| format!("missing-{i}")).collect();
    obj["spec"]["applications"][0]["dependencies"] = json!(deps);
    body = String::from_utf8(bytes(&review_of(obj))).expect("utf8");
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let a = Admission::new(Enforcement::Deny).review(endpoint, body.as_bytes());
        let r = response(&a);
        assert_eq!(r["uid"], UID);
        if endpoint == Endpoint::Validate {
            assert_eq!(r["allowed"], false);
            assert!(
                a.body.len() < 64 * 1024,
                "denial stays small: {}",
                a.body.len()
            );
        }
    }
}

#[test]
fn the_policy_is_enforced_in_warn_mode_too_with_the_rule_named() {
    let policy = Policy {
        workflow_namespaces: vec!["orkestra".into()],
        ..Policy::default()
    };
    let mut review = fixture(CREATE_BOOKINFO);
    review["request"]["object"]["spec"]["workflowTemplate"] = json!({"namespace": "kube-system"});
    for enforcement in [Enforcement::Deny, Enforcement::Warn] {
        let adm = Admission::new(enforcement).with_policy(policy.clone());
        let a = adm.review(Endpoint::Validate, &bytes(&review));
        let r = response(&a);
        assert_eq!(r["allowed"], false, "{enforcement:?}");
        let msg = r["status"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("spec.workflowTemplate.namespace: workflow namespace \"kube-system\" is not allowed by the cluster's Orkestra policy (--allowed-workflow-namespaces=orkestra)"),
            "{msg}"
        );
    }
    // Inside the policy: allowed.
    let adm = Admission::new(Enforcement::Deny).with_policy(policy);
    let a = adm.review(Endpoint::Validate, CREATE_BOOKINFO.as_bytes());
    assert_eq!(response(&a)["allowed"], true);
}

#[test]
fn a_body_of_too_many_json_values_is_refused_before_parsing() {
    let mut review = fixture(CREATE_BOOKINFO);
    review["request"]["object"]["spec"]["applications"][0]["spec"]["release"]["values"] =
        json!({"v": vec![0u8; MAX_JSON_VALUES]});
    let a = Admission::new(Enforcement::Deny).review(Endpoint::Validate, &bytes(&review));
    let r = response(&a);
    assert_eq!(r["allowed"], false);
    let msg = r["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("JSON values; this webhook reads at most 1000000"),
        "{msg}"
    );
    assert_eq!(json_values(br#"{"a": [1, 2, "x,{["], "b": {}}"#), 9);
}
