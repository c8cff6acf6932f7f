//! JSON Lines: one object per line with `url` or `path`, optional `id` and
//! `models`.

use std::fmt;
use std::io::BufRead;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::collect::Fields;
use super::line_reader::LineReader;
use super::validate::{self, Field};
use super::InputError;

/// The fields of one line this tool reads; others are ignored.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a JSON object")]
struct Line {
    url: Option<String>,
    path: Option<String>,
    #[serde(default, deserialize_with = "id")]
    id: Option<String>,
    models: Option<Vec<String>>,
}

/// Reads an `id` that is a string or an integer, as a string.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct Id(String);

    impl<'de> Deserialize<'de> for Id {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(IdVisitor)
        }
    }

    struct IdVisitor;

    impl Visitor<'_> for IdVisitor {
        type Value = Id;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Id, E> {
            Ok(Id(value.to_string()))
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<Id, E> {
            Ok(Id(value))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Id, E> {
            Ok(Id(value.to_string()))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Id, E> {
            Ok(Id(value.to_string()))
        }
    }

    Ok(Option::<Id>::deserialize(deserializer)?.map(|Id(id)| id))
}

/// Reads every non-blank line as one JSON object.
#[derive(Debug)]
pub(super) struct JsonlParser<R> {
    lines: LineReader<R>,
    /// The current line's fields (the record borrows its image from here).
    parsed: Option<Line>,
}

impl<R: BufRead> JsonlParser<R> {
    pub(super) fn new(lines: LineReader<R>) -> Self {
        JsonlParser {
            lines,
            parsed: None,
        }
    }

    /// The next record and its line; `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// The first bad line, as [`super::read_records`] describes.
    pub(super) fn next(&mut self) -> Result<Option<(usize, Fields<'_>)>, InputError> {
        let lines = &mut self.lines;
        let line = loop {
            let Some(line) = lines.next_line()? else {
                return Ok(None);
            };
            if !lines.text().trim().is_empty() {
                break line;
            }
        };
        let text = lines.text();
        if !text.trim_start().starts_with('{') {
            return Err(lines.error(not_an_object(text)));
        }
        let parsed: Line = serde_json::from_str(text).map_err(|e| lines.error(json_reason(&e)))?;
        if parsed.models.is_none() {
            if let Some(reason) = models_elsewhere(text) {
                return Err(lines.error(reason));
            }
        }
        let parsed = self.parsed.insert(parsed);
        let fields = fields(parsed).map_err(|reason| self.lines.error(reason))?;
        Ok(Some((line, fields)))
    }
}

/// Picks the image and cleans the id and models of a parsed line.
fn fields(parsed: &mut Line) -> Result<Fields<'_>, String> {
    let (field, image) = match (non_empty(&parsed.url), non_empty(&parsed.path)) {
        (Some(url), None) => (Field::Url, url),
        (None, Some(path)) => (Field::Any, path),
        (None, None) => return Err("no image: give a non-empty `url` or `path`".to_string()),
        (Some(_), Some(_)) => return Err("both `url` and `path` are given: give one".to_string()),
    };
    if parsed.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
        return Err("empty `id`: leave it out to number the record".to_string());
    }
    let models = parsed
        .models
        .as_ref()
        .and_then(|models| validate::clean_models(models.iter().map(String::as_str)));
    Ok(Fields {
        id: parsed.id.take(),
        field,
        image,
        models,
    })
}

/// Why a line without `models` is refused when another field of it holds
/// model ids (see `validate::model_for_models`). Only a line that may name
/// a model id is parsed a second time, as a map of every field.
fn models_elsewhere(text: &str) -> Option<String> {
    use serde_json::Value;
    if !crate::models::may_name_one(text) {
        return None;
    }
    let Ok(InLineOrder(all)) = serde_json::from_str::<InLineOrder>(text) else {
        return None;
    };
    // `"models": null` is a `models` that says nothing: not a typo.
    if all.iter().any(|(name, _)| name == "models") {
        return None;
    }
    all.iter()
        .filter(|(name, _)| validate::looks_like_models(name))
        .find_map(|(name, value)| {
            let values: Vec<&str> = match value {
                Value::String(id) => vec![id.as_str()],
                Value::Array(ids) => ids.iter().filter_map(Value::as_str).collect(),
                _ => return None,
            };
            validate::model_for_models(name, values)
        })
}

/// A JSON object's fields in the order the line has them (serde_json's map
/// sorts them), so that a refusal names the first offending field.
struct InLineOrder(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for InLineOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = InLineOrder;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<InLineOrder, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry()? {
                    fields.push(field);
                }
                Ok(InLineOrder(fields))
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

/// Why a line that does not start with `{` is refused.
fn not_an_object(text: &str) -> String {
    use serde_json::Value;
    let found = match serde_json::from_str::<Value>(text) {
        Err(e) => return json_reason(&e),
        Ok(Value::Null) => "null",
        Ok(Value::Bool(_)) => "a boolean",
        Ok(Value::Number(_)) => "a number",
        Ok(Value::String(_)) => "a string",
        Ok(Value::Array(_)) => "an array",
        Ok(Value::Object(_)) => "an object",
    };
    format!("bad record: expected a JSON object, found {found}")
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// serde's message without its "at line 1 column N" (the line is always 1
/// here; the caller gives the real one), with the column kept.
fn json_reason(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Data => "bad record",
        _ => "invalid JSON",
    };
    let message = error.to_string();
    if error.line() == 0 {
        return format!("{what}: {message}");
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let reason = message.strip_suffix(&suffix).unwrap_or(&message);
    format!("{what}: {reason} (column {})", error.column())
}
