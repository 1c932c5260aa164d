//! Finds where each value of a RON document starts, by field path, so that
//! errors found after parsing (min > max, an unknown joint) can still name
//! `file:line:column`. It runs only on text that already parsed, so it is
//! lenient: anything it does not understand ends the scan, never panics.

/// 1-based line and column (in characters) of a value's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    pub line: usize,
    pub col: usize,
}

/// Every value's path (`safety.joints[2].position`) and start position.
/// Enum variant names and `Some(..)` wrappers do not appear in paths, as in
/// serde's view of the data.
pub fn locate_values(text: &str) -> Vec<(String, TextPosition)> {
    let mut scanner = Scanner { chars: text.chars().collect(), at: 0, line: 1, col: 1, found: Vec::new() };
    scanner.value(String::new(), 0);
    scanner.found
}

struct Scanner {
    chars: Vec<char>,
    at: usize,
    line: usize,
    col: usize,
    found: Vec<(String, TextPosition)>,
}

const MAX_DEPTH: usize = 64;

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn position(&self) -> TextPosition {
        TextPosition { line: self.line, col: self.col }
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    let mut depth = 1;
                    while depth > 0 {
                        match (self.bump(), self.peek()) {
                            (None, _) => return,
                            (Some('*'), Some('/')) => {
                                self.bump();
                                depth -= 1;
                            }
                            (Some('/'), Some('*')) => {
                                self.bump();
                                depth += 1;
                            }
                            _ => {}
                        }
                    }
                }
                // Extension attributes such as #![enable(implicit_some)].
                (Some('#'), Some('!')) => {
                    while let Some(c) = self.bump() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn identifier(&mut self) -> String {
        let mut ident = String::new();
        if self.peek() == Some('r') && self.peek_at(1) == Some('#') {
            self.bump();
            self.bump();
        }
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                ident.push(c);
                self.bump();
            } else {
                break;
            }
        }
        ident
    }

    fn is_ident_start(c: char) -> bool {
        c.is_alphabetic() || c == '_'
    }

    /// Scans one value whose path is `path`; false when the scan must stop.
    fn value(&mut self, path: String, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        self.skip_trivia();
        let start = self.position();
        self.found.push((path.clone(), start));
        match self.peek() {
            None => false,
            Some('"') => self.string(),
            Some('r') if self.is_raw_string_start() => self.raw_string(),
            Some('\'') => {
                self.bump();
                while let Some(c) = self.bump() {
                    if c == '\\' {
                        self.bump();
                    } else if c == '\'' {
                        break;
                    }
                }
                true
            }
            Some('[') => {
                self.bump();
                self.sequence(&path, ']', depth)
            }
            Some('{') => {
                self.bump();
                self.map(&path, depth)
            }
            Some('(') => {
                self.bump();
                self.parenthesized(&path, depth)
            }
            Some(c) if Self::is_ident_start(c) => {
                self.identifier();
                self.skip_trivia();
                if self.peek() == Some('(') {
                    self.bump();
                    // A variant or Some(..): the wrapper is not a path segment.
                    self.found.pop();
                    self.found.push((path.clone(), start));
                    self.parenthesized(&path, depth)
                } else {
                    true
                }
            }
            Some(_) => {
                // Number or other scalar: up to the next delimiter.
                while let Some(c) = self.peek() {
                    if matches!(c, ',' | ')' | ']' | '}') || c.is_whitespace() {
                        break;
                    }
                    self.bump();
                }
                true
            }
        }
    }

    fn is_raw_string_start(&self) -> bool {
        if self.peek() != Some('r') {
            return false;
        }
        let mut i = 1;
        while self.peek_at(i) == Some('#') {
            i += 1;
        }
        self.peek_at(i) == Some('"')
    }

    fn string(&mut self) -> bool {
        self.bump();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '"' => return true,
                _ => {}
            }
        }
        false
    }

    fn raw_string(&mut self) -> bool {
        self.bump(); // r
        let mut hashes = 0;
        while self.peek() == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // opening quote
        while let Some(c) = self.bump() {
            if c == '"' {
                let mut closing = 0;
                while closing < hashes && self.peek() == Some('#') {
                    self.bump();
                    closing += 1;
                }
                if closing == hashes {
                    return true;
                }
            }
        }
        false
    }

    fn sequence(&mut self, path: &str, close: char, depth: usize) -> bool {
        let mut index = 0;
        loop {
            self.skip_trivia();
            if self.peek() == Some(close) {
                self.bump();
                return true;
            }
            if !self.value(format!("{path}[{index}]"), depth + 1) {
                return false;
            }
            index += 1;
            if !self.separator(close) {
                return false;
            }
        }
    }

    /// After an element: a comma (then maybe the close) or the close itself.
    fn separator(&mut self, close: char) -> bool {
        self.skip_trivia();
        match self.peek() {
            Some(',') => {
                self.bump();
                true
            }
            Some(c) if c == close => true,
            _ => false,
        }
    }

    fn map(&mut self, path: &str, depth: usize) -> bool {
        loop {
            self.skip_trivia();
            if self.peek() == Some('}') {
                self.bump();
                return true;
            }
            let key_start = self.at;
            if !self.value(format!("{path}.<key>"), depth + 1) {
                return false;
            }
            self.found.pop();
            let key: String = self.chars[key_start..self.at].iter().collect::<String>().trim().trim_matches('"').to_string();
            self.skip_trivia();
            if self.peek() != Some(':') {
                return false;
            }
            self.bump();
            if !self.value(join(path, &key), depth + 1) {
                return false;
            }
            if !self.separator('}') {
                return false;
            }
        }
    }

    /// The inside of `( ... )`: named fields, or positional elements. A single
    /// positional element (newtype variant, `Some`) shares its parent's path.
    fn parenthesized(&mut self, path: &str, depth: usize) -> bool {
        self.skip_trivia();
        if self.is_named_field_ahead() {
            loop {
                self.skip_trivia();
                if self.peek() == Some(')') {
                    self.bump();
                    return true;
                }
                let name = self.identifier();
                if name.is_empty() {
                    return false;
                }
                self.skip_trivia();
                if self.peek() != Some(':') {
                    return false;
                }
                self.bump();
                if !self.value(join(path, &name), depth + 1) {
                    return false;
                }
                if !self.separator(')') {
                    return false;
                }
            }
        }
        // Positional: scan once to count elements, then label them.
        let first_found = self.found.len();
        let ok = self.sequence(path, ')', depth);
        let elements = self.found[first_found..]
            .iter()
            .filter(|(p, _)| p.strip_prefix(path).is_some_and(|rest| rest.starts_with('[') && rest.ends_with(']') && !rest[1..].contains('[')))
            .count();
        if elements == 1 {
            let single = format!("{path}[0]");
            for (p, _) in self.found[first_found..].iter_mut() {
                if let Some(rest) = p.strip_prefix(&single) {
                    *p = format!("{path}{rest}");
                }
            }
        }
        ok
    }

    fn is_named_field_ahead(&self) -> bool {
        let mut i = 0;
        if self.peek_at(0) == Some('r') && self.peek_at(1) == Some('#') {
            i = 2;
        }
        match self.peek_at(i) {
            Some(c) if Self::is_ident_start(c) => {}
            _ => return false,
        }
        while matches!(self.peek_at(i), Some(c) if c.is_alphanumeric() || c == '_') {
            i += 1;
        }
        while matches!(self.peek_at(i), Some(c) if c.is_whitespace()) {
            i += 1;
        }
        self.peek_at(i) == Some(':')
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position_of(text: &str, path: &str) -> Option<(usize, usize)> {
        locate_values(text).into_iter().find(|(p, _)| p == path).map(|(_, pos)| (pos.line, pos.col))
    }

    #[test]
    fn finds_nested_fields_lists_and_variants() {
        let text = "Launch(\n  name: \"x\",\n  robot: SerialArm(\n    joints: [\n      (name: \"a\", id: 1),\n      (name: \"b\", id: 2),\n    ],\n  ),\n  limits: Some((min: 1.0, max: -1.0)),\n)";
        assert_eq!(position_of(text, "name"), Some((2, 9)));
        assert_eq!(position_of(text, "robot"), Some((3, 10)));
        assert_eq!(position_of(text, "robot.joints[1]"), Some((6, 7)));
        assert_eq!(position_of(text, "robot.joints[1].id"), Some((6, 23)));
        assert_eq!(position_of(text, "limits.max"), Some((9, 32)));
    }

    #[test]
    fn skips_comments_strings_and_tuples() {
        let text = "(\n  // a comment with (parens: [\n  a: \"str ) ] , \\\" x\", /* block (: */ b: (1.0, 2.0, 3.0),\n  c: {\"k\": 4},\n)";
        assert_eq!(position_of(text, "b[2]"), Some((3, 53)));
        assert_eq!(position_of(text, "c.k"), Some((4, 12)));
    }
}
