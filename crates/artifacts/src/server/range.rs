//! Parsing of the HTTP `Range` header (a single `bytes=` range; RFC 9110 §14).

use std::ops::Range;

/// What a `Range` header asks of an artifact of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole artifact (200).
    Full,
    /// Send these bytes (206).
    Partial(Range<u64>),
    /// No byte of the range lies within the artifact (416).
    Unsatisfiable,
}

/// Interprets a `Range` header value for an artifact of `size` bytes.
///
/// Multi-range and non-`bytes` requests are answered with the full artifact, which RFC 9110
/// allows; a malformed header is ignored the same way.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.is_empty(), end.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match end.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return RangeRequest::Full,
        },
        // bytes=A-: from A to the end.
        (false, true) => match start.parse::<u64>() {
            Ok(a) => a..size,
            Err(_) => return RangeRequest::Full,
        },
        // bytes=A-B: inclusive.
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => a..b.saturating_add(1).min(size),
            _ => return RangeRequest::Full,
        },
        (true, true) => return RangeRequest::Full,
    };
    if range.start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeRequest::Partial(0..5));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeRequest::Partial(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeRequest::Partial(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeRequest::Partial(0..10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeRequest::Partial(8..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), RangeRequest::Full);
    }
}
