//! Splits a stream of decompressed JSON into records without holding more than
//! one record in memory: a `{"Records":[...]}` envelope, a top-level array of
//! records, or a sequence of objects (JSON lines, or one record per file).

use std::io::{self, BufRead, Read};

use super::DecodeError;
use super::source::{self, CapExceeded, SourceInfo, SourceIoError};
use crate::event::TopNames;
use crate::event::shallow::{MemberSpan, index_object_prefix};
use crate::event::{MemberStore, Record, RecordError, find_string_end};

/// One record larger than this is refused (CloudTrail's are a few KiB).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside an array of records; `envelope` when it is `Records` of an object.
    InArray { envelope: bool, first: bool },
    /// After the `Records` array, before the envelope object closes.
    AfterEnvelope,
    /// End of input, or after an error.
    Done,
}

/// Yields CloudTrail records one at a time from a (possibly gzipped) stream.
pub struct RecordReader<'r> {
    input: Box<dyn BufRead + 'r>,
    info: SourceInfo,
    /// Decompressed bytes consumed so far.
    pos: u64,
    /// The current record's bytes; reused from record to record.
    buf: Vec<u8>,
    /// Decompressed offset of the current record's first byte.
    record_offset: u64,
    state: State,
    /// Bytes of the input buffer the last record was read from in place,
    /// consumed when the next one is asked for.
    in_place: usize,
    /// Member spans of the record read in place; reused.
    spans: Vec<MemberSpan>,
    /// Whether the record read in place is compact (`Indexed::compact`).
    compact: bool,
    /// Its names, as the parser noted them (`Indexed::top`).
    top: Option<TopNames>,
}

/// Where `next_raw` left the next record.
enum Raw {
    /// In the input's buffer, this many bytes long, its members in `spans`.
    InPlace(usize),
    /// Copied into `buf`.
    Buffered,
}

impl<'r> RecordReader<'r> {
    /// Opens `input`, detecting gzip by its magic number, with a cap on the
    /// decompressed bytes.
    pub fn new(input: impl Read + 'r, max_decompressed_bytes: u64) -> Result<Self, DecodeError> {
        Self::from_source(source::open(input, max_decompressed_bytes))
    }

    /// As `new`, always through the streaming decoder.
    #[cfg(test)]
    pub(crate) fn streaming(
        input: impl Read + 'r,
        max_decompressed_bytes: u64,
    ) -> Result<Self, DecodeError> {
        Self::from_source(source::open_with(input, max_decompressed_bytes, 0, 0))
    }

    fn from_source(
        opened: std::io::Result<(Box<dyn BufRead + 'r>, SourceInfo)>,
    ) -> Result<Self, DecodeError> {
        let (input, info) = opened.map_err(|e| DecodeError::Io {
            offset: 0,
            source: e,
        })?;
        Ok(RecordReader {
            input,
            info,
            pos: 0,
            buf: Vec::with_capacity(16 * 1024),
            record_offset: 0,
            state: State::Top,
            in_place: 0,
            spans: Vec::with_capacity(32),
            compact: false,
            top: None,
        })
    }

    /// Whether the input was gzip.
    pub fn is_gzip(&self) -> bool {
        self.info.gzip
    }

    /// Decompressed bytes read so far.
    pub fn decompressed_bytes(&self) -> u64 {
        self.pos
    }

    /// The next record, `None` at the end. After an error it returns `None`:
    /// the records before the fault have already been yielded.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, DecodeError> {
        self.next_record_in(&mut MemberStore::default())
    }

    /// As `next_record`, with the record's members in the room `store`
    /// keeps (hand each record back with `MemberStore::recycle`).
    pub fn next_record_in(
        &mut self,
        store: &mut MemberStore,
    ) -> Result<Option<Record<'_>>, DecodeError> {
        if self.in_place > 0 {
            self.input.consume(self.in_place);
            self.in_place = 0;
        }
        match self.next_raw() {
            Ok(Some(Raw::Buffered)) => {}
            Ok(Some(Raw::InPlace(len))) => {
                // Most records lie whole in the input's buffer: they are
                // checked and indexed there, in one pass, without a copy.
                self.in_place = len;
                self.pos += len as u64;
                let chunk = match self.input.fill_buf() {
                    Ok(chunk) => chunk,
                    // The buffer held the record a moment ago; a read
                    // cannot fail here.
                    Err(e) => {
                        self.state = State::Done;
                        return Err(DecodeError::Io {
                            offset: self.pos,
                            source: e,
                        });
                    }
                };
                let bytes = &chunk[..len.min(chunk.len())];
                // A vectorised check first; the standard one says where a
                // fault lies.
                let text =
                    simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes));
                return match text {
                    Ok(text) => Ok(Some(Record::from_spans_in(
                        text,
                        &self.spans,
                        store,
                        self.compact,
                        self.top,
                    ))),
                    Err(e) => {
                        self.state = State::Done;
                        Err(DecodeError::Json {
                            offset: self.record_offset + e.valid_up_to() as u64,
                            reason: "malformed JSON: invalid UTF-8".into(),
                        })
                    }
                };
            }
            Ok(None) => return Ok(None),
            Err(e) => {
                self.state = State::Done;
                return Err(e);
            }
        }
        match Record::parse_bytes(&self.buf) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                self.state = State::Done;
                let offset = match &e {
                    RecordError::Json(err) => self.record_offset + err.offset() as u64,
                    RecordError::NotAnObject(_) => self.record_offset,
                };
                Err(DecodeError::Json {
                    offset,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Finds the next record: in the input's buffer, or copied into
    /// `self.buf`; `None` at the end.
    fn next_raw(&mut self) -> Result<Option<Raw>, DecodeError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Top => match self.skip_ws()? {
                    None => {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    Some(b'[') => {
                        self.bump();
                        self.state = State::InArray {
                            envelope: false,
                            first: true,
                        };
                    }
                    Some(b'{') => {
                        if self.start_object()? {
                            return Ok(Some(Raw::Buffered));
                        }
                    }
                    Some(b) => {
                        return Err(self.syntax(format!(
                            "expected a JSON object or array, found {}",
                            describe(b)
                        )));
                    }
                },
                State::InArray { envelope, first } => {
                    let Some(mut b) = self.skip_ws()? else {
                        return Err(self.truncated());
                    };
                    if b == b']' {
                        self.bump();
                        self.state = if envelope {
                            State::AfterEnvelope
                        } else {
                            State::Top
                        };
                        continue;
                    }
                    if !first {
                        if b != b',' {
                            return Err(self.syntax(format!(
                                "expected ',' or ']' in the records array, found {}",
                                describe(b)
                            )));
                        }
                        self.bump();
                        b = self.skip_ws()?.ok_or_else(|| self.truncated())?;
                    }
                    let _ = b;
                    self.state = State::InArray {
                        envelope,
                        first: false,
                    };
                    self.record_offset = self.pos;
                    if let Some(len) = self.index_in_place() {
                        return Ok(Some(Raw::InPlace(len)));
                    }
                    // Across the buffer's end, or faulty: copied, and any
                    // fault reported from the copy.
                    self.buf.clear();
                    self.scan_value(0, true)?;
                    return Ok(Some(Raw::Buffered));
                }
                State::AfterEnvelope => match self.skip_ws()? {
                    Some(b'}') => {
                        self.bump();
                        self.state = State::Top;
                    }
                    Some(b',') => {
                        // Another member of the envelope: a repeated `Records`
                        // array is read too (no record is dropped); anything
                        // else is skipped.
                        self.bump();
                        if self.envelope_member()? {
                            self.state = State::InArray {
                                envelope: true,
                                first: true,
                            };
                        }
                    }
                    Some(b) => {
                        return Err(self.syntax(format!(
                            "expected ',' or '}}' after the Records array, found {}",
                            describe(b)
                        )));
                    }
                    None => return Err(self.truncated()),
                },
            }
        }
    }

    /// Checks and indexes the record at the start of the input's buffer,
    /// without consuming it; its length, or `None` when it does not end in
    /// the buffer or is not a valid object.
    fn index_in_place(&mut self) -> Option<usize> {
        let chunk = self.input.fill_buf().ok()?;
        self.spans.clear();
        let indexed = index_object_prefix(chunk, &mut self.spans).ok()?;
        self.compact = indexed.compact;
        self.top = indexed.top;
        Some(indexed.end)
    }

    /// At a top-level `{`: either the `{"Records": [` envelope (returns false,
    /// state moves into the array) or a record in its own right (returns true
    /// with the record in `buf`).
    fn start_object(&mut self) -> Result<bool, DecodeError> {
        self.buf.clear();
        self.record_offset = self.pos;
        self.bump_into_buf();
        match self.skip_ws()? {
            Some(b'"') => {}
            Some(_) => {
                // `{}` or something malformed: let the record parser judge it.
                self.scan_value(1, true)?;
                return Ok(true);
            }
            None => return Err(self.truncated()),
        }
        let key_start = self.buf.len();
        self.scan_value(0, true)?;
        if &self.buf[key_start..] == b"\"Records\"" {
            if self.skip_ws()? != Some(b':') {
                return Err(self.syntax("expected ':' after \"Records\"".into()));
            }
            self.bump();
            match self.skip_ws()? {
                Some(b'[') => {
                    self.bump();
                    self.buf.clear();
                    self.state = State::InArray {
                        envelope: true,
                        first: true,
                    };
                    return Ok(false);
                }
                Some(b) => {
                    return Err(self.syntax(format!(
                        "\"Records\" must be an array, found {}",
                        describe(b)
                    )));
                }
                None => return Err(self.truncated()),
            }
        }
        // An ordinary record: capture the rest of it.
        self.scan_rest_of_object(true)?;
        Ok(true)
    }

    /// After a `,` in the envelope: reads the member's key and `:`. For
    /// `Records` with an array value, consumes the `[` and returns true;
    /// otherwise skips the value and returns false.
    fn envelope_member(&mut self) -> Result<bool, DecodeError> {
        match self.skip_ws()? {
            Some(b'"') => {}
            Some(b) => {
                return Err(self.syntax(format!(
                    "expected a member name in the envelope, found {}",
                    describe(b)
                )));
            }
            None => return Err(self.truncated()),
        }
        self.buf.clear();
        self.scan_value(0, true)?;
        let is_records = self.buf == b"\"Records\"";
        self.buf.clear();
        match self.skip_ws()? {
            Some(b':') => self.bump(),
            Some(b) => {
                return Err(self.syntax(format!(
                    "expected ':' after a member name, found {}",
                    describe(b)
                )));
            }
            None => return Err(self.truncated()),
        }
        match self.skip_ws()? {
            Some(b'[') if is_records => {
                self.bump();
                Ok(true)
            }
            Some(_) if is_records => Err(self.syntax("\"Records\" must be an array".into())),
            Some(_) => {
                self.scan_value(0, false)?;
                Ok(false)
            }
            None => Err(self.truncated()),
        }
    }

    /// Consumes up to and including the `}` closing an object we are inside.
    fn scan_rest_of_object(&mut self, capture: bool) -> Result<(), DecodeError> {
        self.scan_value(1, capture)
    }

    /// Consumes one JSON value (or, with `depth` > 0, the rest of an open
    /// container), appending its bytes to `buf` when `capture` is set. Only
    /// structure is checked here; the record parser checks the rest.
    fn scan_value(&mut self, depth: usize, capture: bool) -> Result<(), DecodeError> {
        let mut depth = depth;
        let mut in_string = false;
        let mut escaped = false;
        let mut scalar = false;
        let mut started = depth > 0;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) => return Err(self.read_error(e)),
            };
            if chunk.is_empty() {
                if scalar {
                    return Ok(());
                }
                return Err(self.truncated());
            }
            let mut end = None;
            let mut i = 0;
            while i < chunk.len() {
                let b = chunk[i];
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if let Some(j) =
                        Some(find_string_end(chunk, i, false)).filter(|&j| j < chunk.len())
                    {
                        i = j;
                        if chunk[i] == b'\\' {
                            escaped = true;
                        } else {
                            in_string = false;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                    } else {
                        i = chunk.len();
                        continue;
                    }
                } else if scalar {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                        end = Some(i);
                        break;
                    }
                } else {
                    match b {
                        b'"' => {
                            in_string = true;
                            started = true;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            started = true;
                        }
                        b'}' | b']' => {
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        b' ' | b'\t' | b'\n' | b'\r' => {}
                        _ if !started => {
                            scalar = true;
                            started = true;
                        }
                        _ => {}
                    }
                }
                i += 1;
            }
            let take = end.unwrap_or(chunk.len());
            if capture {
                if self.buf.len() + take > MAX_RECORD_BYTES {
                    return Err(DecodeError::Json {
                        offset: self.record_offset,
                        reason: format!("record larger than {MAX_RECORD_BYTES} bytes"),
                    });
                }
                self.buf.extend_from_slice(&chunk[..take]);
            }
            self.input.consume(take);
            self.pos += take as u64;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Skips whitespace; the next byte, not consumed, or `None` at the end.
    fn skip_ws(&mut self) -> Result<Option<u8>, DecodeError> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) => return Err(self.read_error(e)),
            };
            if chunk.is_empty() {
                return Ok(None);
            }
            let n = chunk
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
            match n {
                Some(n) => {
                    let b = chunk[n];
                    self.input.consume(n);
                    self.pos += n as u64;
                    return Ok(Some(b));
                }
                None => {
                    let n = chunk.len();
                    self.input.consume(n);
                    self.pos += n as u64;
                }
            }
        }
    }

    /// Consumes one byte already seen by `skip_ws`.
    fn bump(&mut self) {
        self.input.consume(1);
        self.pos += 1;
    }

    /// Consumes one byte already seen by `skip_ws`, keeping it in `buf`.
    fn bump_into_buf(&mut self) {
        if let Ok(chunk) = self.input.fill_buf()
            && let Some(&b) = chunk.first()
        {
            self.buf.push(b);
        }
        self.bump();
    }

    fn syntax(&self, reason: String) -> DecodeError {
        DecodeError::Json {
            offset: self.pos,
            reason,
        }
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated { offset: self.pos }
    }

    fn read_error(&self, e: io::Error) -> DecodeError {
        if let Some(cap) = e.get_ref().and_then(|i| i.downcast_ref::<CapExceeded>()) {
            return DecodeError::TooLarge {
                cap: cap.0,
                offset: self.pos,
            };
        }
        if e.get_ref().is_some_and(|i| i.is::<SourceIoError>()) {
            return DecodeError::Io {
                offset: self.pos,
                source: e,
            };
        }
        if self.info.gzip {
            DecodeError::Gzip {
                offset: self.pos,
                compressed_offset: self.info.raw_bytes.get(),
                source: e,
            }
        } else {
            DecodeError::Io {
                offset: self.pos,
                source: e,
            }
        }
    }
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}
