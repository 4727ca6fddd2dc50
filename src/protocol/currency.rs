//! ISO 4217 currencies (the active ones, with their minor-unit exponents) and the parser of
//! human amounts ("12.45", "12,45", "12") into minor units.

use thiserror::Error;

use super::Currency;

/// Largest amount a request can carry: CB holds at most 12 digits. The one home of this
/// limit in Rust; `static/client.js` repeats it for browsers (a test keeps them equal).
pub const MAX_AMOUNT: u64 = 999_999_999_999;

/// Active ISO 4217 currencies (alpha, numeric, exponent). Precious metals, testing codes and
/// units without minor units defined (XAU, XDR, XTS, ...) are left out: nobody pays in them.
const TABLE: &[(&str, u16, u8)] = &[
    ("AED", 784, 2),
    ("AFN", 971, 2),
    ("ALL", 8, 2),
    ("AMD", 51, 2),
    ("AOA", 973, 2),
    ("ARS", 32, 2),
    ("AUD", 36, 2),
    ("AWG", 533, 2),
    ("AZN", 944, 2),
    ("BAM", 977, 2),
    ("BBD", 52, 2),
    ("BDT", 50, 2),
    ("BHD", 48, 3),
    ("BIF", 108, 0),
    ("BMD", 60, 2),
    ("BND", 96, 2),
    ("BOB", 68, 2),
    ("BOV", 984, 2),
    ("BRL", 986, 2),
    ("BSD", 44, 2),
    ("BTN", 64, 2),
    ("BWP", 72, 2),
    ("BYN", 933, 2),
    ("BZD", 84, 2),
    ("CAD", 124, 2),
    ("CDF", 976, 2),
    ("CHE", 947, 2),
    ("CHF", 756, 2),
    ("CHW", 948, 2),
    ("CLF", 990, 4),
    ("CLP", 152, 0),
    ("CNY", 156, 2),
    ("COP", 170, 2),
    ("COU", 970, 2),
    ("CRC", 188, 2),
    ("CUP", 192, 2),
    ("CVE", 132, 2),
    ("CZK", 203, 2),
    ("DJF", 262, 0),
    ("DKK", 208, 2),
    ("DOP", 214, 2),
    ("DZD", 12, 2),
    ("EGP", 818, 2),
    ("ERN", 232, 2),
    ("ETB", 230, 2),
    ("EUR", 978, 2),
    ("FJD", 242, 2),
    ("FKP", 238, 2),
    ("GBP", 826, 2),
    ("GEL", 981, 2),
    ("GHS", 936, 2),
    ("GIP", 292, 2),
    ("GMD", 270, 2),
    ("GNF", 324, 0),
    ("GTQ", 320, 2),
    ("GYD", 328, 2),
    ("HKD", 344, 2),
    ("HNL", 340, 2),
    ("HTG", 332, 2),
    ("HUF", 348, 2),
    ("IDR", 360, 2),
    ("ILS", 376, 2),
    ("INR", 356, 2),
    ("IQD", 368, 3),
    ("IRR", 364, 2),
    ("ISK", 352, 0),
    ("JMD", 388, 2),
    ("JOD", 400, 3),
    ("JPY", 392, 0),
    ("KES", 404, 2),
    ("KGS", 417, 2),
    ("KHR", 116, 2),
    ("KMF", 174, 0),
    ("KPW", 408, 2),
    ("KRW", 410, 0),
    ("KWD", 414, 3),
    ("KYD", 136, 2),
    ("KZT", 398, 2),
    ("LAK", 418, 2),
    ("LBP", 422, 2),
    ("LKR", 144, 2),
    ("LRD", 430, 2),
    ("LSL", 426, 2),
    ("LYD", 434, 3),
    ("MAD", 504, 2),
    ("MDL", 498, 2),
    ("MGA", 969, 2),
    ("MKD", 807, 2),
    ("MMK", 104, 2),
    ("MNT", 496, 2),
    ("MOP", 446, 2),
    ("MRU", 929, 2),
    ("MUR", 480, 2),
    ("MVR", 462, 2),
    ("MWK", 454, 2),
    ("MXN", 484, 2),
    ("MXV", 979, 2),
    ("MYR", 458, 2),
    ("MZN", 943, 2),
    ("NAD", 516, 2),
    ("NGN", 566, 2),
    ("NIO", 558, 2),
    ("NOK", 578, 2),
    ("NPR", 524, 2),
    ("NZD", 554, 2),
    ("OMR", 512, 3),
    ("PAB", 590, 2),
    ("PEN", 604, 2),
    ("PGK", 598, 2),
    ("PHP", 608, 2),
    ("PKR", 586, 2),
    ("PLN", 985, 2),
    ("PYG", 600, 0),
    ("QAR", 634, 2),
    ("RON", 946, 2),
    ("RSD", 941, 2),
    ("RUB", 643, 2),
    ("RWF", 646, 0),
    ("SAR", 682, 2),
    ("SBD", 90, 2),
    ("SCR", 690, 2),
    ("SDG", 938, 2),
    ("SEK", 752, 2),
    ("SGD", 702, 2),
    ("SHP", 654, 2),
    ("SLE", 925, 2),
    ("SOS", 706, 2),
    ("SRD", 968, 2),
    ("SSP", 728, 2),
    ("STN", 930, 2),
    ("SVC", 222, 2),
    ("SYP", 760, 2),
    ("SZL", 748, 2),
    ("THB", 764, 2),
    ("TJS", 972, 2),
    ("TMT", 934, 2),
    ("TND", 788, 3),
    ("TOP", 776, 2),
    ("TRY", 949, 2),
    ("TTD", 780, 2),
    ("TWD", 901, 2),
    ("TZS", 834, 2),
    ("UAH", 980, 2),
    ("UGX", 800, 0),
    ("USD", 840, 2),
    ("USN", 997, 2),
    ("UYI", 940, 0),
    ("UYU", 858, 2),
    ("UYW", 927, 4),
    ("UZS", 860, 2),
    ("VED", 926, 2),
    ("VES", 928, 2),
    ("VND", 704, 0),
    ("VUV", 548, 0),
    ("WST", 882, 2),
    ("XAF", 950, 0),
    ("XCD", 951, 2),
    ("XCG", 532, 2),
    ("XOF", 952, 0),
    ("XPF", 953, 0),
    ("YER", 886, 2),
    ("ZAR", 710, 2),
    ("ZMW", 967, 2),
    ("ZWG", 924, 2),
];

impl Currency {
    /// Looks up an alphabetic ("EUR", any case) or numeric ("978", "8" or "008") code.
    pub fn parse(code: &str) -> Option<Currency> {
        let code = code.trim();
        let found = if code.bytes().all(|b| b.is_ascii_digit()) && !code.is_empty() {
            let numeric: u16 = code.parse().ok()?;
            TABLE.iter().find(|(_, n, _)| *n == numeric)
        } else {
            TABLE.iter().find(|(a, _, _)| a.eq_ignore_ascii_case(code))
        };
        found.map(|&(alpha, numeric, exponent)| Currency {
            alpha,
            numeric,
            exponent,
        })
    }

    /// The numeric code as the 3 digits of field CE, e.g. "978", "008".
    pub fn ce(&self) -> String {
        format!("{:03}", self.numeric)
    }

    /// Formats an amount in minor units for people, e.g. `1245` → "12.45 EUR".
    pub fn format(&self, minor: u64) -> String {
        let exp = u32::from(self.exponent);
        if exp == 0 {
            return format!("{minor} {}", self.alpha);
        }
        let unit = 10u64.pow(exp);
        let (major, frac) = (minor / unit, minor % unit);
        format!(
            "{major}.{frac:0width$} {}",
            self.alpha,
            width = exp as usize
        )
    }
}

/// Why a human amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AmountError {
    /// Not of the form `123`, `123.45` or `123,45`.
    #[error("amount {0:?} is not a number like 12.45 or 12,45")]
    NotANumber(String),
    /// More decimals than the currency has.
    #[error("amount {amount:?} has more than {exponent} decimals for {currency}")]
    TooManyDecimals {
        /// The input.
        amount: String,
        /// The currency.
        currency: &'static str,
        /// Its exponent.
        exponent: u8,
    },
    /// Zero is not a payment.
    #[error("amount must be at least one minor unit")]
    Zero,
    /// More than 12 digits in minor units.
    #[error("amount {0:?} is too large (at most 12 digits in minor units)")]
    TooLarge(String),
}

/// Parses "12.45", "12,45" or "12" into minor units of `currency`.
pub fn parse_amount(input: &str, currency: &Currency) -> Result<u64, AmountError> {
    let text = input.trim();
    let not_a_number = || AmountError::NotANumber(input.to_string());
    let (major, frac) = match text.split_once(['.', ',']) {
        Some((major, frac)) => (major, frac),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if major.is_empty() || !digits(major) || !digits(frac) || (frac.is_empty() && text != major) {
        return Err(not_a_number());
    }
    let exponent = usize::from(currency.exponent);
    if frac.len() > exponent {
        return Err(AmountError::TooManyDecimals {
            amount: input.to_string(),
            currency: currency.alpha,
            exponent: currency.exponent,
        });
    }
    let minor_text = format!("{major}{frac:0<exponent$}");
    let minor_text = minor_text.trim_start_matches('0');
    if minor_text.is_empty() {
        return Err(AmountError::Zero);
    }
    if minor_text.len() > 12 {
        return Err(AmountError::TooLarge(input.to_string()));
    }
    minor_text.parse().map_err(|_| not_a_number())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_client_checks_the_same_largest_amount() {
        let client = include_str!("../../static/client.js");
        let declared = client
            .lines()
            .find_map(|line| line.strip_prefix("const MAX_AMOUNT = "))
            .expect("client.js declares MAX_AMOUNT");
        let digits: String = declared.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(digits.parse::<u64>().unwrap(), MAX_AMOUNT);
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn alpha_and_numeric_codes_resolve() {
        assert_eq!(Currency::parse("eur"), Currency::parse("978"));
        assert_eq!(Currency::parse("XPF").unwrap().exponent, 0);
        assert_eq!(Currency::parse("953").unwrap().alpha, "XPF");
        assert_eq!(Currency::parse("KWD").unwrap().exponent, 3);
        assert_eq!(Currency::parse("008").unwrap().ce(), "008");
        assert_eq!(Currency::parse("XAU"), None);
        assert_eq!(Currency::parse(""), None);
        assert_eq!(Currency::parse("99999999"), None);
    }

    #[test]
    fn table_codes_are_unique() {
        for (i, (a, n, _)) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|(b, m, _)| a != b && n != m),
                "{a}"
            );
        }
    }

    #[test]
    fn human_amounts_become_minor_units() {
        assert_eq!(parse_amount("12.45", &eur()), Ok(1245));
        assert_eq!(parse_amount("12,45", &eur()), Ok(1245));
        assert_eq!(parse_amount("12", &eur()), Ok(1200));
        assert_eq!(parse_amount("0.5", &eur()), Ok(50));
        assert_eq!(parse_amount(" 0,05 ", &eur()), Ok(5));
        let xpf = Currency::parse("XPF").unwrap();
        assert_eq!(parse_amount("1500", &xpf), Ok(1500));
        assert_eq!(parse_amount("9999999999.99", &eur()), Ok(999_999_999_999));
    }

    #[test]
    fn bad_amounts_are_typed_errors() {
        for bad in ["", "abc", "12.", ".5", "1.2.3", "-1", "12 45", "1e3"] {
            assert!(
                matches!(parse_amount(bad, &eur()), Err(AmountError::NotANumber(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_amount("1.234", &eur()),
            Err(AmountError::TooManyDecimals { .. })
        ));
        let xpf = Currency::parse("XPF").unwrap();
        assert!(parse_amount("1.5", &xpf).is_err());
        assert_eq!(parse_amount("0.00", &eur()), Err(AmountError::Zero));
        assert!(matches!(
            parse_amount("10000000000", &eur()),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn amounts_format_back() {
        assert_eq!(eur().format(1245), "12.45 EUR");
        assert_eq!(eur().format(5), "0.05 EUR");
        assert_eq!(Currency::parse("XPF").unwrap().format(1500), "1500 XPF");
    }
}
