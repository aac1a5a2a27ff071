//! Where in the file a field is: field paths (`workload[0].offering`) and their
//! line:column, from the spans of `toml::de::DeTable`.

use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a field path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a field of the scenario, shown as `zones[0].pods[1].name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath::default()
    }

    /// This path followed by table key `k`.
    pub fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path followed by array index `i`.
    pub fn idx(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

fn bare(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if bare(k) { f.write_str(k)? } else { write!(f, "{k:?}")? }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A scenario's text with its (best-effort) span tree.
pub(crate) struct Doc<'a> {
    text: &'a str,
    root: Spanned<DeTable<'a>>,
}

/// A node of the span tree: its path, key span (table entries) and value span.
struct Node {
    path: FieldPath,
    key: Option<Range<usize>>,
    value: Range<usize>,
    depth: usize,
}

fn contains(r: &Range<usize>, off: usize) -> bool {
    r.start <= off && (off < r.end || off == r.start)
}

impl<'a> Doc<'a> {
    /// Parses `text` leniently: a syntax error still leaves the rest of the tree.
    pub fn new(text: &'a str) -> Doc<'a> {
        let (root, _errors) = DeTable::parse_recoverable(text);
        Doc { text, root }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut off = offset.min(self.text.len());
        while !self.text.is_char_boundary(off) {
            off -= 1;
        }
        let before = &self.text[..off];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[start..].chars().count() + 1)
    }

    fn nodes(&self) -> Vec<Node> {
        fn walk(v: &DeValue<'_>, path: &FieldPath, out: &mut Vec<Node>) {
            match v {
                DeValue::Table(t) => {
                    for (k, child) in t.iter() {
                        let p = path.key(k.get_ref());
                        out.push(Node {
                            path: p.clone(),
                            key: Some(k.span()),
                            value: child.span(),
                            depth: p.0.len(),
                        });
                        walk(child.get_ref(), &p, out);
                    }
                }
                DeValue::Array(a) => {
                    for (i, child) in a.iter().enumerate() {
                        let p = path.idx(i);
                        out.push(Node {
                            path: p.clone(),
                            key: None,
                            value: child.span(),
                            depth: p.0.len(),
                        });
                        walk(child.get_ref(), &p, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (k, child) in self.root.get_ref().iter() {
            let p = FieldPath::root().key(k.get_ref());
            out.push(Node {
                path: p.clone(),
                key: Some(k.span()),
                value: child.span(),
                depth: 1,
            });
            walk(child.get_ref(), &p, &mut out);
        }
        out
    }

    /// The most specific field at byte `offset`: the smallest key or value span
    /// holding it, else the last key starting earlier on the same line.
    pub fn path_at(&self, offset: usize) -> FieldPath {
        let nodes = self.nodes();
        let best = nodes
            .iter()
            .filter_map(|n| {
                let spans = n.key.iter().chain(std::iter::once(&n.value));
                let len = spans.filter(|r| contains(r, offset)).map(|r| r.len()).min()?;
                Some((len, std::cmp::Reverse(n.depth), n))
            })
            .min_by_key(|(len, depth, _)| (*len, *depth));
        if let Some((_, _, n)) = best {
            return n.path.clone();
        }
        let line = self.line_col(offset).0;
        nodes
            .iter()
            .filter_map(|n| n.key.as_ref().map(|k| (k.start, n)))
            .filter(|(start, _)| *start <= offset && self.line_col(*start).0 == line)
            .max_by_key(|(start, n)| (*start, n.depth))
            .map(|(_, n)| n.path.clone())
            .unwrap_or_default()
    }

    /// The value at `path`, with the span to point at: the key for table
    /// entries, the value for array elements.
    fn get(&self, path: &FieldPath) -> Option<(&DeValue<'a>, Range<usize>)> {
        let mut cur: Option<(&DeValue<'a>, Range<usize>)> = None;
        for seg in &path.0 {
            let next = match (seg, cur.as_ref().map(|c| c.0)) {
                (Seg::Key(k), None) => self
                    .root
                    .get_ref()
                    .iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| (v.get_ref(), key.span())),
                (Seg::Key(k), Some(DeValue::Table(t))) => t
                    .iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| (v.get_ref(), key.span())),
                (Seg::Index(i), Some(DeValue::Array(a))) => a.get(*i).map(|v| (v.get_ref(), v.span())),
                _ => None,
            };
            cur = Some(next?);
        }
        cur
    }

    /// Byte offset of the deepest existing prefix of `path` (the file start if
    /// none; the root for the empty path).
    pub fn offset_of(&self, path: &FieldPath) -> Option<usize> {
        (0..=path.0.len())
            .rev()
            .find_map(|n| self.get(&FieldPath(path.0[..n].to_vec())).map(|(_, span)| span.start))
    }

    /// For an error reported on a whole table (serde reports errors inside
    /// internally tagged enums that way), finds the entry the message is
    /// about: the unknown field it names, or the value it quotes.
    pub fn refine(&self, path: &FieldPath, message: &str) -> Option<(FieldPath, usize)> {
        let (DeValue::Table(t), _) = self.get(path)? else {
            return None;
        };
        if let Some(name) = between(message, "unknown field `", "`")
            && let Some((k, _)) = t.iter().find(|(k, _)| k.get_ref() == name)
        {
            return Some((path.key(name), k.span().start));
        }
        // Values the message quotes: string "x", 'x' or `x`.
        let quoted: Vec<&str> = [
            between(message, "string \"", "\""),
            between(message, "'", "'"),
            between(message, "`", "`"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let matches = |v: &Spanned<DeValue<'_>>| match v.get_ref() {
            DeValue::String(s) => quoted.contains(&s.as_ref()),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                self.text.get(v.span()).is_some_and(|raw| quoted.contains(&raw.trim()))
            }
            _ => false,
        };
        t.iter().find_map(|(k, v)| {
            let hit = matches(v) || v.get_ref().as_array().is_some_and(|a| a.iter().any(matches));
            hit.then(|| (path.key(k.get_ref()), k.span().start))
        })
    }
}

fn between<'m>(s: &'m str, open: &str, close: &str) -> Option<&'m str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# top\n[scenario]\nname = \"x\"\n\n[[workload]]\naccount = \"a\"\narrival = { kind = \"burst\", count = 3 }\n\n[settings]\n\"vm.allocation.algorithm\" = \"firstfit\"\n";

    #[test]
    fn paths_display_like_toml() {
        let p = FieldPath::root().key("zones").idx(0).key("pods").idx(1).key("name");
        assert_eq!(p.to_string(), "zones[0].pods[1].name");
        assert_eq!(
            FieldPath::root()
                .key("settings")
                .key("vm.allocation.algorithm")
                .to_string(),
            "settings.\"vm.allocation.algorithm\""
        );
    }

    #[test]
    fn finds_lines_of_paths_and_paths_of_offsets() {
        let d = Doc::new(TEXT);
        let line = |p: &FieldPath| d.line_col(d.offset_of(p).unwrap()).0;
        let w = FieldPath::root().key("workload").idx(0);
        assert_eq!(line(&w), 5);
        assert_eq!(line(&w.key("account")), 6);
        assert_eq!(line(&w.key("arrival").key("count")), 7);
        // Missing fields fall back to their table.
        assert_eq!(line(&w.key("zone")), 5);
        assert_eq!(
            line(&FieldPath::root().key("settings").key("vm.allocation.algorithm")),
            10
        );
        let off = TEXT.find("count = 3").unwrap();
        assert_eq!(d.path_at(off).to_string(), "workload[0].arrival.count");
        assert_eq!(d.line_col(off), (7, 29));
    }

    #[test]
    fn refines_table_errors_to_the_entry() {
        let d = Doc::new(TEXT);
        let arrival = FieldPath::root().key("workload").idx(0).key("arrival");
        let (p, _) = d
            .refine(&arrival, "invalid type: integer `3`, expected a string")
            .unwrap();
        assert_eq!(p.to_string(), "workload[0].arrival.count");
        let (p, _) = d.refine(&arrival, "unknown variant `burst`").unwrap();
        assert_eq!(p.to_string(), "workload[0].arrival.kind");
    }
}
