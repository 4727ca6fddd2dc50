//! Caisse-AP fields (`TAG LEN VALUE`) and the incremental decoder.
//!
//! A frame is a run of fields: a 2-character tag, a 3-digit decimal length (1–999) and the
//! value. There is no header and no end marker, so the decoder only knows *whole fields*: it
//! accepts bytes in any chunks, keeps an incomplete tail for later ("need more", never an
//! error) and splits the fields into messages, each starting with `CZ`. What makes a message
//! complete is the caller's business (see [`super::answer`]). Bytes above 0x7F are Latin-1.

use std::fmt;

use thiserror::Error;

use super::tags::VERSION as VERSION_TAG;

/// Size cap of everything buffered from one connection; far above any real answer.
pub const MAX_BUFFER: usize = 64 * 1024;

/// A value that cannot be put in a field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FieldError {
    /// Tags are exactly two ASCII uppercase letters or digits.
    #[error("bad tag {0:?}: two ASCII uppercase letters or digits expected")]
    Tag(String),
    /// Values hold 1 to 999 characters.
    #[error("field {tag}: value length {len} is outside 1..=999")]
    Length {
        /// The field's tag.
        tag: String,
        /// The offending length.
        len: usize,
    },
    /// Values are Latin-1.
    #[error("field {0}: value has a character outside Latin-1")]
    NotLatin1(String),
}

/// Bytes that cannot be Caisse-AP: the connection's answer is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The three length characters are not all decimal digits.
    #[error("field {tag}: length {length:?} is not three digits")]
    NonDigitLength {
        /// The field's tag (Latin-1).
        tag: String,
        /// The length characters (Latin-1).
        length: String,
    },
    /// A tag that is not two ASCII uppercase letters or digits.
    #[error("bad tag {0:?}")]
    BadTag(String),
    /// The first field is not `CZ`.
    #[error("message starts with {0:?}, not CZ")]
    VersionNotFirst(String),
    /// More than [`MAX_BUFFER`] bytes arrived.
    #[error("more than {MAX_BUFFER} bytes received")]
    TooLarge,
}

/// One field: tag and value (Latin-1 decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    tag: String,
    value: String,
}

impl Field {
    /// Builds a field, checking the tag and the value's length and alphabet.
    pub fn new(tag: &str, value: impl Into<String>) -> Result<Field, FieldError> {
        let value = value.into();
        if !valid_tag(tag.as_bytes()) {
            return Err(FieldError::Tag(tag.to_string()));
        }
        let len = value.chars().count();
        if !(1..=999).contains(&len) {
            let tag = tag.to_string();
            return Err(FieldError::Length { tag, len });
        }
        if value.chars().any(|c| u32::from(c) > 0xFF) {
            return Err(FieldError::NotLatin1(tag.to_string()));
        }
        Ok(Field {
            tag: tag.to_string(),
            value,
        })
    }

    /// The 2-character tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Appends `TAG LEN VALUE` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.tag.as_bytes());
        // At most 999 (Field::new, or three digits when decoded).
        let len = self.len();
        out.extend([len / 100, len / 10 % 10, len % 10].map(|d| b'0' + (d % 10) as u8));
        // Field::new guarantees every char fits in one Latin-1 byte.
        out.extend(self.value.chars().map(|c| c as u8));
    }

    /// The value's length in characters (= Latin-1 bytes on the wire).
    fn len(&self) -> usize {
        self.value.chars().count()
    }

    /// The field's size on the wire: tag, length and value.
    pub fn encoded_len(&self) -> usize {
        2 + 3 + self.len()
    }
}

/// A message: `CZ` first, then fields in any order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    fields: Vec<Field>,
}

impl Message {
    /// Builds a message from fields; the first must be `CZ`.
    pub fn new(fields: Vec<Field>) -> Result<Message, DecodeError> {
        match fields.first() {
            Some(f) if f.tag == VERSION_TAG => Ok(Message { fields }),
            Some(f) => Err(DecodeError::VersionNotFirst(f.tag.clone())),
            None => Err(DecodeError::VersionNotFirst(String::new())),
        }
    }

    /// The fields, in wire order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The value of the first field with this tag.
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| f.value())
    }

    /// The frame's size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.fields.iter().map(Field::encoded_len).sum()
    }

    /// The frame bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for field in &self.fields {
            field.encode(&mut out);
        }
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&latin1(&self.encode()))
    }
}

/// Decodes bytes as Latin-1, which maps every byte to one char and never fails. ASCII (what
/// terminals send, tickets aside) is copied as it is.
pub fn latin1(bytes: &[u8]) -> String {
    match bytes.is_ascii().then(|| std::str::from_utf8(bytes)) {
        Some(Ok(ascii)) => ascii.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Encodes text as Latin-1; a character beyond U+00FF becomes `?`.
pub fn to_latin1(text: &str) -> Vec<u8> {
    if text.is_ascii() {
        return text.as_bytes().to_vec();
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

fn valid_tag(tag: &[u8]) -> bool {
    tag.len() == 2
        && tag
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Decodes one field at the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the field and how many bytes it took.
pub fn decode_field(buf: &[u8]) -> Result<Option<(Field, usize)>, DecodeError> {
    let Some(tag) = buf.get(..2) else {
        return Ok(None);
    };
    if !valid_tag(tag) {
        return Err(DecodeError::BadTag(latin1(tag)));
    }
    let Some(length) = buf.get(2..5) else {
        return Ok(None);
    };
    if !length.iter().all(u8::is_ascii_digit) {
        let (tag, length) = (latin1(tag), latin1(length));
        return Err(DecodeError::NonDigitLength { tag, length });
    }
    // Length 000 is outside the 1–999 of the protocol, but terminals send an empty CB when the
    // cashier cancels with the red key: reading it as an empty value keeps that a clean decline.
    let len = length.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
    let Some(value) = buf.get(5..5 + len) else {
        return Ok(None);
    };
    let field = Field {
        tag: latin1(tag),
        value: latin1(value),
    };
    Ok(Some((field, 5 + len)))
}

/// Decodes a whole frame: `Ok(None)` while it ends inside a field.
pub fn decode(buf: &[u8]) -> Result<Option<Vec<Message>>, DecodeError> {
    let mut decoder = Decoder::default();
    decoder.push(buf)?;
    Ok(decoder.is_whole().then(|| decoder.messages()))
}

/// Accumulates bytes in any chunks and decodes the whole fields seen so far.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    bytes: Vec<u8>,
    parsed: usize,
    fields: Vec<Field>,
}

impl Decoder {
    /// Adds a chunk and decodes every field it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        if self.bytes.len() + chunk.len() > MAX_BUFFER {
            return Err(DecodeError::TooLarge);
        }
        self.bytes.extend_from_slice(chunk);
        while let Some((field, used)) = decode_field(&self.bytes[self.parsed..])? {
            if self.fields.is_empty() && field.tag != VERSION_TAG {
                return Err(DecodeError::VersionNotFirst(field.tag));
            }
            self.fields.push(field);
            self.parsed += used;
        }
        if self.fields.is_empty()
            && self.bytes.len() >= 2
            && &self.bytes[..2] != VERSION_TAG.as_bytes()
        {
            return Err(DecodeError::VersionNotFirst(latin1(&self.bytes[..2])));
        }
        Ok(())
    }

    /// True when everything received so far is whole fields (and something was received).
    pub fn is_whole(&self) -> bool {
        !self.bytes.is_empty() && self.parsed == self.bytes.len()
    }

    /// Every byte received, Latin-1 decoded.
    pub fn raw(&self) -> String {
        latin1(&self.bytes)
    }

    /// How many bytes were received.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True before any byte arrived.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The last message of the whole fields (from the last `CZ`), if any.
    pub fn last_message(&self) -> Option<Message> {
        let start = self.fields.iter().rposition(|f| f.tag == VERSION_TAG)?;
        Some(Message {
            fields: self.fields[start..].to_vec(),
        })
    }

    /// The whole fields split into messages: each `CZ` starts a new one.
    pub fn messages(&self) -> Vec<Message> {
        let mut messages: Vec<Message> = Vec::new();
        for field in &self.fields {
            match messages.last_mut() {
                Some(last) if field.tag != VERSION_TAG => last.fields.push(field.clone()),
                _ => messages.push(Message {
                    fields: vec![field.clone()],
                }),
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEBIT: &str = "CZ0040300CJ012012345678901CA00201CB0042500CD0010CE003978";

    #[test]
    fn decodes_a_request_into_its_fields() {
        let messages = decode(DEBIT.as_bytes()).unwrap().unwrap();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.get("CB"), Some("2500"));
        assert_eq!(m.get("CE"), Some("978"));
        assert_eq!(m.fields().len(), 6);
        assert_eq!(m.encode(), DEBIT.as_bytes());
    }

    /// Every example frame of caisse-ap.md.
    const EXAMPLES: [&str; 7] = [
        DEBIT,
        "CZ0040300CJ012012345678901CA00201CB00205CD0011CE003978",
        "CZ0040300CJ012012345678901CA00201CB0043000CD0010CE003978CC00300C",
        "CZ0040300CJ012012345678901CA00201CE003978CD0010CB0070002500AE00210CC003001CI0011AC006632145AA016497010######1234AI014A0000000421010AB0042712CG006424242",
        "CZ0040300CA00201CB0042500CD0010CE003978AE00201AF00204",
        "CZ0040300AE00201AF00209",
        "CZ0040301CJ012330538600404CA00201CD001IAE00210",
    ];

    #[test]
    fn every_example_frame_decodes_and_encodes_back() {
        for frame in EXAMPLES {
            let messages = decode(frame.as_bytes()).unwrap().unwrap();
            assert_eq!(messages.len(), 1, "{frame}");
            assert_eq!(messages[0].to_string(), frame);
        }
    }

    #[test]
    fn byte_by_byte_feeding_ends_whole() {
        for frame in EXAMPLES {
            let mut d = Decoder::default();
            for byte in frame.as_bytes() {
                d.push(std::slice::from_ref(byte)).unwrap();
            }
            assert!(d.is_whole());
            assert_eq!(d.messages()[0].to_string(), frame);
        }
    }

    #[test]
    fn every_split_point_needs_more_until_whole() {
        for cut in 0..DEBIT.len() {
            let mut d = Decoder::default();
            d.push(&DEBIT.as_bytes()[..cut]).unwrap();
            d.push(&DEBIT.as_bytes()[cut..]).unwrap();
            assert!(d.is_whole(), "cut at {cut}");
            assert_eq!(d.messages()[0].to_string(), DEBIT);
        }
    }

    #[test]
    fn incomplete_input_is_not_an_error() {
        let boundaries = [9, 26, 33, 42, 48, 56];
        for end in 0..=DEBIT.len() {
            let result = decode(&DEBIT.as_bytes()[..end]).unwrap();
            assert_eq!(result.is_some(), boundaries.contains(&end), "end {end}");
        }
        assert_eq!(decode(b"CZ00").unwrap(), None);
        assert_eq!(decode(b"CZ0040").unwrap(), None);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            decode(b"CZ0x40300"),
            Err(DecodeError::NonDigitLength { .. })
        ));
        let empty = decode(b"CZ0040300CB000").unwrap().unwrap();
        assert_eq!(empty[0].get("CB"), Some(""));
        assert_eq!(
            decode(b"AE00210"),
            Err(DecodeError::VersionNotFirst("AE".into()))
        );
        assert_eq!(
            decode(b"\x00\xffGARBAGE"),
            Err(DecodeError::BadTag("\u{0}\u{ff}".into()))
        );
        let mut big = b"CZ0040300".to_vec();
        while big.len() <= MAX_BUFFER {
            big.extend_from_slice(b"CF005abcde");
        }
        assert_eq!(decode(&big), Err(DecodeError::TooLarge));
    }

    #[test]
    fn latin1_bytes_decode_without_panic() {
        let m = &decode(b"CZ0040300AF003\xe9\xe0\xff").unwrap().unwrap()[0];
        assert_eq!(m.get("AF"), Some("éàÿ"));
        assert_eq!(m.encode(), b"CZ0040300AF003\xe9\xe0\xff");
    }

    #[test]
    fn each_cz_starts_a_new_message() {
        let both = b"CZ0040300AE00211CZ0040300AE00210";
        let messages = decode(both).unwrap().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].get("AE"), Some("10"));
    }

    #[test]
    fn field_new_rejects_bad_values() {
        assert!(Field::new("CB", "").is_err());
        assert!(Field::new("cb", "1").is_err());
        assert!(Field::new("CB", "x".repeat(1000)).is_err());
        assert!(Field::new("CB", "€").is_err());
        assert!(Field::new("CB", "x".repeat(999)).is_ok());
    }

    fn arb_field() -> impl Strategy<Value = Field> {
        let tag = "[A-Z0-9]{2}".prop_filter("not CZ", |t| t != "CZ");
        let value = prop::collection::vec(any::<u8>(), 1..120).prop_map(|b| latin1(&b));
        (tag, value).prop_map(|(t, v)| Field::new(&t, v).unwrap())
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(version in "[0-9]{4}", rest in prop::collection::vec(arb_field(), 0..12)) {
            let mut fields = vec![Field::new("CZ", version).unwrap()];
            fields.extend(rest);
            let message = Message::new(fields).unwrap();
            let decoded = decode(&message.encode()).unwrap().unwrap();
            prop_assert_eq!(decoded, vec![message]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
