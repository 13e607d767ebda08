//! CloudTrail's times: UTC formatting and parsing of `eventTime` without a
//! calendar library on the hot path.

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-22T01:02:03Z`.
pub fn rfc3339(unix: i64, out: &mut String) {
    use std::fmt::Write;
    let (y, mo, d) = civil(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    out.clear();
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// Parses `YYYY-MM-DDTHH:MM:SS` (fraction and zone ignored; CloudTrail writes
/// UTC) to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    // Digits where CloudTrail writes them are read without `str::parse`
    // (which also takes a sign); anything else is parsed as before.
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let ((year, month, day), (h, m, s)) = if DIGITS.iter().all(|&i| b[i].is_ascii_digit()) {
        let d = |i: usize| i64::from(b[i] - b'0');
        (
            (
                d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3),
                d(5) * 10 + d(6),
                d(8) * 10 + d(9),
            ),
            (d(11) * 10 + d(12), d(14) * 10 + d(15), d(17) * 10 + d(18)),
        )
    } else {
        let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
        (
            (num(0..4)?, num(5..7)?, num(8..10)?),
            (num(11..13)?, num(14..16)?, num(17..19)?),
        )
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month as u32, day as u32) * 86_400 + h * 3600 + m * 60 + s)
}

/// RFC 3339 time to Unix seconds, as the `time` crate reads it: the shape
/// CloudTrail writes (`2026-11-22T01:02:03Z`, a valid date, seconds below
/// 60) without it, anything else by it.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shaped = b.len() == 20
        && b[19] == b'Z'
        && b[13] == b':'
        && b[16] == b':'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit());
    if shaped && let Some(unix) = parse_rfc3339(text) {
        let (year, month, day) = (unix_year(text), &b[5..7], &b[8..10]);
        let month = u32::from(month[0] - b'0') * 10 + u32::from(month[1] - b'0');
        let day = u32::from(day[0] - b'0') * 10 + u32::from(day[1] - b'0');
        if b[17] < b'6' && day <= days_in_month(year, month) {
            return Some(unix);
        }
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn unix_year(text: &str) -> i64 {
    text.get(0..4).and_then(|y| y.parse().ok()).unwrap_or(0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_reads_as_the_time_crate_does() {
        let texts = [
            "2026-11-22T01:02:03Z",
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-11-22T01:02:03+02:00",
            "2026-11-22T01:02:03.5Z",
            "2026-11-22t01:02:03z",
            "2026-11-22 01:02:03Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-1-22T01:02:03Z",
            "yesterday",
            "",
        ];
        for text in texts {
            let want =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(time::OffsetDateTime::unix_timestamp);
            assert_eq!(unix_seconds(text), want, "{text}");
        }
    }

    #[test]
    fn dates_round_trip_against_the_time_crate() {
        let mut out = String::new();
        for unix in [
            0_i64,
            951_782_400,
            1_709_164_800,
            1_795_305_723,
            4_102_444_799,
        ] {
            rfc3339(unix, &mut out);
            let expected = time::OffsetDateTime::from_unix_timestamp(unix).expect("in range");
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
            assert_eq!(out, expected.format(&format).expect("formats"));
            assert_eq!(parse_rfc3339(&out), Some(unix));
        }
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        // Read by `str::parse` when not all digits: a sign is taken, a letter is not.
        assert_eq!(
            parse_rfc3339("2026-+1-01T00:00:00Z"),
            parse_rfc3339("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-0a-01T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339("2026-11-22T01:02:03.5+01:00"),
            Some(1_795_309_323)
        );
    }
}
