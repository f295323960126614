//! `.assetsignore`: the files of the assets directory that are never
//! assets, in `.gitignore`'s syntax, as wrangler reads it from the top of
//! the directory when it uploads.
//!
//! The rules: blank lines and `#` lines are skipped (`\#`, `\!` escape
//! them), trailing spaces are dropped; `!` re-includes; the last matching
//! pattern wins; a pattern ending in `/` matches directories only; a
//! pattern with a `/` at its start or middle is relative to the directory,
//! any other matches a name at any depth; `*` and `?` stop at `/`, `[...]`
//! is a character class, `**` in `**/`, `/**/` and a final `/**` spans
//! directories; and nothing inside an ignored directory can be re-included.

/// One compiled line.
#[derive(Debug, Clone)]
struct Pattern {
    tokens: Vec<Token>,
    negated: bool,
    dir_only: bool,
    /// Matches the whole relative path rather than a name at any depth.
    anchored: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**/`: zero or more whole directories.
    AnyDirs,
    /// A final `/**`: a `/` and at least one more character.
    Inside,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// The parsed `.assetsignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses the text of an `.assetsignore` file.
    pub fn parse(text: &str) -> IgnoreRules {
        IgnoreRules {
            patterns: text.lines().filter_map(compile).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the path (relative, `/`-separated, without a leading `/`)
    /// is ignored: itself, or any directory above it.
    pub fn ignores(&self, rel: &str, is_dir: bool) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let mut end = 0;
        while let Some(i) = rel[end..].find('/') {
            end += i;
            if self.ignores_one(&rel[..end], true) {
                return true;
            }
            end += 1;
        }
        self.ignores_one(rel, is_dir)
    }

    fn ignores_one(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let mut ignored = false;
        for p in &self.patterns {
            if p.dir_only && !is_dir {
                continue;
            }
            let subject = if p.anchored { rel } else { name };
            let text: Vec<char> = subject.chars().collect();
            if matches(&p.tokens, &text) {
                ignored = !p.negated;
            }
        }
        ignored
    }
}

fn compile(line: &str) -> Option<Pattern> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut line = trim_trailing_spaces(line);
    let negated = line.starts_with('!');
    // Drops the `!`, or the backslash of an escaped leading `!` or `#`.
    if negated || line.starts_with("\\!") || line.starts_with("\\#") {
        line = &line[1..];
    }
    let dir_only = line.ends_with('/') && !line.ends_with("\\/");
    let body = if dir_only {
        &line[..line.len() - 1]
    } else {
        line
    };
    if body.is_empty() {
        return None;
    }
    let anchored = body.contains('/');
    let body = body.strip_prefix('/').unwrap_or(body);
    let tokens = tokenize(body);
    if tokens.is_empty() {
        return None;
    }
    Some(Pattern {
        tokens,
        negated,
        dir_only,
        anchored,
    })
}

/// Drops trailing spaces, keeping one escaped with a backslash.
fn trim_trailing_spaces(line: &str) -> &str {
    let mut end = line.len();
    while end > 0 && line.as_bytes()[end - 1] == b' ' {
        if end >= 2 && line.as_bytes()[end - 2] == b'\\' {
            break;
        }
        end -= 1;
    }
    &line[..end]
}

fn tokenize(body: &str) -> Vec<Token> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(Token::Char(next));
                    i += 2;
                } else {
                    i += 1;
                }
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                let mut j = i;
                while chars.get(j) == Some(&'*') {
                    j += 1;
                }
                if at_segment_start && chars.get(j) == Some(&'/') {
                    out.push(Token::AnyDirs);
                    i = j + 1;
                } else if at_segment_start && j == chars.len() && i > 0 {
                    // `a/**`: drop the `/` already pushed; it is part of Inside.
                    out.pop();
                    out.push(Token::Inside);
                    i = j;
                } else if at_segment_start && j == chars.len() {
                    // A lone `**` matches everything.
                    out.push(Token::AnyDirs);
                    out.push(Token::Star);
                    i = j;
                } else {
                    out.push(Token::Star);
                    i = j;
                }
            }
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::One);
                i += 1;
            }
            '[' => match class(&chars, i) {
                Some((token, next)) => {
                    out.push(token);
                    i = next;
                }
                None => {
                    out.push(Token::Char('['));
                    i += 1;
                }
            },
            _ => {
                out.push(Token::Char(c));
                i += 1;
            }
        }
    }
    out
}

/// A `[...]` class starting at `start`; `None` when it is not closed.
fn class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            ranges.push((lo, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
}

/// Backtracking match of the whole text; patterns are short, so this stays
/// cheap.
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match first {
        Token::Char(c) => text.first() == Some(c) && matches(rest, &text[1..]),
        Token::One => text.first().is_some_and(|c| *c != '/') && matches(rest, &text[1..]),
        Token::Class { negated, ranges } => match text.first() {
            Some(&c) if c != '/' => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                inside != *negated && matches(rest, &text[1..])
            }
            _ => false,
        },
        Token::Star => {
            for i in 0..=text.len() {
                if matches(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&'/') {
                    return false;
                }
            }
            false
        }
        Token::AnyDirs => {
            if matches(rest, text) {
                return true;
            }
            text.iter()
                .enumerate()
                .filter(|(_, c)| **c == '/')
                .any(|(i, _)| matches(rest, &text[i + 1..]))
        }
        Token::Inside => text.first() == Some(&'/') && text.len() > 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text)
    }

    #[test]
    fn names_match_at_any_depth() {
        let r = rules("*.ts\nsecret.txt\n");
        assert!(r.ignores("a.ts", false));
        assert!(r.ignores("src/deep/b.ts", false));
        assert!(r.ignores("x/secret.txt", false));
        assert!(!r.ignores("a.tsx", false));
        assert!(!r.ignores("secret.txt.bak", false));
    }

    #[test]
    fn a_slash_anchors_to_the_directory() {
        let r = rules("/top.txt\nsrc/*.js\n");
        assert!(r.ignores("top.txt", false));
        assert!(!r.ignores("sub/top.txt", false));
        assert!(r.ignores("src/a.js", false));
        assert!(!r.ignores("src/x/a.js", false));
        assert!(!r.ignores("other/src/a.js", false));
    }

    #[test]
    fn directories_and_everything_inside_them() {
        let r = rules("node_modules/\n/build\n");
        assert!(r.ignores("node_modules", true));
        assert!(!r.ignores("node_modules", false));
        assert!(r.ignores("node_modules/x/index.js", false));
        assert!(r.ignores("a/node_modules/y.js", false));
        assert!(r.ignores("build/out.js", false));
    }

    #[test]
    fn double_stars() {
        let r = rules("**/cache\nlogs/**\na/**/z\n");
        assert!(r.ignores("cache", false));
        assert!(r.ignores("p/q/cache", false));
        assert!(r.ignores("logs/x/y.log", false));
        assert!(!r.ignores("logs", false));
        assert!(r.ignores("a/z", false));
        assert!(r.ignores("a/b/c/z", false));
        assert!(!r.ignores("b/a/z", false));
    }

    #[test]
    fn negation_last_match_wins_but_not_inside_an_ignored_directory() {
        let r = rules("*.html\n!index.html\nsecret/\n!secret/ok.txt\n");
        assert!(r.ignores("a.html", false));
        assert!(!r.ignores("index.html", false));
        assert!(!r.ignores("blog/index.html", false));
        assert!(r.ignores("secret/ok.txt", false));
    }

    #[test]
    fn comments_escapes_classes_and_spaces() {
        let r = rules("# comment\n\n\\#hash\n\\!bang\nfile[0-9].txt\nx[!a]y\ntrail   \n");
        assert!(r.ignores("#hash", false));
        assert!(r.ignores("!bang", false));
        assert!(r.ignores("file7.txt", false));
        assert!(!r.ignores("filex.txt", false));
        assert!(r.ignores("xby", false));
        assert!(!r.ignores("xay", false));
        assert!(r.ignores("trail", false));
        assert!(!r.ignores("comment", false));
    }

    #[test]
    fn star_stops_at_a_slash() {
        let r = rules("/a*\n");
        assert!(r.ignores("abc", false));
        // Inside an ignored directory `abc/`, so ignored through the parent.
        assert!(r.ignores("abc/d", false));
        let r = rules("/x/*.js\n");
        assert!(!r.ignores("x/y/z.js", false));
    }
}
