//! The journal's bytes: one record per line, `crc32-hex SP json LF`, and loading a file back
//! into the latest record per id. Damage (a torn tail, a bad checksum) is skipped with a
//! warning, never fatal. No file is written here.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::engine::record::Record;

/// Encodes `record` as one checksummed line, newline included. The JSON is written once,
/// straight into the line (sized for it), behind room for its checksum.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut line = Vec::with_capacity(CRC_LEN + record.json_size_hint());
    line.extend_from_slice(b"00000000 ");
    serde_json::to_writer(&mut line, record).expect("a record always serializes");
    let crc = crc32fast::hash(&line[CRC_LEN..]);
    write!(&mut line[..CRC_LEN], "{crc:08x} ").expect("a checksum fits its room");
    line.push(b'\n');
    line
}

/// The length of a line's `crc32-hex SP` head.
const CRC_LEN: usize = 9;

/// Why a complete line was rejected.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// No `crc SP json` shape.
    #[error("malformed line")]
    Malformed,
    /// The checksum does not match the JSON.
    #[error("checksum mismatch")]
    Checksum,
    /// The checksum matches but the JSON is not a record (written by another version?).
    #[error("not a record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Decodes one line without its newline.
pub fn decode(line: &[u8]) -> Result<Record, LineError> {
    let (crc, json) = match line.split_at_checked(CRC_LEN) {
        Some((head, json)) if head[CRC_LEN - 1] == b' ' => (&head[..CRC_LEN - 1], json),
        _ => return Err(LineError::Malformed),
    };
    let crc = std::str::from_utf8(crc).map_err(|_| LineError::Malformed)?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| LineError::Malformed)?;
    if crc != crc32fast::hash(json) {
        return Err(LineError::Checksum);
    }
    let mut record: Record = serde_json::from_slice(json)?;
    // Lines written before card data was masked (v1) come back masked like the rest.
    if let Some(result) = &mut record.result {
        result.mask_card_data();
    }
    Ok(record)
}

/// The latest record of every id, in order of first appearance, with the byte size of
/// each one's line (to decide when compaction pays off).
#[derive(Debug, Default)]
pub struct Live {
    records: Vec<(Arc<Record>, u64)>,
    index: HashMap<String, usize>,
    bytes: u64,
}

impl Live {
    /// Records `record` (whose line is `line_len` bytes) as the latest for its id.
    pub fn update(&mut self, record: Arc<Record>, line_len: u64) {
        self.bytes += line_len;
        match self.index.get(&record.id) {
            Some(&i) => {
                self.bytes -= self.records[i].1;
                self.records[i] = (record, line_len);
            }
            None => {
                self.index.insert(record.id.clone(), self.records.len());
                self.records.push((record, line_len));
            }
        }
    }

    /// Keeps only the records for which `keep` holds.
    pub fn retain(&mut self, keep: impl Fn(&Record) -> bool) {
        self.records.retain(|(record, _)| keep(record));
        self.index = (self.records.iter().enumerate())
            .map(|(i, (record, _))| (record.id.clone(), i))
            .collect();
        self.bytes = self.records.iter().map(|(_, len)| len).sum();
    }

    /// Total size of the live records' lines.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().map(|(record, _)| &**record)
    }

    /// The records, oldest first, by value.
    pub fn into_records(self) -> Vec<Record> {
        let records = self.records.into_iter();
        records
            .map(|(record, _)| Arc::unwrap_or_clone(record))
            .collect()
    }
}

/// A journal file as read back.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Latest record per id.
    pub live: Live,
    /// Bytes read.
    pub len: u64,
    /// Bytes up to the end of the last complete line; a torn tail starts here.
    pub valid_len: u64,
    /// Complete lines that were rejected (a torn tail is not counted).
    pub damaged: usize,
}

/// Reads the journal at `path` (missing = empty). Reads only the length the file had when
/// opened, so a concurrent appender cannot make it read forever.
pub fn load(path: &Path) -> io::Result<Loaded> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&mut file).take(len).read_to_end(&mut bytes)?;
    let mut loaded = parse(&bytes, path);
    loaded.len = bytes.len() as u64;
    Ok(loaded)
}

fn parse(bytes: &[u8], path: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let mut offset = 0usize;
    for (number, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let Some(content) = line.strip_suffix(b"\n") else {
            tracing::warn!(path = %path.display(), line = number + 1, bytes = line.len(), "journal: skipping torn last line");
            break;
        };
        offset += line.len();
        match decode(content) {
            Ok(record) => loaded.live.update(Arc::new(record), line.len() as u64),
            Err(err) => {
                tracing::warn!(path = %path.display(), line = number + 1, %err, "journal: skipping damaged line");
                loaded.damaged += 1;
            }
        }
    }
    loaded.valid_len = offset as u64;
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::State;

    #[test]
    fn damaged_lines_are_rejected() {
        assert!(matches!(decode(b""), Err(LineError::Malformed)));
        assert!(matches!(decode(b"zzzzzzzz {}"), Err(LineError::Malformed)));
        assert!(matches!(decode(b"00000000 {}"), Err(LineError::Checksum)));
        let json = b"{}";
        let line = format!("{:08x} {{}}", crc32fast::hash(json));
        assert!(matches!(decode(line.as_bytes()), Err(LineError::Json(_))));
    }

    #[test]
    fn card_data_of_a_v1_line_is_masked_on_load() {
        let mut v1 =
            serde_json::to_value(crate::engine::record::sample("t-1", State::Approved)).unwrap();
        v1["result"] = serde_json::json!({
            "ae": "10",
            "card": {"pan": "4970101234561234", "expiry": "2612"},
            "raw": "AE00210AA0164970101234561234AB0042612",
        });
        let json = serde_json::to_vec(&v1).unwrap();
        let line = format!(
            "{:08x} {}",
            crc32fast::hash(&json),
            String::from_utf8(json).unwrap()
        );
        let result = decode(line.as_bytes()).unwrap().result.unwrap();
        let card = serde_json::to_value(result.card.unwrap()).unwrap();
        assert_eq!(card, serde_json::json!({"pan": "497010######1234"}));
        assert_eq!(result.raw.unwrap(), "AE00210AA016497010######1234AB004####");
    }

    #[test]
    fn torn_tail_is_not_counted_and_not_valid() {
        let text = b"00000000 {}\nabc";
        let loaded = parse(text, Path::new("j"));
        assert_eq!(loaded.damaged, 1);
        assert_eq!(loaded.valid_len, 12);
    }
}
