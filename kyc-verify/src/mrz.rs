//! Machine-readable zones (MRZ) of travel documents as ICAO Doc 9303 lays them
//! out: TD1 identity cards (3 lines of 30), TD2 cards (2 × 36), TD3 passports
//! (2 × 44) and the MRV-A (2 × 44) and MRV-B (2 × 36) visas.
//!
//! Why this exists: the document pipeline reads the MRZ off a photo with OCR,
//! and OCR makes mistakes. This module turns the OCR'd lines into typed fields
//! (names, document number, dates, country codes) and says, check digit by
//! check digit, whether the zone is consistent, so the decision rules can
//! decline or ask for review with an `mrz_check_digit` reason. It is a pure
//! function of its input and of `today` (passed in, because two-digit years
//! need a reference date), so it is trivial to test and to fuzz.
//!
//! # What it repairs, and what it will not
//!
//! It repairs only misreadings that the structure of the zone proves, and
//! records each one in [`Mrz::corrections`]:
//! - `‹`, and `«` (one or two fillers, whichever makes the line's length),
//!   become the filler `<`; so does a `K` at the tail of a name or of a country
//!   code, where nothing but fillers may stand;
//! - a digit in a letters-only field (document code, country codes, names)
//!   becomes its look-alike letter (`0`→`O`, `1`→`I`, `2`→`Z`, `5`→`S`,
//!   `6`→`G`, `8`→`B`);
//! - a letter in a digits-only field (dates, check digits) becomes its
//!   look-alike digit (`O`/`D`/`Q`→`0`, `I`/`L`→`1`, `Z`→`2`, `S`→`5`,
//!   `G`→`6`, `T`→`7`, `B`→`8`), and only when the check digit then holds;
//! - a name line one or two characters short or long, when the difference is
//!   in its trailing run of fillers (OCR miscounts runs of identical glyphs,
//!   and no check digit covers the name line).
//!
//! It never changes a document number or optional data, which hold letters and
//! digits alike. Their only protection is one weighted sum modulo 10 (the
//! composite check digit weighs the document number with the same 7, 3, 1 as
//! its own check digit, so it adds nothing there): for any reading that fails
//! it, one wrong character anywhere explains the failure as well as a
//! look-alike does, and "correcting" would turn some misreadings into a wrong
//! number with every check digit valid (on the ICAO specimen passport, one
//! wrong character in the number leaves a single look-alike reading that fits
//! in over a hundred cases, nearly all of them wrong). When exactly one
//! single-character look-alike swap satisfies the check digit and the
//! composite, it is offered as [`CheckDigit::suggestion`], a hint for a person
//! holding the document; the check digit stays invalid.
//!
//! Doc 9303's own blind spot: `<` counts as 0, and characters whose values are
//! congruent modulo 10 weigh alike (`0 < A K U`, `1 B L V`, `2 C M W`, …), so
//! swapping one for another inside an alphanumeric field changes no check
//! digit. Dates and check digits admit digits only, so there every single
//! wrong character is caught.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// The filler character.
const FILLER: u8 = b'<';

/// Weights of an ICAO check digit, repeated over the field.
const WEIGHTS: [u32; 3] = [7, 3, 1];

/// The layout an MRZ follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MrzFormat {
    /// Cards: 3 lines of 30 characters (Doc 9303 Part 5).
    #[serde(rename = "TD1")]
    Td1,
    /// Cards: 2 lines of 36 characters (Part 6).
    #[serde(rename = "TD2")]
    Td2,
    /// Passport books: 2 lines of 44 characters (Part 4).
    #[serde(rename = "TD3")]
    Td3,
    /// Visas of format A: 2 lines of 44 characters, no composite check digit (Part 7).
    #[serde(rename = "MRV-A")]
    MrvA,
    /// Visas of format B: 2 lines of 36 characters, no composite check digit (Part 7).
    #[serde(rename = "MRV-B")]
    MrvB,
}

impl fmt::Display for MrzFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Td1 => "TD1",
            Self::Td2 => "TD2",
            Self::Td3 => "TD3",
            Self::MrvA => "MRV-A",
            Self::MrvB => "MRV-B",
        })
    }
}

/// What kind of document the document code names, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// `P…`: passports of every sort (ordinary, diplomatic, service, emergency).
    Passport,
    /// `I…`, `A…`, `C…` cards that are not residence permits nor crew certificates.
    IdCard,
    /// `IR`, `AR`, `CR`: residence permits.
    ResidencePermit,
    /// `V…`: visas.
    Visa,
    /// Anything else, such as `AC` (crew member certificate).
    Other,
}

/// Sex as the MRZ states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// `F`
    Female,
    /// `M`
    Male,
    /// `X`, which Doc 9303 calls "unspecified".
    X,
    /// `<`: the field is left as filler.
    Unspecified,
}

/// A country or organisation code from the MRZ (issuing state or nationality).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountryCode {
    /// The code as printed, fillers removed: `UTO`, or `D` for Germany.
    pub icao: String,
    /// The ISO 3166-1 alpha-3 code where ICAO's differs (`D` → `DEU`); codes
    /// ISO does not have (`UNO`, `XXA`, `EUE`, `GBD`, `RKS`, …) stay as they are.
    pub alpha3: String,
}

/// A field of the zone, to say where a check digit or a problem belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MrzField {
    DocumentCode,
    IssuingState,
    Name,
    DocumentNumber,
    Nationality,
    BirthDate,
    Sex,
    ExpiryDate,
    /// The optional data (TD3: the personal number; TD1: on the first line).
    OptionalData,
    /// TD1 only: the optional data of the second line.
    OptionalData2,
    /// The composite check digit over the whole data line(s).
    Composite,
}

impl fmt::Display for MrzField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DocumentCode => "document code",
            Self::IssuingState => "issuing state",
            Self::Name => "name",
            Self::DocumentNumber => "document number",
            Self::Nationality => "nationality",
            Self::BirthDate => "date of birth",
            Self::Sex => "sex",
            Self::ExpiryDate => "date of expiry",
            Self::OptionalData => "optional data",
            Self::OptionalData2 => "second optional data",
            Self::Composite => "composite",
        })
    }
}

/// One check digit of the zone and whether it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckDigit {
    /// The field it protects.
    pub field: MrzField,
    /// Where the check digit stands, 1-based.
    pub line: usize,
    pub column: usize,
    /// The check digit as read (after the corrections in [`Mrz::corrections`]).
    pub found: char,
    /// The check digit the field's characters give.
    pub expected: char,
    pub valid: bool,
    /// For an invalid document number or personal number: the only reading
    /// with one character swapped for an OCR look-alike (`0`/`O`/`D`/`Q`,
    /// `1`/`I`/`L`, `2`/`Z`, `5`/`S`, `6`/`G`, `7`/`T`, `8`/`B`) that satisfies
    /// this check digit and the composite. A hint for a person holding the
    /// document, never applied: when the misreading was not a look-alike, the
    /// hint is wrong as often as not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// The places the check digit covers, 1-based (line, column): what a
    /// repair of the reading may touch when this check fails.
    #[serde(skip)]
    pub covers: Vec<(usize, usize)>,
}

/// Two check digits are equal when they say the same about the document:
/// `covers` follows from the format and is not sent over the API.
impl PartialEq for CheckDigit {
    fn eq(&self, other: &Self) -> bool {
        (
            self.field,
            self.line,
            self.column,
            self.found,
            self.expected,
            self.valid,
            &self.suggestion,
        ) == (
            other.field,
            other.line,
            other.column,
            other.found,
            other.expected,
            other.valid,
            &other.suggestion,
        )
    }
}

impl Eq for CheckDigit {}

/// Why a character was repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionKind {
    /// `‹` or `«` read where the zone has the filler `<`.
    FillerLookalike,
    /// `K` read at the tail of a name or country code, where only fillers may stand.
    FillerReadAsK,
    /// A letter read in a digits-only field; its look-alike digit makes the check digit hold.
    LetterForDigit,
    /// A digit read in a letters-only field.
    DigitForLetter,
    /// A filler added or dropped at the end of a name line whose run of fillers OCR miscounted.
    FillerCount,
}

/// One repair of the OCR'd text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// Where, 1-based, in [`Mrz::lines`].
    pub line: usize,
    pub column: usize,
    /// What OCR gave (empty when a missing filler was added).
    pub from: String,
    /// What the zone holds now (empty when a surplus filler was dropped).
    pub to: String,
    pub kind: CorrectionKind,
}

/// The fields of a machine-readable zone, with its check digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mrz {
    pub format: MrzFormat,
    /// `P`, `PD`, `I`, `ID`, `IR`, `AC`, `V`, …: the first two characters, fillers removed.
    pub document_code: String,
    pub document_kind: DocumentKind,
    pub issuing_state: CountryCode,
    /// The primary identifier, components separated by spaces.
    pub surname: String,
    /// The secondary identifier, components separated by spaces; empty when there is none.
    pub given_names: String,
    /// Fillers removed; a long TD1/TD2 number includes its continuation in the optional data.
    pub document_number: String,
    pub nationality: CountryCode,
    /// `None` when the zone gives the date, or a part of it, as unknown (`<`).
    #[serde(with = "iso_date")]
    pub birth_date: Option<Date>,
    pub sex: Sex,
    /// `None` when the zone gives no date of expiry (`<`).
    #[serde(with = "iso_date")]
    pub expiry_date: Option<Date>,
    /// Trailing fillers removed, inner ones kept. TD3: the personal number.
    /// TD1/TD2 with a long document number: what follows its continuation.
    pub optional_data: String,
    /// TD1 only: the optional data of the second line.
    pub optional_data_2: Option<String>,
    /// Every check digit of the format, in the order of the zone.
    pub check_digits: Vec<CheckDigit>,
    /// Every repair made to the OCR'd text, in the order made.
    pub corrections: Vec<Correction>,
    /// The zone as read, after the corrections.
    pub lines: Vec<String>,
}

impl Mrz {
    /// Whether every check digit holds. A caller reports each invalid entry of
    /// [`Mrz::check_digits`] as an `mrz_check_digit` reason.
    pub fn all_check_digits_valid(&self) -> bool {
        self.check_digits.iter().all(|check| check.valid)
    }
}

/// Why a text is not a readable MRZ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MrzError {
    /// No line with any character.
    Empty,
    /// The number of lines and their lengths match no format.
    UnknownLayout { line_lengths: Vec<usize> },
    /// The other lines say which format this is, but this line's length does not fit it.
    LineLength {
        line: usize,
        expected: usize,
        found: usize,
    },
    /// A character outside A–Z, 0–9 and `<` (lower case, `‹` and `«` are
    /// accepted). Lines and columns count from 1, leaving out blank lines and
    /// the white space around each line.
    InvalidCharacter {
        line: usize,
        column: usize,
        found: char,
    },
    /// A field whose content its definition does not allow (an impossible date,
    /// a digit in a name that no letter looks like, …).
    InvalidField {
        field: MrzField,
        found: String,
        reason: String,
    },
}

impl fmt::Display for MrzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str(
                "no MRZ text: expected 2 or 3 lines of A-Z, 0-9 and '<' from the document's machine-readable zone",
            ),
            Self::UnknownLayout { line_lengths } => write!(
                f,
                "{} MRZ line(s) of {:?} characters match no ICAO 9303 format \
                 (TD1: 3 lines of 30; TD2, MRV-B: 2 of 36; TD3, MRV-A: 2 of 44); capture the whole zone again",
                line_lengths.len(),
                line_lengths
            ),
            Self::LineLength {
                line,
                expected,
                found,
            } => write!(
                f,
                "MRZ line {line} has {found} characters where this format has {expected}; capture the whole line again"
            ),
            Self::InvalidCharacter {
                line,
                column,
                found,
            } => write!(
                f,
                "MRZ line {line}, column {column}: {found:?} is not an MRZ character (A-Z, 0-9, '<')"
            ),
            Self::InvalidField {
                field,
                found,
                reason,
            } => write!(f, "MRZ {field} {found:?}: {reason}"),
        }
    }
}

impl std::error::Error for MrzError {}

/// Reads an MRZ given as one text, lines separated by line breaks; blank lines
/// and the white space around each line are ignored. A zone given as a single
/// line of 88, 72 or 90 characters is split into its lines.
///
/// `today` resolves two-digit years: a date of birth is the latest date not
/// after `today`, a date of expiry the one nearest to `today` (within 50 years).
pub fn parse_mrz(text: &str, today: Date) -> Result<Mrz, MrzError> {
    let lines: Vec<&str> = text.lines().collect();
    parse_mrz_lines(&lines, today)
}

/// Reads an MRZ given line by line; see [`parse_mrz`].
pub fn parse_mrz_lines(lines: &[&str], today: Date) -> Result<Mrz, MrzError> {
    let scanned = lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| scan_line(line, index + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let zone = fit_lines(&scanned)?;
    let layout = layout_for(&zone);
    read_zone(zone, layout, today)
}

/// The ICAO 9303 check digit of `field` (0–9), or `None` if it holds a
/// character outside A–Z, 0–9 and `<`. Values: digits as themselves, A–Z as
/// 10–35, `<` as 0; weights 7, 3, 1 repeated; the sum modulo 10.
pub fn check_digit(field: &str) -> Option<u8> {
    check_digit_of(field.as_bytes())
}

/// The ISO 3166-1 alpha-3 code for an ICAO 9303 country or organisation code,
/// trailing fillers ignored: `D` (and `D<<`) → `DEU`; every other code stays as
/// it is, including those ISO lacks (`UNO`, `UNA`, `UNK`, `XXA`, `XXB`, `XXC`,
/// `XXX`, `EUE`, `GBD`, `GBN`, `GBO`, `GBP`, `GBS`, `RKS`). `None` unless the
/// code is one to three letters.
pub fn icao_country_to_alpha3(code: &str) -> Option<String> {
    let code = code.trim().trim_end_matches('<').to_ascii_uppercase();
    if code.is_empty() || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(if code == "D" { "DEU".to_string() } else { code })
}

/// What may stand at one place of an MRZ line, by the layout: what an OCR
/// reading of the line is allowed to put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CharKind {
    /// Letters and the filler: document code, country codes, names.
    Letter,
    /// Digits and the filler: dates (`<<` for an unknown part), check digits
    /// (a filler where the number continues in the optional data or a
    /// personal number is empty).
    Digit,
    /// Letters, digits and the filler: document number, optional data.
    Alphanumeric,
    /// `F`, `M`, `X` or the filler.
    Sex,
}

impl CharKind {
    /// Whether `c` may stand at a place of this kind.
    pub fn admits(self, c: char) -> bool {
        match self {
            Self::Letter => c.is_ascii_uppercase() || c == '<',
            Self::Digit => c.is_ascii_digit() || c == '<',
            Self::Alphanumeric => c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<',
            Self::Sex => matches!(c, 'F' | 'M' | 'X' | '<'),
        }
    }
}

/// The letter the parser reads a digit as in a letters-only field (`0` → `O`,
/// `1` → `I`, `2` → `Z`, `5` → `S`, `6` → `G`, `8` → `B`).
pub fn letter_for_digit_char(c: char) -> Option<char> {
    u8::try_from(c)
        .ok()
        .and_then(letter_for_digit)
        .map(char::from)
}

/// The number of lines and their width in `format`.
pub fn format_shape(format: MrzFormat) -> (usize, usize) {
    match format {
        MrzFormat::Td1 => (3, 30),
        MrzFormat::Td2 | MrzFormat::MrvB => (2, 36),
        MrzFormat::Td3 | MrzFormat::MrvA => (2, 44),
    }
}

/// The kind of character at every place of every line of `format`, from the
/// same layouts the parser reads fields with (one source of truth).
pub fn position_kinds(format: MrzFormat) -> Vec<Vec<CharKind>> {
    let layout = match format {
        MrzFormat::Td1 => &TD1,
        MrzFormat::Td2 => &TD2,
        MrzFormat::Td3 => &TD3,
        MrzFormat::MrvA => &MRV_A,
        MrzFormat::MrvB => &MRV_B,
    };
    let (count, width) = format_shape(format);
    let mut kinds = vec![vec![CharKind::Alphanumeric; width]; count];
    let mut set = |at: Pos, kind: CharKind| {
        if let Some(slot) = kinds.get_mut(at.line).and_then(|l| l.get_mut(at.col)) {
            *slot = kind;
        }
    };
    for span in [
        DOCUMENT_CODE,
        ISSUING_STATE,
        layout.name,
        layout.nationality,
    ] {
        span.positions().for_each(|at| set(at, CharKind::Letter));
    }
    for span in [layout.birth_date, layout.expiry_date] {
        span.positions().for_each(|at| set(at, CharKind::Digit));
    }
    let checks = [
        Some(layout.document_number_check),
        Some(layout.birth_date_check),
        Some(layout.expiry_date_check),
        layout.optional_data_check,
        layout.composite_check,
    ];
    for at in checks.into_iter().flatten() {
        set(at, CharKind::Digit);
    }
    set(layout.sex, CharKind::Sex);
    kinds
}

// ---------------------------------------------------------------------------
// Layouts

/// A run of characters on one line, 0-based, end exclusive.
#[derive(Debug, Clone, Copy)]
struct Span {
    line: usize,
    start: usize,
    end: usize,
}

impl Span {
    const fn new(line: usize, start: usize, end: usize) -> Self {
        Self { line, start, end }
    }

    fn positions(self) -> impl Iterator<Item = Pos> {
        (self.start..self.end).map(move |col| Pos {
            line: self.line,
            col,
        })
    }
}

/// One character's place, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    col: usize,
}

const fn pos(line: usize, col: usize) -> Pos {
    Pos { line, col }
}

/// Where each field stands in one format.
struct Layout {
    format: MrzFormat,
    name: Span,
    document_number: Span,
    document_number_check: Pos,
    nationality: Span,
    birth_date: Span,
    birth_date_check: Pos,
    sex: Pos,
    expiry_date: Span,
    expiry_date_check: Pos,
    optional_data: Span,
    /// TD3: the personal number has its own check digit.
    optional_data_check: Option<Pos>,
    optional_data_2: Option<Span>,
    composite_check: Option<Pos>,
    composite: &'static [Span],
    /// TD1 and TD2 continue a document number longer than 9 characters in the optional data.
    long_document_number: bool,
}

const DOCUMENT_CODE: Span = Span::new(0, 0, 2);
const ISSUING_STATE: Span = Span::new(0, 2, 5);

const TD1_COMPOSITE: &[Span] = &[
    Span::new(0, 5, 30),
    Span::new(1, 0, 7),
    Span::new(1, 8, 15),
    Span::new(1, 18, 29),
];
const TD2_COMPOSITE: &[Span] = &[
    Span::new(1, 0, 10),
    Span::new(1, 13, 20),
    Span::new(1, 21, 35),
];
const TD3_COMPOSITE: &[Span] = &[
    Span::new(1, 0, 10),
    Span::new(1, 13, 20),
    Span::new(1, 21, 43),
];

const TD1: Layout = Layout {
    format: MrzFormat::Td1,
    name: Span::new(2, 0, 30),
    document_number: Span::new(0, 5, 14),
    document_number_check: pos(0, 14),
    optional_data: Span::new(0, 15, 30),
    optional_data_check: None,
    birth_date: Span::new(1, 0, 6),
    birth_date_check: pos(1, 6),
    sex: pos(1, 7),
    expiry_date: Span::new(1, 8, 14),
    expiry_date_check: pos(1, 14),
    nationality: Span::new(1, 15, 18),
    optional_data_2: Some(Span::new(1, 18, 29)),
    composite_check: Some(pos(1, 29)),
    composite: TD1_COMPOSITE,
    long_document_number: true,
};

/// The second line of TD2, TD3 and the visas, up to the date of expiry's check digit.
const fn two_line_layout(
    format: MrzFormat,
    width: usize,
    optional_end: usize,
    optional_data_check: Option<Pos>,
    composite: &'static [Span],
) -> Layout {
    Layout {
        format,
        name: Span::new(0, 5, width),
        document_number: Span::new(1, 0, 9),
        document_number_check: pos(1, 9),
        nationality: Span::new(1, 10, 13),
        birth_date: Span::new(1, 13, 19),
        birth_date_check: pos(1, 19),
        sex: pos(1, 20),
        expiry_date: Span::new(1, 21, 27),
        expiry_date_check: pos(1, 27),
        optional_data: Span::new(1, 28, optional_end),
        optional_data_check,
        optional_data_2: None,
        composite_check: if composite.is_empty() {
            None
        } else {
            Some(pos(1, width - 1))
        },
        composite,
        long_document_number: matches!(format, MrzFormat::Td2),
    }
}

const TD2: Layout = two_line_layout(MrzFormat::Td2, 36, 35, None, TD2_COMPOSITE);
const TD3: Layout = two_line_layout(MrzFormat::Td3, 44, 42, Some(pos(1, 42)), TD3_COMPOSITE);
const MRV_A: Layout = two_line_layout(MrzFormat::MrvA, 44, 44, None, &[]);
const MRV_B: Layout = two_line_layout(MrzFormat::MrvB, 36, 36, None, &[]);

fn layout_for(zone: &Zone) -> &'static Layout {
    let visa = zone.byte(pos(0, 0)) == b'V';
    match (zone.lines.len(), zone.width(), visa) {
        (3, _, _) => &TD1,
        (_, 44, false) => &TD3,
        (_, 44, true) => &MRV_A,
        (_, _, false) => &TD2,
        (_, _, true) => &MRV_B,
    }
}

// ---------------------------------------------------------------------------
// From OCR text to lines of the right length

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glyph {
    Char(u8),
    /// `‹`: one filler.
    SingleChevron,
    /// `«`: one or two fillers.
    DoubleChevron,
}

fn scan_line(text: &str, line: usize) -> Result<Vec<Glyph>, MrzError> {
    text.chars()
        .enumerate()
        .map(|(index, c)| match c {
            'A'..='Z' | '0'..='9' | '<' => Ok(Glyph::Char(c as u8)),
            'a'..='z' => Ok(Glyph::Char(c.to_ascii_uppercase() as u8)),
            '‹' => Ok(Glyph::SingleChevron),
            '«' => Ok(Glyph::DoubleChevron),
            _ => Err(MrzError::InvalidCharacter {
                line,
                column: index + 1,
                found: c,
            }),
        })
        .collect()
}

/// A repair on a line before the zone is assembled; `col` is 0-based.
struct Repair {
    col: usize,
    from: &'static str,
    to: &'static str,
    kind: CorrectionKind,
}

struct FittedLine {
    bytes: Vec<u8>,
    repairs: Vec<Repair>,
}

/// The line with its look-alike fillers placed; `expand` reads `«` as two fillers.
fn resolve(glyphs: &[Glyph], expand: bool) -> FittedLine {
    let mut bytes = Vec::with_capacity(glyphs.len() * 2);
    let mut repairs = Vec::new();
    for glyph in glyphs {
        let col = bytes.len();
        match glyph {
            Glyph::Char(b) => bytes.push(*b),
            Glyph::SingleChevron => {
                repairs.push(Repair {
                    col,
                    from: "‹",
                    to: "<",
                    kind: CorrectionKind::FillerLookalike,
                });
                bytes.push(FILLER);
            }
            Glyph::DoubleChevron => {
                let to = if expand { "<<" } else { "<" };
                repairs.push(Repair {
                    col,
                    from: "«",
                    to,
                    kind: CorrectionKind::FillerLookalike,
                });
                bytes.extend(to.bytes());
            }
        }
    }
    FittedLine { bytes, repairs }
}

fn fit_exact(glyphs: &[Glyph], width: usize) -> Option<FittedLine> {
    [false, true]
        .into_iter()
        .map(|expand| resolve(glyphs, expand))
        .find(|line| line.bytes.len() == width)
}

/// A name line may be one or two characters off when the difference is in
/// its trailing run of fillers.
fn fit_name_line(glyphs: &[Glyph], width: usize) -> Option<FittedLine> {
    if let Some(line) = fit_exact(glyphs, width) {
        return Some(line);
    }
    for expand in [false, true] {
        let FittedLine {
            mut bytes,
            mut repairs,
        } = resolve(glyphs, expand);
        let len = bytes.len();
        if len < width && width - len <= 2 && bytes.last() == Some(&FILLER) {
            for col in len..width {
                repairs.push(Repair {
                    col,
                    from: "",
                    to: "<",
                    kind: CorrectionKind::FillerCount,
                });
            }
            bytes.resize(width, FILLER);
            return Some(FittedLine { bytes, repairs });
        }
        let surplus_is_filler = bytes
            .get(width..)
            .is_some_and(|tail| tail.iter().all(|&b| b == FILLER));
        if len > width && len - width <= 2 && surplus_is_filler {
            for col in width..len {
                repairs.push(Repair {
                    col,
                    from: "<",
                    to: "",
                    kind: CorrectionKind::FillerCount,
                });
            }
            bytes.truncate(width);
            return Some(FittedLine { bytes, repairs });
        }
    }
    None
}

fn fit_lines(scanned: &[Vec<Glyph>]) -> Result<Zone, MrzError> {
    match scanned {
        [] => Err(MrzError::Empty),
        [single] => split_single_line(single),
        [first, second] => {
            for width in [44, 36] {
                if let Some(data) = fit_exact(second, width) {
                    let name = fit_name_line(first, width).ok_or(MrzError::LineLength {
                        line: 1,
                        expected: width,
                        found: first.len(),
                    })?;
                    return Ok(Zone::assemble(vec![name, data]));
                }
            }
            for width in [44, 36] {
                if fit_exact(first, width).is_some() {
                    return Err(MrzError::LineLength {
                        line: 2,
                        expected: width,
                        found: second.len(),
                    });
                }
            }
            Err(MrzError::UnknownLayout {
                line_lengths: vec![first.len(), second.len()],
            })
        }
        [first, second, third] => {
            let exact = |glyphs: &[Glyph], line: usize| {
                fit_exact(glyphs, 30).ok_or(MrzError::LineLength {
                    line,
                    expected: 30,
                    found: glyphs.len(),
                })
            };
            let first = exact(first, 1)?;
            let second = exact(second, 2)?;
            let third = fit_name_line(third, 30).ok_or(MrzError::LineLength {
                line: 3,
                expected: 30,
                found: third.len(),
            })?;
            Ok(Zone::assemble(vec![first, second, third]))
        }
        _ => Err(MrzError::UnknownLayout {
            line_lengths: scanned.iter().map(Vec::len).collect(),
        }),
    }
}

/// A zone given without line breaks: 88 (TD3, MRV-A), 72 (TD2, MRV-B) or 90 (TD1) characters.
fn split_single_line(glyphs: &[Glyph]) -> Result<Zone, MrzError> {
    for expand in [false, true] {
        let whole = resolve(glyphs, expand);
        let width = match whole.bytes.len() {
            88 => 44,
            72 => 36,
            90 => 30,
            _ => continue,
        };
        let mut lines: Vec<FittedLine> = whole
            .bytes
            .chunks(width)
            .map(|chunk| FittedLine {
                bytes: chunk.to_vec(),
                repairs: Vec::new(),
            })
            .collect();
        for repair in whole.repairs {
            if let Some(line) = lines.get_mut(repair.col / width) {
                line.repairs.push(Repair {
                    col: repair.col % width,
                    ..repair
                });
            }
        }
        return Ok(Zone::assemble(lines));
    }
    Err(MrzError::UnknownLayout {
        line_lengths: vec![glyphs.len()],
    })
}

// ---------------------------------------------------------------------------
// Reading the fields

/// The lines being read, every one of the format's width, and the repairs made so far.
struct Zone {
    lines: Vec<Vec<u8>>,
    corrections: Vec<Correction>,
}

impl Zone {
    fn assemble(lines: Vec<FittedLine>) -> Self {
        let mut zone = Self {
            lines: Vec::with_capacity(lines.len()),
            corrections: Vec::new(),
        };
        for (index, line) in lines.into_iter().enumerate() {
            for repair in line.repairs {
                zone.corrections.push(Correction {
                    line: index + 1,
                    column: repair.col + 1,
                    from: repair.from.to_string(),
                    to: repair.to.to_string(),
                    kind: repair.kind,
                });
            }
            zone.lines.push(line.bytes);
        }
        zone
    }

    fn width(&self) -> usize {
        self.lines.first().map_or(0, Vec::len)
    }

    fn byte(&self, at: Pos) -> u8 {
        self.lines
            .get(at.line)
            .and_then(|line| line.get(at.col))
            .copied()
            .unwrap_or(FILLER)
    }

    fn bytes(&self, span: Span) -> &[u8] {
        self.lines
            .get(span.line)
            .and_then(|line| line.get(span.start..span.end))
            .unwrap_or(&[])
    }

    fn text(&self, span: Span) -> String {
        text_of(self.bytes(span))
    }

    fn replace(&mut self, at: Pos, to: u8, kind: CorrectionKind) {
        if let Some(slot) = self
            .lines
            .get_mut(at.line)
            .and_then(|line| line.get_mut(at.col))
        {
            let from = std::mem::replace(slot, to);
            self.corrections.push(Correction {
                line: at.line + 1,
                column: at.col + 1,
                from: char::from(from).to_string(),
                to: char::from(to).to_string(),
                kind,
            });
        }
    }

    /// Letters-only fields: a digit there is a misreading of its look-alike letter.
    fn correct_alphabetic(&mut self, span: Span, field: MrzField) -> Result<(), MrzError> {
        for at in span.positions() {
            let read = self.byte(at);
            if !read.is_ascii_digit() {
                continue;
            }
            match letter_for_digit(read) {
                Some(letter) => self.replace(at, letter, CorrectionKind::DigitForLetter),
                None => {
                    return Err(MrzError::InvalidField {
                        field,
                        found: self.text(span),
                        reason: format!(
                            "'{}' is a digit, and this field holds letters only",
                            char::from(read)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Digits-only fields (dates) and their check digit: look-alike letters are
    /// read as digits only when the check digit then holds.
    fn confirm_digits(&mut self, field: Span, check: Pos) {
        let places: Vec<Pos> = field.positions().chain([check]).collect();
        let read: Vec<u8> = places.iter().map(|&at| self.byte(at)).collect();
        let mapped: Vec<u8> = read
            .iter()
            .map(|&b| digit_for_letter(b).unwrap_or(b))
            .collect();
        if mapped == read {
            return;
        }
        let Some((&check_char, value)) = mapped.split_last() else {
            return;
        };
        let digits_only = value.iter().all(|&b| b.is_ascii_digit() || b == FILLER);
        if digits_only
            && check_char.is_ascii_digit()
            && check_digit_of(value) == Some(check_char - b'0')
        {
            for ((&at, &was), &now) in places.iter().zip(&read).zip(&mapped) {
                if was != now {
                    self.replace(at, now, CorrectionKind::LetterForDigit);
                }
            }
        }
    }

    /// Checks the characters at `places` against the check digit at `check`.
    /// A look-alike letter in the check digit is read as its digit when that
    /// makes it hold. `filler_when_empty`: a field of fillers only may have `<`.
    fn check(
        &mut self,
        field: MrzField,
        places: &[Pos],
        check: Pos,
        filler_when_empty: bool,
    ) -> CheckDigit {
        let value: Vec<u8> = places.iter().map(|&at| self.byte(at)).collect();
        // Every byte of the zone is in the MRZ alphabet, so this is always `Some`.
        let expected = check_digit_of(&value).unwrap_or(0);
        if digit_for_letter(self.byte(check)) == Some(b'0' + expected) {
            self.replace(check, b'0' + expected, CorrectionKind::LetterForDigit);
        }
        let found = self.byte(check);
        let valid = match found {
            b'0'..=b'9' => found - b'0' == expected,
            FILLER => filler_when_empty && value.iter().all(|&b| b == FILLER),
            _ => false,
        };
        CheckDigit {
            field,
            line: check.line + 1,
            column: check.col + 1,
            found: char::from(found),
            expected: char::from(b'0' + expected),
            valid,
            suggestion: None,
            covers: places.iter().map(|at| (at.line + 1, at.col + 1)).collect(),
        }
    }

    /// The only single look-alike swap in the characters at `places` that
    /// satisfies the check digit at `check` and the composite, if exactly one does.
    fn suggest(&self, places: &[Pos], check: Pos, layout: &Layout) -> Option<String> {
        let target = digit_value(self.byte(check))?;
        let read: Vec<u8> = places.iter().map(|&at| self.byte(at)).collect();
        let reading = unique_lookalike_reading(&read, target)?;
        if let Some(composite_check) = layout.composite_check {
            let mut lines = self.lines.clone();
            for (at, &b) in places.iter().zip(&reading) {
                if let Some(slot) = lines.get_mut(at.line).and_then(|line| line.get_mut(at.col)) {
                    *slot = b;
                }
            }
            let trial = Self {
                lines,
                corrections: Vec::new(),
            };
            let composite = trial.composite_value(layout);
            if check_digit_of(&composite) != digit_value(trial.byte(composite_check)) {
                return None;
            }
        }
        Some(text_of(&reading).trim_end_matches('<').to_string())
    }

    fn composite_value(&self, layout: &Layout) -> Vec<u8> {
        layout
            .composite
            .iter()
            .flat_map(|&span| self.bytes(span).iter().copied())
            .collect()
    }

    fn document_code(&self) -> Result<String, MrzError> {
        let code = self.bytes(DOCUMENT_CODE);
        let valid = matches!(code, [first, second]
            if first.is_ascii_uppercase() && (second.is_ascii_uppercase() || *second == FILLER));
        if !valid {
            return Err(MrzError::InvalidField {
                field: MrzField::DocumentCode,
                found: text_of(code),
                reason: "a document code is a letter followed by a letter or '<'".to_string(),
            });
        }
        Ok(text_of(code).trim_end_matches('<').to_string())
    }

    fn country(&mut self, span: Span, field: MrzField) -> Result<CountryCode, MrzError> {
        // Once a code has ended in fillers, nothing else may follow.
        let places: Vec<Pos> = span.positions().collect();
        for pair in places.windows(2) {
            if let [before, at] = pair
                && self.byte(*before) == FILLER
                && self.byte(*at) == b'K'
            {
                self.replace(*at, FILLER, CorrectionKind::FillerReadAsK);
            }
        }
        let found = self.text(span);
        let icao = found.trim_end_matches('<');
        match icao_country_to_alpha3(icao) {
            Some(alpha3) if !icao.contains('<') => Ok(CountryCode {
                icao: icao.to_string(),
                alpha3,
            }),
            _ => Err(MrzError::InvalidField {
                field,
                found,
                reason: "a country code is one to three letters followed by '<'".to_string(),
            }),
        }
    }

    /// Surname and given names; a `K` in the run of fillers after the names becomes `<`.
    fn names(&mut self, span: Span) -> (String, String) {
        let name = self.bytes(span).to_vec();
        if let Some(end) = names_end(&name) {
            let tail = name.get(end..).unwrap_or(&[]);
            if tail.contains(&b'K') && tail.iter().all(|&b| b == FILLER || b == b'K') {
                for (offset, &b) in tail.iter().enumerate() {
                    if b == b'K' {
                        let at = pos(span.line, span.start + end + offset);
                        self.replace(at, FILLER, CorrectionKind::FillerReadAsK);
                    }
                }
            }
        }
        let text = self.text(span);
        let (primary, secondary) = text.split_once("<<").unwrap_or((text.as_str(), ""));
        (words(primary), words(secondary))
    }

    fn sex(&self, at: Pos) -> Result<Sex, MrzError> {
        match self.byte(at) {
            b'F' => Ok(Sex::Female),
            b'M' => Ok(Sex::Male),
            b'X' => Ok(Sex::X),
            FILLER => Ok(Sex::Unspecified),
            other => Err(MrzError::InvalidField {
                field: MrzField::Sex,
                found: char::from(other).to_string(),
                reason: "sex is 'F', 'M', 'X' or '<'".to_string(),
            }),
        }
    }

    fn date(&self, span: Span, field: MrzField, today: Date) -> Result<Option<Date>, MrzError> {
        let raw = self.bytes(span);
        let invalid = |reason: String| MrzError::InvalidField {
            field,
            found: text_of(raw),
            reason,
        };
        let mut parts = [None; 3];
        for (index, (part, pair)) in parts.iter_mut().zip(raw.chunks(2)).enumerate() {
            match pair {
                [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    *part = Some((a - b'0') * 10 + (b - b'0'));
                }
                [FILLER, FILLER] => {}
                _ => {
                    let what = ["year", "month", "day"]
                        .get(index)
                        .copied()
                        .unwrap_or("part");
                    return Err(invalid(format!(
                        "the {what} {:?} is neither two digits nor '<<' (unknown)",
                        text_of(pair)
                    )));
                }
            }
        }
        // Known parts must exist even when another part is unknown.
        let [yy, mm, dd] = parts;
        let month = mm
            .map(|mm| {
                Month::try_from(mm).map_err(|_| invalid(format!("there is no month {mm:02}")))
            })
            .transpose()?;
        if let Some(dd) = dd.filter(|&dd| dd == 0 || dd > 31) {
            return Err(invalid(format!("there is no day {dd:02}")));
        }
        let (Some(yy), Some(month), Some(dd)) = (yy, month, dd) else {
            return Ok(None);
        };
        let mm = u8::from(month);
        let year = if field == MrzField::BirthDate {
            birth_year(yy, mm, dd, today)
        } else {
            expiry_year(yy, month, today)
        };
        Date::from_calendar_date(year, month, dd)
            .map(Some)
            .map_err(|_| {
                invalid(format!(
                    "{month} {year} has {} days",
                    days_in_month(year, month)
                ))
            })
    }
}

fn read_zone(mut zone: Zone, layout: &Layout, today: Date) -> Result<Mrz, MrzError> {
    zone.correct_alphabetic(DOCUMENT_CODE, MrzField::DocumentCode)?;
    zone.correct_alphabetic(ISSUING_STATE, MrzField::IssuingState)?;
    zone.correct_alphabetic(layout.nationality, MrzField::Nationality)?;
    zone.correct_alphabetic(layout.name, MrzField::Name)?;
    let document_code = zone.document_code()?;
    let issuing_state = zone.country(ISSUING_STATE, MrzField::IssuingState)?;
    let nationality = zone.country(layout.nationality, MrzField::Nationality)?;
    let (surname, given_names) = zone.names(layout.name);
    let sex = zone.sex(layout.sex)?;

    zone.confirm_digits(layout.birth_date, layout.birth_date_check);
    zone.confirm_digits(layout.expiry_date, layout.expiry_date_check);

    // The document number, with a TD1/TD2 continuation in the optional data:
    // '<' instead of its check digit, then the rest of the number, its check
    // digit and a filler at the start of the optional data.
    let optional = zone.bytes(layout.optional_data).to_vec();
    let continuation =
        if layout.long_document_number && zone.byte(layout.document_number_check) == FILLER {
            let length = optional
                .iter()
                .position(|&b| b == FILLER)
                .unwrap_or(optional.len());
            (length >= 2).then_some(length)
        } else {
            None
        };
    let mut number_places: Vec<Pos> = layout.document_number.positions().collect();
    let (number_check, optional_data) = match continuation {
        None => (layout.document_number_check, text_of(&optional)),
        Some(length) => {
            let start = layout.optional_data.start;
            number_places
                .extend((start..start + length - 1).map(|col| pos(layout.optional_data.line, col)));
            let rest = optional.get(length + 1..).unwrap_or(&[]);
            (
                pos(layout.optional_data.line, start + length - 1),
                text_of(rest),
            )
        }
    };
    let document_number = number_places
        .iter()
        .map(|&at| char::from(zone.byte(at)))
        .collect::<String>()
        .trim_end_matches('<')
        .to_string();

    let mut checks = Vec::new();
    let number = zone.check(
        MrzField::DocumentNumber,
        &number_places,
        number_check,
        false,
    );
    checks.push((number, number_places));
    let birth: Vec<Pos> = layout.birth_date.positions().collect();
    let birth_check = zone.check(MrzField::BirthDate, &birth, layout.birth_date_check, false);
    checks.push((birth_check, birth));
    let expiry: Vec<Pos> = layout.expiry_date.positions().collect();
    let expiry_check = zone.check(
        MrzField::ExpiryDate,
        &expiry,
        layout.expiry_date_check,
        false,
    );
    checks.push((expiry_check, expiry));
    if let Some(check) = layout.optional_data_check {
        let places: Vec<Pos> = layout.optional_data.positions().collect();
        let optional_check = zone.check(MrzField::OptionalData, &places, check, true);
        checks.push((optional_check, places));
    }
    if let Some(check) = layout.composite_check {
        let places: Vec<Pos> = layout
            .composite
            .iter()
            .flat_map(|&span| span.positions())
            .collect();
        let composite = zone.check(MrzField::Composite, &places, check, false);
        checks.push((composite, places));
    }
    let check_digits = checks
        .into_iter()
        .map(|(mut check, places)| {
            let alphanumeric = matches!(
                check.field,
                MrzField::DocumentNumber | MrzField::OptionalData
            );
            if !check.valid && alphanumeric {
                let at = pos(check.line - 1, check.column - 1);
                check.suggestion = zone.suggest(&places, at, layout);
            }
            check
        })
        .collect();

    let birth_date = zone.date(layout.birth_date, MrzField::BirthDate, today)?;
    let expiry_date = zone.date(layout.expiry_date, MrzField::ExpiryDate, today)?;
    let optional_data_2 = layout
        .optional_data_2
        .map(|span| zone.text(span).trim_end_matches('<').to_string());
    let document_kind = document_kind(&document_code);

    Ok(Mrz {
        format: layout.format,
        document_code,
        document_kind,
        issuing_state,
        surname,
        given_names,
        document_number,
        nationality,
        birth_date,
        sex,
        expiry_date,
        optional_data: optional_data.trim_end_matches('<').to_string(),
        optional_data_2,
        check_digits,
        lines: zone.lines.iter().map(|line| text_of(line)).collect(),
        corrections: zone.corrections,
    })
}

// ---------------------------------------------------------------------------
// Characters, check digits, dates

fn text_of(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn char_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        FILLER => Some(0),
        _ => None,
    }
}

fn digit_value(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

fn check_digit_of(bytes: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (index, &b) in bytes.iter().enumerate() {
        sum += char_value(b)? * WEIGHTS[index % 3];
    }
    u8::try_from(sum % 10).ok()
}

/// The digit a letter is mistaken for in a digits-only field.
fn digit_for_letter(b: u8) -> Option<u8> {
    match b {
        b'O' | b'D' | b'Q' => Some(b'0'),
        b'I' | b'L' => Some(b'1'),
        b'Z' => Some(b'2'),
        b'S' => Some(b'5'),
        b'G' => Some(b'6'),
        b'T' => Some(b'7'),
        b'B' => Some(b'8'),
        _ => None,
    }
}

/// The letter a digit is mistaken for in a letters-only field.
fn letter_for_digit(b: u8) -> Option<u8> {
    match b {
        b'0' => Some(b'O'),
        b'1' => Some(b'I'),
        b'2' => Some(b'Z'),
        b'5' => Some(b'S'),
        b'6' => Some(b'G'),
        b'8' => Some(b'B'),
        _ => None,
    }
}

/// Characters OCR-B glyphs are confused with, in alphanumeric fields.
const LOOKALIKES: [&[u8]; 7] = [b"0ODQ", b"1IL", b"2Z", b"5S", b"6G", b"7T", b"8B"];

fn lookalikes(b: u8) -> &'static [u8] {
    LOOKALIKES
        .iter()
        .find(|class| class.contains(&b))
        .copied()
        .unwrap_or(&[])
}

/// The one reading of `read` with a single character swapped for a look-alike
/// whose check digit is `target` (OCR misreads one glyph far more often than
/// several), if exactly one has it.
fn unique_lookalike_reading(read: &[u8], target: u8) -> Option<Vec<u8>> {
    let mut found = None;
    for (index, &was) in read.iter().enumerate() {
        for &now in lookalikes(was).iter().filter(|&&now| now != was) {
            let mut reading = read.to_vec();
            if let Some(slot) = reading.get_mut(index) {
                *slot = now;
            }
            if check_digit_of(&reading) == Some(target) {
                if found.is_some() {
                    return None;
                }
                found = Some(reading);
            }
        }
    }
    found
}

/// Where the names end and the fillers after them begin, if the field says:
/// after the `<<` that ends the surname, the given names end at the next `<<`.
fn names_end(name: &[u8]) -> Option<usize> {
    let separator = name.windows(2).position(|pair| pair == b"<<")?;
    let given = separator + 2;
    match name.get(given) {
        None => None,
        Some(&FILLER) => Some(given),
        Some(_) => name
            .get(given..)?
            .windows(2)
            .position(|pair| pair == b"<<")
            .map(|end| given + end),
    }
}

fn words(field: &str) -> String {
    field
        .split('<')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn document_kind(code: &str) -> DocumentKind {
    let mut chars = code.chars();
    match (chars.next(), chars.next()) {
        (Some('P'), _) => DocumentKind::Passport,
        (Some('V'), _) => DocumentKind::Visa,
        (Some('A'), Some('C')) => DocumentKind::Other,
        (Some('A' | 'C' | 'I'), Some('R')) => DocumentKind::ResidencePermit,
        (Some('A' | 'C' | 'I'), _) => DocumentKind::IdCard,
        _ => DocumentKind::Other,
    }
}

/// A date of birth is never after `today`: 20yy unless that is still to come.
fn birth_year(yy: u8, mm: u8, dd: u8, today: Date) -> i32 {
    let this_century = 2000 + i32::from(yy);
    let today_key = (today.year(), u8::from(today.month()), today.day());
    if (this_century, mm, dd) > today_key {
        this_century - 100
    } else {
        this_century
    }
}

/// A date of expiry is in the century that puts it nearest to `today`.
fn expiry_year(yy: u8, month: Month, today: Date) -> i32 {
    let century = today.year() - today.year().rem_euclid(100);
    [century - 100, century, century + 100]
        .into_iter()
        .map(|c| c + i32::from(yy))
        .min_by_key(|&year| {
            Date::from_calendar_date(year, month, 1)
                .map_or(i64::MAX, |first| (first - today).whole_days().abs())
        })
        .unwrap_or(century + i32::from(yy))
}

fn days_in_month(year: i32, month: Month) -> u8 {
    match month {
        Month::February if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        Month::February => 28,
        Month::April | Month::June | Month::September | Month::November => 30,
        _ => 31,
    }
}

/// Dates as `YYYY-MM-DD` in JSON.
mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::{Date, Month};

    pub fn serialize<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.serialize_str(&format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Date>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let mut parts = text.splitn(3, '-').map(str::parse::<u16>);
        let date = match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) => u8::try_from(month)
                .ok()
                .and_then(|month| Month::try_from(month).ok())
                .zip(u8::try_from(day).ok())
                .and_then(|(month, day)| {
                    Date::from_calendar_date(i32::from(year), month, day).ok()
                }),
            _ => None,
        };
        date.map(Some)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a date as YYYY-MM-DD")))
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2025 - 06 - 01);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

    const ICAO_TD3: [&str; 2] = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];
    const ICAO_TD2: [&str; 2] = [
        "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "D231458907UTO7408122F1204159<<<<<<<6",
    ];
    const ICAO_TD1: [&str; 3] = [
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ];

    fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Mrz, MrzError> {
        let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
        parse_mrz_lines(&lines, TODAY)
    }

    fn cd(field: &str) -> char {
        char::from(b'0' + check_digit(field).unwrap())
    }

    fn pad(text: &str, width: usize) -> String {
        format!("{text:<<width$}")
    }

    /// The document number with its check digit, and the optional data; a
    /// number longer than 9 characters goes on in the optional data
    /// (Doc 9303 Part 5, 4.2.4): '<' for the check digit, then the rest, the
    /// check digit over the whole number, and a filler.
    fn number_and_optional(number: &str, optional: &str, width: usize) -> (String, String) {
        if number.len() > 9 {
            let rest = format!("{}{}<{optional}", &number[9..], cd(number));
            (format!("{}<", &number[..9]), pad(&rest, width))
        } else {
            let field = pad(number, 9);
            (format!("{field}{}", cd(&field)), pad(optional, width))
        }
    }

    #[derive(Clone, Copy)]
    struct Holder<'a> {
        code: &'a str,
        state: &'a str,
        name: &'a str,
        number: &'a str,
        nationality: &'a str,
        birth: &'a str,
        sex: char,
        expiry: &'a str,
        optional: &'a str,
        optional_2: &'a str,
    }

    /// Doc 9303 Part 4. Composite over positions 1–10, 14–20 and 22–43 of line 2.
    fn td3(h: &Holder) -> Vec<String> {
        let line1 = pad(
            &format!("{}{}{}", pad(h.code, 2), pad(h.state, 3), h.name),
            44,
        );
        let number = pad(h.number, 9);
        let personal = pad(h.optional, 14);
        let personal_check = if h.optional.is_empty() {
            '<'
        } else {
            cd(&personal)
        };
        let head = format!(
            "{number}{}{}{}{}{}{}{}{personal}{personal_check}",
            cd(&number),
            pad(h.nationality, 3),
            h.birth,
            cd(h.birth),
            h.sex,
            h.expiry,
            cd(h.expiry)
        );
        let composite = cd(&format!(
            "{}{}{}",
            &head[0..10],
            &head[13..20],
            &head[21..43]
        ));
        vec![line1, format!("{head}{composite}")]
    }

    /// Doc 9303 Part 6. Composite over positions 1–10, 14–20 and 22–35 of line 2.
    fn td2(h: &Holder) -> Vec<String> {
        let line1 = pad(
            &format!("{}{}{}", pad(h.code, 2), pad(h.state, 3), h.name),
            36,
        );
        let (number, optional) = number_and_optional(h.number, h.optional, 7);
        let head = format!(
            "{number}{}{}{}{}{}{}{optional}",
            pad(h.nationality, 3),
            h.birth,
            cd(h.birth),
            h.sex,
            h.expiry,
            cd(h.expiry)
        );
        let composite = cd(&format!(
            "{}{}{}",
            &head[0..10],
            &head[13..20],
            &head[21..35]
        ));
        vec![line1, format!("{head}{composite}")]
    }

    /// Doc 9303 Part 5. Composite over line 1 positions 6–30 and line 2
    /// positions 1–7, 9–15 and 19–29.
    fn td1(h: &Holder) -> Vec<String> {
        let (number, optional) = number_and_optional(h.number, h.optional, 15);
        let line1 = format!("{}{}{number}{optional}", pad(h.code, 2), pad(h.state, 3));
        let head = format!(
            "{}{}{}{}{}{}{}",
            h.birth,
            cd(h.birth),
            h.sex,
            h.expiry,
            cd(h.expiry),
            pad(h.nationality, 3),
            pad(h.optional_2, 11)
        );
        let composite = cd(&format!(
            "{}{}{}{}",
            &line1[5..30],
            &head[0..7],
            &head[8..15],
            &head[18..29]
        ));
        vec![line1, format!("{head}{composite}"), pad(h.name, 30)]
    }

    /// Doc 9303 Part 7: no composite, optional data to the end of line 2.
    fn mrv(h: &Holder, width: usize) -> Vec<String> {
        let line1 = pad(
            &format!("{}{}{}", pad(h.code, 2), pad(h.state, 3), h.name),
            width,
        );
        let number = pad(h.number, 9);
        let line2 = format!(
            "{number}{}{}{}{}{}{}{}{}",
            cd(&number),
            pad(h.nationality, 3),
            h.birth,
            cd(h.birth),
            h.sex,
            h.expiry,
            cd(h.expiry),
            pad(h.optional, width - 28)
        );
        vec![line1, line2]
    }

    /// A German passport: `D` for the state, an empty personal number whose
    /// check digit is '<', a leap-day birth date.
    fn own_td3() -> Vec<String> {
        td3(&Holder {
            code: "P",
            state: "D",
            name: "SCHMIDT<<JOHANNA<LUISE",
            number: "C7LJ0T2RZ",
            nationality: "D",
            birth: "880229",
            sex: 'F',
            expiry: "310314",
            optional: "",
            optional_2: "",
        })
    }

    /// A Belgian-style card with a 12-character document number, continued
    /// in the optional data, and a national register number on line 2.
    fn own_td1() -> Vec<String> {
        td1(&Holder {
            code: "ID",
            state: "BEL",
            name: "DUBOIS<<MARIE<CLAIRE",
            number: "592123456789",
            nationality: "BEL",
            birth: "851010",
            sex: 'F',
            expiry: "300615",
            optional: "",
            optional_2: "85101012345",
        })
    }

    fn own_td2() -> Vec<String> {
        td2(&Holder {
            code: "I",
            state: "SWE",
            name: "SVENSSON<<KARL<OLOF",
            number: "59000002",
            nationality: "SWE",
            birth: "920530",
            sex: 'X',
            expiry: "290101",
            optional: "A1B2",
            optional_2: "",
        })
    }

    fn own_mrv_a() -> Vec<String> {
        mrv(
            &Holder {
                code: "V",
                state: "GBR",
                name: "OKONKWO<<CHIDI<EMEKA",
                number: "X4R7Q2M81",
                nationality: "NGA",
                birth: "790321",
                sex: 'M',
                expiry: "260930",
                optional: "GBR2025RV77",
                optional_2: "",
            },
            44,
        )
    }

    fn own_mrv_b() -> Vec<String> {
        mrv(
            &Holder {
                code: "VC",
                state: "FRA",
                name: "NGUYEN<<THI<LAN",
                number: "FRA123456",
                nationality: "VNM",
                birth: "010101",
                sex: 'F',
                expiry: "251231",
                optional: "",
                optional_2: "",
            },
            36,
        )
    }

    fn invalid_fields(mrz: &Mrz) -> Vec<MrzField> {
        mrz.check_digits
            .iter()
            .filter(|check| !check.valid)
            .map(|check| check.field)
            .collect()
    }

    fn check_of(mrz: &Mrz, field: MrzField) -> &CheckDigit {
        mrz.check_digits.iter().find(|c| c.field == field).unwrap()
    }

    fn set(lines: &[String], line: usize, column: usize, to: char) -> Vec<String> {
        let mut lines = lines.to_vec();
        lines[line - 1].replace_range(column - 1..column, &to.to_string());
        lines
    }

    fn owned(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|line| line.to_string()).collect()
    }

    // -----------------------------------------------------------------------
    // Specimens

    #[test]
    fn icao_td3_specimen() {
        let mrz = parse(&ICAO_TD3).unwrap();
        assert_eq!(mrz.format, MrzFormat::Td3);
        assert_eq!(mrz.document_code, "P");
        assert_eq!(mrz.document_kind, DocumentKind::Passport);
        assert_eq!(mrz.issuing_state.icao, "UTO");
        assert_eq!(mrz.issuing_state.alpha3, "UTO");
        assert_eq!(mrz.surname, "ERIKSSON");
        assert_eq!(mrz.given_names, "ANNA MARIA");
        assert_eq!(mrz.document_number, "L898902C3");
        assert_eq!(mrz.nationality.icao, "UTO");
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.sex, Sex::Female);
        assert_eq!(mrz.expiry_date, Some(date!(2012 - 04 - 15)));
        assert_eq!(mrz.optional_data, "ZE184226B");
        assert_eq!(mrz.optional_data_2, None);
        let fields: Vec<_> = mrz
            .check_digits
            .iter()
            .map(|c| (c.field, c.found, c.column))
            .collect();
        assert_eq!(
            fields,
            [
                (MrzField::DocumentNumber, '6', 10),
                (MrzField::BirthDate, '2', 20),
                (MrzField::ExpiryDate, '9', 28),
                (MrzField::OptionalData, '1', 43),
                (MrzField::Composite, '0', 44),
            ]
        );
        assert!(mrz.all_check_digits_valid());
        assert!(mrz.corrections.is_empty());
        assert_eq!(mrz.lines, ICAO_TD3);
    }

    #[test]
    fn icao_td2_specimen() {
        let mrz = parse(&ICAO_TD2).unwrap();
        assert_eq!(mrz.format, MrzFormat::Td2);
        assert_eq!(mrz.document_code, "I");
        assert_eq!(mrz.document_kind, DocumentKind::IdCard);
        assert_eq!(mrz.issuing_state.icao, "UTO");
        assert_eq!(
            (mrz.surname.as_str(), mrz.given_names.as_str()),
            ("ERIKSSON", "ANNA MARIA")
        );
        assert_eq!(mrz.document_number, "D23145890");
        assert_eq!(mrz.nationality.icao, "UTO");
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.sex, Sex::Female);
        assert_eq!(mrz.expiry_date, Some(date!(2012 - 04 - 15)));
        assert_eq!(mrz.optional_data, "");
        assert_eq!(mrz.check_digits.len(), 4);
        assert!(mrz.all_check_digits_valid());
        assert!(mrz.corrections.is_empty());
    }

    #[test]
    fn icao_td1_specimen() {
        let mrz = parse(&ICAO_TD1).unwrap();
        assert_eq!(mrz.format, MrzFormat::Td1);
        assert_eq!(mrz.document_code, "I");
        assert_eq!(mrz.document_kind, DocumentKind::IdCard);
        assert_eq!(mrz.issuing_state.icao, "UTO");
        assert_eq!(
            (mrz.surname.as_str(), mrz.given_names.as_str()),
            ("ERIKSSON", "ANNA MARIA")
        );
        assert_eq!(mrz.document_number, "D23145890");
        assert_eq!(mrz.nationality.icao, "UTO");
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.sex, Sex::Female);
        assert_eq!(mrz.expiry_date, Some(date!(2012 - 04 - 15)));
        assert_eq!(mrz.optional_data, "");
        assert_eq!(mrz.optional_data_2.as_deref(), Some(""));
        let places: Vec<_> = mrz
            .check_digits
            .iter()
            .map(|c| (c.field, c.line, c.column))
            .collect();
        assert_eq!(
            places,
            [
                (MrzField::DocumentNumber, 1, 15),
                (MrzField::BirthDate, 2, 7),
                (MrzField::ExpiryDate, 2, 15),
                (MrzField::Composite, 2, 30),
            ]
        );
        assert!(mrz.all_check_digits_valid());
    }

    #[test]
    fn check_digits_by_hand() {
        // The ICAO specimen's own values.
        assert_eq!(check_digit("L898902C3"), Some(6));
        assert_eq!(check_digit("740812"), Some(2));
        assert_eq!(check_digit("120415"), Some(9));
        assert_eq!(check_digit("ZE184226B<<<<<"), Some(1));
        // By hand, for our German specimen's document number "C7LJ0T2RZ":
        //   values  C=12  7  L=21  J=19  0  T=29  2  R=27  Z=35
        //   weights  7    3   1     7    3   1    7   3     1
        //   84 + 21 + 21 + 133 + 0 + 29 + 14 + 81 + 35 = 418 → 8
        assert_eq!(check_digit("C7LJ0T2RZ"), Some(8));
        // and its birth date "880229": 8·7 + 8·3 + 0·1 + 2·7 + 2·3 + 9·1 = 109 → 9.
        assert_eq!(check_digit("880229"), Some(9));
        let lines = own_td3();
        assert_eq!(&lines[1][..10], "C7LJ0T2RZ8");
        assert_eq!(&lines[1][13..20], "8802299");
        assert_eq!(check_digit("abc"), None);
        assert_eq!(check_digit("A B"), None);
    }

    #[test]
    fn own_td3_specimen_german_passport() {
        let lines = own_td3();
        assert!(lines[0].starts_with("P<D<<SCHMIDT<<JOHANNA<LUISE<<<"));
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid(), "{:?}", mrz.check_digits);
        assert_eq!(mrz.issuing_state.icao, "D");
        assert_eq!(mrz.issuing_state.alpha3, "DEU");
        assert_eq!(mrz.nationality.alpha3, "DEU");
        assert_eq!(mrz.surname, "SCHMIDT");
        assert_eq!(mrz.given_names, "JOHANNA LUISE");
        assert_eq!(mrz.document_number, "C7LJ0T2RZ");
        assert_eq!(mrz.birth_date, Some(date!(1988 - 02 - 29)));
        assert_eq!(mrz.expiry_date, Some(date!(2031 - 03 - 14)));
        assert_eq!(mrz.optional_data, "");
        let personal = check_of(&mrz, MrzField::OptionalData);
        assert_eq!((personal.found, personal.valid), ('<', true));
    }

    #[test]
    fn own_td1_specimen_long_document_number() {
        let lines = own_td1();
        assert!(lines[0].starts_with("IDBEL592123456<789"));
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid(), "{:?}", mrz.check_digits);
        assert_eq!(mrz.document_number, "592123456789");
        let number = check_of(&mrz, MrzField::DocumentNumber);
        assert_eq!((number.line, number.column), (1, 19));
        assert_eq!(number.found, cd("592123456789"));
        assert_eq!(mrz.optional_data, "");
        assert_eq!(mrz.optional_data_2.as_deref(), Some("85101012345"));
        assert_eq!(mrz.document_kind, DocumentKind::IdCard);
        assert_eq!(
            (mrz.surname.as_str(), mrz.given_names.as_str()),
            ("DUBOIS", "MARIE CLAIRE")
        );
        assert_eq!(mrz.birth_date, Some(date!(1985 - 10 - 10)));
        assert_eq!(mrz.expiry_date, Some(date!(2030 - 06 - 15)));
    }

    #[test]
    fn long_document_number_with_optional_data_after_it() {
        let holder = Holder {
            code: "I",
            state: "UTO",
            name: "ERIKSSON<<ANNA<MARIA",
            number: "D23145890734",
            nationality: "UTO",
            birth: "740812",
            sex: 'F',
            expiry: "120415",
            optional: "AB12",
            optional_2: "",
        };
        let lines = td1(&holder);
        // Doc 9303 Part 5's own example of a long number: D23145890734, check digit 9.
        assert_eq!(lines[0], "I<UTOD23145890<7349<AB12<<<<<<");
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.document_number, "D23145890734");
        assert_eq!(mrz.optional_data, "AB12");

        // TD2 has 7 characters of optional data: "7349<" leaves two.
        let lines = td2(&Holder {
            optional: "AB",
            ..holder
        });
        assert_eq!(&lines[1][..10], "D23145890<");
        assert_eq!(&lines[1][28..36], "7349<AB".to_string() + &lines[1][35..]);
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.document_number, "D23145890734");
        assert_eq!(mrz.optional_data, "AB");
    }

    #[test]
    fn filler_for_a_check_digit_without_a_continuation_is_invalid() {
        let lines = set(&owned(&ICAO_TD1), 1, 15, '<');
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.document_number, "D23145890");
        let number = check_of(&mrz, MrzField::DocumentNumber);
        assert_eq!((number.found, number.valid), ('<', false));
    }

    #[test]
    fn own_td2_specimen() {
        let mrz = parse(&own_td2()).unwrap();
        assert!(mrz.all_check_digits_valid(), "{:?}", mrz.check_digits);
        assert_eq!(mrz.format, MrzFormat::Td2);
        assert_eq!(mrz.document_number, "59000002");
        assert_eq!(mrz.sex, Sex::X);
        assert_eq!(mrz.optional_data, "A1B2");
        assert_eq!(mrz.given_names, "KARL OLOF");
        assert_eq!(mrz.birth_date, Some(date!(1992 - 05 - 30)));
        assert_eq!(mrz.expiry_date, Some(date!(2029 - 01 - 01)));
    }

    #[test]
    fn visas() {
        let mrz = parse(&own_mrv_a()).unwrap();
        assert_eq!(mrz.format, MrzFormat::MrvA);
        assert_eq!(mrz.document_kind, DocumentKind::Visa);
        assert_eq!(mrz.check_digits.len(), 3);
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.document_number, "X4R7Q2M81");
        assert_eq!(mrz.nationality.icao, "NGA");
        assert_eq!(mrz.optional_data, "GBR2025RV77");

        let mrz = parse(&own_mrv_b()).unwrap();
        assert_eq!(mrz.format, MrzFormat::MrvB);
        assert_eq!(mrz.document_code, "VC");
        assert_eq!(mrz.check_digits.len(), 3);
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.birth_date, Some(date!(2001 - 01 - 01)));
        assert_eq!(mrz.expiry_date, Some(date!(2025 - 12 - 31)));
    }

    // -----------------------------------------------------------------------
    // Every single wrong character inside what the check digits cover

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        /// Dates and check digits that admit only digits: every change must be caught.
        Digits,
        /// Letters and digits (or a check digit that may be '<'): Doc 9303
        /// cannot see a swap between characters of equal value modulo 10.
        Alphanumeric,
    }

    /// What the check digits cover, written from Doc 9303 (1-based line,
    /// 0-based column range), independently of the parser's own layout table.
    fn covered(format: MrzFormat) -> Vec<(usize, Range<usize>, Kind)> {
        use Kind::{Alphanumeric as A, Digits as D};
        match format {
            MrzFormat::Td3 => vec![
                (2, 0..9, A),
                (2, 9..10, D),
                (2, 13..20, D),
                (2, 21..28, D),
                (2, 28..42, A),
                (2, 42..43, A),
                (2, 43..44, D),
            ],
            MrzFormat::Td2 => vec![
                (2, 0..9, A),
                (2, 9..10, A),
                (2, 13..20, D),
                (2, 21..28, D),
                (2, 28..35, A),
                (2, 35..36, D),
            ],
            MrzFormat::Td1 => vec![
                (1, 5..14, A),
                (1, 14..15, A),
                (1, 15..30, A),
                (2, 0..7, D),
                (2, 8..15, D),
                (2, 18..29, A),
                (2, 29..30, D),
            ],
            MrzFormat::MrvA | MrzFormat::MrvB => {
                vec![(2, 0..9, A), (2, 9..10, D), (2, 13..20, D), (2, 21..28, D)]
            }
        }
    }

    /// The fields, without the check digits, repairs and lines.
    fn fields(mrz: &Mrz) -> Mrz {
        Mrz {
            check_digits: Vec::new(),
            corrections: Vec::new(),
            lines: Vec::new(),
            ..mrz.clone()
        }
    }

    #[derive(Debug, Default)]
    struct Outcomes {
        rejected: usize,
        flagged: usize,
        restored: usize,
        blind: usize,
    }

    fn substitute_everywhere(lines: &[String]) -> Outcomes {
        let original = parse(lines).unwrap();
        assert!(
            original.all_check_digits_valid(),
            "{:?}",
            original.check_digits
        );
        let mut outcomes = Outcomes::default();
        for (line, columns, kind) in covered(original.format) {
            for column in columns {
                let was = lines[line - 1].as_bytes()[column];
                for &now in ALPHABET.iter().filter(|&&now| now != was) {
                    let changed = set(lines, line, column + 1, char::from(now));
                    let what = format!(
                        "{} line {line} column {}: {:?} for {:?}",
                        original.format,
                        column + 1,
                        char::from(now),
                        char::from(was)
                    );
                    match parse(&changed) {
                        Err(_) => outcomes.rejected += 1,
                        Ok(mrz) if !mrz.all_check_digits_valid() => outcomes.flagged += 1,
                        Ok(mrz) if fields(&mrz) == fields(&original) => {
                            // Restored: by a recorded repair, or '<' and '0'
                            // standing alike for an empty personal number.
                            let filler_zero = matches!((was, now), (b'<', b'0') | (b'0', b'<'));
                            assert!(
                                !mrz.corrections.is_empty() || filler_zero,
                                "{what}: unrecorded"
                            );
                            outcomes.restored += 1;
                        }
                        Ok(mrz) => {
                            let blind =
                                char_value(was).unwrap() % 10 == char_value(now).unwrap() % 10;
                            assert!(
                                kind == Kind::Alphanumeric && blind,
                                "{what}: different fields with every check digit valid: {mrz:#?}"
                            );
                            outcomes.blind += 1;
                        }
                    }
                }
            }
        }
        outcomes
    }

    #[test]
    fn every_single_substitution_is_caught_or_undone() {
        let specimens: Vec<(&str, Vec<String>)> = vec![
            ("ICAO TD3", owned(&ICAO_TD3)),
            ("ICAO TD2", owned(&ICAO_TD2)),
            ("ICAO TD1", owned(&ICAO_TD1)),
            ("own TD3", own_td3()),
            ("own TD2", own_td2()),
            ("own TD1", own_td1()),
            ("own MRV-A", own_mrv_a()),
            ("own MRV-B", own_mrv_b()),
        ];
        for (name, lines) in specimens {
            let outcomes = substitute_everywhere(&lines);
            eprintln!("{name}: {outcomes:?}");
            assert!(outcomes.restored > 0, "{name}: no look-alike was undone");
        }
    }

    #[test]
    fn any_single_substitution_anywhere_never_panics() {
        let odd = ['«', '‹', ' ', 'é', '$', 'k'];
        for lines in [
            owned(&ICAO_TD3),
            owned(&ICAO_TD2),
            owned(&ICAO_TD1),
            own_td1(),
        ] {
            for line in 1..=lines.len() {
                for column in 1..=lines[line - 1].len() {
                    let replacements = ALPHABET.iter().map(|&b| char::from(b)).chain(odd);
                    for now in replacements {
                        let _ = parse(&set(&lines, line, column, now));
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------
    // OCR repairs

    #[test]
    fn letters_in_dates_become_digits_when_the_check_digit_confirms() {
        // '0' of the birth date read as 'O', the document number's check digit '6' as 'G'.
        let lines = set(&set(&owned(&ICAO_TD3), 2, 16, 'O'), 2, 10, 'G');
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.lines, ICAO_TD3);
        let repairs: Vec<_> = mrz
            .corrections
            .iter()
            .map(|c| (c.line, c.column, c.from.as_str(), c.to.as_str(), c.kind))
            .collect();
        assert_eq!(
            repairs,
            [
                (2, 16, "O", "0", CorrectionKind::LetterForDigit),
                (2, 10, "G", "6", CorrectionKind::LetterForDigit),
            ]
        );
    }

    #[test]
    fn look_alikes_the_check_digit_refutes_are_left_alone() {
        // 'Z' for the '1' of the birth date: reading it as '2' fails the check digit.
        let lines = set(&owned(&ICAO_TD3), 2, 18, 'Z');
        let err = parse(&lines).unwrap_err();
        assert!(
            matches!(
                err,
                MrzError::InvalidField {
                    field: MrzField::BirthDate,
                    ..
                }
            ),
            "{err}"
        );
        // 'S' for the check digit '6': '5' is not the check digit either
        // (and the composite, which covers it, fails too).
        let lines = set(&owned(&ICAO_TD3), 2, 10, 'S');
        let mrz = parse(&lines).unwrap();
        assert!(mrz.corrections.is_empty());
        assert_eq!(
            invalid_fields(&mrz),
            [MrzField::DocumentNumber, MrzField::Composite]
        );
        assert_eq!(check_of(&mrz, MrzField::DocumentNumber).found, 'S');
    }

    #[test]
    fn document_number_look_alikes_are_suggested_not_applied() {
        let holder = Holder {
            code: "P",
            state: "UTO",
            name: "ERIKSSON<<ANNA",
            number: "KMA4RX903",
            nationality: "UTO",
            birth: "740812",
            sex: 'F',
            expiry: "340415",
            optional: "",
            optional_2: "",
        };
        // Its one look-alike, the '0', read as 'O': only '0' satisfies the check digit.
        let lines = set(&td3(&holder), 2, 8, 'O');
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.document_number, "KMA4RX9O3");
        assert_eq!(
            invalid_fields(&mrz),
            [MrzField::DocumentNumber, MrzField::Composite]
        );
        let number = check_of(&mrz, MrzField::DocumentNumber);
        assert_eq!(number.suggestion.as_deref(), Some("KMA4RX903"));
        assert!(mrz.corrections.is_empty());

        // The specimen's '0' read as 'O': one swap fits.
        let lines = set(&owned(&ICAO_TD3), 2, 6, 'O');
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.document_number, "L8989O2C3");
        let number = check_of(&mrz, MrzField::DocumentNumber);
        assert_eq!(
            (number.valid, number.suggestion.as_deref()),
            (false, Some("L898902C3"))
        );
        // Its first '8' read as 'B': "L898902C3", "LB9B902C3" and "LB9890ZC3"
        // all fit, so nothing is suggested.
        let lines = set(&owned(&ICAO_TD3), 2, 2, 'B');
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.document_number, "LB98902C3");
        let number = check_of(&mrz, MrzField::DocumentNumber);
        assert_eq!((number.valid, number.suggestion.as_deref()), (false, None));
    }

    #[test]
    fn digits_in_letters_only_fields_become_letters() {
        let lines = [
            "P<UT0ERIKSS0N<<ANNA<MAR1A<<<<<<<<<<<<<<<<<<<",
            "L898902C36UT07408122F1204159ZE184226B<<<<<10",
        ];
        let mrz = parse(&lines).unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!(mrz.issuing_state.icao, "UTO");
        assert_eq!(mrz.nationality.icao, "UTO");
        assert_eq!(mrz.surname, "ERIKSSON");
        assert_eq!(mrz.given_names, "ANNA MARIA");
        assert_eq!(mrz.corrections.len(), 4);
        assert!(
            mrz.corrections
                .iter()
                .all(|c| c.kind == CorrectionKind::DigitForLetter)
        );

        let lines = set(&owned(&ICAO_TD3), 1, 8, '4');
        let err = parse(&lines).unwrap_err();
        assert!(
            matches!(
                err,
                MrzError::InvalidField {
                    field: MrzField::Name,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn chevron_look_alikes_become_fillers() {
        // '«' for "<<" (the line is one short without it) and '‹' for '<'.
        let lines = [
            "P‹UTOERIKSSON«ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ];
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.lines, ICAO_TD3);
        assert_eq!(
            (mrz.surname.as_str(), mrz.given_names.as_str()),
            ("ERIKSSON", "ANNA MARIA")
        );
        let repairs: Vec<_> = mrz
            .corrections
            .iter()
            .map(|c| (c.column, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(repairs, [(2, "‹", "<"), (14, "«", "<<")]);
        // '«' for a single '<' when that is what makes the length.
        let lines = ["P<UTOERIKSSON<<ANNA«MARIA<<<<<<<<<<<<<<<<<<<", ICAO_TD3[1]];
        assert_eq!(parse(&lines).unwrap().lines, ICAO_TD3);
    }

    #[test]
    fn k_in_the_filler_tail_becomes_a_filler_but_a_k_initial_stays() {
        let lines = ["P<UTOERIKSSON<<ANNA<MARIA<<<K<<KK<<<<<<<<<<<", ICAO_TD3[1]];
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.given_names, "ANNA MARIA");
        assert_eq!(mrz.lines, ICAO_TD3);
        assert_eq!(mrz.corrections.len(), 3);
        assert!(
            mrz.corrections
                .iter()
                .all(|c| c.kind == CorrectionKind::FillerReadAsK)
        );

        let lines = ["P<UTOERIKSSON<<ANNA<K<<<<<<<<<<<<<<<<<<<<<<<", ICAO_TD3[1]];
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.given_names, "ANNA K");
        assert!(mrz.corrections.is_empty());

        // A surname alone, then a misread filler.
        let lines = ["P<UTOERIKSSON<<<<<<K<<<<<<<<<<<<<<<<<<<<<<<<", ICAO_TD3[1]];
        let mrz = parse(&lines).unwrap();
        assert_eq!(
            (mrz.surname.as_str(), mrz.given_names.as_str()),
            ("ERIKSSON", "")
        );

        // "D<K": after a filler a country code holds nothing else.
        let mut lines = own_td3();
        lines[0].replace_range(2..5, "D<K");
        let mrz = parse(&lines).unwrap();
        assert_eq!(mrz.issuing_state.alpha3, "DEU");
        assert_eq!(mrz.corrections[0].kind, CorrectionKind::FillerReadAsK);
    }

    #[test]
    fn a_name_line_may_miss_or_gain_two_trailing_fillers() {
        let short = &ICAO_TD3[0][..42];
        let mrz = parse(&[short, ICAO_TD3[1]]).unwrap();
        assert_eq!(mrz.lines, ICAO_TD3);
        assert_eq!(mrz.corrections.len(), 2);
        assert!(
            mrz.corrections
                .iter()
                .all(|c| c.kind == CorrectionKind::FillerCount)
        );

        let long = format!("{}<", ICAO_TD1[2]);
        let mrz = parse(&[ICAO_TD1[0], ICAO_TD1[1], &long]).unwrap();
        assert_eq!(mrz.lines, ICAO_TD1);

        // Three short is too many; a short line not ending in fillers is not guessed at.
        let err = parse(&[&ICAO_TD3[0][..41], ICAO_TD3[1]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::LineLength {
                line: 1,
                expected: 44,
                found: 41
            }
        );
        let full_name = "P<UTOERIKSSON<<ANNA<MARIA<BEATRIX<CHARLOTTE<";
        let err = parse(&[&full_name[..43], ICAO_TD3[1]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::LineLength {
                line: 1,
                expected: 44,
                found: 43
            }
        );
    }

    // -----------------------------------------------------------------------
    // Fields

    #[test]
    fn empty_personal_number_may_have_filler_or_zero_as_check_digit() {
        let mut lines = own_td3();
        assert_eq!(&lines[1][42..], "<".to_string() + &lines[1][43..]);
        assert!(parse(&lines).unwrap().all_check_digits_valid());
        lines[1].replace_range(42..43, "0");
        assert!(parse(&lines).unwrap().all_check_digits_valid());
        // A personal number that is not empty needs a digit.
        let lines = set(&owned(&ICAO_TD3), 2, 43, '<');
        let mrz = parse(&lines).unwrap();
        assert_eq!(
            invalid_fields(&mrz),
            [MrzField::OptionalData, MrzField::Composite]
        );
    }

    #[test]
    fn impossible_dates_are_refused_with_a_reason() {
        let passport = |birth: &str, expiry: &str| {
            td3(&Holder {
                code: "P",
                state: "UTO",
                name: "ERIKSSON<<ANNA",
                number: "L898902C3",
                nationality: "UTO",
                birth,
                sex: 'F',
                expiry,
                optional: "",
                optional_2: "",
            })
        };
        let reason = |lines: Vec<String>| match parse(&lines).unwrap_err() {
            MrzError::InvalidField { field, reason, .. } => (field, reason),
            other => panic!("{other}"),
        };
        assert_eq!(
            reason(passport("741312", "300101")),
            (MrzField::BirthDate, "there is no month 13".to_string())
        );
        assert_eq!(
            reason(passport("740230", "300101")),
            (MrzField::BirthDate, "February 1974 has 28 days".to_string())
        );
        assert_eq!(
            reason(passport("740812", "290229")),
            (
                MrzField::ExpiryDate,
                "February 2029 has 28 days".to_string()
            )
        );
        assert_eq!(
            reason(passport("740800", "300101")),
            (MrzField::BirthDate, "there is no day 00".to_string())
        );
        let (field, why) = reason(passport("7408<2", "300101"));
        assert_eq!(field, MrzField::BirthDate);
        assert!(why.contains("neither two digits nor '<<'"), "{why}");
        // Leap days are real in leap years.
        let mrz = parse(&passport("000229", "280229")).unwrap();
        assert_eq!(mrz.birth_date, Some(date!(2000 - 02 - 29)));
        assert_eq!(mrz.expiry_date, Some(date!(2028 - 02 - 29)));
        // Unknown parts are given as '<'.
        let mrz = parse(&passport("7408<<", "<<<<<<")).unwrap();
        assert!(mrz.all_check_digits_valid());
        assert_eq!((mrz.birth_date, mrz.expiry_date), (None, None));
        // but what is given must exist.
        assert_eq!(
            reason(passport("7413<<", "300101")),
            (MrzField::BirthDate, "there is no month 13".to_string())
        );
    }

    #[test]
    fn two_digit_years_resolve_against_today() {
        let passport = |birth: &str, expiry: &str| {
            parse(&td3(&Holder {
                code: "P",
                state: "UTO",
                name: "ERIKSSON<<ANNA",
                number: "L898902C3",
                nationality: "UTO",
                birth,
                sex: 'F',
                expiry,
                optional: "",
                optional_2: "",
            }))
            .unwrap()
        };
        // TODAY is 2025-06-01.
        assert_eq!(
            passport("250601", "300101").birth_date,
            Some(date!(2025 - 06 - 01))
        );
        assert_eq!(
            passport("250602", "300101").birth_date,
            Some(date!(1925 - 06 - 02))
        );
        assert_eq!(
            passport("740812", "740101").expiry_date,
            Some(date!(2074 - 01 - 01))
        );
        assert_eq!(
            passport("740812", "760101").expiry_date,
            Some(date!(1976 - 01 - 01))
        );
        assert_eq!(
            passport("740812", "150101").expiry_date,
            Some(date!(2015 - 01 - 01))
        );
    }

    #[test]
    fn document_codes_map_to_kinds() {
        for (code, kind) in [
            ("P", DocumentKind::Passport),
            ("PD", DocumentKind::Passport),
            ("I", DocumentKind::IdCard),
            ("ID", DocumentKind::IdCard),
            ("IR", DocumentKind::ResidencePermit),
            ("AR", DocumentKind::ResidencePermit),
            ("AC", DocumentKind::Other),
            ("V", DocumentKind::Visa),
            ("XX", DocumentKind::Other),
        ] {
            assert_eq!(document_kind(code), kind, "{code}");
        }
        let mut lines = owned(&ICAO_TD1);
        lines[0].replace_range(0..2, "AC");
        let mrz = parse(&lines).unwrap();
        assert_eq!(
            (mrz.document_code.as_str(), mrz.document_kind),
            ("AC", DocumentKind::Other)
        );
    }

    #[test]
    fn country_codes_normalise_to_iso() {
        assert_eq!(icao_country_to_alpha3("D").as_deref(), Some("DEU"));
        assert_eq!(icao_country_to_alpha3("D<<").as_deref(), Some("DEU"));
        for kept in [
            "UTO", "FRA", "UNO", "UNA", "UNK", "XXA", "XXB", "XXC", "XXX", "EUE", "GBD", "GBN",
            "GBO", "GBP", "GBS", "RKS",
        ] {
            assert_eq!(icao_country_to_alpha3(kept).as_deref(), Some(kept));
        }
        for bad in ["", "<<<", "ABCD", "1AB", "A<B"] {
            assert_eq!(icao_country_to_alpha3(bad), None, "{bad}");
        }
        let mut lines = owned(&ICAO_TD3);
        lines[0].replace_range(2..5, "U<O");
        let err = parse(&lines).unwrap_err();
        assert!(
            matches!(
                err,
                MrzError::InvalidField {
                    field: MrzField::IssuingState,
                    ..
                }
            ),
            "{err}"
        );
    }

    // -----------------------------------------------------------------------
    // Input shapes and errors

    #[test]
    fn tolerates_white_space_lower_case_and_one_line() {
        let text = format!(
            "\n  {}  \r\n\t{}\n\n",
            ICAO_TD3[0].to_lowercase(),
            ICAO_TD3[1].to_lowercase()
        );
        let mrz = parse_mrz(&text, TODAY).unwrap();
        assert_eq!(mrz.lines, ICAO_TD3);
        assert!(mrz.corrections.is_empty());
        for zone in [ICAO_TD3.concat(), ICAO_TD2.concat(), ICAO_TD1.concat()] {
            let mrz = parse_mrz(&zone, TODAY).unwrap();
            assert!(mrz.all_check_digits_valid());
            assert_eq!(mrz.lines.concat(), zone);
        }
    }

    #[test]
    fn bad_line_lengths_and_counts() {
        assert_eq!(parse_mrz(" \n\n", TODAY), Err(MrzError::Empty));
        let err = parse(&[ICAO_TD3[0], &ICAO_TD3[1][..43]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::LineLength {
                line: 2,
                expected: 44,
                found: 43
            }
        );
        let err = parse(&[ICAO_TD1[0], &ICAO_TD1[1][..29], ICAO_TD1[2]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::LineLength {
                line: 2,
                expected: 30,
                found: 29
            }
        );
        let err = parse(&["P<UTO", "L898902C3"]).unwrap_err();
        assert_eq!(
            err,
            MrzError::UnknownLayout {
                line_lengths: vec![5, 9]
            }
        );
        let four = [ICAO_TD1[0], ICAO_TD1[1], ICAO_TD1[2], ICAO_TD1[2]];
        assert!(matches!(parse(&four), Err(MrzError::UnknownLayout { .. })));
        assert!(matches!(
            parse(&[ICAO_TD3[1]]),
            Err(MrzError::UnknownLayout { .. })
        ));
        // TD2 data line under a TD3 name line.
        let err = parse(&[ICAO_TD3[0], ICAO_TD2[1]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::LineLength {
                line: 1,
                expected: 36,
                found: 44
            }
        );
    }

    #[test]
    fn invalid_characters_are_located() {
        let err =
            parse(&["P<UTOERIK$SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", ICAO_TD3[1]]).unwrap_err();
        assert_eq!(
            err,
            MrzError::InvalidCharacter {
                line: 1,
                column: 10,
                found: '$'
            }
        );
        let err =
            parse(&[ICAO_TD3[0], "L898902C36 UTO7408122F1204159ZE184226B<<<<<10"]).unwrap_err();
        assert_eq!(
            err,
            MrzError::InvalidCharacter {
                line: 2,
                column: 11,
                found: ' '
            }
        );
        assert!(err.to_string().contains("line 2, column 11"), "{err}");
        let err = parse(&set(&owned(&ICAO_TD3), 2, 21, 'W')).unwrap_err();
        assert!(
            matches!(
                err,
                MrzError::InvalidField {
                    field: MrzField::Sex,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(&set(&owned(&ICAO_TD3), 1, 1, '<')).unwrap_err();
        assert!(
            matches!(
                err,
                MrzError::InvalidField {
                    field: MrzField::DocumentCode,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn serialises_for_the_api() {
        let mrz = parse(&own_td3()).unwrap();
        let json = serde_json::to_value(&mrz).unwrap();
        assert_eq!(json["format"], "TD3");
        assert_eq!(json["document_kind"], "passport");
        assert_eq!(json["issuing_state"]["alpha3"], "DEU");
        assert_eq!(json["birth_date"], "1988-02-29");
        assert_eq!(json["sex"], "female");
        assert_eq!(json["check_digits"][0]["field"], "document_number");
        assert!(json["check_digits"][0].get("suggestion").is_none());
        let back: Mrz = serde_json::from_value(json).unwrap();
        assert_eq!(back, mrz);
        let unknown = parse(&td3(&Holder {
            code: "P",
            state: "UTO",
            name: "X",
            number: "1",
            nationality: "UTO",
            birth: "<<<<<<",
            sex: '<',
            expiry: "<<<<<<",
            optional: "",
            optional_2: "",
        }))
        .unwrap();
        let json = serde_json::to_value(&unknown).unwrap();
        assert!(json["birth_date"].is_null());
        assert_eq!(json["sex"], "unspecified");
        assert_eq!(serde_json::from_value::<Mrz>(json).unwrap(), unknown);
    }

    #[test]
    fn errors_read_as_sentences() {
        let err = MrzError::InvalidField {
            field: MrzField::BirthDate,
            found: "741312".to_string(),
            reason: "there is no month 13".to_string(),
        };
        assert_eq!(
            err.to_string(),
            "MRZ date of birth \"741312\": there is no month 13"
        );
        let err: Box<dyn std::error::Error> = Box::new(MrzError::Empty);
        assert!(err.to_string().starts_with("no MRZ text"));
    }

    #[test]
    fn position_kinds_follow_the_layouts() {
        let td3 = position_kinds(MrzFormat::Td3);
        assert_eq!(td3.len(), 2);
        assert!(td3.iter().all(|l| l.len() == 44));
        assert!(td3[0].iter().all(|&k| k == CharKind::Letter));
        let line2: String = td3[1]
            .iter()
            .map(|k| match k {
                CharKind::Letter => 'A',
                CharKind::Digit => '9',
                CharKind::Alphanumeric => 'X',
                CharKind::Sex => 'S',
            })
            .collect();
        assert_eq!(line2, "XXXXXXXXX9AAA9999999S9999999XXXXXXXXXXXXXX99");
        let td1 = position_kinds(MrzFormat::Td1);
        let line1: String = td1[0]
            .iter()
            .map(|k| if *k == CharKind::Letter { 'A' } else { 'X' })
            .collect();
        assert_eq!(line1, "AAAAAXXXXXXXXXXXXXXXXXXXXXXXXX");
        assert_eq!(td1[0][14], CharKind::Digit);
        assert_eq!(td1[1][7], CharKind::Sex);
        assert_eq!(td1[1][29], CharKind::Digit);
        assert!(td1[2].iter().all(|&k| k == CharKind::Letter));
        let td2 = position_kinds(MrzFormat::Td2);
        assert_eq!(td2[1][35], CharKind::Digit);
        assert_eq!(td2[1][34], CharKind::Alphanumeric);
        let visa = position_kinds(MrzFormat::MrvA);
        assert_eq!(visa[1][43], CharKind::Alphanumeric);
        // Every specimen's every character is admitted where it stands.
        for lines in [own_td3(), own_td1(), own_td2(), own_mrv_a(), own_mrv_b()] {
            let mrz = parse(&lines).unwrap();
            for (line, kinds) in mrz.lines.iter().zip(position_kinds(mrz.format)) {
                for (c, kind) in line.chars().zip(kinds) {
                    assert!(kind.admits(c), "{c} as {kind:?} in {line}");
                }
            }
        }
    }
}
