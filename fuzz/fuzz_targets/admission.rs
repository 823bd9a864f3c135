//! Fuzzes AdmissionReview decoding + validation + mutation, as the webhook runs them.
//!
//! Each input is reviewed twice per endpoint: as raw request bytes, and (when it parses as JSON)
//! as the `object` of an otherwise well-formed review. Invariants checked beyond "no panic":
//! - every answer is JSON; 200 answers are AdmissionReviews echoing a non-empty uid, others 400;
//! - warnings are each under 120 characters;
//! - a mutation patch is base64 of an RFC 6902 patch that applies to the object, and applying
//!   the mutation again changes nothing (what `reinvocationPolicy: IfNeeded` relies on).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use orkestra_webhook::admission::{Admission, Endpoint, Enforcement};
use serde_json::{Value, json};

fn review(object: &Value) -> Vec<u8> {
    let gvk = json!({"group": "orkestra.azure.microsoft.com", "version": "v1alpha1", "kind": "ApplicationGroup"});
    let r = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz", "kind": gvk,
            "resource": {"group": "orkestra.azure.microsoft.com", "version": "v1alpha1", "resource": "applicationgroups"},
            "operation": "CREATE", "userInfo": {"username": "fuzz"}, "object": object,
        }
    });
    serde_json::to_vec(&r).expect("serializable")
}

fn check(adm: &Admission, endpoint: Endpoint, body: &[u8]) -> Option<Vec<u8>> {
    let a = adm.review(endpoint, body);
    let v: Value = serde_json::from_slice(&a.body).expect("answer is JSON");
    if a.http_status != 200 {
        assert_eq!(a.http_status, 400);
        assert_eq!(v["kind"], "Status");
        return None;
    }
    let r = &v["response"];
    assert!(r["uid"].as_str().is_some_and(|u| !u.is_empty()), "uid echoed: {v}");
    assert!(r["allowed"].is_boolean());
    if let Some(ws) = r["warnings"].as_array() {
        for w in ws {
            assert!(w.as_str().is_some_and(|w| w.chars().count() < 120), "warning too long: {w}");
        }
    }
    if r["allowed"] == false {
        assert!(r["status"]["message"].as_str().is_some_and(|m| !m.is_empty()), "denial has a reason: {v}");
    }
    let patch = r["patch"].as_str()?;
    assert_eq!(r["patchType"], "JSONPatch");
    Some(base64::engine::general_purpose::STANDARD.decode(patch).expect("canonical base64"))
}

fuzz_target!(|data: &[u8]| {
    let adm = Admission::new(Enforcement::Deny);
    let warn = Admission::new(Enforcement::Warn);
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        check(&adm, endpoint, data);
    }
    let Ok(object) = serde_json::from_slice::<Value>(data) else { return };
    let body = review(&object);
    check(&adm, Endpoint::Validate, &body);
    if let Some(a) = check(&warn, Endpoint::Validate, &body) {
        panic!("validate never patches: {a:?}");
    }
    if warn.review(Endpoint::Validate, &body).body.windows(17).any(|w| w == b"\"allowed\":false,") {
        // Warn enforcement denies only malformed reviews, never an object for breaking rules.
        let v: Value = serde_json::from_slice(&warn.review(Endpoint::Validate, &body).body).expect("json");
        assert_eq!(v["response"]["status"]["code"], 400, "warn mode denied a rule violation: {v}");
    }
    if let Some(raw) = check(&adm, Endpoint::Mutate, &body) {
        let patch: json_patch::Patch = serde_json::from_slice(&raw).expect("RFC 6902 patch");
        let mut mutated = object.clone();
        json_patch::patch(&mut mutated, &patch).expect("patch applies to the object");
        let again = check(&adm, Endpoint::Mutate, &review(&mutated));
        assert!(again.is_none(), "mutation is not idempotent: second patch {:?}", again.map(|p| String::from_utf8_lossy(&p).into_owned()));
        check(&adm, Endpoint::Validate, &review(&mutated));
    }
});
