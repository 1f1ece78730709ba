//! The module map holds: no import cycle among the modules that carry the
//! flow (stages, the job store, notifications, views, media, publish,
//! policy, the API and the event intake), and no source file with more than
//! about 600 lines of code before its tests.
//!
//! Read from the sources themselves: every `crate::a::b` path in a file's
//! non-test part is an edge from the file's module to `a` (or to `jobs::b`
//! inside `jobs`, whose submodules are modules of their own here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const JOBS_PARTS: &[&str] = &[
    "store",
    "model",
    "pipeline",
    "worker",
    "progress",
    "state",
    "sweeper",
    "cdn_sweeper",
];

/// Modules a cycle may not pass through.
const FLOW: &[&str] = &[
    "stages", "jobs::", "notify", "views", "media", "publish", "policy", "api", "events",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/jobs/store/outbox.rs` → `jobs::store`; `src/media/hls.rs` → `media`.
fn module_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    match parts.as_slice() {
        [jobs, sub, ..] if jobs == "jobs" && sub != "mod" => format!("jobs::{sub}"),
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

/// The part of a file before its test module.
fn code_part(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

fn edges(module: &str, code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let target = if name == "jobs" {
            let after = &rest[name.len()..];
            let sub: String = after
                .strip_prefix("::")
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if JOBS_PARTS.contains(&sub.as_str()) {
                format!("jobs::{sub}")
            } else {
                // `crate::jobs::{State, Variation}`: the re-exported row types.
                "jobs::model".to_string()
            }
        } else {
            name
        };
        if !target.is_empty() && target != module {
            out.insert(target);
        }
    }
    if let Some(sub) = module.strip_prefix("jobs::") {
        let mut rest = code;
        while let Some(i) = rest.find("super::") {
            rest = &rest[i + "super::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if JOBS_PARTS.contains(&name.as_str()) && name != sub {
                out.insert(format!("jobs::{name}"));
            }
        }
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        t.index.insert(v.to_string(), t.next);
        t.low.insert(v.to_string(), t.next);
        t.next += 1;
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let next: Vec<String> = t.g.get(v).into_iter().flatten().cloned().collect();
        for w in next {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let rel = f.strip_prefix(&src).unwrap();
        let module = module_of(rel);
        let text = std::fs::read_to_string(&f).unwrap();
        g.entry(module.clone())
            .or_default()
            .extend(edges(&module, code_part(&text)));
    }
    g
}

#[test]
fn no_import_cycle_runs_through_the_modules_of_the_flow() {
    let bad: Vec<Vec<String>> = cycles(&graph())
        .into_iter()
        .filter(|c| c.iter().any(|m| FLOW.iter().any(|f| m.starts_with(f))))
        .collect();
    assert!(bad.is_empty(), "import cycles: {bad:?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The check above is only worth something if a cycle would show.
    let mut g = BTreeMap::new();
    g.insert(
        "stages".to_string(),
        BTreeSet::from(["jobs::store".to_string()]),
    );
    g.insert(
        "jobs::store".to_string(),
        BTreeSet::from(["views".to_string()]),
    );
    g.insert("views".to_string(), BTreeSet::from(["stages".to_string()]));
    g.insert("media".to_string(), BTreeSet::new());
    assert_eq!(cycles(&g), [["jobs::store", "stages", "views"]]);
    assert_eq!(
        edges(
            "stages",
            "use crate::jobs::{Variation};\nuse crate::media::hls;"
        ),
        BTreeSet::from(["jobs::model".to_string(), "media".to_string()])
    );
}

#[test]
fn no_source_file_has_more_than_about_600_lines_of_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut long = Vec::new();
    for f in files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = code_part(&text).lines().count();
        if lines > 620 {
            long.push(format!(
                "{} ({lines})",
                f.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(long.is_empty(), "split these by concern: {long:?}");
}
