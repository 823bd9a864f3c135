//! The `admission.k8s.io/v1` AdmissionReview on the wire, in our own types: the request read in
//! one typed pass over the body (its strings and objects borrowed as text), and the answer
//! written by hand ([`orkestra::emit::json`]) in one pass into a buffer sized for it, the patch
//! base64-encoded straight into it.
//!
//! Only what the API server sends is read, with the types the API defines: a review that does
//! not fit them is read once more, leniently, to say what is wrong and where (see
//! [`super::Admission::review`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use orkestra::emit::json::{Json, Object, non_empty};
use serde::Deserialize;
use serde_json::value::RawValue;

/// An AdmissionReview as the API server sends it. Strings are borrowed from the body where
/// they hold no escapes, as they nearly always do.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Review<'a> {
    #[serde(borrow)]
    pub api_version: Option<Text<'a>>,
    #[serde(borrow)]
    pub kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub request: Option<Request<'a>>,
}

/// A string of the review.
pub(super) type Text<'a> = Cow<'a, str>;

/// `request` of an AdmissionReview: the fields the API defines, typed; its objects as text.
/// Fields this webhook does not use are still checked for their type, as the API defines them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<'a> {
    #[serde(borrow)]
    pub uid: Text<'a>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    resource: GroupVersionResource<'a>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    sub_resource: Option<Text<'a>>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    request_kind: Option<GroupVersionKind<'a>>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    request_resource: Option<GroupVersionResource<'a>>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    request_sub_resource: Option<Text<'a>>,
    /// Empty for a CREATE that relies on `generateName`.
    #[serde(default, borrow)]
    pub name: Text<'a>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    pub operation: Operation,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(borrow)]
    user_info: UserInfo<'a>,
    #[serde(borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow)]
    pub old_object: Option<&'a RawValue>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
pub(super) struct GroupVersionKind<'a> {
    #[serde(borrow)]
    pub group: Text<'a>,
    #[serde(borrow)]
    pub version: Text<'a>,
    #[serde(borrow)]
    pub kind: Text<'a>,
}

#[derive(Deserialize)]
#[allow(dead_code, reason = "checked for its type only")]
struct GroupVersionResource<'a> {
    #[serde(borrow)]
    group: Text<'a>,
    #[serde(borrow)]
    version: Text<'a>,
    #[serde(borrow)]
    resource: Text<'a>,
}

/// `authentication.k8s.io/v1` UserInfo.
#[derive(Deserialize)]
#[allow(dead_code, reason = "checked for its type only")]
struct UserInfo<'a> {
    #[serde(borrow)]
    username: Option<Text<'a>>,
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    #[serde(borrow)]
    groups: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    extra: Option<BTreeMap<Text<'a>, Vec<Text<'a>>>>,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// The top of a review read as leniently as JSON allows, to say what is wrong with one that
/// does not fit [`Review`]: each part kept as text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Lenient<'a> {
    #[serde(borrow)]
    pub api_version: Option<&'a RawValue>,
    #[serde(borrow)]
    pub kind: Option<&'a RawValue>,
    #[serde(borrow)]
    pub request: Option<AnyRequest<'a>>,
}

/// Whatever `request` holds: `Some` with its `uid` (as text, when present) when it is an
/// object, `None` when it is anything else.
pub(super) struct AnyRequest<'a>(pub Option<Option<&'a RawValue>>);

impl<'de: 'a, 'a> Deserialize<'de> for AnyRequest<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnyRequest<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyRequest<'de>, A::Error> {
                // Every value read as text: that checks it is valid JSON and UTF-8, as the
                // typed read would have.
                let mut uid = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    if key == "uid" {
                        uid = Some(value);
                    }
                }
                Ok(AnyRequest(Some(uid)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AnyRequest<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(AnyRequest(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<AnyRequest<'de>, E> {
                Ok(AnyRequest(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `response` of an answered AdmissionReview.
#[derive(Debug, Default)]
pub(super) struct Response {
    pub uid: String,
    pub allowed: bool,
    pub status: Status,
    pub patch_type: Option<&'static str>,
    pub audit_annotations: BTreeMap<&'static str, String>,
    pub warnings: Vec<String>,
    /// An RFC 6902 patch as JSON, sent as standard base64 (the documented encoding of `[]byte`
    /// in JSON; kube-rs sends a number array, kube-rs/kube#1781).
    pub patch: Option<Vec<u8>>,
}

impl Response {
    /// Allowed, nothing more said yet.
    pub fn allowed(uid: &str) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: true,
            ..Self::default()
        }
    }

    /// Allowed with `patch` (RFC 6902 JSON).
    pub fn with_patch(mut self, patch: Vec<u8>) -> Self {
        self.patch_type = Some("JSONPatch");
        self.patch = Some(patch);
        self
    }

    /// The whole AdmissionReview of this answer, as JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Sized for the patch, which is most of a large answer, so the buffer grows at most once.
        let patch = self.patch.as_ref().map_or(0, |p| p.len().div_ceil(3) * 4);
        let mut out = Vec::with_capacity(patch + 512);
        Object::new(&mut out)
            .field("apiVersion", super::REVIEW_API_VERSION)
            .field("kind", "AdmissionReview")
            .field("response", self)
            .end();
        out
    }
}

impl Json for Response {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.field("uid", &self.uid)
            .field("allowed", &self.allowed)
            .field("status", &self.status)
            .optional("patchType", self.patch_type)
            .optional(
                "auditAnnotations",
                (!self.audit_annotations.is_empty())
                    .then_some(Annotations(&self.audit_annotations))
                    .as_ref(),
            )
            .optional("warnings", non_empty(&self.warnings))
            .optional("patch", self.patch.as_deref().map(Base64).as_ref())
            .end();
    }
}

/// The audit annotations, keys in order.
struct Annotations<'a>(&'a BTreeMap<&'static str, String>);

impl Json for Annotations<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        for (key, value) in self.0 {
            o.field(key, value);
        }
        o.end();
    }
}

/// Bytes as a JSON string of their standard base64, written straight into the text: the
/// alphabet needs no escaping.
struct Base64<'a>(&'a [u8]);

impl Json for Base64<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        let start = out.len();
        out.resize(start + self.0.len().div_ceil(3) * 4, 0);
        // The room is exactly the padded length, so encoding cannot run out of it.
        let written = STANDARD
            .encode_slice(self.0, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.push(b'"');
    }
}

/// `meta/v1` Status, as the API server reads it in an answer.
#[derive(Debug, Default)]
pub(super) struct Status {
    pub status: Option<&'static str>,
    pub code: u16,
    pub message: String,
    pub reason: &'static str,
    pub details: Option<StatusDetails>,
}

impl Status {
    pub fn failure(code: u16, reason: &'static str, message: String) -> Self {
        Self {
            status: Some("Failure"),
            code,
            message,
            reason,
            details: None,
        }
    }
}

impl Json for Status {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .optional("status", self.status)
            .optional(
                "code",
                (self.code != 0).then_some(u64::from(self.code)).as_ref(),
            )
            .optional("message", non_empty(&self.message))
            .optional("reason", non_empty(self.reason))
            .optional("details", self.details.as_ref())
            .end();
    }
}

#[derive(Debug)]
pub(super) struct StatusDetails {
    pub name: String,
    pub group: &'static str,
    pub kind: &'static str,
    pub causes: Vec<StatusCause>,
}

impl Json for StatusDetails {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .optional("name", non_empty(&self.name))
            .field("group", self.group)
            .field("kind", self.kind)
            .optional("causes", non_empty(&self.causes))
            .end();
    }
}

#[derive(Debug)]
pub(super) struct StatusCause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Json for StatusCause {
    fn write_json(&self, out: &mut Vec<u8>) {
        Object::new(out)
            .field("reason", self.reason)
            .optional("message", non_empty(&self.message))
            .optional("field", non_empty(&self.field))
            .end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_written_as_the_api_server_reads_it() {
        let mut res = Response::allowed("u-1");
        res.allowed = false;
        res.status = Status {
            details: Some(StatusDetails {
                name: "g".into(),
                group: "orkestra.azure.microsoft.com",
                kind: "ApplicationGroup",
                causes: vec![StatusCause {
                    reason: "FieldValueInvalid",
                    message: "say \"no\"\n".into(),
                    field: "spec.applications[0]".into(),
                }],
            }),
            ..Status::failure(422, "Invalid", "bad\tgroup".into())
        };
        res.audit_annotations.insert("violations", "1".into());
        res.warnings.push("ünïcode stays".into());
        let res = res.with_patch(b"[{\"op\":\"add\"}]".to_vec());
        let text = String::from_utf8(res.encode()).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-1","allowed":false,"status":{"status":"Failure","code":422,"message":"bad\tgroup","reason":"Invalid","details":{"name":"g","group":"orkestra.azure.microsoft.com","kind":"ApplicationGroup","causes":[{"reason":"FieldValueInvalid","message":"say \"no\"\n","field":"spec.applications[0]"}]}},"patchType":"JSONPatch","auditAnnotations":{"violations":"1"},"warnings":["ünïcode stays"],"patch":"W3sib3AiOiJhZGQifV0="}}"#
        );
    }

    #[test]
    fn an_allowed_answer_says_only_that() {
        let text = String::from_utf8(Response::allowed("u-2").encode()).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-2","allowed":true,"status":{}}}"#
        );
    }

    #[test]
    fn a_patch_of_any_length_is_its_padded_base64() {
        for n in 0..10 {
            let patch: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(37)).collect();
            let mut out = Vec::new();
            Base64(&patch).write_json(&mut out);
            assert_eq!(
                out,
                format!("\"{}\"", STANDARD.encode(&patch)).into_bytes(),
                "{n}"
            );
        }
    }
}
