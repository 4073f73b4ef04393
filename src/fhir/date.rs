//! FHIR dates as ranges of time, and the date search prefixes.
//!
//! Every FHIR date, dateTime, instant or Period covers a range: `2024` is the whole
//! year, `2024-03-05T10:00:00Z` is one second. Search compares ranges, as the FHIR
//! search page defines. Ranges are half-open `[start, end)` in milliseconds since the
//! epoch, UTC; values without a time zone are read as UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

/// A half-open range of instants, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

impl DateRange {
    pub const UNBOUNDED: DateRange = DateRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    fn contains(&self, other: &DateRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Prefix {
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Lt => "lt",
            Prefix::Le => "le",
            Prefix::Gt => "gt",
            Prefix::Ge => "ge",
        }
    }
}

/// A date search value: prefix, the text as given, and the range it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub text: String,
    pub range: DateRange,
}

impl DateValue {
    /// Parses `[prefix]date`, e.g. `ge2024-01`, `2023`, `lt2024-03-05T10:00:00Z`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        // FHIR dates are ASCII; checking first keeps every slice below on a character
        // boundary, whatever a client sends.
        if !raw.is_ascii() {
            return Err("a date has only the characters 0-9 T Z : . + - after its prefix".into());
        }
        let (prefix, text) = match raw.get(..2) {
            Some("eq") => (Prefix::Eq, &raw[2..]),
            Some("ne") => (Prefix::Ne, &raw[2..]),
            Some("lt") => (Prefix::Lt, &raw[2..]),
            Some("le") => (Prefix::Le, &raw[2..]),
            Some("gt") => (Prefix::Gt, &raw[2..]),
            Some("ge") => (Prefix::Ge, &raw[2..]),
            Some(p) if p.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(format!(
                    "'{p}' is not a supported date prefix (eq, ne, lt, le, gt, ge)"
                ));
            }
            _ => (Prefix::Eq, raw),
        };
        let range = parse_range(text).ok_or_else(|| format!("'{text}' is not a FHIR date"))?;
        Ok(DateValue {
            prefix,
            text: text.to_string(),
            range,
        })
    }

    /// Does a resource whose date covers `target` match this search value?
    pub fn matches(&self, target: &DateRange) -> bool {
        let p = &self.range;
        match self.prefix {
            Prefix::Eq => p.contains(target),
            Prefix::Ne => !p.contains(target),
            Prefix::Gt => target.end > p.end,
            Prefix::Lt => target.start < p.start,
            Prefix::Ge => target.end > p.end || p.contains(target),
            Prefix::Le => target.start < p.start || p.contains(target),
        }
    }

    /// The value as it appears in a query string (`eq` is the default, so omitted).
    pub fn to_query(&self) -> String {
        match self.prefix {
            Prefix::Eq => self.text.clone(),
            prefix => format!("{}{}", prefix.as_str(), self.text),
        }
    }
}

/// The range a FHIR date, dateTime or instant string covers.
pub fn parse_range(s: &str) -> Option<DateRange> {
    let s = s.trim();
    // Partners' dates as much as clients': ASCII only, so slicing cannot split a character.
    if !s.is_ascii() {
        return None;
    }
    if s.len() == 4 && s.chars().all(|c| c.is_ascii_digit()) {
        let year: i32 = s.parse().ok()?;
        return Some(DateRange {
            start: day_start(year, 1, 1)?,
            end: day_start(year + 1, 1, 1)?,
        });
    }
    if s.len() == 7 && s.as_bytes()[4] == b'-' {
        let year: i32 = s[..4].parse().ok()?;
        let month: u32 = s[5..].parse().ok()?;
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Some(DateRange {
            start: day_start(year, month, 1)?,
            end: day_start(ny, nm, 1)?,
        });
    }
    if s.len() == 10 {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        let start = date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
        return Some(DateRange {
            start,
            end: start + 86_400_000,
        });
    }
    parse_date_time(s)
}

fn day_start(year: i32, month: u32, day: u32) -> Option<i64> {
    Some(
        NaiveDate::from_ymd_opt(year, month, day)?
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_millis(),
    )
}

/// A dateTime with a time: its precision (minute, second, or fraction) sets the width.
fn parse_date_time(s: &str) -> Option<DateRange> {
    let (body, has_zone) = split_zone(s);
    let time_part = body.split_once('T')?.1;
    let width = match time_part.split_once('.') {
        Some((_, fraction)) => 10_i64.pow(3u32.saturating_sub(fraction.len().min(3) as u32)),
        None if time_part.len() == 5 => 60_000,
        None => 1_000,
    };
    let start = if has_zone {
        let normalised = if time_part.len() == 5 {
            insert_seconds(s)
        } else {
            s.to_string()
        };
        DateTime::parse_from_rfc3339(&normalised)
            .ok()?
            .timestamp_millis()
    } else {
        let fmt = if time_part.len() == 5 {
            "%Y-%m-%dT%H:%M"
        } else {
            "%Y-%m-%dT%H:%M:%S%.f"
        };
        NaiveDateTime::parse_from_str(body, fmt)
            .ok()?
            .and_utc()
            .timestamp_millis()
    };
    Some(DateRange {
        start,
        end: start + width,
    })
}

/// Splits off a trailing `Z` or `+hh:mm` / `-hh:mm` zone.
fn split_zone(s: &str) -> (&str, bool) {
    if let Some(body) = s.strip_suffix('Z') {
        return (body, true);
    }
    if s.len() > 6 {
        let (body, zone) = s.split_at(s.len() - 6);
        let z = zone.as_bytes();
        if (z[0] == b'+' || z[0] == b'-') && z[3] == b':' && body.contains('T') {
            return (body, true);
        }
    }
    (s, false)
}

fn insert_seconds(s: &str) -> String {
    // "2024-03-05T10:00Z" -> "2024-03-05T10:00:00Z"
    let t = s.find('T').unwrap_or(0);
    format!("{}:00{}", &s[..t + 6], &s[t + 6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> DateRange {
        parse_range(s).unwrap()
    }

    #[test]
    fn partial_dates_cover_their_whole_period() {
        assert_eq!(r("2024").end - r("2024").start, 366 * 86_400_000);
        assert_eq!(r("2024-02").end - r("2024-02").start, 29 * 86_400_000);
        assert_eq!(r("2023-12").end, r("2024").start);
        assert_eq!(r("2024-03-05").end - r("2024-03-05").start, 86_400_000);
        assert_eq!(
            r("2024-03-05T10:00:00Z").end - r("2024-03-05T10:00:00Z").start,
            1000
        );
        assert_eq!(
            r("2024-03-05T10:00:00.5Z").end - r("2024-03-05T10:00:00.5Z").start,
            100
        );
        assert_eq!(
            r("2024-03-05T10:00Z").end - r("2024-03-05T10:00Z").start,
            60_000
        );
        assert_eq!(r("2024-03-05T11:00:00+01:00"), r("2024-03-05T10:00:00Z"));
        assert_eq!(r("2024-03-05T10:00:00"), r("2024-03-05T10:00:00Z"));
        assert!(parse_range("2024-13").is_none());
        assert!(parse_range("yesterday").is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_date_or_an_error_never_a_panic(s in "\\PC{0,40}") {
            let _ = DateValue::parse(&s);
            let _ = parse_range(&s);
        }

        #[test]
        fn date_shaped_text_with_any_characters_never_panics(
            head in "(eq|ge|lt)?[0-9]{0,4}",
            odd in "\\PC{1,3}",
            tail in "[0-9T:Z+-]{0,12}",
        ) {
            let s = format!("{head}{odd}{tail}");
            let _ = DateValue::parse(&s);
            let _ = parse_range(&s);
        }
    }

    #[test]
    fn multi_byte_characters_are_refused_not_sliced() {
        for s in [
            "\u{2603}1111",
            "2024-\u{e9}1",
            "2024-03-05T10:00\u{2603}",
            "ge\u{2603}",
        ] {
            assert!(DateValue::parse(s).is_err(), "{s}");
            assert!(parse_range(s).is_none(), "{s}");
        }
    }

    #[test]
    fn prefixes_follow_the_fhir_search_rules() {
        let day = r("2024-03-05");
        let instant = r("2024-03-05T10:00:00Z");
        let later = r("2024-06-01T00:00:00Z");
        let v = |s: &str| DateValue::parse(s).unwrap();
        assert!(v("2024-03-05").matches(&instant));
        assert!(v("2024-03").matches(&day));
        assert!(!v("2024-03-05").matches(&later));
        assert!(v("ne2024-03-05").matches(&later));
        assert!(v("gt2024-03-05").matches(&later));
        assert!(!v("gt2024-03-05").matches(&instant));
        assert!(v("ge2024-03-05").matches(&instant));
        assert!(v("lt2024-06").matches(&instant));
        assert!(!v("lt2024-03-05").matches(&instant));
        assert!(v("le2024-03-05").matches(&instant));
        assert!(!v("le2024-03-04").matches(&instant));
        // A period that straddles the boundary is both before and after it.
        let period = DateRange {
            start: r("2024-02-01").start,
            end: r("2024-04-15").start,
        };
        assert!(v("lt2024-03").matches(&period) && v("gt2024-03").matches(&period));
        assert!(DateValue::parse("sa2024").is_err());
        assert!(DateValue::parse("ge2024-1").is_err());
    }
}
