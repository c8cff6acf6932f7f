//! The input's bytes in blocks: the checking pass keeps one hash per block,
//! and every later pass compares a block with it before handing on any of
//! its bytes. So a record is only ever read from the bytes that were checked,
//! in flat memory: 8 bytes per 64 KiB of input, and one block held at a time.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{self, BufRead, Read};
use std::sync::Arc;

/// Bytes per block.
const BLOCK: usize = 64 * 1024;

/// The words every reason of a change starts with.
const CHANGED: &str = "the input changed after it was checked";

/// What the checking pass read: the hash of each block, and its length.
#[derive(Debug, Default)]
pub(super) struct BlockHashes {
    hashes: Vec<u64>,
    len: u64,
}

impl BlockHashes {
    /// The length of block `index` as checked; 0 past the end.
    fn block_len(&self, index: usize) -> usize {
        let start = (index as u64).saturating_mul(BLOCK as u64);
        let left = self.len.saturating_sub(start);
        usize::try_from(left).map_or(BLOCK, |left| left.min(BLOCK))
    }
}

/// What a reader does with each block.
#[derive(Debug)]
enum Mode {
    /// The checking pass: note its hash.
    Note(BlockHashes),
    /// A later pass: compare it with the checked one.
    Compare(Arc<BlockHashes>),
}

/// A buffered reader that reads whole blocks and notes or compares them.
#[derive(Debug)]
pub(super) struct BlockReader<R> {
    inner: R,
    mode: Mode,
    buf: Vec<u8>,
    /// How much of `buf` has been consumed.
    pos: usize,
    /// The number of the next block, and where it starts.
    next: usize,
    offset: u64,
    /// Whether the end was seen: nothing is read after it, so the blocks
    /// noted are exactly those handed on.
    ended: bool,
    /// The change found; every later read fails with it again.
    changed: Option<String>,
}

impl<R: Read> BlockReader<R> {
    /// A reader for the checking pass, noting each block.
    pub(super) fn noting(inner: R) -> Self {
        Self::new(inner, Mode::Note(BlockHashes::default()))
    }

    /// A reader that hands on only blocks equal to those `checked` noted.
    pub(super) fn comparing(inner: R, checked: Arc<BlockHashes>) -> Self {
        Self::new(inner, Mode::Compare(checked))
    }

    fn new(inner: R, mode: Mode) -> Self {
        BlockReader {
            inner,
            mode,
            buf: Vec::with_capacity(BLOCK),
            pos: 0,
            next: 0,
            offset: 0,
            ended: false,
            changed: None,
        }
    }

    /// The hashes a noting reader took (none for a comparing one).
    pub(super) fn into_noted(self) -> BlockHashes {
        match self.mode {
            Mode::Note(noted) => noted,
            Mode::Compare(_) => BlockHashes::default(),
        }
    }

    /// Reads the next block into `buf`, or finds the end or a change.
    fn load(&mut self) -> io::Result<()> {
        if let Some(reason) = &self.changed {
            return Err(changed_error(reason));
        }
        let want = match &self.mode {
            Mode::Note(_) => BLOCK,
            // Past the checked end, one byte tells a longer input.
            Mode::Compare(checked) => checked.block_len(self.next).max(1),
        };
        self.pos = 0;
        read_up_to(&mut self.inner, &mut self.buf, want)?;
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(&self.buf[..]);
        let (start, got) = (self.offset, self.buf.len() as u64);
        match &mut self.mode {
            Mode::Note(noted) if got > 0 => {
                noted.hashes.push(hash);
                noted.len += got;
            }
            Mode::Note(_) => {}
            Mode::Compare(checked) => {
                let changed = compare(checked, self.next, start, &self.buf, hash);
                if let Some(reason) = changed {
                    self.buf.clear();
                    let error = changed_error(&reason);
                    self.changed = Some(reason);
                    return Err(error);
                }
            }
        }
        self.ended = got < want as u64 || self.buf.is_empty();
        self.next += 1;
        self.offset += got;
        Ok(())
    }
}

/// Why block `index`, read as `block` from `start`, is not the one checked.
fn compare(
    checked: &BlockHashes,
    index: usize,
    start: u64,
    block: &[u8],
    hash: u64,
) -> Option<String> {
    let want = checked.block_len(index);
    let got = block.len();
    let end = start + want as u64;
    if want == 0 {
        (got > 0).then(|| format!("{CHANGED}: it is longer than the {end} bytes checked"))
    } else if got < want {
        Some(format!(
            "{CHANGED}: it ends at byte {} instead of {}",
            start + got as u64,
            checked.len
        ))
    } else if checked.hashes.get(index) != Some(&hash) {
        Some(format!(
            "{CHANGED}: its bytes {start} to {} differ (on this line or after it)",
            end - 1
        ))
    } else {
        None
    }
}

/// Reads until `buf` holds `want` bytes or the end is reached.
fn read_up_to(inner: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    buf.resize(want, 0);
    let mut got = 0;
    while got < want {
        match inner.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        }
    }
    buf.truncate(got);
    Ok(())
}

impl<R: Read> BufRead for BlockReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.buf.len() && !self.ended {
            self.load()?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.buf.len());
    }
}

impl<R: Read> Read for BlockReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let rest = self.fill_buf()?;
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// A change, as the `io::Error` the parsers pass up.
#[derive(Debug)]
struct Changed(String);

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Changed {}

fn changed_error(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Changed(reason.to_string()))
}

/// The reason of a read error: a change in its own words, else the error.
pub(super) fn read_error_reason(error: &io::Error) -> String {
    match error.get_ref().and_then(|e| e.downcast_ref::<Changed>()) {
        Some(changed) => changed.0.clone(),
        None => format!("read error: {error}"),
    }
}

/// `reason` as a change of the input, unless it already says so.
pub(super) fn as_change(reason: String) -> String {
    if reason.starts_with(CHANGED) {
        reason
    } else {
        format!("{CHANGED}: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(bytes: &[u8]) -> Arc<BlockHashes> {
        let mut reader = BlockReader::noting(bytes);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        Arc::new(reader.into_noted())
    }

    /// What a comparing reader hands on before it fails, and the failure.
    fn compare(checked: &[u8], now: &[u8]) -> (usize, Option<String>) {
        let mut reader = BlockReader::comparing(now, note(checked));
        let mut out = Vec::new();
        let result = reader.read_to_end(&mut out);
        (out.len(), result.err().map(|e| read_error_reason(&e)))
    }

    #[test]
    fn the_checked_bytes_pass_in_blocks() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let noted = note(&bytes);
            assert_eq!(noted.len, len as u64);
            assert_eq!(noted.hashes.len(), len.div_ceil(BLOCK));
            assert_eq!(compare(&bytes, &bytes), (len, None), "{len}");
        }
    }

    #[test]
    fn a_changed_block_is_refused_whole_and_named() {
        let checked = vec![b'a'; 3 * BLOCK];
        let mut now = checked.clone();
        now[BLOCK + 5] = b'b';
        let (handed, error) = compare(&checked, &now);
        assert_eq!(handed, BLOCK, "only the block before the change");
        assert_eq!(
            error.unwrap(),
            format!("{CHANGED}: its bytes 65536 to 131071 differ (on this line or after it)")
        );
        let (handed, error) = compare(&checked, &checked[..2 * BLOCK + 7]);
        assert_eq!(handed, 2 * BLOCK);
        assert_eq!(
            error.unwrap(),
            format!("{CHANGED}: it ends at byte 131079 instead of 196608")
        );
        let (handed, error) = compare(&checked[..10], &checked[..11]);
        assert_eq!(handed, 10, "every checked byte, then the change");
        assert_eq!(
            error.unwrap(),
            format!("{CHANGED}: it is longer than the 10 bytes checked")
        );
    }

    #[test]
    fn a_change_is_told_from_other_read_errors() {
        let reason = read_error_reason(&changed_error("x"));
        assert_eq!(reason, "x");
        let other = io::Error::other("disk on fire");
        assert_eq!(read_error_reason(&other), "read error: disk on fire");
        assert_eq!(as_change(format!("{CHANGED}: y")), format!("{CHANGED}: y"));
        assert_eq!(as_change("z".into()), format!("{CHANGED}: z"));
    }
}
