//! A loose well-formedness check for the sweep's SVG chart, shared by the
//! `restb bench` tests (`tests/bench.rs`, through `mod common`) and the
//! sweep's unit tests inside the binary (`src/bench/tests.rs`, through a
//! `#[path]` module: the binary cannot see `tests/common`).

/// Loose XML check: starts with `<svg`, every opened tag is closed in order,
/// and attribute values hold no raw `<`.
pub fn assert_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(40)]);
    let mut open: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find('<') {
        let end = rest[at..].find('>').expect("every tag ends") + at;
        let tag = &rest[at + 1..end];
        assert!(!tag.contains('<'), "a raw '<' inside <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("a tag name");
            open.push(name.to_string());
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(rest.trim(), "", "text after </svg>");
}
