//! neon-watchdog: a process watchdog for Linux. README.md's "Architecture" section maps each
//! concept to the module of the same name. The layers, imports pointing down only (the test
//! `layers` below keeps them so):
//!
//! ```text
//! cli, daemon (the run loop, signals), install, docs      the edges
//! control (the daemon's socket: server and client)
//! engine (one pass), status, web (the status pages)       orchestration
//! checks, actions, notify, heartbeat, metrics, summary    what a pass does
//! state, config, events, logging                          the file, the settings, the news
//! policy                                                  the pure decision and its memory
//! spawn, procs, files, http_client, docker, redact, error the shell's tools
//! sd_notify                                               (systemd's notification socket)
//! util, parallel, exit                                    leaves: nothing of the crate
//! ```

pub mod actions;
pub mod checks;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod docker;
pub mod docs;
pub mod engine;
pub mod error;
pub mod events;
pub mod exit;
pub mod files;
pub mod heartbeat;
pub mod http_client;
pub mod install;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod parallel;
pub mod policy;
pub mod procs;
pub mod redact;
pub mod sd_notify;
pub mod spawn;
pub mod state;
pub mod status;
pub mod summary;
pub mod util;
pub mod web;

/// The layers hold: no top-level module imports one that imports it back (directly or
/// around a loop), and the leaves import nothing of the crate. Read from the sources, as text:
/// `crate::NAME` outside inline test modules and comments.
#[cfg(test)]
mod layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each top-level module and the top-level modules it names.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("read src").flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        for f in files {
            let rel = f.strip_prefix(&src).expect("under src");
            let first = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" || rel.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).expect("read source");
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            let entry = out.entry(module.clone()).or_default();
            for line in code.lines() {
                let line = line.split("//").next().unwrap_or_default();
                let mut rest = line;
                while let Some(i) = rest.find("crate::") {
                    rest = &rest[i + "crate::".len()..];
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        // `use crate::{a, b::C}`
                        Some(group) => group
                            .split('}')
                            .next()
                            .unwrap_or_default()
                            .split(',')
                            .map(|s| s.trim().split("::").next().unwrap_or_default())
                            .collect(),
                        None => vec![rest
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next()
                            .unwrap_or_default()],
                    };
                    for n in names {
                        if !n.is_empty() && n != module {
                            entry.insert(n.to_string());
                        }
                    }
                }
            }
        }
        out
    }

    /// A path from `from` back to `to`, if any.
    fn path_back(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        for next in graph.get(from).into_iter().flatten() {
            if next == to {
                return Some(vec![from.to_string(), to.to_string()]);
            }
            if seen.insert(next.clone()) {
                if let Some(mut p) = path_back(graph, next, to, seen) {
                    p.insert(0, from.to_string());
                    return Some(p);
                }
            }
        }
        None
    }

    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let graph = imports();
        assert!(graph.len() > 20, "too few modules read: {graph:?}");
        for m in graph.keys() {
            if let Some(cycle) = path_back(&graph, m, m, &mut BTreeSet::new()) {
                panic!("import cycle: {}", cycle.join(" -> "));
            }
        }
    }

    #[test]
    fn the_leaves_import_nothing_of_the_crate() {
        let graph = imports();
        for leaf in ["util", "parallel", "exit"] {
            assert_eq!(graph.get(leaf), Some(&BTreeSet::new()), "{leaf}");
        }
    }
}
