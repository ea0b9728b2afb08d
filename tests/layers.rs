//! The shape of `src/`: imports point down the table of layers at the top of
//! `src/lib.rs`, with no circle between modules or between the files of one
//! module, and `cli` imported only inside `cli` (and there, a subcommand's
//! file imports only `cli::args`). The table is read from `src/lib.rs`, so
//! the documented layers and the checked ones are the same.
//!
//! Paths are read from the source text: comments and literals are blanked
//! out, then every path that starts with `crate`, `super` or `self`
//! (including `use` groups) is resolved against the module it is written
//! in, inline `mod tests { .. }` included. The last tests plant each kind
//! of violation in a copy of the real tree and check that it is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// `src/`'s files: path relative to `src/` → text.
fn read_tree() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The module a file defines: `gce/mod.rs` → [gce], `gce/iap.rs` → [gce, iap].
fn module_of(rel: &str) -> Module {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The layers from the table in `src/lib.rs`: module → (layer number, layer name).
fn layers(lib: &str) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let Some((num, name)) = cells[0].split_once(' ') else {
            continue;
        };
        let Ok(num) = num.parse::<u32>() else {
            continue;
        };
        for m in cells[1].split(", ") {
            let m = m.trim_matches('`').to_string();
            assert!(
                out.insert(m.clone(), (num, name.to_string())).is_none(),
                "`{m}` is in two layers"
            );
        }
    }
    out
}

/// The text with comments, strings and char literals blanked (newlines
/// kept, so line numbers still hold).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        match skipped_end(&c, i) {
            Some(end) => {
                out.extend(
                    c[i..end]
                        .iter()
                        .map(|&x| if x == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where the comment or literal that starts at `c[i]` ends (exclusive),
/// if one starts there.
fn skipped_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied();
    // Just past the closing `q`, over backslash escapes.
    let quoted = |q: char| {
        let mut j = i + 1;
        while j < c.len() && c[j] != q {
            j += if c[j] == '\\' { 2 } else { 1 };
        }
        (j + 1).min(c.len())
    };
    match (c[i], at(i + 1)) {
        ('/', Some('/')) => Some(
            c[i..]
                .iter()
                .position(|&x| x == '\n')
                .map_or(c.len(), |p| i + p),
        ),
        ('/', Some('*')) => {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                match (c[j], at(j + 1)) {
                    ('/', Some('*')) => (depth, j) = (depth + 1, j + 2),
                    ('*', Some('/')) => (depth, j) = (depth - 1, j + 2),
                    _ => j += 1,
                }
            }
            Some(j.min(c.len()))
        }
        ('"', _) => Some(quoted('"')),
        // A char literal ('a', '\n', '\u{1F}'); otherwise a lifetime.
        ('\'', Some('\\')) => Some(quoted('\'')),
        ('\'', _) if at(i + 2) == Some('\'') => Some(quoted('\'')),
        // A raw string, r"..", r#".."#, br"..", not the end of a name.
        ('r', _) | ('b', Some('r'))
            if i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_') =>
        {
            let k = if c[i] == 'b' { i + 2 } else { i + 1 };
            let h = c[k..].iter().take_while(|&&x| x == '#').count();
            if at(k + h) != Some('"') {
                return None;
            }
            let closes = |j: usize| {
                c[j] == '"' && c[j + 1..].iter().take(h).filter(|&&x| x == '#').count() == h
            };
            let j = (k + h + 1..c.len()).find(|&j| closes(j)).unwrap_or(c.len());
            Some((j + 1 + h).min(c.len()))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep, // ::
    Open,
    Close,
    Other,
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let x = c[i];
        if x == '\n' {
            line += 1;
            i += 1;
        } else if x.is_whitespace() {
            i += 1;
        } else if x.is_alphabetic() || x == '_' {
            let s: String = c[i..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            i += s.chars().count();
            out.push((Tok::Ident(s), line));
        } else if x == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((
                match x {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

fn tok(t: &[(Tok, usize)], i: usize) -> Option<&Tok> {
    t.get(i).map(|x| &x.0)
}

/// Reads `::a::b` or `::{..}` after a path prefix, from `t[i]`; pushes
/// every full path; returns where it stopped.
fn tails(
    t: &[(Tok, usize)],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        if tok(t, i) != Some(&Tok::Sep) {
            out.push(path);
            return i;
        }
        match tok(t, i + 1) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 2;
            }
            Some(Tok::Open) => return group(t, i + 2, &path, out),
            _ => {
                out.push(path);
                return i + 1;
            }
        }
    }
}

/// The items of a use group `{a::b, self, c as d, {..}}` after `path`,
/// from just inside its `{`; returns the index past its `}`.
fn group(t: &[(Tok, usize)], mut i: usize, path: &[String], out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match tok(t, i) {
            Some(Tok::Ident(s)) if s == "self" => {
                out.push(path.to_vec());
                i += 1;
            }
            // `as NAME`: a local name, not a path.
            Some(Tok::Ident(s)) if s == "as" => i += 2,
            Some(Tok::Ident(s)) => {
                let mut p = path.to_vec();
                p.push(s.clone());
                i = tails(t, i + 1, p, out);
            }
            Some(Tok::Open) => i = group(t, i + 1, path, out),
            Some(Tok::Close) | None => return i + 1,
            _ => i += 1, // commas, `*`
        }
    }
}

/// Every module-relative path a file names: (line, resolved target path).
fn references(rel: &str, src: &str) -> Vec<(usize, Module)> {
    let file_mod = module_of(rel);
    let t = tokens(&strip(src));
    let mut inline: Vec<(String, usize)> = Vec::new(); // (name, brace depth it opened at)
    let (mut depth, mut out, mut i) = (0usize, Vec::new(), 0);
    while i < t.len() {
        match &t[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (t.get(i + 1), t.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(k)
                if (k == "crate" || k == "super" || k == "self")
                    && (i == 0 || t[i - 1].0 != Tok::Sep)
                    && tok(&t, i + 1) == Some(&Tok::Sep) =>
            {
                let line = t[i].1;
                let mut here: Module = file_mod.clone();
                here.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut base = match k.as_str() {
                    "crate" => Vec::new(),
                    "self" => here.clone(),
                    _ => here[..here.len().saturating_sub(1)].to_vec(),
                };
                let mut j = i + 1;
                // More `super`s.
                while tok(&t, j) == Some(&Tok::Sep)
                    && tok(&t, j + 1) == Some(&Tok::Ident("super".into()))
                {
                    base.pop();
                    j += 2;
                }
                let mut found = Vec::new();
                let end = tails(&t, j, base, &mut found);
                out.extend(found.into_iter().map(|p| (line, p)));
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The violations in `tree` (path relative to `src/` → text), one line each.
fn check(tree: &BTreeMap<String, String>) -> Vec<String> {
    let lib = tree.get("lib.rs").expect("src/lib.rs");
    let layer = layers(lib);
    let modules: BTreeSet<Module> = tree
        .keys()
        .filter(|k| *k != "main.rs")
        .map(|k| module_of(k))
        .collect();
    let mut bad = Vec::new();
    for m in modules.iter().filter(|m| m.len() == 1) {
        if !layer.contains_key(&m[0]) {
            bad.push(format!(
                "module `{}` is in no layer: add it to the table in src/lib.rs",
                m[0]
            ));
        }
    }
    // Edges between sibling modules: parent → (child → children it uses).
    let mut siblings: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, src) in tree.iter().filter(|(k, _)| *k != "main.rs") {
        let from = module_of(rel);
        if from.is_empty() {
            continue;
        }
        for (line, path) in references(rel, src) {
            // The longest known module the path names.
            let Some(to) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            if to.is_empty() {
                continue;
            }
            let at = format!("src/{rel}:{line}: `{}`", path.join("::"));
            let (f, t) = (&from[0], &to[0]);
            if f != t {
                if let (Some((fl, fname)), Some((tl, tname))) = (layer.get(f), layer.get(t))
                    && tl < fl
                {
                    bad.push(format!(
                        "{at}: `{f}` ({fl} {fname}) imports from a layer above it: `{t}` ({tl} {tname})"
                    ));
                }
                if t == "cli" {
                    bad.push(format!("{at}: `cli` is imported outside `cli` (by `{f}`)"));
                }
                if t == "fuzzing" {
                    bad.push(format!(
                        "{at}: `fuzzing` is test support; `{f}` must not import it"
                    ));
                }
            }
            if f == "cli" && t == "cli" && from.len() > 1 {
                let ok = to.len() > 1 && (to[1] == from[1] || to[1] == "args");
                if !ok {
                    bad.push(format!(
                        "{at}: `cli::{}` imports `{}`; a subcommand's file imports only `cli::args`",
                        from[1],
                        to.join("::")
                    ));
                }
            }
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if from.len() > common && to.len() > common {
                siblings
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .insert(to[common].clone());
            }
        }
    }
    for (parent, g) in &siblings {
        if let Some(c) = circle(g) {
            let at = if parent.is_empty() {
                "the crate".to_string()
            } else {
                format!("`{}`", parent.join("::"))
            };
            bad.push(format!("import circle in {at}: {}", c.join(" → ")));
        }
    }
    bad
}

/// A circle in `g`, as the names along it (first repeated at the end).
fn circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn src_has_no_upward_import_no_circle_and_cli_stays_in_cli() {
    let tree = read_tree();
    let bad = check(&tree);
    assert!(
        bad.is_empty(),
        "{} violation(s) of the layers in src/lib.rs:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_top_level_module_is_in_exactly_one_layer() {
    let tree = read_tree();
    let table = layers(&tree["lib.rs"]);
    assert!(
        table.len() >= 6,
        "the table in src/lib.rs was not found: {table:?}"
    );
    let declared: BTreeSet<String> = tree["lib.rs"]
        .lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")?
                .strip_suffix(';')
                .map(String::from)
        })
        .collect();
    let listed: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(
        declared, listed,
        "src/lib.rs declares these modules; its table lists those"
    );
}

/// The real tree with `line` added at the top of `file`.
fn planted(file: &str, line: &str) -> Vec<String> {
    let mut tree = read_tree();
    let text = tree
        .get_mut(file)
        .unwrap_or_else(|| panic!("no src/{file}"));
    *text = format!("{line}\n{text}");
    check(&tree)
}

fn assert_caught(bad: Vec<String>, want: &str) {
    assert!(
        bad.iter().any(|b| b.contains(want)),
        "wanted a violation with {want:?}, got {bad:#?}"
    );
}

#[test]
fn a_planted_upward_import_is_caught() {
    assert_caught(
        planted("relay/frame.rs", "use crate::setup::plan::Vm;"),
        "imports from a layer above it: `setup`",
    );
    // Inside a use group, and through an inline test module's `super`.
    assert_caught(
        planted("net/http.rs", "use crate::{error::UserError, gce::Api};"),
        "`gce`",
    );
    assert_caught(
        planted(
            "timefmt.rs",
            "mod t { fn f() { super::super::auth::SCOPE; } }",
        ),
        "`timefmt` (6 leaves) imports from a layer above it: `auth`",
    );
}

#[test]
fn a_planted_cli_import_is_caught() {
    assert_caught(
        planted("gce/mod.rs", "use crate::cli::args::runtime;"),
        "`cli` is imported outside `cli` (by `gce`)",
    );
    assert_caught(
        planted(
            "setup/putty.rs",
            "fn f() { super::super::cli::args::home_file(&[]); }",
        ),
        "outside `cli`",
    );
    assert_caught(
        planted("cli/ssh.rs", "use super::setup::SetupArgs;"),
        "imports only `cli::args`",
    );
    assert_caught(
        planted("cli/completions.rs", "fn f() { super::Cli::command(); }"),
        "imports only `cli::args`",
    );
    assert_caught(
        planted(
            "cli/args/target.rs",
            "use crate::cli::forward::ForwardArgs;",
        ),
        "imports only `cli::args`",
    );
}

#[test]
fn a_planted_circle_is_caught() {
    // Same layer, each way: error → ssh → error.
    assert_caught(
        planted("error.rs", "use crate::ssh::quote;"),
        "import circle in the crate",
    );
    // Between the files of one module: vm → certs → vm.
    assert_caught(
        planted("setup/vm.rs", "fn f() { crate::setup::certs::plan; }"),
        "import circle in `setup`",
    );
    assert_caught(
        planted("fsutil.rs", "use crate::fuzzing::TARGETS;"),
        "test support",
    );
}

#[test]
fn comments_strings_and_lifetimes_are_not_imports() {
    let src = "// crate::cli::x\n/* crate::cli /* nested */ crate::cli */\nfn f<'a>(x: &'a str) -> char { let _ = \"crate::cli::y\"; let _ = r#\"crate::cli\"#; '\"' }\nfn g() { crate::ssh::quote::x(); }\n";
    let refs = references("gce/mod.rs", src);
    let paths: Vec<String> = refs
        .iter()
        .map(|(l, p)| format!("{l}:{}", p.join("::")))
        .collect();
    assert_eq!(paths, vec!["4:ssh::quote::x".to_string()]);
}

#[test]
fn use_groups_nested_and_renamed_are_read_whole() {
    let src = "use crate::{error::UserError, {ssh::quote as q, gce::{self, Api}}};
use super::fix::Fix;
";
    let paths: Vec<String> = references("doctor/firewall.rs", src)
        .iter()
        .map(|(l, p)| format!("{l}:{}", p.join("::")))
        .collect();
    assert_eq!(
        paths,
        [
            "1:error::UserError",
            "1:ssh::quote",
            "1:gce",
            "1:gce::Api",
            "2:doctor::fix::Fix"
        ]
    );
}
