//! The DAG as a standalone SVG picture, laid out here (no Graphviz): one column per wave, one
//! box per application with its chart@version and live status (fill colour), subcharts listed
//! in the box, dependencies as arrows, the critical path drawn in red and thicker.
//!
//! The layout is deterministic (same view, same bytes), so it can be golden-tested; every
//! application is a `<g class="node ...">` with `data-` attributes a test (or a script) can read.

use std::fmt::Write as _;

use super::{AppNode, GraphView, phase_colour};
use crate::duration;
use crate::live::report::NodeStatus;

/// Margin around the picture.
const MARGIN: f64 = 24.0;
/// Height of the title block.
const TITLE_H: f64 = 64.0;
/// Height of the wave labels above the columns.
const WAVE_LABEL_H: f64 = 28.0;
/// Horizontal space between columns (room for the arrows).
const COLUMN_GAP: f64 = 72.0;
/// Vertical space between boxes of one column.
const ROW_GAP: f64 = 20.0;
/// Height of one line of text in a box.
const LINE_H: f64 = 16.0;
/// Width of one character at the box font size (a monospace estimate, generous for sans-serif).
const CHAR_W: f64 = 7.2;
/// Height of the legend below the columns.
const LEGEND_H: f64 = 40.0;

/// Critical path colour (as in the dot and mermaid views).
pub const CRITICAL: &str = "#c0392b";
/// Border and arrow colour off the critical path.
const PLAIN: &str = "#607d8b";
/// Fill of a node without live status.
const NO_STATUS: &str = "#ffffff";

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Shortens `s` to `max` characters with an ellipsis.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn status_text(status: Option<&NodeStatus>) -> String {
    match status {
        None => String::new(),
        Some(st) => match st.duration_seconds {
            Some(d) => format!(
                "{} {}",
                st.phase,
                duration::human(std::time::Duration::from_secs_f64(d.max(0.0)))
            ),
            None => st.phase.clone(),
        },
    }
}

fn fill(status: Option<&NodeStatus>) -> &'static str {
    status.map_or(NO_STATUS, |st| phase_colour(&st.phase).1)
}

/// Where each application's box is.
struct Layout {
    box_w: f64,
    box_h: f64,
    lines: usize,
    /// Top-left corner per application (declaration order).
    at: Vec<(f64, f64)>,
    width: f64,
    height: f64,
}

/// The most characters a box shows per line.
const MAX_CHARS: usize = 40;

fn lines_of(app: &AppNode) -> Vec<String> {
    let mut lines = vec![app.name.clone(), app.chart.clone()];
    if !app.subcharts.is_empty() {
        let names: Vec<&str> = app.subcharts.iter().map(|s| s.name.as_str()).collect();
        lines.push(format!("subcharts: {}", names.join(", ")));
    }
    lines.push(status_text(app.status.as_ref()));
    lines
}

fn layout(view: &GraphView) -> Layout {
    let lines = if view.applications.iter().any(|a| !a.subcharts.is_empty()) {
        4
    } else {
        3
    };
    let longest = view
        .applications
        .iter()
        .flat_map(lines_of)
        .map(|l| l.chars().count().min(MAX_CHARS))
        .max()
        .unwrap_or(0);
    let box_w = (longest as f64 * CHAR_W + 24.0).max(150.0).round();
    let box_h = lines as f64 * LINE_H + 16.0;
    let mut at = vec![(0.0, 0.0); view.applications.len()];
    let mut tallest = 0usize;
    for (w, wave) in view.waves.iter().enumerate() {
        tallest = tallest.max(wave.len());
        let x = MARGIN + w as f64 * (box_w + COLUMN_GAP);
        for (row, name) in wave.iter().enumerate() {
            if let Some(i) = view.applications.iter().position(|a| &a.name == name) {
                at[i] = (
                    x,
                    MARGIN + TITLE_H + WAVE_LABEL_H + row as f64 * (box_h + ROW_GAP),
                );
            }
        }
    }
    let columns = view.waves.len().max(1) as f64;
    let title_w = (view.critical_path.join(" -> ").chars().count() + 24) as f64 * CHAR_W;
    let width = (2.0 * MARGIN + columns * box_w + (columns - 1.0) * COLUMN_GAP)
        .max(title_w)
        .max(560.0)
        .round();
    let height =
        (MARGIN + TITLE_H + WAVE_LABEL_H + tallest as f64 * (box_h + ROW_GAP) + LEGEND_H + MARGIN)
            .round();
    Layout {
        box_w,
        box_h,
        lines,
        at,
        width,
        height,
    }
}

impl GraphView {
    /// The view as an SVG document.
    pub(super) fn svg(&self) -> String {
        let l = layout(self);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\" data-group=\"{g}\">",
            w = l.width,
            h = l.height,
            g = xml(&self.group)
        );
        let _ = writeln!(s, "  <title>ApplicationGroup {}</title>", xml(&self.group));
        s.push_str("  <defs>\n");
        for (id, colour) in [("arrow", PLAIN), ("arrow-critical", CRITICAL)] {
            let _ = writeln!(
                s,
                "    <marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"10\" markerHeight=\"10\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{colour}\"/></marker>"
            );
        }
        s.push_str("  </defs>\n");
        let _ = writeln!(
            s,
            "  <rect class=\"background\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#fafafa\"/>",
            l.width, l.height
        );
        // Title: the same header as the text views.
        let n = self.applications.len();
        let _ = writeln!(
            s,
            "  <text class=\"title\" x=\"{MARGIN}\" y=\"{}\" font-size=\"16\" font-weight=\"bold\">ApplicationGroup {}: {n} application{} in {} wave{}</text>",
            MARGIN + 16.0,
            xml(&self.group),
            if n == 1 { "" } else { "s" },
            self.waves.len(),
            if self.waves.len() == 1 { "" } else { "s" },
        );
        if !self.critical_path.is_empty() {
            let _ = writeln!(
                s,
                "  <text class=\"critical-path\" x=\"{MARGIN}\" y=\"{}\" fill=\"{CRITICAL}\">critical path ({}): {}</text>",
                MARGIN + 40.0,
                xml(&self.critical_path_by),
                xml(&self.critical_path.join(" → "))
            );
        }
        if let Some(eta) = &self.eta {
            let _ = writeln!(
                s,
                "  <text class=\"eta\" x=\"{}\" y=\"{}\" fill=\"#455a64\" text-anchor=\"end\">expected: {}</text>",
                l.width - MARGIN,
                MARGIN + 16.0,
                xml(&eta.describe())
            );
        }
        for w in 0..self.waves.len() {
            let _ = writeln!(
                s,
                "  <text class=\"wave\" x=\"{}\" y=\"{}\" fill=\"#455a64\" font-weight=\"bold\">wave {}</text>",
                MARGIN + w as f64 * (l.box_w + COLUMN_GAP),
                MARGIN + TITLE_H + WAVE_LABEL_H - 10.0,
                w + 1
            );
        }
        // Arrows first, so boxes sit on top of them.
        for (i, app) in self.applications.iter().enumerate() {
            for dep in &app.dependencies {
                let Some(d) = self.applications.iter().position(|a| &a.name == dep) else {
                    continue;
                };
                let critical = self.on_critical_edge(dep, &app.name);
                let (x1, y1) = (l.at[d].0 + l.box_w, l.at[d].1 + l.box_h / 2.0);
                let (x2, y2) = (l.at[i].0, l.at[i].1 + l.box_h / 2.0);
                let bend = COLUMN_GAP / 2.0;
                let _ = writeln!(
                    s,
                    "  <path class=\"edge{}\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" marker-end=\"url(#{})\"/>",
                    if critical { " critical" } else { "" },
                    xml(dep),
                    xml(&app.name),
                    x1 + bend,
                    x2 - bend,
                    if critical { CRITICAL } else { PLAIN },
                    if critical { "3" } else { "1.5" },
                    if critical { "arrow-critical" } else { "arrow" },
                );
            }
        }
        for (i, app) in self.applications.iter().enumerate() {
            let (x, y) = l.at[i];
            let phase = app.status.as_ref().map_or("", |st| st.phase.as_str());
            let _ = writeln!(
                s,
                "  <g class=\"node{}\" id=\"app-{i}\" data-name=\"{}\" data-wave=\"{}\" data-phase=\"{}\">",
                if app.critical { " critical" } else { "" },
                xml(&app.name),
                app.wave + 1,
                xml(phase)
            );
            let mut tip = format!("{} ({})", app.name, app.chart);
            if let Some(m) = app.status.as_ref().and_then(|st| st.message.as_deref()) {
                let _ = write!(tip, ": {m}");
            }
            let _ = writeln!(s, "    <title>{}</title>", xml(&tip));
            let _ = writeln!(
                s,
                "    <rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" rx=\"8\" fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>",
                l.box_w,
                l.box_h,
                fill(app.status.as_ref()),
                if app.critical { CRITICAL } else { PLAIN },
                if app.critical { "3" } else { "1.5" },
            );
            let lines = lines_of(app);
            for (k, line) in lines.iter().enumerate() {
                // The status goes on the last line of the box, whatever the line count.
                let row = if k + 1 == lines.len() { l.lines - 1 } else { k };
                let (class, style) = match (k, k + 1 == lines.len()) {
                    (0, _) => ("name", " font-weight=\"bold\" font-size=\"13\""),
                    (_, true) => ("status", " font-style=\"italic\""),
                    (1, _) => ("chart", ""),
                    _ => ("subcharts", " fill=\"#455a64\""),
                };
                if line.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "    <text class=\"{class}\" x=\"{}\" y=\"{}\"{style}>{}</text>",
                    x + 12.0,
                    y + 8.0 + LINE_H * (row as f64 + 1.0) - 4.0,
                    xml(&fit(line, MAX_CHARS))
                );
            }
            s.push_str("  </g>\n");
        }
        // Legend.
        let ly = l.height - MARGIN - LEGEND_H / 2.0;
        let mut lx = MARGIN;
        s.push_str("  <g class=\"legend\">\n");
        for (label, colour, stroke) in [
            ("succeeded", phase_colour("Succeeded").1, PLAIN),
            ("running", phase_colour("Running").1, PLAIN),
            ("failed", phase_colour("Failed").1, PLAIN),
            ("pending", phase_colour("Pending").1, PLAIN),
            ("critical path", NO_STATUS, CRITICAL),
        ] {
            let _ = writeln!(
                s,
                "    <rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"14\" rx=\"3\" fill=\"{colour}\" stroke=\"{stroke}\" stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\">{label}</text>",
                ly - 7.0,
                if stroke == CRITICAL { 3 } else { 1 },
                lx + 20.0,
                ly + 4.0
            );
            lx += 20.0 + label.len() as f64 * CHAR_W + 24.0;
        }
        s.push_str("  </g>\n</svg>\n");
        s
    }
}
