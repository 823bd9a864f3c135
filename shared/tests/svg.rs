//! `graph -o svg`: the picture's structure (golden file plus what it must say), and the picture
//! itself as a real browser draws it (headless Chromium from Debian's `chromium` package,
//! screenshot to PNG, colours read back where the boxes are).
//!
//! `UPDATE_GOLDEN=1 cargo test -p orkestra --test svg` rewrites the golden file.

use std::path::{Path, PathBuf};
use std::process::Command;

use orkestra::api::ApplicationGroupSpec;
use orkestra::live::report::NodeStatus;
use orkestra::view::{Format, GraphView};
use serde_json::json;

fn spec() -> ApplicationGroupSpec {
    let app = |name: &str, chart: &str, deps: &[&str]| {
        json!({"name": name, "dependencies": deps, "spec": {
            "chart": {"url": "https://charts.example", "name": chart, "version": "1.2.0"}, "release": {}}})
    };
    let mut api = app("api", "api", &["db", "cache"]);
    api["spec"]["subcharts"] =
        json!([{"name": "worker"}, {"name": "migrations", "dependencies": ["worker"]}]);
    serde_json::from_value(json!({"applications": [
        app("db", "postgresql", &[]),
        app("cache", "redis", &[]),
        app("queue", "rabbitmq", &[]),
        api,
        app("web", "frontend", &["api"]),
        app("worker-pool", "workers", &["queue"]),
    ]}))
    .expect("spec")
}

/// A release in flight: db done, cache failed, queue done, api running, the rest pending.
fn view() -> GraphView {
    let status = |app: &str, sub: Option<&str>| {
        let (phase, secs) = match (app, sub) {
            ("db", None) => ("Succeeded", 95.0),
            ("cache", None) => ("Failed", 12.0),
            ("queue", None) => ("Succeeded", 20.0),
            ("api", None) => ("Running", 40.0),
            ("api", Some("worker")) => ("Succeeded", 15.0),
            _ => return None,
        };
        Some(NodeStatus {
            phase: phase.into(),
            message: (phase == "Failed").then(|| "install retries exhausted".to_string()),
            duration_seconds: Some(secs),
        })
    };
    GraphView::build("shop", &spec(), &status).expect("view")
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/shop.svg")
}

struct Box {
    name: String,
    wave: usize,
    critical: bool,
    phase: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn boxes(svg: &str) -> Vec<Box> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    let num = |n: roxmltree::Node<'_, '_>, a: &str| -> f64 {
        n.attribute(a).and_then(|v| v.parse().ok()).expect(a)
    };
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("g") && n.attribute("class").is_some_and(|c| c.starts_with("node"))
        })
        .map(|g| {
            let rect = g.children().find(|c| c.has_tag_name("rect")).expect("rect");
            Box {
                name: g.attribute("data-name").expect("name").to_string(),
                wave: g
                    .attribute("data-wave")
                    .and_then(|w| w.parse().ok())
                    .expect("wave"),
                critical: g.attribute("class") == Some("node critical"),
                phase: g.attribute("data-phase").unwrap_or_default().to_string(),
                x: num(rect, "x"),
                y: num(rect, "y"),
                w: num(rect, "width"),
                h: num(rect, "height"),
            }
        })
        .collect()
}

#[test]
fn svg_structure_and_golden() {
    let view = view();
    let svg = view.render(Format::Svg, false);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden().parent().expect("dir")).expect("mkdir");
        std::fs::write(golden(), &svg).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(golden()).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(svg, expected, "the SVG differs from tests/golden/shop.svg");

    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let b = boxes(&svg);
    assert_eq!(b.len(), 6, "one box per application");
    // Waves are columns: one x per wave, increasing with the wave.
    for a in &b {
        for c in &b {
            assert_eq!(a.wave == c.wave, a.x == c.x, "{} and {}", a.name, c.name);
            if a.wave < c.wave {
                assert!(a.x + a.w < c.x, "{} left of {}", a.name, c.name);
            }
        }
    }
    let wave_of = |n: &str| b.iter().find(|x| x.name == n).map(|x| x.wave);
    assert_eq!(
        ["db", "cache", "queue", "api", "web", "worker-pool"].map(wave_of),
        [1, 1, 1, 2, 3, 2].map(Some)
    );
    // The critical path (by duration: db 95 s > cache 12 s) is marked on boxes and arrows.
    assert_eq!(view.critical_path, vec!["db", "api"]);
    let critical: Vec<&str> = b
        .iter()
        .filter(|x| x.critical)
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(critical, vec!["db", "api"]);
    let edges: Vec<(String, String, bool)> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("path") && n.attribute("class").is_some_and(|c| c.starts_with("edge"))
        })
        .map(|p| {
            (
                p.attribute("data-from").unwrap_or_default().to_string(),
                p.attribute("data-to").unwrap_or_default().to_string(),
                p.attribute("class") == Some("edge critical"),
            )
        })
        .collect();
    assert_eq!(edges.len(), 4, "one arrow per dependency: {edges:?}");
    let crit_edges: Vec<(&str, &str)> = edges
        .iter()
        .filter(|e| e.2)
        .map(|e| (e.0.as_str(), e.1.as_str()))
        .collect();
    assert_eq!(crit_edges, vec![("db", "api")]);
    // chart@version, live status and subcharts are written in the boxes.
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for t in [
        "postgresql@1.2.0",
        "Succeeded 1m35s",
        "Running 40s",
        "subcharts: worker, migrations",
        "wave 3",
    ] {
        assert!(texts.contains(&t), "{t:?} in {texts:?}");
    }
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("critical path (duration): db"))
    );
    assert_eq!(
        b.iter()
            .find(|x| x.name == "cache")
            .map(|x| x.phase.as_str()),
        Some("Failed")
    );
}

#[test]
fn names_are_escaped() {
    let mut s = spec();
    s.applications[0].spec.chart.as_mut().expect("chart").name = "a<b>&\"c\"".into();
    let svg = GraphView::build("x&y", &s, &|_, _| None)
        .expect("view")
        .render(Format::Svg, false);
    roxmltree::Document::parse(&svg).expect("still well-formed");
    assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;@1.2.0"));
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

type Rgb = (u8, u8, u8);

fn hex(s: &str) -> Rgb {
    let v = u32::from_str_radix(s.trim_start_matches('#'), 16).expect("hex colour");
    ((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

fn near(a: Rgb, b: Rgb) -> bool {
    let d = |x: u8, y: u8| (i16::from(x) - i16::from(y)).abs();
    d(a.0, b.0) <= 8 && d(a.1, b.1) <= 8 && d(a.2, b.2) <= 8
}

#[test]
fn chromium_draws_the_status_colours_and_the_critical_path() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() || std::env::var_os("ORKESTRA_E2E_REQUIRED").is_some() {
            panic!("chromium is not installed: tests/run installs it (apt-get install chromium)");
        }
        eprintln!(
            "skipped: chromium not found on PATH (apt-get install chromium); CI runs this test"
        );
        return;
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("svg");
    std::fs::create_dir_all(&out).expect("mkdir");
    let svg_path = out.join("shop.svg");
    let png_path = out.join("shop.png");
    let svg = view().render(Format::Svg, false);
    std::fs::write(&svg_path, &svg).expect("write svg");
    let _ = std::fs::remove_file(&png_path);
    let doc = roxmltree::Document::parse(&svg).expect("xml");
    let attr = |a: &str| -> u32 {
        doc.root_element()
            .attribute(a)
            .and_then(|v| v.parse().ok())
            .expect(a)
    };
    let (width, height) = (attr("width"), attr("height"));
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", out.join("profile").display()))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", svg_path.display()))
        .output()
        .expect("run chromium");
    assert!(
        png_path.is_file(),
        "chromium wrote no screenshot: {}\n{}",
        status.status,
        String::from_utf8_lossy(&status.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("png frame");
    assert_eq!(
        (info.width, info.height),
        (width, height),
        "screenshot size"
    );
    let channels = info.color_type.samples();
    let at = |x: f64, y: f64| -> Rgb {
        let i = (y as usize * info.width as usize + x as usize) * channels;
        (pixels[i], pixels[i + 1], pixels[i + 2])
    };
    let b = boxes(&svg);
    let expect = |name: &str| b.iter().find(|x| x.name == name).expect(name);
    for (name, fill) in [
        ("db", "#c8e6c9"),
        ("queue", "#c8e6c9"),
        ("cache", "#ffcdd2"),
        ("api", "#fff9c4"),
        ("web", "#ffffff"),
    ] {
        let bx = expect(name);
        let got = at(bx.x + bx.w - 8.0, bx.y + bx.h / 2.0);
        assert!(
            near(got, hex(fill)),
            "{name}: fill {got:?}, expected {fill}"
        );
    }
    for name in ["db", "api"] {
        let bx = expect(name);
        let got = at(bx.x + 0.5, bx.y + bx.h / 2.0);
        assert!(near(got, hex("#c0392b")), "{name}: critical border {got:?}");
    }
    for name in ["cache", "queue", "web"] {
        let bx = expect(name);
        let got = at(bx.x + 0.5, bx.y + bx.h / 2.0);
        assert!(
            !near(got, hex("#c0392b")),
            "{name}: not on the critical path, border {got:?}"
        );
    }
    // The background is where no box is (between the columns, below the boxes).
    let db = expect("db");
    assert!(near(at(db.x + db.w + 30.0, db.y + 2.0), hex("#fafafa")));
}
