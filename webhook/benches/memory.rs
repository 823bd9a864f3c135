//! Memory per review: the most heap one AdmissionReview takes while the webhook answers it, as a
//! multiple of the request body, for /validate and /mutate (an UPDATE of a defaulted group, so
//! both objects are in the body), beside issue 12's goal (at most 10× the body).
//!
//! Run: `cargo bench -p orkestra-webhook --bench memory`. The allocator here counts bytes
//! (`peak_alloc`, over the system allocator), so the figure is the heap the review asked for,
//! not what an allocator keeps cached.

#[path = "../tests/support/client.rs"]
mod client;

use orkestra_webhook::admission::{Admission, Endpoint, Enforcement};
use peak_alloc::PeakAlloc;

#[global_allocator]
static PEAK: PeakAlloc = PeakAlloc;

/// Issue 12's goal: a review's heap at most this many times its body.
const GOAL: f64 = 10.0;

fn main() {
    let admission = Admission::new(Enforcement::Deny);
    println!(
        "{:>6} {:>9} {:>10} {:>11} {:>7} {:>11} {:>7}  goal",
        "apps", "operation", "body KiB", "/validate", "x body", "/mutate", "x body"
    );
    // Once per process, not per review: the first review also builds what every later one
    // shares (the compiled CRD and Flux schemas), so one is answered before measuring.
    let warm_up = client::review("m", "CREATE", &client::group("warm-up", 2), None);
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        std::hint::black_box(admission.review(endpoint, &warm_up));
    }
    for n in [10, 100, 1_000] {
        let group = client::group("bench", n);
        let defaulted = orkestra::admission::defaults::default_object(&group).unwrap_or_default();
        for (operation, body) in [
            ("CREATE", client::review("m", "CREATE", &group, None)),
            (
                "UPDATE",
                client::review("m", "UPDATE", &defaulted, Some(&defaulted)),
            ),
        ] {
            let mut peaks = [0usize; 2];
            for (peak, endpoint) in peaks.iter_mut().zip([Endpoint::Validate, Endpoint::Mutate]) {
                // The body itself is held by the caller, outside the review.
                let before = PEAK.current_usage();
                PEAK.reset_peak_usage();
                std::hint::black_box(admission.review(endpoint, &body));
                *peak = PEAK.peak_usage().saturating_sub(before);
            }
            let ratio = |b: usize| b as f64 / body.len() as f64;
            let worst = ratio(peaks[0]).max(ratio(peaks[1]));
            println!(
                "{n:>6} {operation:>9} {:>10.1} {:>7.0} KiB {:>7.1} {:>7.0} KiB {:>7.1}  <=10 {}",
                body.len() as f64 / 1024.0,
                peaks[0] as f64 / 1024.0,
                ratio(peaks[0]),
                peaks[1] as f64 / 1024.0,
                ratio(peaks[1]),
                if worst <= GOAL { "ok" } else { "NO" },
            );
        }
    }
}
