//! NHS numbers: ten digits, the last a modulus 11 check digit.

use std::fmt;

/// The identifier system for NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A validated NHS number. It is also the merged Patient's logical id.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNhsNumber {
    #[error("an NHS number has exactly 10 digits")]
    Format,
    #[error("the NHS number's check digit is wrong")]
    CheckDigit,
}

impl NhsNumber {
    pub fn parse(s: &str) -> Result<Self, InvalidNhsNumber> {
        let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
        if s.len() != 10 || digits.len() != 10 {
            return Err(InvalidNhsNumber::Format);
        }
        let sum: u32 = digits[..9]
            .iter()
            .enumerate()
            .map(|(i, d)| d * (10 - i as u32))
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(InvalidNhsNumber::CheckDigit),
            c => c,
        };
        if check != digits[9] {
            return Err(InvalidNhsNumber::CheckDigit);
        }
        Ok(NhsNumber(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = InvalidNhsNumber;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NhsNumber::parse(&s)
    }
}

impl From<NhsNumber> for String {
    fn from(n: NhsNumber) -> String {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_and_rejects_invalid() {
        assert!(NhsNumber::parse("9000000009").is_ok());
        assert!(NhsNumber::parse("9434765919").is_ok());
        assert_eq!(
            NhsNumber::parse("9000000008"),
            Err(InvalidNhsNumber::CheckDigit)
        );
        assert_eq!(NhsNumber::parse("900000000"), Err(InvalidNhsNumber::Format));
        assert_eq!(
            NhsNumber::parse("90000000099"),
            Err(InvalidNhsNumber::Format)
        );
        assert_eq!(
            NhsNumber::parse("900000000a"),
            Err(InvalidNhsNumber::Format)
        );
        assert_eq!(
            NhsNumber::parse("９０００００００09"),
            Err(InvalidNhsNumber::Format)
        );
    }

    proptest! {
        /// Exactly one check digit (or none, when the remainder gives 10) fits any 9 digits.
        #[test]
        fn at_most_one_check_digit_fits(prefix in "[0-9]{9}") {
            let valid = (0..10).filter(|d| NhsNumber::parse(&format!("{prefix}{d}")).is_ok()).count();
            prop_assert!(valid <= 1);
        }
    }
}
