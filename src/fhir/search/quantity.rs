//! Quantity search values (`value-quantity=gt5.4|http://unitsofmeasure.org|mmol/L`):
//! a prefix, a number whose precision sets what `eq` covers, and an optional unit.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    StartsAfter,
    EndsBefore,
    Approximately,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 9] = [
        ("eq", Comparison::Eq),
        ("ne", Comparison::Ne),
        ("gt", Comparison::Gt),
        ("lt", Comparison::Lt),
        ("ge", Comparison::Ge),
        ("le", Comparison::Le),
        ("sa", Comparison::StartsAfter),
        ("eb", Comparison::EndsBefore),
        ("ap", Comparison::Approximately),
    ];

    fn as_str(self) -> &'static str {
        Comparison::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("eq", |(s, _)| s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub comparison: Comparison,
    /// The number as given: its precision is part of its meaning.
    pub number: String,
    value: f64,
    /// Half of the last given digit's place: `eq 5.4` is [5.35, 5.45).
    half_step: f64,
    /// `None`: any system; `Some("")`: `number||code`, the code or unit matched alone.
    pub system: Option<String>,
    pub code: Option<String>,
}

impl QuantityValue {
    pub fn parse(raw: &str) -> Result<QuantityValue, String> {
        let parts = super::value::split_unescaped(raw, '|');
        let (number_part, system, code) = match parts.as_slice() {
            [number] => (*number, None, None),
            [number, system, code] => {
                if code.is_empty() {
                    return Err(format!("'{raw}': a unit needs a code after the second '|'"));
                }
                (
                    *number,
                    Some(super::value::unescape(system)),
                    Some(super::value::unescape(code)),
                )
            }
            _ => {
                return Err(format!(
                    "'{raw}' is not a quantity: [prefix]number, or [prefix]number|system|code"
                ));
            }
        };
        let (comparison, number) = Comparison::ALL
            .iter()
            .find_map(|(p, c)| number_part.strip_prefix(p).map(|rest| (*c, rest)))
            .unwrap_or((Comparison::Eq, number_part));
        let well_formed = !number.is_empty()
            && number
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| well_formed && v.is_finite())
            .ok_or_else(|| {
                format!("'{number_part}' is not a number (with an optional prefix such as gt)")
            })?;
        Ok(QuantityValue {
            comparison,
            number: number.to_string(),
            value,
            half_step: half_step(number),
            system,
            code,
        })
    }

    pub fn to_query(&self) -> String {
        let prefix = match self.comparison {
            Comparison::Eq => "",
            other => other.as_str(),
        };
        match (&self.system, &self.code) {
            (Some(system), Some(code)) => format!(
                "{prefix}{}|{}|{}",
                self.number,
                super::value::escape(system),
                super::value::escape(code)
            ),
            _ => format!("{prefix}{}", self.number),
        }
    }

    /// Does a Quantity node (`value`, `system`, `code`, `unit`) meet this value?
    pub fn matches(&self, node: &Value) -> bool {
        let Some(actual) = node.get("value").and_then(number_of) else {
            return false;
        };
        self.unit_matches(node) && self.compares(actual)
    }

    fn unit_matches(&self, node: &Value) -> bool {
        let Some(code) = self.code.as_deref() else {
            return true;
        };
        let field = |name: &str| node.get(name).and_then(Value::as_str);
        match self.system.as_deref() {
            Some("") | None => field("code") == Some(code) || field("unit") == Some(code),
            Some(system) => field("system") == Some(system) && field("code") == Some(code),
        }
    }

    fn compares(&self, actual: f64) -> bool {
        let (low, high) = (self.value - self.half_step, self.value + self.half_step);
        match self.comparison {
            Comparison::Eq => actual >= low && actual < high,
            Comparison::Ne => !(actual >= low && actual < high),
            Comparison::Gt | Comparison::StartsAfter => actual > self.value,
            Comparison::Lt | Comparison::EndsBefore => actual < self.value,
            Comparison::Ge => actual >= self.value,
            Comparison::Le => actual <= self.value,
            Comparison::Approximately => {
                (actual - self.value).abs() <= (self.value.abs() * 0.1).max(self.half_step)
            }
        }
    }
}

/// A JSON number, also when written with arbitrary precision.
fn number_of(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| value.to_string().parse().ok())
}

/// Half a unit of the last digit given: 5.4 -> 0.05, 100 -> 0.5, 1e2 -> 50.
fn half_step(number: &str) -> f64 {
    let mantissa = number.split(['e', 'E']).next().unwrap_or(number);
    let exponent: i32 = number
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = mantissa
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len() as i32);
    0.5 * 10f64.powi(exponent - decimals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(raw: &str) -> QuantityValue {
        QuantityValue::parse(raw).unwrap()
    }

    #[test]
    fn equality_follows_the_precision_given() {
        let node = |v: f64| json!({"value": v, "system": "http://unitsofmeasure.org", "code": "mmol/L", "unit": "mmol/L"});
        assert!(q("5.4").matches(&node(5.36)));
        assert!(!q("5.4").matches(&node(5.46)));
        assert!(q("5").matches(&node(5.4)));
        assert!(!q("5.0").matches(&node(5.4)));
        assert!(q("ne5.4").matches(&node(5.5)));
        assert!(q("gt5.4").matches(&node(5.41)) && !q("gt5.4").matches(&node(5.4)));
        assert!(q("ge5.4").matches(&node(5.4)) && q("le5.4").matches(&node(5.4)));
        assert!(q("lt5").matches(&node(4.9)) && !q("lt5").matches(&node(5.0)));
        assert!(q("ap100").matches(&node(109.0)) && !q("ap100").matches(&node(111.0)));
    }

    #[test]
    fn units_are_matched_by_system_and_code_or_by_code_or_unit_alone() {
        let node = json!({"value": 7.1, "system": "http://unitsofmeasure.org", "code": "mmol/L", "unit": "mmol/l"});
        assert!(q("7.1|http://unitsofmeasure.org|mmol/L").matches(&node));
        assert!(!q("7.1|http://example.org|mmol/L").matches(&node));
        assert!(q("7.1||mmol/l").matches(&node));
        assert!(!q("7.1||mg").matches(&node));
        assert!(
            !q("7.1").matches(&json!({"system": "x"})),
            "no value, no match"
        );
    }

    #[test]
    fn what_is_not_a_quantity_is_refused_and_the_rest_round_trips() {
        for bad in [
            "",
            "gt",
            "abc",
            "5|x",
            "5|a|b|c",
            "5|http://x|",
            "NaN",
            "inf",
        ] {
            assert!(QuantityValue::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "5.4",
            "gt5.4",
            "le100|http://unitsofmeasure.org|mm[Hg]",
            "ap1e2",
        ] {
            assert_eq!(q(good).to_query(), good);
        }
    }
}
