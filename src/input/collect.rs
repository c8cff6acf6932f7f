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

/// Checks records one by one and numbers them; keeps none of them.
#[derive(Debug)]
pub(super) struct Checker {
    source_name: String,
    options: ReadOptions,
    /// Records checked so far.
    count: u64,
}

impl Checker {
    pub(super) fn new(source_name: &str, options: &ReadOptions) -> Self {
        Checker {
            source_name: source_name.to_string(),
            options: options.clone(),
            count: 0,
        }
    }

    /// Checks the record that starts at `line` and returns it.
    ///
    /// # Errors
    ///
    /// A bad image URL or path, or an unknown model id, at `line`.
    pub(super) fn record(&mut self, line: usize, fields: Fields<'_>) -> Result<Record, InputError> {
        let at = |reason: String| InputError::at(&self.source_name, line, reason);
        let image = validate::image(fields.field, fields.image, &self.options).map_err(at)?;
        if let Some(models) = &fields.models {
            validate::check_models(models, &self.options).map_err(at)?;
        }
        self.count += 1;
        let id = fields.id.unwrap_or_else(|| self.count.to_string());
        Ok(Record {
            id,
            image,
            models: fields.models,
            line,
        })
    }

    /// Records checked so far.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// The input's name, for errors.
    pub(super) fn source_name(&self) -> &str {
        &self.source_name
    }
}

/// The error of a repeated id: at the line of the second record, naming
/// the first's.
pub(super) fn duplicate_error(source_name: &str, first: &Record, second: &Record) -> InputError {
    InputError::at(
        source_name,
        second.line,
        format!(
            "duplicate id {:?}: already used on line {}",
            second.id, first.line
        ),
    )
}

/// The indices of the first repeated id in input order: the pair whose second
/// record comes earliest. Sorting indices keeps memory to one word a record.
pub(super) fn first_duplicate(records: &[Record]) -> Option<(usize, usize)> {
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
