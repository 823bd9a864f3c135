//! "Did you mean" hints for names that match nothing, with a bounded cost.

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Names longer than this get no "did you mean" hint.
pub const HINT_MAX_CHARS: usize = 64;
/// Edit-distance cells one [`Hints`] may compute in all (about a millisecond).
pub const HINT_CELLS: usize = 1_000_000;

/// "Did you mean" hints with a bounded cost: each comparison costs the product of the two
/// lengths, and once [`HINT_CELLS`] are spent no more hints are given. One per validated object,
/// so a hostile object with thousands of long unknown names costs as much as a typo.
#[derive(Debug, Clone)]
pub struct Hints {
    cells_left: usize,
}

impl Default for Hints {
    fn default() -> Self {
        Self {
            cells_left: HINT_CELLS,
        }
    }
}

impl Hints {
    /// The candidate closest to `name`, when it is close enough to be a likely typo (at most a
    /// third of the characters differ) and the budget allows the comparison.
    pub fn closest<'a>(
        &mut self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let len = name.chars().count();
        if len > HINT_MAX_CHARS {
            return None;
        }
        let limit = (len / 3).max(1);
        let mut best: Option<(usize, &str)> = None;
        for c in candidates {
            if c == name || c.len() > 4 * (HINT_MAX_CHARS + limit) {
                continue;
            }
            let clen = c.chars().count();
            if clen.abs_diff(len) > limit {
                continue;
            }
            let cost = (len * clen).max(1);
            if cost > self.cells_left {
                self.cells_left = 0;
                break;
            }
            self.cells_left -= cost;
            let d = edit_distance(name, c);
            if d <= limit && best.is_none_or(|(b, _)| d < b) {
                best = Some((d, c));
            }
        }
        best.map(|(_, c)| c)
    }
}

/// The candidate closest to `name`, when it is close enough to be a likely typo (one
/// comparison, with its own [`Hints`] budget).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    Hints::default().closest(name, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_hints() {
        assert_eq!(
            closest("postgress", ["postgres", "redis"]),
            Some("postgres")
        );
        assert_eq!(closest("kafka", ["postgres", "redis"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn hints_stop_when_their_budget_is_spent() {
        let names: Vec<String> = (0..1000).map(|i| format!("{i:060}")).collect();
        let mut hints = Hints::default();
        // 1,000 candidates of 60 characters: 3.6 M cells, more than one budget; the best of
        // those compared is still given, and then nothing more.
        assert!(
            hints
                .closest(&format!("{:060}", 1), names.iter().map(String::as_str))
                .is_some()
        );
        assert_eq!(hints.closest("postgress", ["postgres"]), None);
        assert_eq!(closest(&"p".repeat(HINT_MAX_CHARS + 1), ["p"]), None);
    }
}
