//! The malformed-input table: every broken request gets a clear answer (200 + deny with the uid,
//! or a 4xx with a Status body), and the server keeps serving after each one.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use orkestra_webhook::admission::{Admission, Enforcement};
use orkestra_webhook::server::Limits;
use support::client::{self, Conn};
use support::{TempDir, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What a case must get back.
#[derive(Debug)]
enum Expect {
    /// HTTP 200, `allowed: false`, this uid echoed, message containing the text.
    Deny(&'static str, &'static str),
    /// This HTTP status, body (Status JSON) containing the text.
    Http(u16, &'static str),
    /// The connection is closed without a 200 (slow clients).
    Closed,
}

struct Case {
    name: &'static str,
    /// Raw bytes written after the TLS handshake (a whole HTTP/1.1 exchange), or
    send: Send,
    expect: Expect,
}

enum Send {
    /// POST /validate with this content type and body (Content-Length set).
    Post(Option<&'static str>, Vec<u8>),
    /// Raw request bytes; written in chunks of `chunk` with `pause` between (slow clients).
    Raw {
        bytes: Vec<u8>,
        chunk: usize,
        pause: Duration,
    },
}

fn review_value(uid: &str, obj: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&client::review(uid, "CREATE", obj, None)).expect("json")
}

fn to_vec(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

fn post_head(len: usize, extra: &str) -> String {
    format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n{extra}\r\n"
    )
}

fn cases() -> Vec<Case> {
    let good = client::group("g", 3);
    let valid = to_vec(&review_value("u-valid", &good));
    let mut cases = Vec::new();

    cases.push(Case {
        name: "bad JSON, no uid",
        send: Send::Post(
            Some("application/json"),
            b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\"".to_vec(),
        ),
        expect: Expect::Http(400, "not a valid AdmissionReview"),
    });
    cases.push(Case {
        name: "bad JSON (truncated) with a uid",
        send: Send::Post(Some("application/json"), valid[..valid.len() - 10].to_vec()),
        expect: Expect::Deny("u-valid", "not a valid AdmissionReview"),
    });
    let mut v = review_value("u-kind", &good);
    v["kind"] = "Pod".into();
    cases.push(Case {
        name: "wrong review kind",
        send: Send::Post(Some("application/json"), to_vec(&v)),
        expect: Expect::Deny("u-kind", "expected kind AdmissionReview"),
    });
    let mut v = review_value("u-v1beta1", &good);
    v["apiVersion"] = "admission.k8s.io/v1beta1".into();
    cases.push(Case {
        name: "wrong review apiVersion",
        send: Send::Post(Some("application/json"), to_vec(&v)),
        expect: Expect::Deny("u-v1beta1", "unsupported AdmissionReview apiVersion"),
    });
    let mut v = review_value("u-res", &good);
    v["request"]["kind"] =
        serde_json::json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    cases.push(Case {
        name: "wrong resource kind",
        send: Send::Post(Some("application/json"), to_vec(&v)),
        expect: Expect::Deny(
            "u-res",
            "admits orkestra.azure.microsoft.com/v1alpha1 ApplicationGroup only",
        ),
    });
    let mut v = review_value("x", &good);
    v["request"].as_object_mut().map(|m| m.remove("uid"));
    cases.push(Case {
        name: "missing uid",
        send: Send::Post(Some("application/json"), to_vec(&v)),
        expect: Expect::Http(400, "request.uid is missing"),
    });
    let mut v = review_value("u-noobj", &good);
    v["request"].as_object_mut().map(|m| m.remove("object"));
    cases.push(Case {
        name: "missing object",
        send: Send::Post(Some("application/json"), to_vec(&v)),
        expect: Expect::Deny("u-noobj", "request.object is missing"),
    });
    cases.push(Case {
        name: "oversized body (declared), answered before the body is sent",
        send: Send::Raw {
            bytes: post_head(9 << 20, "").into_bytes(),
            chunk: usize::MAX,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(413, "larger than 8388608 bytes"),
    });
    let mut chunked = b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let piece = vec![b' '; 1 << 20];
    for _ in 0..9 {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(&piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    cases.push(Case {
        name: "oversized body (chunked, no length)",
        send: Send::Raw {
            bytes: chunked,
            chunk: 256 << 10,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(413, "larger than 8388608 bytes"),
    });
    let mut nested = review_value("u-deep", &good);
    let mut deep = serde_json::json!(1);
    for _ in 0..200 {
        deep = serde_json::json!([deep]);
    }
    nested["request"]["object"]["spec"]["applications"][0]["spec"]["release"]["values"] =
        serde_json::json!({"a": deep});
    let deep_text = to_vec(&nested);
    // 200 levels inside values exceed serde_json's 128 limit within the object alone (the object
    // is read from its own text, so the review's nesting does not count).
    cases.push(Case {
        name: "deeply nested values",
        send: Send::Post(Some("application/json"), deep_text),
        expect: Expect::Deny("u-deep", "recursion limit exceeded"),
    });
    let mut huge = good.clone();
    let deps: Vec<String> = (0..40_000).map(|i| format!("nope-{i}")).collect();
    huge["spec"]["applications"][1]["dependencies"] = serde_json::json!(deps);
    cases.push(Case {
        name: "huge dependency list",
        send: Send::Post(
            Some("application/json"),
            to_vec(&review_value("u-huge", &huge)),
        ),
        expect: Expect::Deny("u-huge", "40000 dependencies; at most 64 per application"),
    });
    let mut bad_utf8 = to_vec(&review_value("u-utf8", &good));
    let at = bad_utf8
        .windows(5)
        .position(|w| w == b"app-1")
        .expect("app name");
    bad_utf8[at] = 0xc3;
    bad_utf8[at + 1] = 0x28;
    cases.push(Case {
        name: "invalid UTF-8",
        send: Send::Post(Some("application/json"), bad_utf8),
        expect: Expect::Deny("u-utf8", "not a valid AdmissionReview"),
    });
    cases.push(Case {
        name: "wrong content type",
        send: Send::Post(Some("text/plain"), valid.clone()),
        expect: Expect::Http(415, "Content-Type must be application/json"),
    });
    cases.push(Case {
        name: "no content type",
        send: Send::Post(None, valid.clone()),
        expect: Expect::Http(415, "Content-Type must be application/json"),
    });
    cases.push(Case {
        name: "GET on an admission path",
        send: Send::Raw {
            bytes: b"GET /validate HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            chunk: usize::MAX,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(405, "POSTed"),
    });
    cases.push(Case {
        name: "unknown path",
        send: Send::Raw {
            bytes: b"POST /admit HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec(),
            chunk: usize::MAX,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(404, "POST /validate"),
    });
    cases.push(Case {
        name: "garbage request line",
        send: Send::Raw {
            bytes: b"\x00\x01\x02 nonsense\r\n\r\n".to_vec(),
            chunk: usize::MAX,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(400, ""),
    });
    cases.push(Case {
        name: "slow client: headers dribbled past the header timeout",
        send: Send::Raw {
            bytes: post_head(
                valid.len(),
                "x-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            )
            .into_bytes(),
            chunk: 4,
            pause: Duration::from_millis(100),
        },
        expect: Expect::Closed,
    });
    let mut slow_body = post_head(valid.len(), "").into_bytes();
    slow_body.extend_from_slice(&valid[..100]);
    cases.push(Case {
        name: "slow client: body stalls past the body timeout",
        send: Send::Raw {
            bytes: slow_body,
            chunk: usize::MAX,
            pause: Duration::ZERO,
        },
        expect: Expect::Http(408, "not received in time"),
    });
    cases
}

/// Sends a case on a fresh connection; returns (status, body) or None when the server closed
/// the connection without an answer.
async fn run_case(server: &TestServer, ca: &str, case: &Case) -> Option<(u16, Vec<u8>)> {
    let cfg = client::client_config(&[ca], &[b"http/1.1"]);
    match &case.send {
        Send::Post(ct, body) => {
            let mut conn = Conn::open(server.addr, cfg).await.expect("connect");
            let r = conn
                .send("POST", "/validate", *ct, Bytes::from(body.clone()))
                .await
                .ok()?;
            Some((r.status.as_u16(), r.body.to_vec()))
        }
        Send::Raw {
            bytes,
            chunk,
            pause,
        } => {
            let mut tls = client::tls_connect(server.addr, cfg).await.expect("tls");
            for piece in bytes.chunks((*chunk).min(bytes.len()).max(1)) {
                if tls.write_all(piece).await.is_err() {
                    break;
                }
                let _ = tls.flush().await;
                if !pause.is_zero() {
                    tokio::time::sleep(*pause).await;
                }
            }
            let mut resp = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
            let text = String::from_utf8_lossy(&resp);
            let status: u16 = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.as_bytes().to_vec())
                .unwrap_or_default();
            Some((status, body))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_request_gets_a_clear_answer_and_serving_continues() {
    let minted = support::mint();
    let dir = TempDir::new("malformed");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let limits = Limits {
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = TestServer::start(&cert, &key, Admission::new(Enforcement::Deny), limits).await;
    let ca = minted.ca_cert_pem.as_str();
    let ok_review = client::review("steady", "CREATE", &client::group("g", 3), None);

    let mut failures = Vec::new();
    for case in cases() {
        let started = Instant::now();
        let got = run_case(&server, ca, &case).await;
        let elapsed = started.elapsed();
        let verdict = match (&case.expect, &got) {
            (Expect::Deny(uid, needle), Some((200, body))) => {
                let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let r = &v["response"];
                let msg = r["status"]["message"].as_str().unwrap_or("");
                if r["uid"] == *uid && r["allowed"] == false && msg.contains(needle) {
                    Ok(())
                } else {
                    Err(format!("got {v}"))
                }
            }
            (Expect::Http(code, needle), Some((status, body))) if status == code => {
                let text = String::from_utf8_lossy(body);
                if text.contains(needle) {
                    Ok(())
                } else {
                    Err(format!("body {text}"))
                }
            }
            (Expect::Closed, None) => Ok(()),
            (_, got) => Err(format!(
                "got {:?}",
                got.as_ref().map(|(s, b)| (
                    s,
                    String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned()
                ))
            )),
        };
        if let Err(e) = verdict {
            failures.push(format!("{}: expected {:?}, {e}", case.name, case.expect));
        }
        assert!(
            elapsed < Duration::from_secs(8),
            "{} took {elapsed:?}",
            case.name
        );
        // After each case the server still answers. (A fresh connection each time: the short
        // header timeout of this test also closes idle keep-alive connections.)
        let mut conn = Conn::open(server.addr, client::client_config(&[ca], &[b"http/1.1"]))
            .await
            .expect("connect");
        let r = conn.post("/validate", ok_review.clone()).await;
        assert!(
            r.as_ref()
                .is_ok_and(|r| r.status == 200 && r.json()["response"]["allowed"] == true),
            "after {:?}: {r:?}",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut fresh = Conn::open(server.addr, client::client_config(&[ca], &[]))
        .await
        .expect("connect");
    assert_eq!(
        fresh
            .post("/mutate", ok_review)
            .await
            .expect("mutate")
            .status,
        200
    );
    let metrics = server.metrics.render();
    for code in ["408", "413", "415"] {
        assert!(
            metrics.contains(&format!(
                "orkestra_webhook_http_rejections_total{{code=\"{code}\"}}"
            )),
            "{metrics}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_holds_no_large_body_permit() {
    let minted = support::mint();
    let dir = TempDir::new("large");
    let (cert, key) = support::write_pair(&dir.0, &minted);
    let limits = Limits {
        max_large_in_flight: 1,
        large_body_bytes: 1024,
        body_read_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let server = TestServer::start(&cert, &key, Admission::new(Enforcement::Deny), limits).await;
    let cfg = client::client_config(&[&minted.ca_cert_pem], &[b"http/1.1"]);
    // A body that never finishes is only read (its bytes are budgeted as they arrive): the
    // large-body permit is taken once a body is complete, so a slow client holds none...
    let mut hog = client::tls_connect(server.addr, cfg.clone())
        .await
        .expect("tls");
    hog.write_all(post_head(100_000, "").as_bytes())
        .await
        .expect("head");
    hog.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and a large review meanwhile is answered, as is a small one.
    let big = client::review("big", "CREATE", &client::group("big", 20), None);
    assert!(big.len() > 1024);
    let mut conn = Conn::open(server.addr, cfg.clone()).await.expect("connect");
    assert_eq!(
        conn.post("/validate", big).await.expect("reply").status,
        200
    );
    let small = client::review("small", "CREATE", &client::group("s", 1), None);
    assert!(small.len() <= 1024, "{}", small.len());
    let mut conn = Conn::open(server.addr, cfg).await.expect("connect");
    assert_eq!(
        conn.post("/validate", small).await.expect("reply").status,
        200
    );
    // The slow body itself ends with 408 at the body read timeout.
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), hog.read_to_end(&mut resp)).await;
    assert!(String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 408"));
    server.shutdown().await;
}
