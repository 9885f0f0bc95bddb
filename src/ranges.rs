//! Value parsers for the numeric flags: each accepts only its valid range and otherwise makes clap
//! answer with one line naming the flag, the value and the range, e.g.
//! `error: invalid value '0' for '--epochs <EPOCHS>': expected a whole number from 1 to 100000`,
//! before anything is read or written.

/// A whole number in `min..=max`.
pub fn whole<T>(min: u64, max: u64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: TryFrom<u64>,
{
    move |s: &str| {
        let range = || format!("expected a whole number from {min} to {max}");
        let v: u64 = s.trim().parse().map_err(|_| range())?;
        if !(min..=max).contains(&v) {
            return Err(range());
        }
        T::try_from(v).map_err(|_| range())
    }
}

/// A whole number in `min..=max` that is a multiple of 8 (sizes the output stride divides).
pub fn multiple_of_8(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s: &str| {
        let range = || format!("expected a multiple of 8 from {min} to {max}");
        let v: usize = whole(min, max)(s).map_err(|_| range())?;
        if v % 8 == 0 {
            Ok(v)
        } else {
            Err(range())
        }
    }
}

/// Whether an end of a [`real`] range is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Open,
    Closed,
}

/// A finite number between `min` and `max`, each end included or not.
pub fn real(
    min: (f64, End),
    max: (f64, End),
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        let text = format!(
            "expected a number in {}{}, {}{}",
            if min.1 == End::Closed { "[" } else { "(" },
            min.0,
            max.0,
            if max.1 == End::Closed { "]" } else { ")" },
        );
        let v: f64 = s.trim().parse().map_err(|_| text.clone())?;
        let above = v > min.0 || (min.1 == End::Closed && v == min.0);
        let below = v < max.0 || (max.1 == End::Closed && v == max.0);
        if v.is_finite() && above && below {
            Ok(v)
        } else {
            Err(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_in_range_only() {
        let p = whole::<usize>(1, 10);
        assert_eq!(p("1"), Ok(1));
        assert_eq!(p(" 10 "), Ok(10));
        for bad in ["0", "11", "-1", "1.5", "NaN", "", "99999999999999999999999"] {
            let err = p(bad).unwrap_err();
            assert_eq!(err, "expected a whole number from 1 to 10", "{bad}");
        }
        assert_eq!(
            whole::<u64>(0, u64::MAX)("18446744073709551615"),
            Ok(u64::MAX)
        );
        let crop = multiple_of_8(32, 64);
        assert_eq!(crop("40"), Ok(40));
        for bad in ["36", "24", "72", "-8", "NaN"] {
            assert_eq!(
                crop(bad).unwrap_err(),
                "expected a multiple of 8 from 32 to 64"
            );
        }
    }

    #[test]
    fn real_numbers_respect_open_and_closed_ends() {
        let p = real((0.0, End::Open), (1.0, End::Closed));
        assert_eq!(p("1"), Ok(1.0));
        assert_eq!(p("1e-4"), Ok(1e-4));
        for bad in ["0", "1.0001", "-0.5", "NaN", "inf", "-inf", "x"] {
            assert_eq!(p(bad).unwrap_err(), "expected a number in (0, 1]", "{bad}");
        }
        let q = real((0.0, End::Closed), (0.9, End::Closed));
        assert_eq!(q("0"), Ok(0.0));
        assert!(q("0.95").is_err());
    }
}
