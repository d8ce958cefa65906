//! Expiry dates for the key tools: `createsignerkey -e` and `mkauthinfo -e` (ddmmyyyy),
//! computed in UTC where Inferno uses local time.

use super::AuthError;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses `ddmmyyyy` into days since 1970, with Inferno's checks and messages.
// Not nom: eight digits at fixed places.
fn parse_day(s: &str) -> Result<i64, AuthError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::KeyGen(format!(
            "bad date format {s} (expected DDMMYYYY)"
        )));
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    let (d, m, y) = (num(0..2), num(2..4), num(4..8));
    if !(1..=31).contains(&d) {
        return Err(AuthError::KeyGen(format!("bad day of month {d}")));
    }
    if !(1..=12).contains(&m) {
        return Err(AuthError::KeyGen(format!("bad month {m}")));
    }
    if y < 1970 {
        return Err(AuthError::KeyGen(format!(
            "bad year {y} (year may be no earlier than 1970)"
        )));
    }
    Ok(days_from_civil(y, m, d))
}

/// Converts an expiry in seconds to the certificate's field (at most 2^31−1, §3.4).
fn to_exp(secs: i64) -> Result<u32, AuthError> {
    u32::try_from(secs)
        .ok()
        .filter(|&v| v <= i32::MAX as u32)
        .ok_or_else(|| AuthError::KeyGen("expiry date out of range".into()))
}

/// `createsignerkey -e ddmmyyyy`: the end of that day (its hour 24:59:59, as Inferno
/// computes it, here in UTC); it must be in the future.
pub fn signer_expiry(s: &str, now: u64) -> Result<u32, AuthError> {
    let t = (parse_day(s)? + 1) * 86400 + 59 * 60 + 59;
    if t < i64::try_from(now).unwrap_or(i64::MAX) {
        return Err(AuthError::KeyGen(
            "expiration date must be in the future".into(),
        ));
    }
    to_exp(t)
}

/// `mkauthinfo -e ddmmyyyy|permanent`: that day at the current time of day plus 60 s (UTC
/// here, local time in Inferno), or 0 for `permanent`; it must be in the future.
pub fn user_expiry(s: &str, now: u64) -> Result<u32, AuthError> {
    if s == "permanent" {
        return Ok(0);
    }
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let t = parse_day(s)? * 86400 + now.rem_euclid(86400) + 60;
    if t <= now {
        return Err(AuthError::KeyGen("expiry date has already passed".into()));
    }
    to_exp(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2030, 1, 1) * 86400, 1893456000);
        assert_eq!(
            signer_expiry("01012030", 0).unwrap(),
            1893456000 + 86400 + 3599
        );
        assert!(signer_expiry("01011990", 1_000_000_000).is_err());
        assert_eq!(user_expiry("permanent", 5).unwrap(), 0);
        assert_eq!(user_expiry("02011970", 100).unwrap(), 86400 + 100 + 60);
        assert!(user_expiry("32012030", 0).is_err());
        assert!(user_expiry("0101203", 0).is_err());
        assert!(user_expiry("01012040", 0).is_err());
    }
}
