//! Intake of uploaded and captured media: the one place where untrusted bytes
//! become an image (or a stored PDF) that the pipelines can look at.
//!
//! Why this exists: every capture the widget sends and every file a user
//! uploads goes through a decoder, and a decoder fed hostile bytes is the
//! cheapest way to knock the service over. So intake
//! - decides the format from the bytes themselves (magic numbers), never from
//!   a content type or a file name the client chose;
//! - accepts JPEG, PNG and WebP images and, for general documents, PDF;
//! - refuses, before decoding any pixel, an image whose header claims more
//!   pixels or more memory than [`IntakeLimits`] allow (a decompression bomb)
//!   with [`Reason::ImageTooLarge`];
//! - applies the EXIF orientation, so a phone photo taken upright is upright;
//! - keeps a PDF as it is and counts its pages (see [`pdf_page_count`] for
//!   what that does and does not understand).
//!
//! Anything else is [`Reason::UnreadableImage`]. Decoding is CPU work: call
//! [`intake`] from the blocking pool, never on the async executor.

use std::io::Cursor;

use image::error::LimitErrorKind;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::reason::Reason;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// How much intake accepts. The defaults fit phone photos and scans with
/// room to spare, and stop a bomb long before it costs real memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width and height, in pixels (as stored, before the
    /// EXIF orientation is applied; the check is the same either way round).
    pub max_side: u32,
    /// Most memory the decoded pixels may take, in bytes. (Turning a picture
    /// by its EXIF orientation briefly holds a second copy.)
    pub max_decoded_bytes: u64,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            // 30 MiB: a 50-megapixel phone JPEG is 15–25 MB; a scanned PDF of
            // a few pages is well under.
            max_bytes: 30 * 1024 * 1024,
            // 8000 px: a 48-megapixel sensor is 8000 × 6000.
            max_side: 8000,
            // 256 MiB: 8000 × 8000 RGBA at 8 bits per channel fits.
            max_decoded_bytes: 256 * 1024 * 1024,
        }
    }
}

/// A format intake recognises from the first bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaFormat {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl MediaFormat {
    /// Recognises the format from the file's magic number, or `None`.
    ///
    /// A PDF's `%PDF-` header may follow up to 1024 bytes of junk, as PDF
    /// readers have always accepted (ISO 32000-1, annex H.3, note 1).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(PNG_SIGNATURE) {
            Some(Self::Png)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if find(&bytes[..bytes.len().min(1024 + 5)], b"%PDF-").is_some() {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// The media type to store and serve the file with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
        }
    }

    /// The format's usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Webp => "WebP",
            Self::Pdf => "PDF",
        }
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            Self::Jpeg => Some(ImageFormat::Jpeg),
            Self::Png => Some(ImageFormat::Png),
            Self::Webp => Some(ImageFormat::WebP),
            Self::Pdf => None,
        }
    }
}

impl std::fmt::Display for MediaFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What intake made of a file.
#[derive(Debug, Clone)]
pub enum Intake {
    Image(IntakeImage),
    Pdf(IntakePdf),
}

/// A decoded image, turned upright.
#[derive(Debug, Clone)]
pub struct IntakeImage {
    /// The pixels with the EXIF orientation applied.
    pub image: DynamicImage,
    pub format: MediaFormat,
    /// Width and height as stored in the file, before orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// The orientation the file declared (and that has been applied).
    pub orientation: Orientation,
}

/// A PDF, kept byte for byte, with its page count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakePdf {
    pub pages: u32,
    pub bytes: Vec<u8>,
}

/// Why intake refused a file. Each message says what was wrong and what the
/// user can do; [`IntakeError::reason`] gives the shared reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the file is empty; capture or choose the picture again")]
    Empty,
    #[error("the file is {len} bytes, more than the {max} accepted; send a smaller photo or scan")]
    FileTooLarge { len: usize, max: usize },
    #[error("the file is not a JPEG, PNG, WebP or PDF; send a photo in one of those formats")]
    UnknownFormat,
    #[error(
        "the {format} image is larger than {max_side}×{max_side} pixels{dims}; \
         send a smaller photo",
        dims = describe_dims(*.width, *.height)
    )]
    TooManyPixels {
        format: MediaFormat,
        width: Option<u32>,
        height: Option<u32>,
        max_side: u32,
    },
    #[error(
        "the {format} image would need more than {mib} MiB of memory to decode; \
         send a smaller photo",
        mib = .max / (1024 * 1024)
    )]
    TooMuchMemory { format: MediaFormat, max: u64 },
    #[error("the {format} image cannot be decoded ({detail}); capture or choose it again")]
    Corrupt { format: MediaFormat, detail: String },
    #[error("the PDF cannot be read ({detail}); export or scan it again")]
    BadPdf { detail: String },
}

fn describe_dims(width: Option<u32>, height: Option<u32>) -> String {
    match (width, height) {
        (Some(w), Some(h)) => format!(" (it says {w}×{h})"),
        _ => String::new(),
    }
}

impl IntakeError {
    /// The reason code a check reports for this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Self::FileTooLarge { .. } | Self::TooManyPixels { .. } | Self::TooMuchMemory { .. } => {
                Reason::ImageTooLarge
            }
            Self::Empty | Self::UnknownFormat | Self::Corrupt { .. } | Self::BadPdf { .. } => {
                Reason::UnreadableImage
            }
        }
    }
}

/// Decodes an image or keeps a PDF, refusing whatever is unreadable or too
/// large. See the module documentation.
pub fn intake(bytes: &[u8], limits: &IntakeLimits) -> Result<Intake, IntakeError> {
    if bytes.is_empty() {
        return Err(IntakeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(IntakeError::FileTooLarge {
            len: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = MediaFormat::sniff(bytes).ok_or(IntakeError::UnknownFormat)?;
    match format.image_format() {
        Some(image_format) => decode_image(bytes, format, image_format, limits).map(Intake::Image),
        None => {
            let pages = pdf_page_count(bytes)?;
            Ok(Intake::Pdf(IntakePdf {
                pages,
                bytes: bytes.to_vec(),
            }))
        }
    }
}

fn decode_image(
    bytes: &[u8],
    format: MediaFormat,
    image_format: ImageFormat,
    limits: &IntakeLimits,
) -> Result<IntakeImage, IntakeError> {
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_decoded_bytes);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(decoder_limits);
    // Reads the header only; the decoder checks the dimensions against the
    // limits here (the PNG decoder also bounds its own buffers by max_alloc).
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| refusal(bytes, format, e, limits))?;
    let (width, height) = decoder.dimensions();
    // `into_decoder` does not weigh the output buffer against max_alloc (only
    // `ImageReader::decode` does, and it ignores orientation), so do it here,
    // before a byte of it is allocated.
    if width > limits.max_side || height > limits.max_side {
        return Err(IntakeError::TooManyPixels {
            format,
            width: Some(width),
            height: Some(height),
            max_side: limits.max_side,
        });
    }
    if decoder.total_bytes() > limits.max_decoded_bytes {
        return Err(IntakeError::TooMuchMemory {
            format,
            max: limits.max_decoded_bytes,
        });
    }
    // A broken EXIF block is not worth refusing a photo for: keep it as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| refusal(bytes, format, e, limits))?;
    image.apply_orientation(orientation);
    Ok(IntakeImage {
        image,
        format,
        stored_width: width,
        stored_height: height,
        orientation,
    })
}

fn refusal(
    bytes: &[u8],
    format: MediaFormat,
    error: ImageError,
    limits: &IntakeLimits,
) -> IntakeError {
    match error {
        ImageError::Limits(limit) => match limit.kind() {
            LimitErrorKind::DimensionError => {
                let (width, height) = match png_claimed_dims(bytes) {
                    Some((w, h)) => (Some(w), Some(h)),
                    None => (None, None),
                };
                IntakeError::TooManyPixels {
                    format,
                    width,
                    height,
                    max_side: limits.max_side,
                }
            }
            LimitErrorKind::InsufficientMemory => IntakeError::TooMuchMemory {
                format,
                max: limits.max_decoded_bytes,
            },
            _ => IntakeError::Corrupt {
                format,
                detail: ImageError::Limits(limit).to_string(),
            },
        },
        other => IntakeError::Corrupt {
            format,
            detail: other.to_string(),
        },
    }
}

/// The size a PNG's header claims (IHDR is always the first chunk), for the
/// message when the decoder refuses it. Other formats' refusals omit the size.
fn png_claimed_dims(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || !bytes.starts_with(PNG_SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_be_bytes(b)
    };
    Some((word(16), word(20)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Counts the pages of a PDF: the `/Count` of the page tree's root, the
/// `/Pages` entry of the document catalog that the last trailer's `/Root`
/// names (so an incremental update that adds pages is honoured).
///
/// What it understands: classic `trailer` dictionaries and PDF 1.5
/// cross-reference streams (for `/Root`), objects anywhere in the file
/// (found by scanning for `N G obj`, so a damaged cross-reference table does
/// not matter), and PDF 1.5 object streams compressed with `/FlateDecode`,
/// where modern writers put the catalog and page tree. A `/Count` given as
/// an indirect reference is followed.
///
/// What it does not: object streams with another filter or with a
/// predictor (writers do not produce them in practice), and object streams of
/// encrypted PDFs (their content is encrypted; an encrypted PDF whose page
/// tree is in plain objects is counted, since numbers are never encrypted).
/// When the catalog cannot be reached it falls back to the largest `/Count`
/// of a `/Type /Pages` node without a `/Parent`. The count is the writer's
/// claim; it is not checked against the leaves of the tree. Checked by hand
/// on two pdfTeX manuals (PDF 1.5, page tree in object streams): 36 and 17
/// pages, as their page objects number.
pub fn pdf_page_count(bytes: &[u8]) -> Result<u32, IntakeError> {
    let bad = |detail: &str| IntakeError::BadPdf {
        detail: detail.to_owned(),
    };
    let objects = pdf::ObjectTable::scan(bytes);
    if objects.is_empty() {
        return Err(bad("no objects found"));
    }
    let count = objects
        .page_count()
        .ok_or_else(|| bad("no page tree found"))?;
    if count == 0 {
        return Err(bad("it has no pages"));
    }
    Ok(count)
}

/// Just enough of the PDF object syntax (ISO 32000-1, section 7.3) to find
/// the page tree. Every loop is bounded by the input; nesting by
/// [`pdf::MAX_DEPTH`]; inflation by [`pdf::MAX_INFLATED`]; the whole scan by
/// reading each byte at most about four times, so hostile files cost time
/// linear in their size. Object streams are inflated with `miniz_oxide`, the
/// crate the PNG decoder already builds, rather than with a PDF library: a
/// page count needs a few hundred lines, not a document model.
mod pdf {
    use std::collections::HashMap;

    /// Deeper nesting than any real PDF uses; keeps recursion bounded.
    pub(super) const MAX_DEPTH: usize = 32;
    /// Total bytes all object streams may inflate to.
    pub(super) const MAX_INFLATED: usize = 64 * 1024 * 1024;
    /// Reference chains longer than this are treated as broken.
    const MAX_HOPS: usize = 16;

    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Object {
        Null,
        Bool(bool),
        Int(i64),
        Real,
        Name(Vec<u8>),
        Str,
        Array(Vec<Object>),
        Dict(Vec<(Vec<u8>, Object)>),
        Ref(u32),
    }

    impl Object {
        fn get(&self, key: &[u8]) -> Option<&Object> {
            match self {
                Self::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        fn is_name(&self, name: &[u8]) -> bool {
            matches!(self, Self::Name(n) if n == name)
        }

        fn has_type(&self, name: &[u8]) -> bool {
            self.get(b"Type").is_some_and(|t| t.is_name(name))
        }

        fn as_int(&self) -> Option<i64> {
            match self {
                Self::Int(i) => Some(*i),
                _ => None,
            }
        }
    }

    fn is_space(b: u8) -> bool {
        matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
    }

    fn is_delimiter(b: u8) -> bool {
        matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
        )
    }

    fn is_regular(b: u8) -> bool {
        !is_space(b) && !is_delimiter(b)
    }

    /// A cursor over PDF bytes.
    struct Lexer<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Lexer<'a> {
        fn new(bytes: &'a [u8], pos: usize) -> Self {
            Self { bytes, pos }
        }

        /// The bytes not read yet (none once past the end).
        fn rest(&self) -> &'a [u8] {
            self.bytes.get(self.pos..).unwrap_or_default()
        }

        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        fn skip_space(&mut self) {
            while let Some(b) = self.peek() {
                if is_space(b) {
                    self.pos += 1;
                } else if b == b'%' {
                    while let Some(c) = self.peek() {
                        if c == b'\n' || c == b'\r' {
                            break;
                        }
                        self.pos += 1;
                    }
                } else {
                    break;
                }
            }
        }

        fn regular_token(&mut self) -> &'a [u8] {
            let start = self.pos;
            while self.peek().is_some_and(is_regular) {
                self.pos += 1;
            }
            self.bytes.get(start..self.pos).unwrap_or_default()
        }

        /// Consumes `keyword` (after white space) if it is the next token.
        fn keyword(&mut self, keyword: &[u8]) -> bool {
            self.skip_space();
            let save = self.pos;
            if self.regular_token() == keyword {
                true
            } else {
                self.pos = save;
                false
            }
        }

        fn unsigned(&mut self) -> Option<u32> {
            let token = self.regular_token();
            if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(token).ok()?.parse().ok()
        }

        fn object(&mut self, depth: usize) -> Option<Object> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.skip_space();
            match self.peek()? {
                b'<' if self.bytes.get(self.pos + 1) == Some(&b'<') => {
                    self.pos += 2;
                    let mut entries = Vec::new();
                    loop {
                        self.skip_space();
                        if self.rest().starts_with(b">>") {
                            self.pos += 2;
                            return Some(Object::Dict(entries));
                        }
                        let Object::Name(key) = self.object(depth + 1)? else {
                            return None;
                        };
                        let value = self.object(depth + 1)?;
                        entries.push((key, value));
                    }
                }
                b'<' => {
                    let end = self.rest().iter().position(|&b| b == b'>')?;
                    self.pos += end + 1;
                    Some(Object::Str)
                }
                b'(' => {
                    self.pos += 1;
                    let mut open = 1usize;
                    while open > 0 {
                        match self.peek()? {
                            b'\\' => self.pos += 1,
                            b'(' => open += 1,
                            b')' => open -= 1,
                            _ => {}
                        }
                        self.pos += 1;
                    }
                    Some(Object::Str)
                }
                b'[' => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    loop {
                        self.skip_space();
                        if self.peek()? == b']' {
                            self.pos += 1;
                            return Some(Object::Array(items));
                        }
                        items.push(self.object(depth + 1)?);
                    }
                }
                b'/' => {
                    self.pos += 1;
                    Some(Object::Name(self.regular_token().to_vec()))
                }
                b if b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'.' => self.number(),
                b if is_regular(b) => match self.regular_token() {
                    b"true" => Some(Object::Bool(true)),
                    b"false" => Some(Object::Bool(false)),
                    b"null" => Some(Object::Null),
                    _ => None,
                },
                _ => None,
            }
        }

        /// A number, or an indirect reference `N G R`.
        fn number(&mut self) -> Option<Object> {
            let token = self.regular_token();
            let text = std::str::from_utf8(token).ok()?;
            let Ok(int) = text.parse::<i64>() else {
                return text.parse::<f64>().ok().map(|_| Object::Real);
            };
            if let Ok(num) = u32::try_from(int) {
                let save = self.pos;
                self.skip_space();
                if self.unsigned().is_some() && self.keyword(b"R") {
                    return Some(Object::Ref(num));
                }
                self.pos = save;
            }
            Some(Object::Int(int))
        }
    }

    /// Every object found in a file (the latest definition of each number
    /// winning, as incremental updates intend) and every `/Root` declared.
    pub(super) struct ObjectTable {
        objects: HashMap<u32, Object>,
        /// `(file offset, catalog object number)` of each trailer or
        /// cross-reference stream.
        roots: Vec<(usize, u32)>,
        /// Where stream data lies, so that no keyword is looked for inside.
        streams: Vec<(usize, usize)>,
        inflated: usize,
        /// Bytes the lexer has gone through, and how many it may: a file
        /// made of object headers whose objects never end cannot make the
        /// scan quadratic.
        work: usize,
        file_len: usize,
    }

    impl ObjectTable {
        pub(super) fn scan(bytes: &[u8]) -> Self {
            let mut table = Self {
                objects: HashMap::new(),
                roots: Vec::new(),
                streams: Vec::new(),
                inflated: 0,
                work: 0,
                file_len: bytes.len(),
            };
            let mut pos = 0;
            while !table.over_budget()
                && let Some(at) = super::find(&bytes[pos..], b"obj").map(|i| i + pos)
            {
                pos = table.read_indirect(bytes, at).unwrap_or(at + 3);
            }
            let mut pos = 0;
            while !table.over_budget()
                && let Some(at) = super::find(&bytes[pos..], b"trailer").map(|i| i + pos)
            {
                pos = at + 7;
                if table.in_stream(at) {
                    continue;
                }
                let mut lexer = Lexer::new(bytes, pos);
                let trailer = lexer.object(0);
                table.work += lexer.pos.saturating_sub(pos);
                if let Some(Object::Ref(root)) = trailer.as_ref().and_then(|t| t.get(b"Root")) {
                    table.roots.push((at, *root));
                }
            }
            table.roots.sort_by_key(|&(at, _)| at);
            table
        }

        pub(super) fn is_empty(&self) -> bool {
            self.objects.is_empty()
        }

        /// Whether the scan has read each byte, of the file and of what it
        /// inflated, four times over (a well-formed file needs about once).
        fn over_budget(&self) -> bool {
            let budget = self
                .file_len
                .saturating_add(self.inflated)
                .saturating_mul(4);
            self.work > budget.saturating_add(64 * 1024)
        }

        /// Whether `at` lies in the data of a stream (streams are recorded
        /// in file order, without overlap).
        fn in_stream(&self, at: usize) -> bool {
            let after = self.streams.partition_point(|&(start, _)| start <= at);
            after > 0 && at < self.streams[after - 1].1
        }

        /// Reads `N G obj … endobj` whose `obj` keyword is at `at`; returns
        /// where scanning goes on, or `None` when this is no object header.
        fn read_indirect(&mut self, bytes: &[u8], at: usize) -> Option<usize> {
            if bytes.get(at + 3).is_some_and(|&b| is_regular(b)) {
                return None;
            }
            let number = header_number(bytes, at)?;
            let mut lexer = Lexer::new(bytes, at + 3);
            let parsed = lexer.object(0);
            self.work += lexer.pos.saturating_sub(at);
            let object = parsed?;
            if !lexer.keyword(b"stream") {
                self.objects.insert(number, object);
                return Some(lexer.pos);
            }
            // Stream data starts after the end of line that follows `stream`.
            let mut start = lexer.pos;
            if bytes.get(start) == Some(&b'\r') {
                start += 1;
            }
            if bytes.get(start) == Some(&b'\n') {
                start += 1;
            }
            let end = stream_end(bytes, start, object.get(b"Length"));
            // Looking for `endstream` may have read to the end of the file.
            self.work += end.unwrap_or(bytes.len()).saturating_sub(start);
            let end = end?;
            self.streams.push((start, end));
            if object.has_type(b"XRef") {
                if let Some(Object::Ref(root)) = object.get(b"Root") {
                    self.roots.push((at, *root));
                }
            } else if object.has_type(b"ObjStm") {
                self.read_object_stream(&object, &bytes[start..end]);
            }
            self.objects.insert(number, object);
            Some(end)
        }

        /// Adds the objects packed in a `/FlateDecode` object stream.
        fn read_object_stream(&mut self, dict: &Object, data: &[u8]) {
            let flate = match dict.get(b"Filter") {
                Some(Object::Name(name)) => name == b"FlateDecode",
                Some(Object::Array(filters)) => {
                    filters.len() == 1 && filters[0].is_name(b"FlateDecode")
                }
                _ => false,
            };
            let predictor = dict
                .get(b"DecodeParms")
                .and_then(|p| p.get(b"Predictor"))
                .and_then(Object::as_int)
                .unwrap_or(1);
            let (Some(count), Some(first)) = (
                dict.get(b"N").and_then(Object::as_int),
                dict.get(b"First").and_then(Object::as_int),
            ) else {
                return;
            };
            let (Ok(count), Ok(first)) = (usize::try_from(count), usize::try_from(first)) else {
                return;
            };
            if !flate || predictor > 1 {
                return;
            }
            let budget = MAX_INFLATED.saturating_sub(self.inflated);
            let Ok(inflated) =
                miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, budget)
            else {
                return;
            };
            self.inflated += inflated.len();
            let mut header = Lexer::new(&inflated, 0);
            for _ in 0..count {
                header.skip_space();
                let Some(number) = header.unsigned() else {
                    return;
                };
                header.skip_space();
                let Some(offset) = header.unsigned() else {
                    return;
                };
                let Some(at) = first.checked_add(offset as usize) else {
                    return;
                };
                if self.over_budget() {
                    return;
                }
                if at < inflated.len() {
                    let mut lexer = Lexer::new(&inflated, at);
                    let parsed = lexer.object(0);
                    self.work += lexer.pos.saturating_sub(at);
                    if let Some(object) = parsed {
                        self.objects.insert(number, object);
                    }
                }
            }
        }

        fn resolve<'a>(&'a self, mut object: &'a Object) -> Option<&'a Object> {
            for _ in 0..MAX_HOPS {
                match object {
                    Object::Ref(number) => object = self.objects.get(number)?,
                    direct => return Some(direct),
                }
            }
            None
        }

        fn count_of(&self, pages: &Object) -> Option<u32> {
            let count = self.resolve(pages.get(b"Count")?)?.as_int()?;
            u32::try_from(count).ok()
        }

        /// The page count through the catalog, newest trailer first; else the
        /// largest root-looking page tree node.
        pub(super) fn page_count(&self) -> Option<u32> {
            let through_catalog = self.roots.iter().rev().find_map(|&(_, root)| {
                let catalog = self.objects.get(&root)?;
                let pages = self.resolve(catalog.get(b"Pages")?)?;
                self.count_of(pages)
            });
            through_catalog.or_else(|| {
                self.objects
                    .values()
                    .filter(|o| o.has_type(b"Pages") && o.get(b"Parent").is_none())
                    .filter_map(|o| self.count_of(o))
                    .max()
            })
        }
    }

    /// The object number of `N G obj` whose `obj` is at `at`, read backwards.
    fn header_number(bytes: &[u8], at: usize) -> Option<u32> {
        let mut i = at;
        let digits = |i: &mut usize| -> Option<std::ops::Range<usize>> {
            let end = *i;
            while *i > 0 && bytes[*i - 1].is_ascii_digit() {
                *i -= 1;
            }
            (*i < end).then_some(*i..end)
        };
        let spaces = |i: &mut usize| -> bool {
            let end = *i;
            while *i > 0 && is_space(bytes[*i - 1]) {
                *i -= 1;
            }
            *i < end
        };
        if !spaces(&mut i) {
            return None;
        }
        digits(&mut i)?;
        if !spaces(&mut i) {
            return None;
        }
        let number = digits(&mut i)?;
        if i > 0 && is_regular(bytes[i - 1]) {
            return None;
        }
        std::str::from_utf8(&bytes[number]).ok()?.parse().ok()
    }

    /// Where a stream's data ends: at `/Length` when that is a direct number
    /// that lands on `endstream`, else just before the next `endstream`.
    fn stream_end(bytes: &[u8], start: usize, length: Option<&Object>) -> Option<usize> {
        if let Some(len) = length
            .and_then(Object::as_int)
            .and_then(|l| usize::try_from(l).ok())
            && let Some(end) = start.checked_add(len).filter(|&e| e <= bytes.len())
            && Lexer::new(bytes, end).keyword(b"endstream")
        {
            return Some(end);
        }
        let found = start + super::find(bytes.get(start..)?, b"endstream")?;
        let mut end = found;
        if end > start && bytes[end - 1] == b'\n' {
            end -= 1;
        }
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, RgbImage};

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }

    /// A valid PNG header claiming `width` × `height` RGBA at 16 bits per
    /// channel, followed by one small compressed row of zeros: a bomb.
    fn bomb_png(width: u32, height: u32) -> Vec<u8> {
        let mut png = PNG_SIGNATURE.to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
        png_chunk(&mut png, b"IHDR", &ihdr);
        let idat = miniz_oxide::deflate::compress_to_vec_zlib(&[0u8; 4096], 6);
        png_chunk(&mut png, b"IDAT", &idat);
        png_chunk(&mut png, b"IEND", &[]);
        png
    }

    fn two_halves(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        })
    }

    fn encode(image: &RgbImage, format: MediaFormat) -> Vec<u8> {
        let mut out = Vec::new();
        let (w, h) = image.dimensions();
        let raw = image.as_raw();
        let rgb = image::ExtendedColorType::Rgb8;
        match format {
            MediaFormat::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                .write_image(raw, w, h, rgb)
                .unwrap(),
            MediaFormat::Png => image::codecs::png::PngEncoder::new(&mut out)
                .write_image(raw, w, h, rgb)
                .unwrap(),
            MediaFormat::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .write_image(raw, w, h, rgb)
                .unwrap(),
            MediaFormat::Pdf => unreachable!("not an image format"),
        }
        out
    }

    /// An APP1 segment whose EXIF (big-endian TIFF) holds one entry:
    /// Orientation = `value`.
    fn exif_app1(value: u16, big_endian: bool) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut tiff = if big_endian {
            b"MM\0\x2a".to_vec()
        } else {
            b"II\x2a\0".to_vec()
        };
        tiff.extend_from_slice(&u32b(8)); // first directory
        tiff.extend_from_slice(&u16b(1)); // one entry
        tiff.extend_from_slice(&u16b(0x0112)); // Orientation
        tiff.extend_from_slice(&u16b(3)); // SHORT
        tiff.extend_from_slice(&u32b(1));
        tiff.extend_from_slice(&u16b(value));
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&u32b(0)); // no next directory
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&tiff);
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        segment.extend_from_slice(&payload);
        segment
    }

    fn image_of(result: Result<Intake, IntakeError>) -> IntakeImage {
        match result.unwrap() {
            Intake::Image(image) => image,
            Intake::Pdf(_) => panic!("expected an image"),
        }
    }

    #[test]
    fn sniffs_formats_from_magic_numbers() {
        let picture = two_halves(8, 4);
        for format in [MediaFormat::Jpeg, MediaFormat::Png, MediaFormat::Webp] {
            assert_eq!(MediaFormat::sniff(&encode(&picture, format)), Some(format));
        }
        assert_eq!(MediaFormat::sniff(b"%PDF-1.7\n"), Some(MediaFormat::Pdf));
        assert_eq!(
            MediaFormat::sniff(b"junk before\n%PDF-1.4\n"),
            Some(MediaFormat::Pdf)
        );
        assert_eq!(MediaFormat::sniff(b"GIF89a......"), None);
        assert_eq!(MediaFormat::sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(MediaFormat::sniff(b""), None);
    }

    #[test]
    fn decodes_each_image_format_whatever_it_is_called() {
        let picture = two_halves(40, 30);
        for format in [MediaFormat::Jpeg, MediaFormat::Png, MediaFormat::Webp] {
            let got = image_of(intake(&encode(&picture, format), &IntakeLimits::default()));
            assert_eq!(got.format, format);
            assert_eq!((got.image.width(), got.image.height()), (40, 30));
            assert_eq!((got.stored_width, got.stored_height), (40, 30));
            assert_eq!(got.orientation, Orientation::NoTransforms);
            let left = got.image.to_rgb8().get_pixel(5, 15).0;
            assert!(left[0] > 180 && left[2] < 70, "{format}: {left:?}");
        }
    }

    #[test]
    fn applies_the_exif_orientation_of_a_jpeg() {
        let jpeg = encode(&two_halves(64, 32), MediaFormat::Jpeg);
        let mut rotated = jpeg[..2].to_vec();
        rotated.extend_from_slice(&exif_app1(6, true)); // "rotate 90° clockwise to view"
        rotated.extend_from_slice(&jpeg[2..]);

        let got = image_of(intake(&rotated, &IntakeLimits::default()));
        assert_eq!(got.orientation, Orientation::Rotate90);
        assert_eq!((got.stored_width, got.stored_height), (64, 32));
        assert_eq!((got.image.width(), got.image.height()), (32, 64));
        // The left (red) half of the stored picture is now on top.
        let rgb = got.image.to_rgb8();
        let (top, bottom) = (rgb.get_pixel(16, 8).0, rgb.get_pixel(16, 56).0);
        assert!(top[0] > 180 && top[2] < 70, "top {top:?}");
        assert!(bottom[2] > 180 && bottom[0] < 70, "bottom {bottom:?}");
    }

    #[test]
    fn other_orientations_and_byte_orders_are_applied_too() {
        let jpeg = encode(&two_halves(64, 32), MediaFormat::Jpeg);
        let red = |p: [u8; 3]| p[0] > 180 && p[2] < 70;
        // (EXIF value, orientation, size, where the red half now is)
        let cases = [
            (1, Orientation::NoTransforms, (64, 32), (8, 16)),
            (3, Orientation::Rotate180, (64, 32), (56, 16)),
            (8, Orientation::Rotate270, (32, 64), (16, 56)),
            (2, Orientation::FlipHorizontal, (64, 32), (56, 16)),
        ];
        for big_endian in [false, true] {
            for (value, orientation, size, (x, y)) in cases {
                let mut tagged = jpeg[..2].to_vec();
                tagged.extend_from_slice(&exif_app1(value, big_endian));
                tagged.extend_from_slice(&jpeg[2..]);
                let got = image_of(intake(&tagged, &IntakeLimits::default()));
                assert_eq!(got.orientation, orientation, "EXIF {value}");
                assert_eq!(
                    (got.image.width(), got.image.height()),
                    size,
                    "EXIF {value}"
                );
                let pixel = got.image.to_rgb8().get_pixel(x, y).0;
                assert!(red(pixel), "EXIF {value}: {pixel:?} at ({x}, {y})");
            }
        }
    }

    #[test]
    fn refuses_a_png_claiming_too_many_pixels_before_decoding() {
        // 100 000 × 100 000 × 8 bytes would be 80 GB: had intake allocated
        // it, this test would have aborted rather than failed.
        let bomb = bomb_png(100_000, 100_000);
        assert!(bomb.len() < 200);
        let error = intake(&bomb, &IntakeLimits::default()).unwrap_err();
        assert_eq!(error.reason(), Reason::ImageTooLarge);
        assert!(matches!(
            error,
            IntakeError::TooManyPixels {
                width: Some(100_000),
                height: Some(100_000),
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains("100000×100000") && message.contains("8000×8000"),
            "{message}"
        );
    }

    #[test]
    fn refuses_a_png_that_fits_the_sides_but_not_the_memory() {
        // 8000 × 8000 at 8 bytes a pixel is 512 MB, twice the default budget.
        let error = intake(&bomb_png(8000, 8000), &IntakeLimits::default()).unwrap_err();
        assert_eq!(error.reason(), Reason::ImageTooLarge);
        assert!(
            matches!(error, IntakeError::TooMuchMemory { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("256 MiB"), "{error}");
    }

    #[test]
    fn limits_are_the_callers_to_choose() {
        let png = encode(&two_halves(40, 30), MediaFormat::Png);
        let tight = IntakeLimits {
            max_side: 32,
            ..IntakeLimits::default()
        };
        assert_eq!(
            intake(&png, &tight).unwrap_err().reason(),
            Reason::ImageTooLarge
        );
        let small_file = IntakeLimits {
            max_bytes: 10,
            ..IntakeLimits::default()
        };
        let error = intake(&png, &small_file).unwrap_err();
        assert!(matches!(error, IntakeError::FileTooLarge { max: 10, .. }));
        let jpeg = encode(&two_halves(40, 30), MediaFormat::Jpeg);
        let no_memory = IntakeLimits {
            max_decoded_bytes: 1000,
            ..IntakeLimits::default()
        };
        let error = intake(&jpeg, &no_memory).unwrap_err();
        assert!(
            matches!(error, IntakeError::TooMuchMemory { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn unreadable_bytes_say_so() {
        let limits = IntakeLimits::default();
        assert_eq!(intake(b"", &limits).unwrap_err(), IntakeError::Empty);
        let error = intake(b"hello, world", &limits).unwrap_err();
        assert_eq!(error, IntakeError::UnknownFormat);
        assert_eq!(error.reason(), Reason::UnreadableImage);

        for format in [MediaFormat::Jpeg, MediaFormat::Png, MediaFormat::Webp] {
            let whole = encode(&two_halves(40, 30), format);
            let truncated = &whole[..whole.len() / 2];
            let error = intake(truncated, &limits).unwrap_err();
            assert_eq!(error.reason(), Reason::UnreadableImage, "{format}: {error}");
        }
        let mut garbled = PNG_SIGNATURE.to_vec();
        garbled.extend_from_slice(&[0x55; 64]);
        assert_eq!(
            intake(&garbled, &limits).unwrap_err().reason(),
            Reason::UnreadableImage
        );
    }

    /// A classic PDF from numbered object bodies, with a correct xref table.
    fn classic_pdf(objects: &[(u32, &str)], root: u32) -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (number, body) in objects {
            offsets.push((*number, pdf.len()));
            pdf.extend_from_slice(format!("{number} 0 obj\n{body}\nendobj\n").as_bytes());
        }
        append_xref(&mut pdf, &offsets, root, None);
        pdf
    }

    fn append_xref(pdf: &mut Vec<u8>, offsets: &[(u32, usize)], root: u32, prev: Option<usize>) {
        let xref = pdf.len();
        pdf.extend_from_slice(b"xref\n");
        for (number, offset) in offsets {
            pdf.extend_from_slice(format!("{number} 1\n{offset:010} 00000 n \n").as_bytes());
        }
        let size = offsets.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
        let prev = prev.map(|p| format!(" /Prev {p}")).unwrap_or_default();
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {size} /Root {root} 0 R{prev} >>\nstartxref\n{xref}\n%%EOF\n"
            )
            .as_bytes(),
        );
    }

    fn pdf_pages(bytes: &[u8]) -> Result<u32, IntakeError> {
        match intake(bytes, &IntakeLimits::default())? {
            Intake::Pdf(pdf) => {
                assert_eq!(pdf.bytes, bytes, "a PDF is kept as it is");
                Ok(pdf.pages)
            }
            Intake::Image(_) => panic!("expected a PDF"),
        }
    }

    #[test]
    fn counts_the_pages_of_a_classic_pdf_with_a_nested_page_tree() {
        let pdf = classic_pdf(
            &[
                (1, "<< /Type /Catalog /Pages 2 0 R >>"),
                (2, "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 3 >>"),
                (3, "<< /Type /Page /Parent 2 0 R /Contents 6 0 R >>"),
                (
                    4,
                    "<< /Type /Pages /Parent 2 0 R /Kids [5 0 R 7 0 R] /Count 2 >>",
                ),
                (5, "<< /Type /Page /Parent 4 0 R >>"),
                (
                    6,
                    "<< /Length 44 >>\nstream\nBT (a string with obj ) and \\) in it) Tj ET\nendstream",
                ),
                (
                    7,
                    "<< /Type /Page /Parent 4 0 R /Annots [<< /T (x) /F 4 >>] >>",
                ),
            ],
            1,
        );
        assert_eq!(pdf_pages(&pdf), Ok(3));
    }

    #[test]
    fn follows_an_indirect_count_and_ignores_comments() {
        let pdf = classic_pdf(
            &[
                (1, "<< /Type /Catalog % the catalog\n /Pages 2 0 R >>"),
                (2, "<< /Type /Pages /Kids [] /Count 9 0 R >>"),
                (9, "12"),
            ],
            1,
        );
        assert_eq!(pdf_pages(&pdf), Ok(12));
    }

    #[test]
    fn an_incremental_update_that_adds_pages_is_honoured() {
        let mut pdf = classic_pdf(
            &[
                (1, "<< /Type /Catalog /Pages 2 0 R >>"),
                (2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
                (3, "<< /Type /Page /Parent 2 0 R >>"),
            ],
            1,
        );
        let first_xref = pdf.len();
        let mut offsets = Vec::new();
        for (number, body) in [
            (2, "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>"),
            (4, "<< /Type /Page /Parent 2 0 R >>"),
        ] {
            offsets.push((number, pdf.len()));
            pdf.extend_from_slice(format!("{number} 0 obj\n{body}\nendobj\n").as_bytes());
        }
        append_xref(&mut pdf, &offsets, 1, Some(first_xref));
        assert_eq!(pdf_pages(&pdf), Ok(2));
    }

    #[test]
    fn counts_pages_kept_in_a_compressed_object_stream() {
        // As PDF 1.5 writers do: catalog and page tree inside an object
        // stream, a cross-reference stream instead of a trailer.
        let packed = [
            (1, "<< /Type /Catalog /Pages 2 0 R >>"),
            (
                2,
                "<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R 6 0 R 7 0 R] /Count 5 >>",
            ),
            (3, "<< /Type /Page /Parent 2 0 R >>"),
            (4, "<< /Type /Page /Parent 2 0 R >>"),
            (5, "<< /Type /Page /Parent 2 0 R >>"),
            (6, "<< /Type /Page /Parent 2 0 R >>"),
            (7, "<< /Type /Page /Parent 2 0 R >>"),
        ];
        let mut header = String::new();
        let mut body = String::new();
        for (number, text) in packed {
            header.push_str(&format!("{number} {} ", body.len()));
            body.push_str(text);
            body.push('\n');
        }
        let plain = format!("{header}\n{body}");
        let deflated = miniz_oxide::deflate::compress_to_vec_zlib(plain.as_bytes(), 6);

        let mut pdf = b"%PDF-1.5\n%\xE2\xE3\xCF\xD3\n".to_vec();
        pdf.extend_from_slice(
            format!(
                "8 0 obj\n<< /Type /ObjStm /N {} /First {} /Filter /FlateDecode /Length {} >>\nstream\n",
                packed.len(),
                header.len() + 1,
                deflated.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(&deflated);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
        let xref_data = miniz_oxide::deflate::compress_to_vec_zlib(&[1, 0, 0x0f, 0], 6);
        let xref_at = pdf.len();
        pdf.extend_from_slice(
            format!(
                "9 0 obj\n<< /Type /XRef /Size 10 /W [1 2 1] /Root 1 0 R /Filter /FlateDecode /Length {} >>\nstream\n",
                xref_data.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(&xref_data);
        pdf.extend_from_slice(
            format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes(),
        );
        assert_eq!(pdf_pages(&pdf), Ok(5));
    }

    #[test]
    fn a_pdf_without_a_readable_page_tree_is_unreadable() {
        for bytes in [
            &b"%PDF-1.4\nnothing else"[..],
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer << /Root 1 0 R >>",
            b"%PDF-1.4\n1 0 obj\n<< /Type /Pages /Count 0 >>\nendobj\n",
            b"%PDF-1.4\n1 0 obj\n<< /Type /Pages /Count [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ >>",
        ] {
            let error = pdf_pages(bytes).unwrap_err();
            assert_eq!(error.reason(), Reason::UnreadableImage, "{error}");
            assert!(matches!(error, IntakeError::BadPdf { .. }));
        }
    }

    #[test]
    fn damaged_pdfs_are_refused_or_counted_never_a_crash() {
        let pdf = classic_pdf(
            &[
                (
                    1,
                    "<< /Type /Catalog /Pages 2 0 R /Names << /X [(a\\) (b)] <00ff> >> >>",
                ),
                (2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
                (
                    3,
                    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612.0 792] >>",
                ),
                (4, "<< /Length 10 >>\nstream\n0123456789\nendstream"),
            ],
            1,
        );
        for end in 0..pdf.len() {
            let _ = pdf_page_count(&pdf[..end]);
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut mutated = pdf.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % mutated.len() as u64) as usize;
                let alphabet = b"()<>[]/%0 R\\\n\xff";
                mutated[at] = alphabet[(seed >> 32) as usize % alphabet.len()];
            }
            let _ = pdf_page_count(&mutated);
        }
        assert_eq!(pdf_page_count(&pdf), Ok(1));
    }

    #[test]
    fn objects_that_never_end_cannot_make_the_scan_quadratic() {
        // 100 000 headers each opening a string that runs to the end of the
        // file: parsing every one to the end would read 30 GB.
        let mut hostile = b"%PDF-1.4\n".to_vec();
        for _ in 0..100_000 {
            hostile.extend_from_slice(b"1 0 obj (");
        }
        hostile.extend_from_slice(b"trailer << /Root 1 0 R >>");
        let error = pdf_page_count(&hostile).unwrap_err();
        assert_eq!(error.reason(), Reason::UnreadableImage);
    }

    #[test]
    fn a_page_tree_without_a_trailer_is_still_found() {
        let bytes = b"%PDF-1.4\n1 0 obj\n<< /Type /Pages /Kids [] /Count 4 >>\nendobj\n\
                      2 0 obj\n<< /Type /Pages /Parent 1 0 R /Count 2 >>\nendobj\n";
        assert_eq!(pdf_pages(bytes), Ok(4));
    }
}
