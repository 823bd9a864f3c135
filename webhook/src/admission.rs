//! AdmissionReview bytes in, AdmissionReview bytes out: the pure heart of the webhook.
//!
//! No I/O, no clocks: the server hands us the request body and writes back what we return, so every
//! verdict can be tested on JSON fixtures. The rules themselves live in the `orkestra` crate
//! ([`orkestra::admission::validate::validate_read`], [`orkestra::admission::defaults::mutation_patch_json`]) and are the
//! same ones `kubectl orkestra validate` runs. They get each object as the JSON text it arrived in
//! (read once into the typed spec by [`orkestra::input::object`]); no `serde_json::Value` of an
//! object is built here.
//!
//! Contract with the apiserver (kubernetes.io "Dynamic Admission Control"):
//! - the answer echoes `request.uid`, always; when the body parses as JSON but the review inside
//!   is broken, the uid is recovered from the raw JSON and the request is denied with the reason;
//! - a denial carries every violation with its field path in `status.message`, and one
//!   `status.details.causes` entry per violation with `field`;
//! - warnings are each under 120 characters;
//! - a patch is an RFC 6902 JSON patch, sent as a base64 string (kube-rs serializes `patch` as a
//!   number array, kube-rs/kube#1781, so the review's types are our own, in `wire`).

use orkestra::admission::defaults::{DefaultsError, Patch};
use orkestra::admission::policy::Policy;
use orkestra::admission::validate::{Report, Violation};
use orkestra::input::object::{GroupObject, Source};
use serde_json::value::RawValue;

use wire::{Lenient, Operation, Request, Response, Review, Status, StatusCause, StatusDetails};

mod wire;

/// The API group of the resources this webhook admits.
pub const GROUP: &str = "orkestra.azure.microsoft.com";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// The kind this webhook admits.
pub const KIND: &str = "ApplicationGroup";
/// The only AdmissionReview version we speak (`admissionReviewVersions: [v1]`).
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
/// Longest warning, in characters: the apiserver asks for at most 120 and truncates beyond 256.
pub const WARNING_MAX_CHARS: usize = 119;
/// At most this many warnings per answer; the last one says how many were left out.
pub const MAX_WARNINGS: usize = 20;
/// At most this many violations are spelled out in a denial; the message says how many more.
/// Real groups never come near it; it keeps a pathological object from producing a
/// megabyte-sized error message.
pub const MAX_LISTED_VIOLATIONS: usize = 100;

/// Most JSON values (objects, arrays, strings, numbers, ...) a review may hold. A defaulted group
/// at the 1,000-application limit, injected templates included, is 0.6 MB of JSON and about
/// 71,000 values, so its UPDATE (object and oldObject) about 140,000. Parsing a review just under
/// this cap, all tiny values, stays well inside the 256 MiB memory limit (measured by the
/// adversarial suite, `webhook/tests/adversarial.rs`).
pub const MAX_JSON_VALUES: usize = 1_000_000;

/// What to do with rule violations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Enforcement {
    /// Deny objects that break a rule.
    #[default]
    Deny,
    /// Admit them, with every violation as an admission warning (for clusters that already hold
    /// broken groups).
    Warn,
}

/// Which webhook of the pair a review was sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// How a request was answered, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed, nothing to change.
    Allowed = 0,
    /// Allowed with a JSON patch.
    Patched = 1,
    /// Allowed although rules were broken (warn enforcement).
    Warned = 2,
    /// Denied because the object breaks rules.
    Denied = 3,
    /// The review itself was broken (denied, or answered 400 when it had no uid).
    Malformed = 4,
    /// Refused at the HTTP layer (size, content type, timeouts) before admission ran.
    Rejected = 5,
    /// An internal error (a bug): the request was denied.
    Error = 6,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Allowed,
        Verdict::Patched,
        Verdict::Warned,
        Verdict::Denied,
        Verdict::Malformed,
        Verdict::Rejected,
        Verdict::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Patched => "patched",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
            Verdict::Malformed => "malformed",
            Verdict::Rejected => "rejected",
            Verdict::Error => "error",
        }
    }
}

/// The domain functions a review is judged by. Production uses [`Rules::ORKESTRA`]; tests can
/// substitute fakes to exercise the answer formatting independently of the rules.
#[derive(Clone, Copy)]
pub struct Rules {
    /// Judges the object (and the stored one, on UPDATE), read once from the review's text.
    pub validate: fn(&GroupObject, Option<&GroupObject>) -> Report,
    /// The defaults' patch of the object's JSON text.
    pub mutate: fn(&[u8]) -> Result<Patch, DefaultsError>,
}

impl Rules {
    /// The rules of the `orkestra` crate, shared with `kubectl orkestra validate`.
    pub const ORKESTRA: Rules = Rules {
        validate: orkestra::admission::validate::validate_read,
        mutate: orkestra::admission::defaults::mutation_patch_json,
    };
}

/// The reviewer: enforcement mode, rules, and the admin's policy.
#[derive(Clone)]
pub struct Admission {
    pub enforcement: Enforcement,
    pub rules: Rules,
    /// Enforced in both modes: what groups may ask for (namespaces, accounts, images).
    pub policy: Policy,
}

impl Admission {
    pub fn new(enforcement: Enforcement) -> Self {
        Self {
            enforcement,
            rules: Rules::ORKESTRA,
            policy: Policy::default(),
        }
    }

    /// The same reviewer, enforcing `policy`.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// One answer: HTTP status (200, or 400 when there is no uid to answer to), JSON body, verdict.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http_status: u16,
    pub body: Vec<u8>,
    pub verdict: Verdict,
    /// The request's uid, when one could be found (for logs).
    pub uid: Option<String>,
    /// One line saying what happened (for logs).
    pub summary: String,
}

impl Admission {
    /// Reviews one AdmissionReview body sent to `endpoint`. Never panics on any input (as long as
    /// the rules do not).
    pub fn review(&self, endpoint: Endpoint, body: &[u8]) -> Answer {
        // Parsed JSON takes several times the bytes of its text, the more the smaller its values:
        // count them first, so no body within the size cap can exhaust memory. Every value takes
        // at least a byte, so a shorter body cannot hold too many.
        let values = if body.len() >= MAX_JSON_VALUES {
            json_values(body)
        } else {
            0
        };
        if values > MAX_JSON_VALUES {
            let reason = format!(
                "the AdmissionReview holds about {values} JSON values; this webhook reads at most {MAX_JSON_VALUES} (an ApplicationGroup within the limits has far fewer)"
            );
            return match scan_uid(body) {
                Some(uid) => malformed(uid, reason),
                None => bad_request(&reason),
            };
        }
        // One typed pass reads the request's fields and finds its objects, kept as text. A body
        // that does not fit the types is read again, leniently, to say what is wrong and where.
        let review = match orkestra::input::parse::from_json_bytes::<Review<'_>>(body) {
            Ok(review) => review,
            Err(_) => match explain(body) {
                Ok(review) => review,
                Err(answer) => return *answer,
            },
        };
        let Some(req) = review.request else {
            return bad_request(&format!("request is missing: {NO_UID}"));
        };
        if req.uid.is_empty() {
            return bad_request(&format!("request.uid is missing or empty: {NO_UID}"));
        }
        if let Err(reason) = check_review(review.api_version.as_deref(), review.kind.as_deref()) {
            return malformed(req.uid.into_owned(), reason);
        }
        let gvk = &req.kind;
        if gvk.group != GROUP || gvk.kind != KIND || gvk.version != VERSION {
            return malformed(
                req.uid.to_string(),
                format!(
                    "this webhook admits {GROUP}/{VERSION} {KIND} only, not {}/{} {}: \
                     check the rules of the webhook configuration",
                    gvk.group, gvk.version, gvk.kind
                ),
            );
        }
        if !matches!(req.operation, Operation::Create | Operation::Update) {
            // Not registered for DELETE/CONNECT; if it ever is, there is nothing to check.
            return respond(
                Response::allowed(&req.uid),
                Verdict::Allowed,
                format!("{:?} allowed", req.operation),
            );
        }
        let object = match req.object.map(|o| o.get().trim_start()) {
            Some(o) if o.starts_with('{') => o,
            None => {
                return malformed(
                    req.uid.to_string(),
                    format!("request.object is missing on a {:?}", req.operation),
                );
            }
            Some(_) => {
                return malformed(
                    req.uid.to_string(),
                    "request.object is not a JSON object".to_owned(),
                );
            }
        };
        let old_object = req
            .old_object
            .map(|o| o.get().trim_start())
            .filter(|o| o.starts_with('{'));
        match endpoint {
            Endpoint::Validate => self.validate(&req.uid, object, old_object),
            Endpoint::Mutate => self.mutate(&req, object),
        }
    }

    fn validate(&self, uid: &str, object: &str, old: Option<&str>) -> Answer {
        // The body was JSON, so its objects are.
        let object = match Source::Json(object.as_bytes()).read() {
            Ok(object) => object,
            Err(e) => return malformed(uid.to_owned(), format!("request.object: {e}")),
        };
        let old = old.and_then(|o| Source::Json(o.as_bytes()).read().ok());
        let report = (self.rules.validate)(&object, old.as_ref());
        // The admin's policy holds in every enforcement mode.
        let mut denied = self.policy.check(&object);
        let mut lines = Vec::new();
        let not_enforced = match self.enforcement {
            Enforcement::Deny => {
                denied.extend(report.errors);
                0
            }
            Enforcement::Warn => {
                lines = warning_lines("not enforced: ", &report.errors);
                report.errors.len()
            }
        };
        lines.extend(warning_lines("", &report.warnings));
        let mut res = Response::allowed(uid);
        let name = object_name(&object);
        if denied.is_empty() {
            set_warnings(&mut res, lines);
            if not_enforced == 0 {
                let n = report.warnings.len();
                return respond(
                    res,
                    Verdict::Allowed,
                    format!("{name} allowed ({n} warnings)"),
                );
            }
            res.audit_annotations
                .insert("violations", not_enforced.to_string());
            return respond(
                res,
                Verdict::Warned,
                format!("{name} admitted despite {not_enforced} violations (warn enforcement)"),
            );
        }
        let message = denial_message(&name, &denied);
        res.allowed = false;
        res.status = Status {
            details: Some(StatusDetails {
                name: name_only(&object).to_owned(),
                group: GROUP,
                kind: KIND,
                causes: denied
                    .iter()
                    .take(MAX_LISTED_VIOLATIONS)
                    .map(|v| StatusCause {
                        reason: "FieldValueInvalid",
                        message: v.message.clone(),
                        field: v.path.clone(),
                    })
                    .collect(),
            }),
            ..Status::failure(422, "Invalid", message)
        };
        set_warnings(&mut res, lines);
        let n = denied.len();
        respond(
            res,
            Verdict::Denied,
            format!("{name} denied ({n} violations)"),
        )
    }

    fn mutate(&self, req: &Request<'_>, object: &str) -> Answer {
        let res = Response::allowed(&req.uid);
        // For the logs only: the request's name (empty for a generateName CREATE) costs no
        // second read of the object.
        let name = format!("{KIND} {:?}", req.name);
        match (self.rules.mutate)(object.as_bytes()) {
            Ok(patch) if patch.is_empty() => {
                respond(res, Verdict::Allowed, format!("{name}: nothing to default"))
            }
            Ok(patch) => {
                let ops = patch.len();
                respond(
                    res.with_patch(patch.into_json()),
                    Verdict::Patched,
                    format!("{name}: {ops} patch operations"),
                )
            }
            Err(e) => {
                // The spec does not parse. Mutating runs before schema validation; the validating
                // webhook denies with the full reason, so only warn here (no double report).
                let mut res = res;
                set_warnings(
                    &mut res,
                    vec![warning("", &format!("defaults not applied: {e}"))],
                );
                respond(res, Verdict::Allowed, format!("{name}: not defaulted: {e}"))
            }
        }
    }
}

/// The whole answer for a denial, readable by a person: every violation with its field path.
pub fn denial_message(name: &str, errors: &[Violation]) -> String {
    let mut msg = format!("{name} is invalid: ");
    for (i, v) in errors.iter().take(MAX_LISTED_VIOLATIONS).enumerate() {
        if i > 0 {
            msg.push_str("; ");
        }
        push_violation(&mut msg, v);
    }
    if errors.len() > MAX_LISTED_VIOLATIONS {
        msg.push_str(&format!(
            "; and {} more (run `kubectl orkestra validate -f` for the full list)",
            errors.len() - MAX_LISTED_VIOLATIONS
        ));
    }
    msg
}

fn push_violation(out: &mut String, v: &Violation) {
    if v.path.is_empty() {
        out.push_str(&v.message);
    } else {
        out.push_str(&v.path);
        out.push_str(": ");
        out.push_str(&v.message);
    }
}

fn warning_lines(prefix: &str, violations: &[Violation]) -> Vec<String> {
    violations
        .iter()
        .map(|v| {
            let mut s = String::new();
            push_violation(&mut s, v);
            warning(prefix, &s)
        })
        .collect()
}

/// One admission warning: control characters flattened, at most [`WARNING_MAX_CHARS`] characters
/// (cut with an ellipsis).
pub fn warning(prefix: &str, text: &str) -> String {
    let mut out = String::with_capacity(WARNING_MAX_CHARS + 4);
    let mut chars = prefix
        .chars()
        .chain(text.chars())
        .map(|c| if c.is_control() { ' ' } else { c });
    let mut n = 0;
    while let Some(c) = chars.next() {
        if n == WARNING_MAX_CHARS - 1 {
            // One character left: keep it if it is the last one, else mark the cut.
            match chars.next() {
                None => out.push(c),
                Some(_) => out.push('…'),
            }
            break;
        }
        out.push(c);
        n += 1;
    }
    out
}

fn set_warnings(res: &mut Response, mut lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    if lines.len() > MAX_WARNINGS {
        let more = lines.len() - (MAX_WARNINGS - 1);
        lines.truncate(MAX_WARNINGS - 1);
        lines.push(format!(
            "{more} more warnings: run `kubectl orkestra validate -f` for all"
        ));
    }
    res.warnings.extend(lines);
}

fn object_name(object: &GroupObject) -> String {
    format!("{KIND} {:?}", name_only(object))
}

fn name_only(object: &GroupObject) -> &str {
    match (object.name.as_str(), object.generate_name.as_deref()) {
        ("", Some(prefix)) => prefix,
        (name, _) => name,
    }
}

/// A small JSON string as text (`None` when it is not a string).
fn text_of(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// Why a review without a uid gets an HTTP error instead of an answer.
const NO_UID: &str = "an AdmissionReview cannot be answered without the uid of its request";

/// The review's own apiVersion and kind, or why they are not the ones we speak.
fn check_review(api_version: Option<&str>, kind: Option<&str>) -> Result<(), String> {
    if api_version != Some(REVIEW_API_VERSION) {
        return Err(format!(
            "unsupported AdmissionReview apiVersion {}: this webhook speaks {REVIEW_API_VERSION} \
             (set admissionReviewVersions: [v1])",
            show(api_version)
        ));
    }
    if kind != Some("AdmissionReview") {
        return Err(format!("expected kind AdmissionReview, got {}", show(kind)));
    }
    Ok(())
}

/// Says what is wrong with a body that does not fit [`Review`], in this order: not JSON; no
/// request or no uid (HTTP 400: there is nothing to answer to); the review's apiVersion and
/// kind; then the request's field at fault, by its path and position.
fn explain(body: &[u8]) -> Result<Review<'_>, Box<Answer>> {
    let lenient: Lenient<'_> = match serde_json::from_slice(body) {
        Ok(v) => v,
        // JSON, but not an object: there is no request in it.
        Err(_)
            if !body.trim_ascii_start().starts_with(b"{")
                && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() =>
        {
            Lenient {
                api_version: None,
                kind: None,
                request: None,
            }
        }
        Err(e) => {
            let reason = format!("request body is not a valid AdmissionReview: {e}");
            return Err(Box::new(match scan_uid(body) {
                Some(uid) => malformed(uid, reason),
                None => bad_request(&reason),
            }));
        }
    };
    let request = lenient.request.and_then(|r| r.0);
    let uid = match request.and_then(text_of) {
        Some(uid) if !uid.is_empty() => uid,
        _ => {
            let what = if request.is_some() {
                "request.uid is missing or empty"
            } else {
                "request is missing"
            };
            return Err(Box::new(bad_request(&format!("{what}: {NO_UID}"))));
        }
    };
    let (api_version, kind) = (text_of(lenient.api_version), text_of(lenient.kind));
    if let Err(reason) = check_review(api_version.as_deref(), kind.as_deref()) {
        return Err(Box::new(malformed(uid, reason)));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| e.to_string())
        .and_then(|review| de.end().map(|()| review).map_err(|e| e.to_string()))
        .map_err(|e| {
            Box::new(malformed(
                uid,
                format!("malformed AdmissionReview request: {e}"),
            ))
        })
}

fn show(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(none)".to_owned(),
    }
}

/// Deny a review whose request is broken, with the uid we could recover.
fn malformed(uid: String, reason: String) -> Answer {
    let res = Response {
        uid: uid.clone(),
        allowed: false,
        status: Status::failure(400, "BadRequest", reason.clone()),
        ..Response::default()
    };
    Answer {
        http_status: 200,
        body: res.encode(),
        verdict: Verdict::Malformed,
        uid: Some(uid),
        summary: reason,
    }
}

/// An answer with no uid to give: HTTP 400 and a `Status` body.
fn bad_request(reason: &str) -> Answer {
    Answer {
        http_status: 400,
        body: status_body(400, "BadRequest", reason),
        verdict: Verdict::Malformed,
        uid: None,
        summary: reason.to_owned(),
    }
}

/// A `meta/v1` Status document, the body of every non-200 answer.
pub fn status_body(code: u16, reason: &str, message: &str) -> Vec<u8> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    serde_json::to_vec(&status).unwrap_or_default()
}

fn respond(res: Response, verdict: Verdict, summary: String) -> Answer {
    let body = res.encode();
    Answer {
        http_status: 200,
        body,
        verdict,
        uid: Some(res.uid),
        summary,
    }
}

/// Finds `request.uid` in a body that is not valid JSON (truncated, invalid UTF-8 somewhere
/// else): the first `"uid": "…"` after `"request"`. Best effort; only used to deny politely.
pub fn scan_uid(body: &[u8]) -> Option<String> {
    let start = find(body, b"\"request\"")?;
    let mut rest = &body[start..];
    loop {
        let at = find(rest, b"\"uid\"")?;
        rest = &rest[at + 5..];
        let after = trim_ws(rest);
        let Some(after) = after.strip_prefix(b":") else {
            continue;
        };
        let after = trim_ws(after);
        let Some(after) = after.strip_prefix(b"\"") else {
            continue;
        };
        let end = after.iter().take(256).position(|&b| b == b'"')?;
        let uid = &after[..end];
        if uid.is_empty() || uid.iter().any(|&b| b == b'\\' || b.is_ascii_control()) {
            return None;
        }
        return std::str::from_utf8(uid).ok().map(str::to_owned);
    }
}

/// About how many JSON values `body` holds (one more than its commas, opening brackets and
/// colons outside strings), counted without parsing.
pub fn json_values(body: &[u8]) -> usize {
    let mut n = 1;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' | b':' => n += 1,
                _ => {}
            }
        }
    }
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests;
