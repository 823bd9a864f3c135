//! Parse vs validate+default, per group size. Run: `cargo bench -p orkestra --bench domain`.
//!
//! Measures what the two webhooks do for one `kubectl apply`, on the JSON text they receive: the
//! mutating webhook builds the patch's JSON from the submitted object (`default`), the
//! validating webhook checks the patched object (`validate`). `parse` is reading the submitted
//! object's JSON into a `serde_json::Value`, the floor every webhook that looks at the object
//! pays.
//! The three are timed in turn, one of each per round, so they see the same machine load.
//! Prints medians per size and the ratio (default + validate) / parse beside its goal (issue 12:
//! at most 3x the parse, for 10 to the largest group admitted): compare ratios across machines,
//! not milliseconds (both sides run in one process on the same input).
//! `reads` is the part of that ratio the two typed reads of the object take on their own (the
//! spec defaulting reads, the patched object validation reads), before any rule runs or any
//! template is written: what is left of the goal for the rules and the generated templates.

// The allocator our binaries use (see the workspace Cargo.toml).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;
use std::time::{Duration, Instant};

use orkestra::admission::validate;
use orkestra::input::object::Source;
use serde_json::{Value, json};

/// A group of `n` applications, each depending on up to 3 earlier ones (3 on average once the
/// group is large), like the examples: chart, release values, namespace.
fn group(n: usize) -> Value {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let apps: Vec<Value> = (0..n)
        .map(|i| {
            let deps: Vec<String> = if i == 0 {
                vec![]
            } else {
                let mut d: Vec<String> = (0..3.min(i)).map(|_| format!("app-{}", next() as usize % i)).collect();
                d.sort();
                d.dedup();
                d
            };
            json!({
                "name": format!("app-{i}"),
                "dependencies": deps,
                "spec": {
                    "chart": {"url": "https://charts.example.com/stable", "name": format!("chart-{}", i % 50), "version": "1.2.3"},
                    "release": {"targetNamespace": format!("ns-{}", i % 20), "values": {"replicaCount": 2}}
                }
            })
        })
        .collect();
    json!({"apiVersion": "orkestra.azure.microsoft.com/v1alpha1", "kind": "ApplicationGroup",
           "metadata": {"name": "bench"}, "spec": {"applications": apps}})
}

/// Issue 12's goal: validate + default at most this many times the JSON parse.
const GOAL_RATIO: f64 = 3.0;

/// The median time of each of `runs`, timed in turn (one of each per round), so a machine
/// whose load changes during the run slows them alike and their ratio holds.
fn medians<const N: usize>(mut runs: [&mut dyn FnMut(); N], budget: Duration) -> [Duration; N] {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 5 || (start.elapsed() < budget && rounds < 300) {
        for (run, samples) in runs.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            run();
            samples.push(t.elapsed());
        }
        rounds += 1;
    }
    samples.map(|mut s| {
        s.sort();
        s[s.len() / 2]
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let sizes = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|x| x.parse().ok())
                .collect::<Vec<usize>>()
        })
        .unwrap_or(vec![10, 100, 1_000, 2_000]);
    println!(
        "{:>6} {:>10} {:>10} {:>11} {:>12} {:>7} {:>6} {:>6} {:>11}  verdict",
        "apps",
        "input KiB",
        "parse ms",
        "default ms",
        "validate ms",
        "ratio",
        "goal",
        "reads",
        "stored KiB"
    );
    for n in sizes {
        let bytes = serde_json::to_vec(&group(n)).unwrap_or_default();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        // A group past the limits is not defaulted: then validate what was submitted (and is
        // refused), as the validating webhook would see it.
        let mutated = orkestra::admission::defaults::default_object(&value).unwrap_or(value);
        let stored = serde_json::to_vec(&mutated).unwrap_or_default();
        let report = validate::validate_json(&stored, None);
        let verdict = report
            .errors
            .first()
            .map_or("valid".to_string(), |e| e.to_string());
        let [parse, default, check, reads] = medians(
            [
                &mut || {
                    black_box(serde_json::from_slice::<Value>(black_box(&bytes)).ok());
                },
                &mut || {
                    black_box(
                        orkestra::admission::defaults::mutation_patch_json(black_box(&bytes))
                            .map(|p| p.into_json())
                            .ok(),
                    );
                },
                &mut || {
                    black_box(validate::validate_json(black_box(&stored), None));
                },
                &mut || {
                    black_box(Source::Json(black_box(&bytes)).read_spec().ok());
                    black_box(Source::Json(black_box(&stored)).read().ok());
                },
            ],
            Duration::from_secs(6),
        );
        let ratio = (default + check).as_secs_f64() / parse.as_secs_f64();
        println!(
            "{n:>6} {:>10.1} {:>10.3} {:>11.3} {:>12.3} {:>7.2} {:>6} {:>6.2} {:>11.1}  {verdict}",
            bytes.len() as f64 / 1024.0,
            ms(parse),
            ms(default),
            ms(check),
            ratio,
            if ratio <= GOAL_RATIO {
                "<=3 ok"
            } else {
                "<=3 NO"
            },
            reads.as_secs_f64() / parse.as_secs_f64(),
            stored.len() as f64 / 1024.0,
        );
    }
}
