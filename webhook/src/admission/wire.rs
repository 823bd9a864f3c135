//! The `admission.k8s.io/v1` AdmissionReview on the wire, in our own types: the request read in
//! one typed pass over the body (its objects kept as borrowed text), and the answer written in
//! one pass into a buffer sized for it (the patch base64-encoded straight into it).
//!
//! Only what the API server sends is read, with the types the API defines: a review that does
//! not fit them is read once more, leniently, to say what is wrong and where (see
//! [`super::Admission::review`]).

use std::collections::BTreeMap;

use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// An AdmissionReview as the API server sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Review<'a> {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(borrow)]
    pub request: Option<Request<'a>>,
}

/// `request` of an AdmissionReview: the fields the API defines, typed; its objects as text.
/// Fields this webhook does not use are still checked for their type, as the API defines them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<'a> {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[allow(dead_code, reason = "checked for its type only")]
    resource: GroupVersionResource,
    #[allow(dead_code, reason = "checked for its type only")]
    sub_resource: Option<String>,
    #[allow(dead_code, reason = "checked for its type only")]
    request_kind: Option<GroupVersionKind>,
    #[allow(dead_code, reason = "checked for its type only")]
    request_resource: Option<GroupVersionResource>,
    #[allow(dead_code, reason = "checked for its type only")]
    request_sub_resource: Option<String>,
    /// Empty for a CREATE that relies on `generateName`.
    #[serde(default)]
    pub name: String,
    #[allow(dead_code, reason = "checked for its type only")]
    namespace: Option<String>,
    pub operation: Operation,
    #[allow(dead_code, reason = "checked for its type only")]
    user_info: UserInfo,
    #[serde(borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow)]
    pub old_object: Option<&'a RawValue>,
    #[allow(dead_code, reason = "checked for its type only")]
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
pub(super) struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

#[derive(Deserialize)]
struct GroupVersionResource {
    #[allow(dead_code, reason = "checked for its type only")]
    group: String,
    #[allow(dead_code, reason = "checked for its type only")]
    version: String,
    #[allow(dead_code, reason = "checked for its type only")]
    resource: String,
}

/// `authentication.k8s.io/v1` UserInfo.
#[derive(Deserialize)]
#[allow(dead_code, reason = "checked for its type only")]
struct UserInfo {
    username: Option<String>,
    uid: Option<String>,
    groups: Option<Vec<String>>,
    extra: Option<BTreeMap<String, Vec<String>>>,
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
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response {
    pub uid: String,
    pub allowed: bool,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// An RFC 6902 patch as JSON, sent as standard base64 (the documented encoding of `[]byte`
    /// in JSON; kube-rs sends a number array, kube-rs/kube#1781).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "base64_text"
    )]
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
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            api_version: &'static str,
            kind: &'static str,
            response: &'a Response,
        }
        let wire = Wire {
            api_version: super::REVIEW_API_VERSION,
            kind: "AdmissionReview",
            response: self,
        };
        // Sized for the patch, which is most of a large answer, so the buffer grows at most once.
        let patch = self.patch.as_ref().map_or(0, |p| p.len().div_ceil(3) * 4);
        let mut out = Vec::with_capacity(patch + 512);
        // Strings, numbers and maps with string keys: writing into a Vec cannot fail. Should it
        // ever, deny with the uid rather than panic.
        match serde_json::to_writer(&mut out, &wire) {
            Ok(()) => out,
            Err(e) => {
                let fallback = serde_json::json!({
                    "apiVersion": super::REVIEW_API_VERSION,
                    "kind": "AdmissionReview",
                    "response": {"uid": self.uid, "allowed": false,
                                 "status": {"code": 500, "message": format!("cannot encode answer: {e}")}},
                });
                serde_json::to_vec(&fallback).unwrap_or_default()
            }
        }
    }
}

fn base64_text<S: Serializer>(patch: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match patch {
        Some(p) => s.collect_str(&Base64Display::new(p, &STANDARD)),
        None => s.serialize_none(),
    }
}

/// `meta/v1` Status, as the API server reads it in an answer.
#[derive(Serialize, Debug, Default)]
pub(super) struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    pub code: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
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

fn is_zero(code: &u16) -> bool {
    *code == 0
}

#[derive(Serialize, Debug)]
pub(super) struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub group: &'static str,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

#[derive(Serialize, Debug)]
pub(super) struct StatusCause {
    pub reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}
