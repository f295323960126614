//! XML in and out. Requests are parsed into a small element tree under
//! limits (bytes, depth, element count; no DTDs, no entities beyond XML's
//! five and character references); responses are written with escaping.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::S3Error;

/// Deepest nesting accepted in a request body (S3's bodies need 4).
pub const MAX_DEPTH: usize = 16;
/// Most elements in one request body (a CompleteMultipartUpload of 10,000
/// parts with checksums needs about 50,000).
pub const MAX_ELEMENTS: usize = 64 * 1024;
/// Largest request body parsed as XML.
pub const MAX_XML_BYTES: usize = 4 * 1024 * 1024;

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name (any namespace prefix removed).
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

fn malformed(why: impl std::fmt::Display) -> S3Error {
    S3Error::malformed_xml(format!(
        "The XML you provided was not well-formed or did not validate against our published schema: {why}"
    ))
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, S3Error> {
    if bytes.len() > MAX_XML_BYTES {
        return Err(malformed(format!(
            "the body is {} bytes, more than {MAX_XML_BYTES}",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("the body is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(e) => open(&mut stack, &root, &mut count, e.local_name().as_ref())?,
            Event::Empty(e) => {
                open(&mut stack, &root, &mut count, e.local_name().as_ref())?;
                close(&mut stack, &mut root)?;
            }
            Event::End(_) => close(&mut stack, &mut root)?,
            Event::Text(t) => {
                let s = t.decode().map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let ch = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c,
                    None => match r.decode().map_err(malformed)?.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(malformed(format!("unknown entity &{other};"))),
                    },
                };
                push_text(&mut stack, ch.encode_utf8(&mut [0; 4]))?;
            }
            Event::DocType(_) => return Err(malformed("document type declarations are refused")),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("the document is empty"))
}

fn open(
    stack: &mut Vec<Element>,
    root: &Option<Element>,
    count: &mut usize,
    local: &[u8],
) -> Result<(), S3Error> {
    *count += 1;
    if *count > MAX_ELEMENTS {
        return Err(malformed(format!("more than {MAX_ELEMENTS} elements")));
    }
    if root.is_some() {
        return Err(malformed("content after the root element"));
    }
    if stack.len() >= MAX_DEPTH {
        return Err(malformed(format!("nested deeper than {MAX_DEPTH}")));
    }
    let name = std::str::from_utf8(local)
        .map_err(|_| malformed("an element name is not UTF-8"))?
        .to_string();
    stack.push(Element {
        name,
        ..Element::default()
    });
    Ok(())
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) -> Result<(), S3Error> {
    let Some(done) = stack.pop() else {
        return Err(malformed("a closing tag without an opening one"));
    };
    match stack.last_mut() {
        Some(parent) => parent.children.push(done),
        None => *root = Some(done),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), S3Error> {
    match stack.last_mut() {
        Some(e) => e.text.push_str(s),
        None if s.trim().is_empty() => {}
        None => return Err(malformed("text outside the root element")),
    }
    Ok(())
}

/// A minimal XML writer: elements and escaped text.
pub struct Writer {
    out: String,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// The root element, with S3's namespace.
    pub fn root(&mut self, name: &str) {
        self.out
            .push_str(&format!("<{name} xmlns=\"{S3_NAMESPACE}\">"));
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        self.out.push_str(&quick_xml::escape::escape(text));
        self.close(name);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_request() {
        let doc = br#"<?xml version="1.0"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"a&amp;b"</ETag></Part>
  <Part><PartNumber>2</PartNumber><ETag>&#34;c&#x22;</ETag><Empty/></Part>
</CompleteMultipartUpload>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "CompleteMultipartUpload");
        let parts: Vec<_> = root.children_named("Part").collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].child_text("ETag"), Some("\"a&b\""));
        assert_eq!(parts[1].child_text("ETag"), Some("\"c\""));
        assert!(parts[1].child("Empty").is_some());
        assert_eq!(parts[1].child_text("PartNumber"), Some("2"));
    }

    #[test]
    fn refuses_what_it_should() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        for (doc, why) in [
            ("<a><b></a>", "not well-formed"),
            (
                "<!DOCTYPE x [<!ENTITY e \"boom\">]><a>&e;</a>",
                "document type",
            ),
            ("<a>&e;</a>", "unknown entity"),
            ("<a/><b/>", "after the root"),
            ("", "empty"),
            ("<a>", "ends inside"),
            (deep.as_str(), "nested deeper"),
        ] {
            let e = parse(doc.as_bytes()).unwrap_err();
            assert_eq!(e.code, "MalformedXML");
            assert!(e.message.contains(why), "{doc:?}: {}", e.message);
        }
        let many = "<a>".to_string() + &"<b/>".repeat(MAX_ELEMENTS) + "</a>";
        assert!(
            parse(many.as_bytes())
                .unwrap_err()
                .message
                .contains("elements")
        );
    }

    #[test]
    fn writes_escaped_text() {
        let mut w = Writer::new();
        w.root("R");
        w.leaf("Key", "a<b&\"c\"");
        w.close("R");
        let s = w.finish();
        assert!(s.ends_with(
            "<R xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Key>a&lt;b&amp;&quot;c&quot;</Key></R>"
        ));
        let back = parse(s.as_bytes()).unwrap();
        assert_eq!(back.child_text("Key"), Some("a<b&\"c\""));
    }
}
