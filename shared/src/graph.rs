//! Dependency DAGs: applications of a group, subcharts of an application, executors of an
//! application. One type serves all three levels.
//!
//! Nodes are indices into the declared list, so results point straight back at the field that
//! declared them. Unknown and self dependencies and repeated names are left out of the edges
//! (validation reports them); everything here stays defined on any input.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

/// At most this many cycles are listed per graph; a pathological graph has exponentially many.
pub const MAX_CYCLES: usize = 32;
/// Work budget (DFS steps) of the cycle enumeration.
const CYCLE_STEPS: usize = 200_000;

/// A dependency graph over named nodes.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    names: Vec<String>,
    /// `deps[i]`: the nodes `i` depends on (known, distinct, not `i`), in declaration order.
    deps: Vec<Vec<usize>>,
    /// `repeated[i]`: node `i` repeats the name of an earlier node (and has no dependents).
    repeated: Vec<bool>,
}

/// The elementary cycles of a graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cycles {
    /// Each cycle starts at its lowest node index; `a, b, c` reads "a depends on b, b on c, c on a".
    pub cycles: Vec<Vec<usize>>,
    /// True when more cycles exist than were listed.
    pub truncated: bool,
}

impl Dag {
    /// Builds the graph from `(name, dependencies)` pairs in declaration order. When a name is
    /// declared twice, the first declaration wins.
    pub fn new<'a, I, D>(nodes: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let nodes: Vec<(&str, Vec<&str>)> = nodes
            .into_iter()
            .map(|(n, d)| (n, d.into_iter().collect()))
            .collect();
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, (name, _)) in nodes.iter().enumerate() {
            index.entry(*name).or_insert(i);
        }
        let names = nodes.iter().map(|(n, _)| (*n).to_string()).collect();
        let repeated = nodes
            .iter()
            .enumerate()
            .map(|(i, (n, _))| index.get(n) != Some(&i))
            .collect();
        let deps = nodes
            .iter()
            .enumerate()
            .map(|(i, (_, deps))| {
                let mut out: Vec<usize> = Vec::with_capacity(deps.len());
                for d in deps {
                    if let Some(&j) = index.get(d)
                        && j != i
                        && !out.contains(&j)
                    {
                        out.push(j);
                    }
                }
                out
            })
            .collect();
        Self {
            names,
            deps,
            repeated,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The node called `name` (its first declaration).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// True when node `i` is the first declaration of its name (later ones are ignored).
    pub fn is_first(&self, i: usize) -> bool {
        !self.repeated[i]
    }

    /// The nodes `i` depends on.
    pub fn dependencies(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// The nodes that depend on `i` directly.
    pub fn dependents(&self, i: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&j| self.deps[j].contains(&i))
            .collect()
    }

    /// Every node that depends on `i`, directly or not (its blast radius), in index order.
    pub fn transitive_dependents(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            for j in self.dependents(n) {
                if !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        (0..self.len()).filter(|&j| seen[j] && j != i).collect()
    }

    /// A release order: every node after its dependencies; among nodes ready at the same time,
    /// declaration order. `None` when the graph has a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let mut waiting: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let dependents = self.dependents_lists();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..self.len())
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        (order.len() == self.len()).then_some(order)
    }

    /// The order in which to remove nodes: dependents before their dependencies.
    pub fn reverse_order(&self) -> Option<Vec<usize>> {
        self.topological_order().map(|mut o| {
            o.reverse();
            o
        })
    }

    /// The wave of each node: 0 for nodes without dependencies, else one more than the latest
    /// wave among its dependencies. Nodes of one wave can be released in parallel.
    /// `None` when the graph has a cycle.
    pub fn levels(&self) -> Option<Vec<usize>> {
        let order = self.topological_order()?;
        let mut level = vec![0; self.len()];
        for i in order {
            level[i] = self.deps[i]
                .iter()
                .map(|&d| level[d] + 1)
                .max()
                .unwrap_or(0);
        }
        Some(level)
    }

    /// The nodes grouped by wave, each wave in declaration order.
    pub fn waves(&self) -> Option<Vec<Vec<usize>>> {
        let levels = self.levels()?;
        let mut waves: Vec<Vec<usize>> = vec![Vec::new(); levels.iter().max().map_or(0, |m| m + 1)];
        for (i, l) in levels.into_iter().enumerate() {
            waves[l].push(i);
        }
        Some(waves)
    }

    /// The longest chain of dependencies by total weight (for example the duration of each
    /// node's last release, or 1 each), from the first node to release to the last.
    /// Empty for an empty or cyclic graph.
    pub fn critical_path(&self, weight: impl Fn(usize) -> f64) -> Vec<usize> {
        let Some(order) = self.topological_order() else {
            return Vec::new();
        };
        let mut best = vec![0.0_f64; self.len()];
        let mut via: Vec<Option<usize>> = vec![None; self.len()];
        for &i in &order {
            let prev = self.deps[i]
                .iter()
                .copied()
                .max_by(|&a, &b| best[a].total_cmp(&best[b]).then(b.cmp(&a)));
            best[i] = prev.map_or(0.0, |p| best[p]) + weight(i);
            via[i] = prev;
        }
        let Some(mut end) =
            (0..self.len()).max_by(|&a, &b| best[a].total_cmp(&best[b]).then(b.cmp(&a)))
        else {
            return Vec::new();
        };
        let mut path = vec![end];
        while let Some(p) = via[end] {
            path.push(p);
            end = p;
        }
        path.reverse();
        path
    }

    /// Every elementary cycle (up to [`MAX_CYCLES`]), each listed once, starting at its lowest
    /// node, in order of that node.
    pub fn cycles(&self) -> Cycles {
        let mut graph = DiGraphMap::<usize, ()>::with_capacity(self.len(), self.len());
        for i in 0..self.len() {
            graph.add_node(i);
            for &d in &self.deps[i] {
                graph.add_edge(i, d, ());
            }
        }
        let mut out = Cycles::default();
        let mut budget = CYCLE_STEPS;
        let mut components: Vec<Vec<usize>> = tarjan_scc(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        components.sort();
        for component in components {
            let mut in_component = vec![false; self.len()];
            for &n in &component {
                in_component[n] = true;
            }
            for &start in &component {
                // Cycles through `start` that only visit higher nodes: each cycle is found once,
                // from its lowest node.
                let mut path = vec![start];
                let mut on_path = vec![false; self.len()];
                on_path[start] = true;
                self.cycles_from(
                    start,
                    start,
                    &in_component,
                    &mut path,
                    &mut on_path,
                    &mut budget,
                    &mut out,
                );
                if out.truncated {
                    return out;
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn cycles_from(
        &self,
        start: usize,
        at: usize,
        in_component: &[bool],
        path: &mut Vec<usize>,
        on_path: &mut [bool],
        budget: &mut usize,
        out: &mut Cycles,
    ) {
        for &next in &self.deps[at] {
            if out.truncated {
                return;
            }
            if *budget == 0 || out.cycles.len() == MAX_CYCLES {
                out.truncated = true;
                return;
            }
            *budget -= 1;
            if next == start {
                out.cycles.push(path.clone());
            } else if next > start && in_component[next] && !on_path[next] {
                on_path[next] = true;
                path.push(next);
                self.cycles_from(start, next, in_component, path, on_path, budget, out);
                path.pop();
                on_path[next] = false;
            }
        }
    }

    /// A cycle as text: `a -> b -> c -> a`.
    pub fn describe_cycle(&self, cycle: &[usize]) -> String {
        let mut s = String::new();
        for &n in cycle.iter().chain(cycle.first()) {
            if !s.is_empty() {
                s.push_str(" -> ");
            }
            s.push_str(&self.names[n]);
        }
        s
    }

    fn dependents_lists(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.len()];
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                out[d].push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dag(spec: &[(&'static str, &[&'static str])]) -> Dag {
        Dag::new(spec.iter().map(|(n, d)| (*n, d.iter().copied())))
    }

    #[test]
    fn waves_and_order() {
        let g = dag(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        assert_eq!(g.levels(), Some(vec![2, 1, 0, 0]));
        assert_eq!(g.waves(), Some(vec![vec![2, 3], vec![1], vec![0]]));
        assert_eq!(g.topological_order(), Some(vec![2, 3, 1, 0]));
        assert_eq!(g.reverse_order(), Some(vec![0, 1, 3, 2]));
        assert_eq!(g.transitive_dependents(2), vec![0, 1]);
    }

    #[test]
    fn every_cycle_is_named_once() {
        // Two cycles sharing `api`, plus an acyclic tail.
        let g = dag(&[
            ("db", &["api"]),
            ("api", &["cache", "db"]),
            ("cache", &["db"]),
            ("web", &["api"]),
        ]);
        let c = g.cycles();
        let text: Vec<String> = c.cycles.iter().map(|c| g.describe_cycle(c)).collect();
        assert_eq!(text, vec!["db -> api -> cache -> db", "db -> api -> db"]);
        assert!(!c.truncated);
        assert_eq!(g.topological_order(), None);
        assert_eq!(g.levels(), None);
    }

    #[test]
    fn complete_graph_cycles_are_capped() {
        let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
        let g = Dag::new(
            names
                .iter()
                .map(|n| (n.as_str(), names.iter().map(String::as_str))),
        );
        let c = g.cycles();
        assert!(c.truncated);
        assert_eq!(c.cycles.len(), MAX_CYCLES);
    }

    #[test]
    fn critical_path_follows_weights() {
        let g = dag(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        assert_eq!(g.critical_path(|_| 1.0), vec![0, 1, 3]);
        assert_eq!(
            g.critical_path(|i| if i == 2 { 10.0 } else { 1.0 }),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn unknown_self_and_duplicate_edges_are_ignored() {
        let g = dag(&[("a", &["a", "zzz", "b", "b"]), ("b", &[])]);
        assert_eq!(g.dependencies(0), &[1]);
        assert!(g.cycles().cycles.is_empty());
    }

    proptest! {
        // A random graph is ordered iff it has no cycle, and any order respects every edge.
        #[test]
        fn ordered_iff_acyclic(edges in proptest::collection::vec((0usize..8, 0usize..8), 0..20)) {
            let names: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
            let deps: Vec<Vec<&str>> = (0..8)
                .map(|i| edges.iter().filter(|(a, _)| *a == i).map(|(_, b)| names[*b].as_str()).collect())
                .collect();
            let g = Dag::new(names.iter().map(String::as_str).zip(deps.iter().map(|d| d.iter().copied())));
            let cycles = g.cycles();
            match g.topological_order() {
                Some(order) => {
                    prop_assert!(cycles.cycles.is_empty());
                    let pos: Vec<usize> = (0..8).map(|i| order.iter().position(|&o| o == i).unwrap_or(usize::MAX)).collect();
                    for i in 0..8 {
                        for &d in g.dependencies(i) {
                            prop_assert!(pos[d] < pos[i]);
                        }
                    }
                }
                None => prop_assert!(!cycles.cycles.is_empty()),
            }
            for c in &cycles.cycles {
                for w in 0..c.len() {
                    prop_assert!(g.dependencies(c[w]).contains(&c[(w + 1) % c.len()]));
                }
            }
        }
    }
}
