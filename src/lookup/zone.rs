//! The time zone lookups print times in (`--tz`): the machine's own by
//! default, `UTC`, an offset (`+02:00`) or a zone name (`Europe/Paris`);
//! every time printed carries its offset.

use jiff::tz::{Offset, TimeZone};

/// The zone `--tz` names; `None` is the machine's own.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC));
    };
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Ok(TimeZone::UTC);
    }
    if name.eq_ignore_ascii_case("local") {
        return Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC));
    }
    if let Some(offset) = fixed_offset(name) {
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(name).map_err(|_| {
        format!("\"{name}\" is not a time zone: use local, UTC, an offset such as +02:00, or a name such as Europe/Paris")
    })
}

/// `+02:00`, `-0530`, `+2`.
fn fixed_offset(text: &str) -> Option<Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = if digits.len() <= 2 {
        (digits.parse::<i32>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().ok()?,
            digits[split..].parse::<i32>().ok()?,
        )
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// Unix seconds in `tz`, with its offset: `2026-11-21 11:04:11 +01:00`.
pub fn show(unix: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => unix.to_string(),
    }
}

/// Unix seconds in `tz` as RFC 3339: `2026-11-21T11:04:11+01:00`.
pub fn rfc3339(unix: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => unix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_names_and_utc_print_with_their_offset() {
        let at = 1_795_255_200; // 2026-11-21T10:00:00Z
        assert_eq!(
            show(at, &zone(Some("UTC")).expect("utc")),
            "2026-11-21 10:00:00 +00:00"
        );
        assert_eq!(
            show(at, &zone(Some("+02:00")).expect("offset")),
            "2026-11-21 12:00:00 +02:00"
        );
        assert_eq!(
            rfc3339(at, &zone(Some("-0530")).expect("offset")),
            "2026-11-21T04:30:00-05:30"
        );
        assert_eq!(
            show(at, &zone(Some("Europe/Paris")).expect("name")),
            "2026-11-21 11:00:00 +01:00"
        );
        let e = zone(Some("Mars/Olympus")).expect_err("unknown");
        assert!(e.contains("Mars/Olympus"), "{e}");
        assert!(zone(Some("+25")).is_err());
        assert!(zone(None).is_ok());
    }
}
