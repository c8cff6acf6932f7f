//! The batch input readers against real files: each format's happy path and
//! every refusal, with the exact `FILE:LINE:` a user would see.

use std::fs;
use std::path::{Path, PathBuf};

use restb::api::ImageSource;
use restb::input::{read_path, read_records, Format, InputError, ReadOptions, Record};
use tempfile::TempDir;

/// A temporary directory holding the input files and two image files.
struct Dir {
    dir: TempDir,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::write(dir.path().join("a.jpg"), b"\xFF\xD8jpeg").expect("write a.jpg");
        fs::write(dir.path().join("b.jpg"), b"\xFF\xD8jpeg").expect("write b.jpg");
        fs::create_dir(dir.path().join("sub.jpg")).expect("create sub.jpg/");
        Dir { dir }
    }

    /// The path of a file in the directory, as text.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes `contents` to `name` and returns its path.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, contents).expect("write input");
        path
    }

    /// Writes `contents` to `name` and reads it with the format its
    /// extension implies, checking local files.
    fn read(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<Vec<Record>, InputError> {
        let path = self.write(name, contents);
        read_path(&path, &ReadOptions::new(Format::from_path(&path)))
    }

    /// Like [`Dir::read`], expecting an error at `line` whose reason
    /// contains `reason`; checks the whole `FILE:LINE: ` prefix.
    fn error_at(&self, name: &str, contents: impl AsRef<[u8]>, line: usize, reason: &str) {
        let err = self.read(name, contents).expect_err("an input error");
        let file = self.path(name);
        assert_eq!(err.source_name, file);
        assert_eq!(err.line, Some(line), "{err}");
        let message = err.to_string();
        let prefix = format!("{file}:{line}: ");
        assert!(message.starts_with(&prefix), "{message:?} lacks {prefix:?}");
        assert!(message.contains(reason), "{message:?} lacks {reason:?}");
    }
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

fn lines_of(records: &[Record]) -> Vec<usize> {
    records.iter().map(|r| r.line).collect()
}

fn models(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|m| m.to_string()).collect())
}

#[test]
fn csv_happy_path() {
    let dir = Dir::new();
    let input = format!(
        "Id, URL ,path,models\n\
         x1,https://example.com/1.jpg,,re_logo; re_condition_r1r6_global ;\n\
         \n\
         ,,{a},\n\
         x3,,{b},caption\n",
        a = dir.path("a.jpg"),
        b = dir.path("b.jpg"),
    );
    let records = dir.read("batch.CSV", input).unwrap();
    assert_eq!(ids(&records), ["x1", "2", "x3"]);
    assert_eq!(lines_of(&records), [2, 4, 5]);
    assert_eq!(
        records[0].image,
        ImageSource::Url("https://example.com/1.jpg".into())
    );
    assert_eq!(
        records[0].models,
        models(&["re_logo", "re_condition_r1r6_global"])
    );
    assert_eq!(
        records[1].image,
        ImageSource::File(dir.path("a.jpg").into())
    );
    assert_eq!(records[1].models, None);
    assert_eq!(records[2].models, models(&["caption"]));
}

#[test]
fn jsonl_happy_path() {
    let dir = Dir::new();
    let input = format!(
        "{{\"url\":\"https://example.com/1.jpg\",\"id\":\"first\",\"meta\":{{\"k\":1}}}}\n\
         \n\
         {{\"path\":{a:?},\"id\":42,\"models\":[\"re_logo\",\"caption\"]}}\n\
         {{\"url\":\"http://example.com/3.jpg\"}}\n",
        a = dir.path("a.jpg"),
    );
    for name in ["batch.jsonl", "batch.ndjson"] {
        let records = dir.read(name, &input).unwrap();
        assert_eq!(ids(&records), ["first", "42", "3"]);
        assert_eq!(lines_of(&records), [1, 3, 4]);
        assert_eq!(
            records[1].image,
            ImageSource::File(dir.path("a.jpg").into())
        );
        assert_eq!(records[1].models, models(&["re_logo", "caption"]));
        assert_eq!(records[2].models, None);
    }
}

#[test]
fn lines_happy_path() {
    let dir = Dir::new();
    let input = format!(
        "# listing photos\r\n\r\nhttps://example.com/1.jpg\r\n  {a}  \r\n\t# done\r\n",
        a = dir.path("a.jpg"),
    );
    let records = dir.read("urls.txt", input).unwrap();
    assert_eq!(ids(&records), ["1", "2"]);
    assert_eq!(lines_of(&records), [3, 4]);
    assert_eq!(
        records[1].image,
        ImageSource::File(dir.path("a.jpg").into())
    );
}

#[test]
fn stdin_is_read_through_read_records() {
    let options = ReadOptions::new(Format::Lines);
    let records = read_records(&b"https://example.com/1.jpg\n"[..], "<stdin>", &options).unwrap();
    assert_eq!(ids(&records), ["1"]);
    let err = read_records(&b""[..], "<stdin>", &options).unwrap_err();
    assert_eq!(err.to_string(), "<stdin>: no images in input");
    let err = read_records(&b"\n\nftp://x\n"[..], "<stdin>", &options).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("<stdin>:3: unsupported URL scheme `ftp`"),
        "{err}"
    );
}

#[test]
fn a_file_that_cannot_be_opened() {
    let dir = Dir::new();
    let missing = dir.dir.path().join("missing.csv");
    let err = read_path(&missing, &ReadOptions::new(Format::Csv)).unwrap_err();
    assert_eq!(err.line, None);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot open: ", missing.display())),
        "{err}"
    );
    // "-" is a file name here; the caller handles standard input.
    let err = read_path(Path::new("-"), &ReadOptions::new(Format::Lines)).unwrap_err();
    assert!(err.to_string().starts_with("-: cannot open: "), "{err}");
}

#[test]
fn invalid_utf8_names_the_line_of_the_first_bad_byte() {
    let dir = Dir::new();
    dir.error_at(
        "a.txt",
        b"https://x/1\nhttps://x/\xC3(\n",
        2,
        "invalid UTF-8",
    );
    dir.error_at(
        "a.csv",
        b"url\nhttps://x/1\n\"https://x/\n\xFF\"\n",
        4,
        "invalid UTF-8",
    );
    dir.error_at(
        "a.jsonl",
        b"{\"url\":\"https://x/1\"}\n\n{\"id\":\"\xFE\"}\n",
        3,
        "invalid UTF-8",
    );
}

/// Review: a file whose lines end in a lone CR read as one line: a list's
/// or a JSONL's first line was a bad URL or object, and one over 1 MiB was
/// "longer than 1 MiB". A CSV reads CR line ends itself (and so still
/// does), and `\r\r\n` (Python's csv module on Windows) is no lone CR.
#[test]
fn lines_ending_in_a_lone_cr_are_refused_by_name() {
    let dir = Dir::new();
    for (name, text) in [
        ("cr.txt", "https://x/1\rhttps://x/2\r"),
        (
            "cr.jsonl",
            "{\"url\":\"https://x/1\"}\r{\"url\":\"https://x/2\"}\r",
        ),
    ] {
        dir.error_at(name, text, 1, "lines end in a lone CR");
    }
    let crs = |head: &str, line: &dyn Fn(usize) -> String| -> String {
        let rest: String = (0..60_000).map(line).collect();
        format!("{head}\n{rest}")
    };
    let big = crs("https://x/a.jpg", &|n| format!("https://x/{n}.jpg\r"));
    dir.error_at("big.txt", big, 2, "lines end in a lone CR");
    let big_csv = crs("id,url", &|n| format!("{n},https://x/{n}.jpg\r"));
    dir.error_at("big.csv", big_csv, 2, "lines end in a lone CR");
    for (name, text) in [
        ("cr.csv", "id,url\r1,https://x/1\r2,https://x/2\r"),
        (
            "crlf.csv",
            "id,url\r\n1,https://x/1\r\n2,\"https://x/2\"\r\n",
        ),
        (
            "crcrlf.csv",
            "id,url\r\r\n1,https://x/1\r\r\n2,https://x/2\r\r\n",
        ),
    ] {
        let records = dir
            .read(name, text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ids(&records), ["1", "2"], "{name}");
    }
    let records = dir
        .read("crcrlf.txt", "https://x/1\r\r\nhttps://x/2\r\r\n")
        .unwrap();
    assert_eq!(records.len(), 2);
}

#[test]
fn empty_inputs_are_refused() {
    let dir = Dir::new();
    for (name, input) in [
        ("e.csv", ""),
        ("h.csv", "id,url\n\n"),
        ("e.jsonl", "\n  \n"),
        ("e.txt", "# nothing\n\n"),
    ] {
        let err = dir.read(name, input).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no images in input", dir.path(name))
        );
    }
}

#[test]
fn urls_need_http_or_https_and_a_host() {
    let dir = Dir::new();
    dir.error_at(
        "a.txt",
        "https://x/1\nftp://x\n",
        2,
        "unsupported URL scheme `ftp`",
    );
    dir.error_at("b.txt", "https://\n", 1, "URL has no host");
    dir.error_at(
        "c.txt",
        "https://x/1\nwww.example.com/a.jpg\n",
        2,
        "a URL needs http:// or https://",
    );
    dir.error_at("d.csv", "url\nhttps://\n", 2, "URL has no host");
    dir.error_at(
        "e.jsonl",
        "{\"url\":\"ftp://x/1.jpg\"}\n",
        1,
        "unsupported URL scheme",
    );
}

#[test]
fn duplicate_ids_name_both_lines() {
    let dir = Dir::new();
    let input = "id,url\na,https://x/1\nb,https://x/2\n\na,https://x/3\n";
    dir.error_at(
        "d.csv",
        input,
        5,
        "duplicate id \"a\": already used on line 2",
    );
    let input = "{\"url\":\"https://x/1\",\"id\":7}\n{\"url\":\"https://x/2\",\"id\":\"7\"}\n";
    dir.error_at(
        "d.jsonl",
        input,
        2,
        "duplicate id \"7\": already used on line 1",
    );
}

#[test]
fn unknown_models_are_refused_unless_allowed() {
    let dir = Dir::new();
    let input = "url,models\nhttps://x/1,re_logo\nhttps://x/2,re_logo;re_logoo;re_new\n";
    dir.error_at("m.csv", input, 3, "unknown model ids `re_logoo`, `re_new`");
    let jsonl = "{\"url\":\"https://x/1\",\"models\":[\"re_logoo\"]}\n";
    dir.error_at("m.jsonl", jsonl, 1, "unknown model id `re_logoo`");

    let path = dir.write("m2.csv", input);
    let mut options = ReadOptions::new(Format::Csv);
    options.allow_unknown_models = true;
    let records = read_path(&path, &options).unwrap();
    assert_eq!(
        records[1].models,
        models(&["re_logo", "re_logoo", "re_new"])
    );
}

#[test]
fn local_paths_must_be_regular_files_when_checked() {
    let dir = Dir::new();
    let input = format!("{}\n{}\n", dir.path("a.jpg"), dir.path("nope.jpg"));
    dir.error_at("f.txt", &input, 2, "image file not found");
    let input = format!("path\n{}\n", dir.path("sub.jpg"));
    dir.error_at("f.csv", input, 2, "not a regular file");

    // Unchecked, a missing file passes: it fails later, at its own job.
    let path = dir.write("g.txt", format!("{}\n", dir.path("nope.jpg")));
    let mut options = ReadOptions::new(Format::Lines);
    options.check_files = false;
    assert_eq!(read_path(&path, &options).unwrap().len(), 1);
}

#[test]
fn lines_longer_than_one_mebibyte_are_refused() {
    let dir = Dir::new();
    let mut input = b"https://x/1\nhttps://x/".to_vec();
    input.resize(input.len() + (1 << 20), b'a');
    input.extend(b"\nhttps://x/3\n");
    dir.error_at("l.txt", &input, 2, "line is longer than 1 MiB");
    let mut jsonl = b"{\"url\":\"https://x/1\"}\n{\"url\":\"".to_vec();
    jsonl.resize(jsonl.len() + (1 << 20), b'a');
    jsonl.extend(b"\"}\n");
    dir.error_at("l.jsonl", &jsonl, 2, "line is longer than 1 MiB");
    let mut csv = b"url\n".to_vec();
    csv.extend(&input);
    dir.error_at("l.csv", &csv, 3, "line is longer than 1 MiB");
    // An unclosed quote may not gather the rest of a large file.
    let mut csv = b"id,url\n\"1,https://x/1\n".to_vec();
    for _ in 0..20_000 {
        csv.extend(b"2,https://x/2/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    }
    dir.error_at("q.csv", &csv, 2, "quoted field is not closed within 1 MiB");
}

#[test]
fn malformed_csv_names_the_line() {
    let dir = Dir::new();
    dir.error_at(
        "a.csv",
        "id,image\n1,https://x/1\n",
        1,
        "the header has no `url` or `path` column (found: \"id\", \"image\")",
    );
    dir.error_at(
        "b.csv",
        "id,url\n1,https://x/1\n2,https://x/2,extra\n",
        3,
        "row has 3 fields, but the header has 2",
    );
    dir.error_at(
        "c.csv",
        "id,url\n1,https://x/\"1\"\n",
        2,
        "quote inside an unquoted field",
    );
    dir.error_at(
        "d.csv",
        "id,url\n1,\"https://x/1\"x\n",
        2,
        "text after the closing quote",
    );
    dir.error_at(
        "e.csv",
        "id,url\n1,https://x/1\n2,\"https://x/2\n",
        3,
        "never closed",
    );
    dir.error_at(
        "f.csv",
        "url,path\nhttps://x/1,\n\"\",\"\"\n",
        3,
        "cells are both empty",
    );
}

#[test]
fn malformed_jsonl_names_the_line() {
    let dir = Dir::new();
    let ok = "{\"url\":\"https://x/1\"}\n";
    let cases = [
        (
            "{\"url\":\"https://x/2\"",
            "invalid JSON: EOF while parsing an object",
        ),
        (
            "\"https://x/2\"",
            "bad record: expected a JSON object, found a string",
        ),
        (
            "{\"url\":[\"https://x/2\"]}",
            "bad record: invalid type: sequence, expected a string",
        ),
        (
            "{\"url\":\"https://x/2\",\"id\":true}",
            "expected a string or an integer",
        ),
        (
            "{\"url\":\"https://x/2\",\"models\":[1]}",
            "invalid type: integer `1`, expected a string",
        ),
        (
            "{\"url\":\"https://x/2\",\"url\":\"https://x/3\"}",
            "duplicate field `url`",
        ),
        (
            "{\"id\":\"2\"}",
            "no image: give a non-empty `url` or `path`",
        ),
    ];
    for (i, (line, reason)) in cases.iter().enumerate() {
        dir.error_at(&format!("{i}.jsonl"), format!("{ok}\n{line}\n"), 3, reason);
    }
}

#[test]
fn many_records_are_read_in_order() {
    let mut input = String::from("id,url\n");
    for i in 0..100_000 {
        input.push_str(&format!("r{i},https://example.com/{i}.jpg\n"));
    }
    let options = ReadOptions::new(Format::Csv);
    let records = read_records(input.as_bytes(), "big.csv", &options).unwrap();
    assert_eq!(records.len(), 100_000);
    assert_eq!(records[99_999].id, "r99999");
    assert_eq!(records[99_999].line, 100_001);
}

/// A million records, as the tool's users have: run with
/// `cargo test --release --test input -- --ignored`.
#[test]
#[ignore = "slow in debug builds"]
fn a_million_records() {
    let mut input = String::from("id,url,models\n");
    for i in 0..1_000_000 {
        input.push_str(&format!("r{i},https://example.com/{i}.jpg,re_logo\n"));
    }
    let options = ReadOptions::new(Format::Csv);
    let records = read_records(input.as_bytes(), "big.csv", &options).unwrap();
    assert_eq!(records.len(), 1_000_000);
}

/// A deterministic linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_input_bytes_make_a_reader_panic() {
    // Pieces that reach deep into each parser, plus arbitrary bytes.
    const PIECES: [&[u8]; 24] = [
        b"\"",
        b",",
        b"\n",
        b"\r",
        b"\r\n",
        b"{",
        b"}",
        b":",
        b"[",
        b"]",
        b"url",
        b"path",
        b"id",
        b"models",
        b"https://",
        b"http://x",
        b"ftp://",
        b"www.",
        b"#",
        b" ",
        b";",
        b"\xEF\xBB\xBF",
        b"\xC3",
        b"re_logo",
    ];
    let mut rng = Lcg(0x5eed);
    let formats = [Format::Csv, Format::Jsonl, Format::Lines];
    for _ in 0..3000 {
        let mut input = Vec::new();
        if rng.below(2) == 0 {
            input.extend_from_slice(b"id,url,path,models\n");
        }
        for _ in 0..rng.below(40) {
            if rng.below(3) == 0 {
                input.push(rng.next() as u8);
            } else {
                input.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        for format in formats {
            let mut options = ReadOptions::new(format);
            options.allow_unknown_models = rng.below(2) == 0;
            options.check_files = rng.below(2) == 0;
            // Either answer is fine; a panic fails the test.
            let _ = read_records(&input[..], "fuzz", &options);
        }
    }
}

/// Regression: a `model` field or column holding model ids (a typo of
/// `models`) was ignored, and the record silently got the six default
/// models. It is refused where it holds only model ids; a `model` holding
/// anything else (a camera's, say) is left alone, as is one beside `models`.
#[test]
fn a_model_field_holding_model_ids_is_refused_as_a_typo_of_models() {
    let dir = Dir::new();
    dir.error_at(
        "typo.jsonl",
        "{\"url\":\"https://x/1.jpg\",\"models\":[\"re_logo\"]}\n{\"url\":\"https://x/2.jpg\",\"model\":[\"re_logo\"]}\n",
        2,
        "`model` holds model ids (re_logo), but restb reads them from `models`",
    );
    dir.error_at(
        "typo_one.jsonl",
        "{\"url\":\"https://x/1.jpg\",\"model\":\"re_features_v4\"}\n",
        1,
        "`model` holds model ids",
    );
    dir.error_at(
        "typo.csv",
        "url,model\nhttps://x/1.jpg,re_logo;re_features_v4\n",
        2,
        "`model` holds model ids (re_logo, re_features_v4)",
    );
    let camera = dir
        .read(
            "camera.jsonl",
            "{\"url\":\"https://x/1.jpg\",\"model\":\"Canon EOS R5\"}\n",
        )
        .unwrap();
    assert_eq!(camera[0].models, None, "the default models");
    let both = dir
        .read(
            "both.csv",
            "url,models,model,model\nhttps://x/1.jpg,re_logo,re_logo,Canon\n",
        )
        .unwrap();
    assert_eq!(both[0].models, models(&["re_logo"]));
}

/// Regression: any other misspelling of `models` (`modles`, `model_ids`)
/// was ignored as a column or field not this tool's, and every record got
/// the six default models: six readings paid for each image instead of the
/// one asked for. A field that is not ours and holds only model ids is
/// refused, named; other fields (a listing's price, a tag) are left alone.
#[test]
fn any_other_field_holding_model_ids_is_refused_as_a_typo_of_models() {
    let dir = Dir::new();
    dir.error_at(
        "modles.csv",
        "url,listing,modles\nhttps://x/1.jpg,17,re_logo\nhttps://x/2.jpg,18,re_logo\n",
        2,
        "`modles` holds model ids (re_logo), but restb reads them from `models`",
    );
    dir.error_at(
        "model_ids.jsonl",
        "{\"url\":\"https://x/1.jpg\",\"price\":3,\"model_ids\":[\"re_logo\",\"re_features_v4\"]}\n",
        1,
        "`model_ids` holds model ids (re_logo, re_features_v4)",
    );
    let others = dir
        .read(
            "others.jsonl",
            "{\"url\":\"https://x/1.jpg\",\"tag\":\"re_logo house\",\"rooms\":[\"kitchen\"]}\n",
        )
        .unwrap();
    assert_eq!(others[0].models, None, "the default models");
    dir.error_at(
        "first.jsonl",
        "{\"url\":\"https://x/1.jpg\",\"zz_models\":[\"re_logo\"],\"model\":\"re_features_v4\"}\n",
        1,
        "`zz_models` holds model ids (re_logo)",
    );
    let null = dir
        .read(
            "null.jsonl",
            "{\"url\":\"https://x/1.jpg\",\"models\":null,\"modles\":[\"re_logo\"]}\n",
        )
        .unwrap();
    assert_eq!(
        null[0].models, None,
        "a `models` that says nothing: the default"
    );
    let kinds = dir
        .read(
            "kinds.csv",
            "url,Kind\nhttps://x/picture_1.jpg,caption\nhttps://x/2.jpg,re_logo\n",
        )
        .unwrap();
    assert_eq!(kinds.len(), 2, "a name unlike `models` is not ours");
    dir.error_at(
        "cased.csv",
        "url,Model_IDs\nhttps://x/1.jpg,re_logo\n",
        2,
        "`Model_IDs` holds model ids",
    );
    let beside = dir
        .read(
            "beside.csv",
            "url,models,wanted\nhttps://x/1.jpg,re_logo,re_logo;re_features_v4\n",
        )
        .unwrap();
    assert_eq!(beside[0].models, models(&["re_logo"]), "`models` is there");
}
