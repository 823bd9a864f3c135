//! Dependency DAGs: applications of a group, subcharts of an application, executors of an
//! application. One type serves all three levels.
//!
//! Nodes are indices into the declared list, so results point straight back at the field that
//! declared them. Unknown and self dependencies and repeated names are left out of the edges
//! (validation reports them); everything here stays defined on any input.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// At most this many cycles are listed per graph; a pathological graph has exponentially many.
pub const MAX_CYCLES: usize = 32;
/// Work budget (dependency edges followed) of the search for cycles.
pub const CYCLE_STEPS: usize = 200_000;

/// A dependency graph over named nodes.
///
/// Names and edges are each kept in one buffer (a large group's graph is a few allocations, not
/// a few per node).
#[derive(Debug, Clone, Default)]
pub struct Dag {
    /// Every name, one after the other; name `i` ends at `name_ends[i]`.
    names: String,
    name_ends: Vec<usize>,
    /// The nodes each node depends on (known, distinct, not itself), in declaration order: those
    /// of node `i` end at `dep_ends[i]`.
    deps: Vec<usize>,
    dep_ends: Vec<usize>,
    /// `repeated[i]`: node `i` repeats the name of an earlier node (and has no dependents).
    repeated: Vec<bool>,
}

/// Where each name is first declared, as [`Dag`]s resolve dependencies.
#[derive(Debug, Clone, Default)]
pub struct Declarations<'a> {
    index: foldhash::HashMap<&'a str, usize>,
    /// `first[i]`: the node that first declares node `i`'s name.
    first: Vec<usize>,
}

impl<'a> Declarations<'a> {
    /// Indexes `names` in declaration order: when a name is declared twice, the first wins.
    pub fn new(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names = names.into_iter();
        let len = names.size_hint().0;
        let mut out = Self {
            index: foldhash::HashMap::with_capacity_and_hasher(len, Default::default()),
            first: Vec::with_capacity(len),
        };
        for (i, name) in names.enumerate() {
            out.first.push(*out.index.entry(name).or_insert(i));
        }
        out
    }

    /// The node that first declares `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The node that first declares node `i`'s name: `i` itself, unless it repeats a name.
    pub fn first(&self, i: usize) -> usize {
        self.first[i]
    }
}

/// The elementary cycles of a graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cycles {
    /// Each cycle starts at its lowest node index; `a, b, c` reads "a depends on b, b on c, c on a".
    pub cycles: Vec<Vec<usize>>,
    /// Why the list may not be complete; `None` when it lists every cycle.
    pub incomplete: Option<Incomplete>,
}

/// Why [`Dag::cycles`] stopped listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomplete {
    /// More than [`MAX_CYCLES`] cycles exist.
    MoreCycles,
    /// The search used up its [`CYCLE_STEPS`] steps; there may be more cycles.
    OutOfSteps,
}

/// How a search for the cycles through one node ended.
enum Search {
    Done,
    MoreCycles,
    OutOfSteps,
}

/// The depth-first search for every simple path from a node back to itself, with an explicit
/// stack (a ring of any length cannot overflow the thread's stack).
struct PathSearch {
    on_path: Vec<bool>,
    path: Vec<usize>,
    /// For each node on the path, the position of the next dependency to try.
    next: Vec<usize>,
}

impl PathSearch {
    fn new(len: usize) -> Self {
        Self {
            on_path: vec![false; len],
            path: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Appends the cycles through `start` that stay among the `member` nodes (all above
    /// `start`), until [`MAX_CYCLES`] are listed or `budget` steps are used up.
    fn run(
        &mut self,
        dag: &Dag,
        start: usize,
        member: &[bool],
        budget: &mut usize,
        cycles: &mut Vec<Vec<usize>>,
    ) -> Search {
        self.path.push(start);
        self.next.push(0);
        self.on_path[start] = true;
        let status = loop {
            let (Some(&at), Some(pos)) = (self.path.last(), self.next.last_mut()) else {
                break Search::Done;
            };
            let Some(&dep) = dag.dependencies(at).get(*pos) else {
                self.on_path[at] = false;
                self.path.pop();
                self.next.pop();
                continue;
            };
            *pos += 1;
            if *budget == 0 {
                break Search::OutOfSteps;
            }
            *budget -= 1;
            if dep == start {
                if cycles.len() == MAX_CYCLES {
                    break Search::MoreCycles;
                }
                cycles.push(self.path.clone());
            } else if member[dep] && !self.on_path[dep] {
                self.on_path[dep] = true;
                self.path.push(dep);
                self.next.push(0);
            }
        };
        for &n in &self.path {
            self.on_path[n] = false;
        }
        self.path.clear();
        self.next.clear();
        status
    }
}

impl Dag {
    /// Builds the graph from `(name, dependencies)` pairs in declaration order. When a name is
    /// declared twice, the first declaration wins.
    pub fn new<'a, I, D>(nodes: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let nodes: Vec<(&str, D)> = nodes.into_iter().collect();
        let names = Declarations::new(nodes.iter().map(|(n, _)| *n));
        Self::resolved(
            &names,
            nodes
                .into_iter()
                .map(|(n, deps)| (n, deps.into_iter().map(|d| names.get(d)))),
        )
    }

    /// [`Dag::new`] for `(name, dependencies)` pairs whose dependencies `names` (the
    /// [`Declarations`] of these nodes) already resolved: each the node it names, `None` when it
    /// names none.
    pub fn resolved<'a, I, D>(names: &Declarations<'_>, nodes: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = Option<usize>>,
    {
        // One node per declaration, so the per-node lists are sized once rather than grown push
        // by push; the names and the edges start at a typical size (a short name, two edges).
        let n = names.first.len();
        let mut dag = Self {
            names: String::with_capacity(n * 8),
            name_ends: Vec::with_capacity(n),
            deps: Vec::with_capacity(n * 2),
            dep_ends: Vec::with_capacity(n),
            repeated: Vec::with_capacity(n),
        };
        for (i, (name, deps)) in nodes.into_iter().enumerate() {
            dag.names.push_str(name);
            dag.name_ends.push(dag.names.len());
            dag.repeated.push(names.first(i) != i);
            let start = dag.deps.len();
            for j in deps.into_iter().flatten() {
                if j != i && !dag.deps[start..].contains(&j) {
                    dag.deps.push(j);
                }
            }
            dag.dep_ends.push(dag.deps.len());
        }
        dag
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.name_ends.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.name_ends.is_empty()
    }

    /// Name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.name_ends[i - 1] };
        &self.names[start..self.name_ends[i]]
    }

    /// The node called `name` (its first declaration).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.name(i) == name)
    }

    /// True when node `i` is the first declaration of its name (later ones are ignored).
    pub fn is_first(&self, i: usize) -> bool {
        !self.repeated[i]
    }

    /// The nodes `i` depends on.
    pub fn dependencies(&self, i: usize) -> &[usize] {
        let start = if i == 0 { 0 } else { self.dep_ends[i - 1] };
        &self.deps[start..self.dep_ends[i]]
    }

    /// The nodes that depend on `i` directly.
    pub fn dependents(&self, i: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&j| self.dependencies(j).contains(&i))
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
        let mut waiting: Vec<usize> = (0..self.len())
            .map(|i| self.dependencies(i).len())
            .collect();
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
            level[i] = self
                .dependencies(i)
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
            let prev = self
                .dependencies(i)
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
    ///
    /// Johnson's scheme without recursion: take the strongly connected component with the
    /// lowest node `s`, list the cycles through `s` inside it, remove `s`, split the rest into
    /// components again, and repeat. Every component with more than one node holds a cycle, so
    /// each round lists at least one, and a ring of any length costs a few passes over it. The
    /// path search is bounded by [`CYCLE_STEPS`]; when that runs out, the cycle found by a
    /// breadth-first search is listed instead and the result says the list may be incomplete.
    pub fn cycles(&self) -> Cycles {
        let mut out = Cycles::default();
        // Nodes that depend only on nodes declared before them (the usual order) form no cycle.
        if (0..self.len()).all(|i| self.dependencies(i).iter().all(|&d| d < i)) {
            return out;
        }
        let mut budget = CYCLE_STEPS;
        let mut member = vec![true; self.len()];
        let all: Vec<usize> = (0..self.len()).collect();
        let mut pending: BinaryHeap<Reverse<Vec<usize>>> = self
            .components(&all, &member)
            .into_iter()
            .map(Reverse)
            .collect();
        member.fill(false);
        let mut search = PathSearch::new(self.len());
        while let Some(Reverse(component)) = pending.pop() {
            let start = component[0];
            for &n in &component {
                member[n] = true;
            }
            let found = out.cycles.len();
            let status = search.run(self, start, &member, &mut budget, &mut out.cycles);
            if out.cycles.len() == found {
                // The budget ran out before the first cycle through `start`: list the shortest.
                out.cycles.extend(self.shortest_cycle(start, &member));
            }
            match status {
                Search::Done => {}
                Search::MoreCycles => {
                    out.incomplete = Some(Incomplete::MoreCycles);
                    return out;
                }
                Search::OutOfSteps => {
                    out.incomplete = Some(Incomplete::OutOfSteps);
                    return out;
                }
            }
            member[start] = false;
            let rest = &component[1..];
            pending.extend(self.components(rest, &member).into_iter().map(Reverse));
            for &n in rest {
                member[n] = false;
            }
        }
        out
    }

    /// The strongly connected components of more than one node of the subgraph made of the
    /// `member` nodes, each sorted (Tarjan's algorithm with an explicit stack). `nodes` lists
    /// the members.
    fn components(&self, nodes: &[usize], member: &[bool]) -> Vec<Vec<usize>> {
        const UNSEEN: usize = usize::MAX;
        let mut index = vec![UNSEEN; self.len()];
        let mut low = vec![0; self.len()];
        let mut on_stack = vec![false; self.len()];
        let mut stack = Vec::new();
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        for &root in nodes {
            if index[root] != UNSEEN {
                continue;
            }
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            calls.push((root, 0));
            while let Some(&(v, pos)) = calls.last() {
                if let Some(&w) = self.dependencies(v).get(pos) {
                    if let Some(top) = calls.last_mut() {
                        top.1 += 1;
                    }
                    if !member[w] {
                        continue;
                    }
                    if index[w] == UNSEEN {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        calls.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        out.push(component);
                    }
                }
            }
        }
        out
    }

    /// The shortest cycle through `start` among the `member` nodes (breadth-first), if any.
    fn shortest_cycle(&self, start: usize, member: &[bool]) -> Option<Vec<usize>> {
        let mut parent = vec![usize::MAX; self.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            for &next in self.dependencies(at) {
                if next == start {
                    let mut cycle = vec![at];
                    let mut n = at;
                    while n != start {
                        n = parent[n];
                        cycle.push(n);
                    }
                    cycle.reverse();
                    return Some(cycle);
                }
                if member[next] && parent[next] == usize::MAX {
                    parent[next] = at;
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// A cycle as text: `a -> b -> c -> a`.
    pub fn describe_cycle(&self, cycle: &[usize]) -> String {
        let mut s = String::new();
        for &n in cycle.iter().chain(cycle.first()) {
            if !s.is_empty() {
                s.push_str(" -> ");
            }
            s.push_str(self.name(n));
        }
        s
    }

    fn dependents_lists(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.len()];
        for i in 0..self.len() {
            for &d in self.dependencies(i) {
                out[d].push(i);
            }
        }
        out
    }
}

/// The dependency DAG of an application's subcharts.
pub fn subchart_dag(app: &crate::api::Application) -> Dag {
    Dag::new(
        app.spec
            .subcharts
            .iter()
            .map(|s| (s.name.as_str(), s.dependencies.iter().map(String::as_str))),
    )
}

/// The dependency DAG of a group's applications.
pub fn app_dag(spec: &crate::api::ApplicationGroupSpec) -> Dag {
    Dag::new(
        spec.applications
            .iter()
            .map(|a| (a.name.as_str(), a.dependencies.iter().map(String::as_str))),
    )
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
        assert_eq!(c.incomplete, None);
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
        assert_eq!(c.incomplete, Some(Incomplete::MoreCycles));
        assert_eq!(c.cycles.len(), MAX_CYCLES);
    }

    fn ring(n: usize) -> Dag {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        Dag::new((0..n).map(|i| {
            (
                names[i].as_str(),
                std::iter::once(names[(i + 1) % n].as_str()),
            )
        }))
    }

    #[test]
    fn a_long_ring_is_one_cycle_found_without_recursion() {
        // 50,000 nodes: the recursive search overflowed the stack from about 13,000.
        let g = ring(50_000);
        let c = g.cycles();
        assert_eq!(c.incomplete, None);
        assert_eq!(c.cycles.len(), 1);
        assert_eq!(c.cycles[0], (0..50_000).collect::<Vec<_>>());
    }

    #[test]
    fn the_step_budget_is_honest_and_still_names_a_cycle() {
        // s -> l -> (a2 | b2) -> ... -> (a20 | b20) -> l, and l -> s last: 2^19 simple paths
        // through the ladder dead-end at `l` before the search tries l -> s.
        let layers = 20;
        let mut names = vec!["s".to_string(), "l".to_string()];
        for i in 2..=layers {
            names.push(format!("a{i}"));
            names.push(format!("b{i}"));
        }
        let layer = |i: usize| vec![names[2 * i - 2].clone(), names[2 * i - 1].clone()];
        let mut deps: Vec<Vec<String>> = vec![vec!["l".into()]];
        let mut l = layer(2);
        l.push("s".into());
        deps.push(l);
        for i in 2..=layers {
            let next = if i == layers {
                vec!["l".into()]
            } else {
                layer(i + 1)
            };
            deps.push(next.clone());
            deps.push(next);
        }
        let g = Dag::new(
            names
                .iter()
                .zip(&deps)
                .map(|(n, d)| (n.as_str(), d.iter().map(String::as_str))),
        );
        let c = g.cycles();
        assert_eq!(c.incomplete, Some(Incomplete::OutOfSteps));
        assert_eq!(c.cycles, vec![vec![0, 1]]);
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
