//! The streaming input: a checking pass that keeps no records, then the
//! records one at a time; the same records and errors as `read_records`.

use restb::input::{read_records, Format, Input, ReadOptions};
use std::io::Write;

fn options(format: Format) -> ReadOptions {
    let mut options = ReadOptions::new(format);
    options.check_files = false;
    options
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// Checks then streams `text` from a file; the error text, if any.
fn stream(format: Format, text: &str) -> Result<Vec<restb::input::Record>, String> {
    let file = file(text);
    let mut input = Input::open(file.path(), &options(format)).map_err(|e| e.to_string())?;
    let mut visited = Vec::new();
    let checked = input
        .check(|record| visited.push(record.clone()))
        .map_err(|e| {
            e.to_string()
                .replace(&file.path().display().to_string(), "in")
        })?;
    let records: Vec<_> = input.records().unwrap().collect();
    assert_eq!(checked.records as usize, records.len());
    assert_eq!(visited, records, "both passes see the same records");
    Ok(records)
}

#[test]
fn streaming_matches_reading_whole() {
    let cases = [
        (
            Format::Csv,
            "id,url\na,https://x/1\n,https://x/2\nb,https://x/3\n",
        ),
        (
            Format::Jsonl,
            "{\"url\":\"https://x/1\"}\n\n{\"url\":\"https://x/2\",\"id\":9}\n",
        ),
        (Format::Lines, "# c\nhttps://x/1\nhttps://x/2\n"),
    ];
    for (format, text) in cases {
        let whole = read_records(text.as_bytes(), "in", &options(format)).unwrap();
        assert_eq!(stream(format, text).unwrap(), whole, "{text}");
    }
}

#[test]
fn a_repeated_id_is_reported_at_its_second_use_naming_the_first() {
    // "2" is given on line 4 and is also the number of the record on line 3.
    let text = "id,url\na,https://x/1\n,https://x/2\n2,https://x/3\na,https://x/4\n";
    let whole = read_records(text.as_bytes(), "in", &options(Format::Csv)).unwrap_err();
    assert_eq!(
        whole.to_string(),
        "in:4: duplicate id \"2\": already used on line 3"
    );
    assert_eq!(stream(Format::Csv, text).unwrap_err(), whole.to_string());
    let text = "{\"url\":\"https://x/1\",\"id\":\"q\"}\n{\"url\":\"https://x/2\",\"id\":\"q\"}\n";
    assert_eq!(
        stream(Format::Jsonl, text).unwrap_err(),
        "in:2: duplicate id \"q\": already used on line 1"
    );
}

#[test]
fn bad_lines_and_empty_inputs_name_the_file_and_line() {
    assert_eq!(
        stream(Format::Lines, "https://x/1\nftp://x/2\n").unwrap_err(),
        "in:2: unsupported URL scheme `ftp` in `ftp://x/2`: a URL needs http:// or https://"
    );
    assert_eq!(
        stream(Format::Lines, "# none\n").unwrap_err(),
        "in: no images in input"
    );
    assert_eq!(
        stream(Format::Csv, "name\n").unwrap_err(),
        "in:1: the header has no `url` or `path` column (found: \"name\")"
    );
}

#[test]
fn standard_input_is_spooled_and_read_twice() {
    let text = "https://x/1\nhttps://x/2\nhttps://x/3\n";
    let mut input = Input::spool(text.as_bytes(), "<stdin>", &options(Format::Lines)).unwrap();
    assert_eq!(input.check(|_| {}).unwrap().records, 3);
    let mut records = input.records().unwrap();
    assert_eq!(records.size_hint(), (3, Some(3)));
    let ids: Vec<String> = records.by_ref().map(|r| r.id).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(records.error().is_none());
    let err = Input::spool(&b"ftp://x\n"[..], "<stdin>", &options(Format::Lines))
        .unwrap()
        .check(|_| {})
        .unwrap_err();
    assert!(err.to_string().starts_with("<stdin>:1: "), "{err}");
}

#[test]
fn an_input_changed_after_its_check_stops_the_stream_with_an_error() {
    let mut file = file("https://x/1\nhttps://x/2\n");
    let mut input = Input::open(file.path(), &options(Format::Lines)).unwrap();
    input.check(|_| {}).unwrap();
    file.write_all(b"https://x/3\n").unwrap();
    let mut records = input.records().unwrap();
    assert_eq!(records.by_ref().count(), 2, "never more than were checked");
    let err = records.error().expect("the change is reported").to_string();
    assert!(
        err.ends_with(":3: the input changed after it was checked: more records than before"),
        "{err}"
    );
    file.as_file().set_len(12).unwrap();
    let mut records = input.records().unwrap();
    assert_eq!(records.by_ref().count(), 1);
    let err = records.error().unwrap().to_string();
    assert!(err.ends_with("1 records instead of 2"), "{err}");
}

/// Regression: the streaming pass checked each local image again, so one
/// deleted mid-run stopped the stream there as a changed input, and every
/// job after it went unsent. It is that job's failure (when its image is
/// read), not a change of the input.
#[test]
fn a_local_image_removed_after_the_check_does_not_stop_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<_> = (1..=3)
        .map(|n| {
            let path = dir.path().join(format!("{n}.jpg"));
            std::fs::write(&path, b"\xFF\xD8\xFF\xE0 a JPEG").unwrap();
            path
        })
        .collect();
    let list: String = images
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    let file = file(&list);
    let checking = ReadOptions::new(Format::Lines);
    assert!(checking.check_files, "the check looks at the files");
    let mut input = Input::open(file.path(), &checking).unwrap();
    input.check(|_| {}).unwrap();
    std::fs::remove_file(&images[1]).unwrap();
    let mut records = input.records().unwrap();
    assert_eq!(records.by_ref().count(), 3);
    assert!(records.error().is_none(), "{:?}", records.error());
}

#[test]
fn many_distinct_ids_pass_the_hashed_check() {
    // Every id repeats nowhere; the checking pass must not refuse any.
    let mut text = String::from("id,url\n");
    for i in 0..200_000 {
        text.push_str(&format!("id-{i},https://x/{i}.jpg\n"));
    }
    let mut input = Input::spool(text.as_bytes(), "big.csv", &options(Format::Csv)).unwrap();
    assert_eq!(input.check(|_| {}).unwrap().records, 200_000);
}
