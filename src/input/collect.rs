//! Gathers the records every format reads, with the checks they share.

use super::validate::{self, Field};
use super::{InputError, ReadOptions, Record};

/// One record's fields as a format read them, before the shared checks.
#[derive(Debug)]
pub(super) struct Fields<'a> {
    /// The record's own id, when it gives one.
    pub id: Option<String>,
    /// Which kind of field the image text came from.
    pub field: Field,
    /// The image URL or path, trimmed.
    pub image: &'a str,
    /// The record's models, cleaned; `None` when it does not say.
    pub models: Option<Vec<String>>,
}

/// Checks records one by one and keeps them in input order.
#[derive(Debug)]
pub(super) struct Collector<'a> {
    source_name: &'a str,
    options: &'a ReadOptions,
    records: Vec<Record>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(source_name: &'a str, options: &'a ReadOptions) -> Self {
        Collector {
            source_name,
            options,
            records: Vec::new(),
        }
    }

    /// Checks and keeps the record that starts at `line`.
    ///
    /// # Errors
    ///
    /// A bad image URL or path, or an unknown model id, at `line`.
    pub(super) fn push(&mut self, line: usize, fields: Fields<'_>) -> Result<(), InputError> {
        let at = |reason: String| InputError::at(self.source_name, line, reason);
        let image = validate::image(fields.field, fields.image, self.options).map_err(at)?;
        if let Some(models) = &fields.models {
            validate::check_models(models, self.options).map_err(at)?;
        }
        let id = fields
            .id
            .unwrap_or_else(|| (self.records.len() + 1).to_string());
        self.records.push(Record {
            id,
            image,
            models: fields.models,
            line,
        });
        Ok(())
    }

    /// The records, once the input has ended.
    ///
    /// # Errors
    ///
    /// An input without records, or two records with the same id (at the
    /// line of the second, naming the first).
    pub(super) fn finish(self) -> Result<Vec<Record>, InputError> {
        if self.records.is_empty() {
            return Err(InputError::whole(self.source_name, "no images in input"));
        }
        if let Some((first, second)) = first_duplicate(&self.records) {
            let (first, second) = (&self.records[first], &self.records[second]);
            return Err(InputError::at(
                self.source_name,
                second.line,
                format!(
                    "duplicate id {:?}: already used on line {}",
                    second.id, first.line
                ),
            ));
        }
        Ok(self.records)
    }
}

/// The indices of the first repeated id in input order: the pair whose second
/// record comes earliest. Sorting indices keeps memory to one word a record.
fn first_duplicate(records: &[Record]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by(|&a, &b| records[a].id.cmp(&records[b].id).then(a.cmp(&b)));
    order
        .windows(2)
        .filter(|pair| records[pair[0]].id == records[pair[1]].id)
        .map(|pair| (pair[0], pair[1]))
        .min_by_key(|&(_, second)| second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ImageSource;

    fn record(id: &str, line: usize) -> Record {
        Record {
            id: id.to_string(),
            image: ImageSource::parse("https://x/a.jpg"),
            models: None,
            line,
        }
    }

    #[test]
    fn the_earliest_repeat_is_found() {
        let ids = ["a", "b", "c", "b", "a", "b"];
        let records: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| record(id, i))
            .collect();
        assert_eq!(first_duplicate(&records), Some((1, 3)));
        assert_eq!(first_duplicate(&records[..3]), None);
        assert_eq!(first_duplicate(&[]), None);
    }
}
