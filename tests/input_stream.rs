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
        err.ends_with(
            ":3: the input changed after it was checked: it is longer than the 24 bytes checked"
        ),
        "{err}"
    );
    // The first record's bytes are intact, but they are compared with the
    // checked ones a block at a time, and this block is shorter.
    file.as_file().set_len(12).unwrap();
    let mut records = input.records().unwrap();
    assert_eq!(records.by_ref().count(), 0);
    let err = records.error().unwrap().to_string();
    assert!(
        err.ends_with(
            ":1: the input changed after it was checked: it ends at byte 12 instead of 24"
        ),
        "{err}"
    );
}

/// An input of `count` records in `format`, the record numbered `n` naming
/// the image `n.jpg` (and, in CSV and JSONL, the id `id-n`); each record is
/// one line, so line `n` holds record `n` (after CSV's header).
fn numbered(format: Format, count: usize) -> String {
    let mut text = String::new();
    if format == Format::Csv {
        text.push_str("id,url\n");
    }
    for n in 1..=count {
        let url = format!("https://example.com/p/{n}.jpg");
        text.push_str(&match format {
            Format::Csv => format!("id-{n},{url}\n"),
            Format::Jsonl => format!("{{\"id\":\"id-{n}\",\"url\":\"{url}\"}}\n"),
            _ => format!("{url}\n"),
        });
    }
    text
}

/// Overwrites line `number` (1-based) of `path` in place with the text of
/// line `with`, which has the same length.
fn overwrite_line(path: &std::path::Path, number: usize, with: usize) {
    use std::io::{Seek, SeekFrom};
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines[number - 1].len(), lines[with - 1].len());
    let offset: usize = lines[..number - 1].iter().map(|l| l.len()).sum();
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset as u64)).unwrap();
    file.write_all(lines[with - 1].as_bytes()).unwrap();
}

/// Checks an input of 8,000 records, reads `before` records of the stream,
/// overwrites line 6,900 with line 6,901 (a same-length change), and reads
/// the rest: what the stream handed out in order, the records checked, and
/// the stream's error.
fn change_mid_stream(
    format: Format,
    before: usize,
) -> (
    Vec<restb::input::Record>,
    Vec<restb::input::Record>,
    Option<restb::input::InputError>,
) {
    let file = file(&numbered(format, 8000));
    let mut input = Input::open(file.path(), &options(format)).unwrap();
    let mut checked = Vec::new();
    input.check(|record| checked.push(record.clone())).unwrap();
    let mut records = input.records().unwrap();
    let mut handed: Vec<_> = records.by_ref().take(before).collect();
    overwrite_line(file.path(), 6900, 6901);
    handed.extend(records.by_ref());
    let error = records.error().cloned();
    (handed, checked, error)
}

/// Regression: a line overwritten in place between the passes (same length,
/// so the count held) was read as changed: line 6,900's image was sent
/// twice under two records and its own never, and nothing said so. Now no
/// record is handed out from bytes other than those checked, and the stream
/// stops at the block of the change, naming the line where it was seen.
#[test]
fn a_line_changed_in_place_after_the_check_stops_the_stream_at_it() {
    for format in [Format::Lines, Format::Csv, Format::Jsonl] {
        for before in [0, 100] {
            let (handed, checked, error) = change_mid_stream(format, before);
            let error = error.unwrap_or_else(|| panic!("{format}, {before}: no error"));
            let line = error.line.expect("the error names a line");
            let header = usize::from(format == Format::Csv);
            let changed_line = 6900 + header;
            assert!(line > 1 && line <= changed_line, "{format}: {error}");
            assert_eq!(handed.len(), line - 1 - header, "{format}: {error}");
            assert_eq!(
                handed,
                checked[..handed.len()],
                "{format}: only checked records"
            );
            assert!(
                error
                    .reason
                    .starts_with("the input changed after it was checked: its bytes "),
                "{error}"
            );
        }
    }
}

/// The window that remains: a change to bytes the stream already read (a
/// block of 64 KiB ahead of its records) is not seen, and the records come
/// from what was read, which was compared with what was checked.
#[test]
fn a_change_behind_the_read_block_is_not_sent() {
    let file = file(&numbered(Format::Lines, 100));
    let mut input = Input::open(file.path(), &options(Format::Lines)).unwrap();
    let mut checked = Vec::new();
    input.check(|record| checked.push(record.clone())).unwrap();
    let mut records = input.records().unwrap();
    let mut handed: Vec<_> = records.by_ref().take(1).collect();
    overwrite_line(file.path(), 50, 51);
    handed.extend(records.by_ref());
    assert!(records.error().is_none(), "{:?}", records.error());
    assert_eq!(handed, checked);
}

#[test]
fn a_changed_csv_header_fails_the_stream_at_its_start() {
    let file = file("id,url\na,https://x/1\n");
    let mut input = Input::open(file.path(), &options(Format::Csv)).unwrap();
    input.check(|_| {}).unwrap();
    std::fs::write(file.path(), "ID,url\na,https://x/1\n").unwrap();
    let err = input.records().unwrap_err().to_string();
    assert!(
        err.ends_with(":1: the input changed after it was checked: its bytes 0 to 20 differ (on this line or after it)"),
        "{err}"
    );
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

/// Review: a pipe given by its path (`restb run <(zcat list.gz)`, a FIFO)
/// was refused with "cannot read: Illegal seek" when the records were read
/// again after the check; it is copied first now, as standard input is.
#[test]
fn a_pipe_given_by_its_path_is_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("list");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            pipe.write_all(b"https://x/1.jpg\nhttps://x/2.jpg\n")
                .unwrap();
        })
    };
    let mut input = Input::open(&fifo, &options(Format::Lines)).unwrap();
    writer.join().unwrap();
    let checked = input.check(|_| {}).unwrap();
    assert_eq!(checked.records, 2);
    let records: Vec<_> = input.records().unwrap().collect();
    assert_eq!(records.len(), 2);
    // A directory is no pipe: said as such, not as a copy that failed.
    let error = Input::open(dir.path(), &options(Format::Lines)).unwrap_err();
    assert!(
        error.to_string().ends_with(": is a directory, not a file"),
        "{error}"
    );
}
