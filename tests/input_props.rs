//! The input readers never panic, whatever bytes they are given, and a
//! well-formed list always reads back record for record.

use proptest::prelude::*;
use restb::api::ImageSource;
use restb::input::{read_records, Format, ReadOptions};

fn options(format: Format) -> ReadOptions {
    let mut options = ReadOptions::new(format);
    options.check_files = false;
    options
}

/// Bytes that look a little like each format, so the fuzzing gets past the
/// first check now and then.
fn inputish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"url".to_vec()),
        Just(b"path".to_vec()),
        Just(b"id,url,models\n".to_vec()),
        Just(b"https://x.io/a.jpg".to_vec()),
        Just(b"{\"url\":".to_vec()),
        Just(b"{\"id\":1,\"url\":\"https://x/1.jpg\",\"models\":[\"re_logo\"]}".to_vec()),
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"#".to_vec()),
        Just(b";".to_vec()),
        Just(vec![0xff, 0xfe]),
        Just(vec![0xe2, 0x82]),
        prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for format in [Format::Csv, Format::Jsonl, Format::Lines] {
            let _ = read_records(&bytes[..], "<fuzz>", &options(format));
        }
    }

    #[test]
    fn input_shaped_bytes_never_panic(bytes in inputish()) {
        for format in [Format::Csv, Format::Jsonl, Format::Lines] {
            match read_records(&bytes[..], "<fuzz>", &options(format)) {
                Ok(records) => prop_assert!(!records.is_empty()),
                Err(error) => prop_assert!(error.to_string().starts_with("<fuzz>")),
            }
        }
    }

    #[test]
    fn a_list_of_urls_reads_back_in_order(names in prop::collection::vec("[a-z0-9]{1,12}", 1..50)) {
        let text: String = names.iter().map(|n| format!("https://example.com/{n}.jpg\n")).collect();
        let records = read_records(text.as_bytes(), "<list>", &options(Format::Lines)).unwrap();
        prop_assert_eq!(records.len(), names.len());
        for (index, (record, name)) in records.iter().zip(&names).enumerate() {
            prop_assert_eq!(&record.id, &(index + 1).to_string());
            prop_assert_eq!(&record.image, &ImageSource::Url(format!("https://example.com/{name}.jpg")));
        }
    }
}
