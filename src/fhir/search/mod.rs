//! The typed search model: a query string becomes a `SearchRequest`, which is matched
//! against resources and rebuilt, never pasted, into each partner's query.

pub mod matcher;
pub mod quantity;
pub mod registry;
pub mod value;

use std::collections::BTreeSet;

use crate::fhir::outcome::Issue;
use crate::fhir::{NhsNumber, ResourceType};
use quantity::QuantityValue;
use registry::{ParamDef, ParamKind, Registry};
use value::{ReferenceValue, SearchValue, TokenValue, split_unescaped};

pub use crate::fhir::nhs_number::NHS_NUMBER_SYSTEM;

/// Parameters consumed by the HTTP layer (format) or by paging; never criteria.
const TRANSPORT_PARAMS: [&str; 2] = ["_format", "_pretty"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Exact,
    Contains,
    /// Tokens: the text of a CodeableConcept or a Coding's display, as a string.
    Text,
    /// Tokens: none of the values (and records without the element).
    Not,
    /// Whether the element is absent (`true`) or present (`false`).
    Missing,
}

impl Modifier {
    /// The R4 modifier code (SearchParameter.modifier).
    fn parse(s: &str) -> Option<Modifier> {
        match s {
            "exact" => Some(Modifier::Exact),
            "contains" => Some(Modifier::Contains),
            "text" => Some(Modifier::Text),
            "not" => Some(Modifier::Not),
            "missing" => Some(Modifier::Missing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Modifier::Exact => "exact",
            Modifier::Contains => "contains",
            Modifier::Text => "text",
            Modifier::Not => "not",
            Modifier::Missing => "missing",
        }
    }

    /// May a partner be asked with it? Only where a partner that drops the modifier
    /// but keeps the value still answers a superset (`:exact` read as a prefix
    /// match); `:not=active` read as `=active`, or `:contains` as a prefix, would
    /// lose records the facade then could not restore.
    fn partners_may_take(self) -> bool {
        self == Modifier::Exact
    }
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Summary {
    #[default]
    False,
    True,
    Text,
    Data,
    Count,
}

impl Summary {
    pub fn parse(raw: &str) -> Result<Summary, SearchError> {
        match raw {
            "false" => Ok(Summary::False),
            "true" => Ok(Summary::True),
            "text" => Ok(Summary::Text),
            "data" => Ok(Summary::Data),
            "count" => Ok(Summary::Count),
            other => Err(SearchError::InvalidValue {
                param: "_summary".into(),
                reason: format!("_summary must be true, text, data, count or false, not '{other}'"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Summary::False => "false",
            Summary::True => "true",
            Summary::Text => "text",
            Summary::Data => "data",
            Summary::Count => "count",
        }
    }
}

/// `_total`: whether a searchset says how many matches there are. The facade
/// counts what is released, so an estimate is the accurate count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Total {
    None,
    Estimate,
    #[default]
    Accurate,
}

impl Total {
    fn parse(raw: &str) -> Result<Total, SearchError> {
        match raw {
            "none" => Ok(Total::None),
            "estimate" => Ok(Total::Estimate),
            "accurate" => Ok(Total::Accurate),
            other => Err(SearchError::InvalidValue {
                param: "_total".into(),
                reason: format!("_total must be none, estimate or accurate, not '{other}'"),
            }),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Total::None => "none",
            Total::Estimate => "estimate",
            Total::Accurate => "accurate",
        }
    }
}

/// One `name[:modifier]=v1,v2` parameter: the values are ORed; criteria are ANDed.
#[derive(Debug, Clone)]
pub struct Criterion {
    pub param: &'static ParamDef,
    pub modifier: Option<Modifier>,
    pub values: Vec<SearchValue>,
}

impl Criterion {
    /// `(name, value)` as it appears in a query string.
    pub fn to_query_pair(&self) -> (String, String) {
        self.query_pair_named(&self.param.code)
    }

    /// The same, under the name partners know the parameter by.
    pub fn to_partner_pair(&self) -> (String, String) {
        self.query_pair_named(&self.param.partner_code)
    }

    /// What a partner is asked for this criterion: None where only the facade can
    /// apply it safely (see `Modifier::partners_may_take`); the facade applies every
    /// criterion to what partners return in any case.
    pub fn partner_pair(&self) -> Option<(String, String)> {
        self.modifier
            .is_none_or(Modifier::partners_may_take)
            .then(|| self.to_partner_pair())
    }

    fn query_pair_named(&self, code: &str) -> (String, String) {
        let name = match self.modifier {
            Some(m) => format!("{code}:{}", m.as_str()),
            None => code.to_string(),
        };
        let values: Vec<String> = self.values.iter().map(SearchValue::to_query).collect();
        (name, values.join(","))
    }
}

/// `_include=Source:param[:Target]` or `_revinclude=...`, with `:iterate` to apply it
/// once more to what was included.
#[derive(Debug, Clone)]
pub struct Include {
    /// The type whose references are followed.
    pub source: ResourceType,
    /// Its reference parameter.
    pub param: &'static ParamDef,
    /// Only references to this type, when named.
    pub target: Option<ResourceType>,
    pub iterate: bool,
}

impl Include {
    /// `(name, value)` as in a query string.
    pub fn to_query_pair(&self, reverse: bool) -> (String, String) {
        let name = match (reverse, self.iterate) {
            (false, false) => "_include",
            (false, true) => "_include:iterate",
            (true, false) => "_revinclude",
            (true, true) => "_revinclude:iterate",
        };
        let mut value = format!("{}:{}", self.source, self.param.code);
        if let Some(target) = self.target {
            value.push(':');
            value.push_str(target.as_str());
        }
        (name.to_string(), value)
    }

    /// May this include follow a reference to `target`?
    pub fn reaches(&self, target: ResourceType) -> bool {
        self.target.is_none_or(|t| t == target)
            && self.param.targets.iter().any(|t| t == target.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// The clinical date (the `date` parameter's elements).
    Date,
    LastUpdated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOrder {
    pub field: SortField,
    pub descending: bool,
}

impl SortOrder {
    pub fn to_query(self) -> String {
        let name = match self.field {
            SortField::Date => "date",
            SortField::LastUpdated => "_lastUpdated",
        };
        if self.descending {
            format!("-{name}")
        } else {
            name.to_string()
        }
    }
}

/// Page-size limits from configuration.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub default_count: usize,
    pub max_count: usize,
}

/// A parsed search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub resource_type: ResourceType,
    pub criteria: Vec<Criterion>,
    /// The one patient a clinical search is about.
    pub patient: Option<NhsNumber>,
    pub count: usize,
    pub sort: SortOrder,
    pub summary: Summary,
    pub total: Total,
    pub elements: Option<Vec<String>>,
    /// Records the matches point at, and records pointing at them, to add.
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    /// Parameters that were ignored, and other notes for the client.
    pub notes: Vec<Issue>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("{reason}")]
    InvalidValue { param: String, reason: String },
    /// A parameter or modifier the facade does not support (unless the client asked
    /// for `Prefer: handling=lenient`).
    #[error("{reason}")]
    Unsupported { param: String, reason: String },
    #[error("a search for {0} needs a patient: add patient=Patient/{{NHS number}}")]
    MissingPatient(ResourceType),
    #[error("a search is about one patient; patient and subject name different patients")]
    SeveralPatients,
}

impl SearchError {
    pub fn param(&self) -> Option<&str> {
        match self {
            SearchError::InvalidValue { param, .. } | SearchError::Unsupported { param, .. } => {
                Some(param)
            }
            SearchError::MissingPatient(_) => Some("patient"),
            SearchError::SeveralPatients => Some("subject"),
        }
    }
}

impl SearchRequest {
    /// Parses query pairs for `resource_type`. A parameter or modifier the facade
    /// cannot honour is an error when `strict` (the default), else a warning note and
    /// left out of what the self link shows (`Prefer: handling=lenient`).
    pub fn parse(
        resource_type: ResourceType,
        pairs: &[(String, String)],
        strict: bool,
        limits: PageLimits,
    ) -> Result<SearchRequest, SearchError> {
        let mut request = SearchRequest {
            resource_type,
            criteria: Vec::new(),
            patient: None,
            count: limits.default_count,
            sort: SortOrder {
                field: SortField::Date,
                descending: true,
            },
            summary: Summary::False,
            total: Total::Accurate,
            elements: None,
            includes: Vec::new(),
            revincludes: Vec::new(),
            notes: Vec::new(),
        };
        if resource_type.is_patient() {
            request.sort = SortOrder {
                field: SortField::LastUpdated,
                descending: true,
            };
        }
        for (name, raw) in pairs {
            if raw.is_empty() || TRANSPORT_PARAMS.contains(&name.as_str()) {
                continue; // FHIR: a parameter with an empty value is ignored.
            }
            match name.as_str() {
                "_count" => request.count = parse_count(raw, limits, &mut request)?,
                "_sort" => {
                    request.sort = parse_sort(resource_type, raw, strict, &mut request.notes)?
                }
                "_summary" => request.summary = Summary::parse(raw)?,
                "_total" => request.total = Total::parse(raw)?,
                "_elements" => request.elements = Some(parse_elements(raw)?),
                "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                    let reverse = name.starts_with("_revinclude");
                    let iterate = name.ends_with(":iterate");
                    match parse_include(resource_type, raw, reverse, iterate, &request) {
                        Ok(include) if reverse => request.revincludes.push(include),
                        Ok(include) => request.includes.push(include),
                        Err(reason) => unsupported(
                            strict,
                            &mut request.notes,
                            name,
                            format!("{name}={raw} is not supported: {reason}"),
                        )?,
                    }
                }
                _ => {
                    if let Some(criterion) =
                        parse_criterion(resource_type, name, raw, strict, &mut request.notes)?
                    {
                        request.criteria.push(criterion);
                    }
                }
            }
        }
        if request.elements.is_some() && !matches!(request.summary, Summary::False) {
            return Err(SearchError::InvalidValue {
                param: "_elements".into(),
                reason: "_elements and _summary cannot be used together".into(),
            });
        }
        if resource_type.is_clinical() {
            request.patient = Some(request.the_patient()?);
        }
        Ok(request)
    }

    /// The single patient named by `patient`/`subject`; 400 if none or several.
    fn the_patient(&mut self) -> Result<NhsNumber, SearchError> {
        let mut patients = BTreeSet::new();
        for criterion in self.criteria.iter_mut().filter(|c| c.param.names_patient()) {
            for value in criterion.values.iter_mut() {
                let SearchValue::Reference(reference) = value else {
                    continue;
                };
                if reference
                    .resource_type
                    .as_deref()
                    .is_some_and(|t| t != "Patient")
                {
                    return Err(SearchError::InvalidValue {
                        param: criterion.param.code.clone(),
                        reason: format!(
                            "{}: only a Patient can be the subject of a search",
                            criterion.param.code
                        ),
                    });
                }
                let nhs =
                    NhsNumber::parse(&reference.id).map_err(|e| SearchError::InvalidValue {
                        param: criterion.param.code.clone(),
                        reason: format!(
                            "{}: the patient's id is their NHS number, and '{}' is not one ({e})",
                            criterion.param.code, reference.id
                        ),
                    })?;
                reference.resource_type = Some("Patient".to_string());
                patients.insert(nhs);
            }
        }
        match patients.len() {
            0 => Err(SearchError::MissingPatient(self.resource_type)),
            1 => Ok(patients.into_iter().next().expect("one patient")),
            _ => Err(SearchError::SeveralPatients),
        }
    }

    /// NHS numbers a Patient search names through `_id` or an NHS-number `identifier`,
    /// or None when it searches by demographics only.
    pub fn named_patients(&self) -> Option<Vec<NhsNumber>> {
        let mut named: Option<BTreeSet<NhsNumber>> = None;
        for criterion in &self.criteria {
            let ids: Vec<&str> = match criterion.param.code.as_str() {
                "_id" => criterion
                    .values
                    .iter()
                    .filter_map(|v| token_code(v, None))
                    .collect(),
                "identifier" => criterion
                    .values
                    .iter()
                    .filter_map(|v| token_code(v, Some(NHS_NUMBER_SYSTEM)))
                    .collect(),
                _ => continue,
            };
            if ids.len() != criterion.values.len() {
                continue; // some alternative is not an NHS number: cannot narrow by it
            }
            let set: BTreeSet<NhsNumber> = ids
                .iter()
                .filter_map(|id| NhsNumber::parse(id).ok())
                .collect();
            named = Some(match named {
                Some(prev) => prev.intersection(&set).cloned().collect(),
                None => set,
            });
        }
        named.map(|s| s.into_iter().collect())
    }

    /// Every type the includes may bring.
    pub fn included_types(&self) -> Vec<ResourceType> {
        let mut types: Vec<ResourceType> = self
            .includes
            .iter()
            .flat_map(|i| i.param.targets.iter().filter_map(|t| t.parse().ok()))
            .chain(self.revincludes.iter().map(|i| i.source))
            .collect();
        types.sort();
        types.dedup();
        types
    }

    /// The query as the facade understood it: criteria then controls, canonical order.
    pub fn to_query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> =
            self.criteria.iter().map(Criterion::to_query_pair).collect();
        pairs.push(("_count".into(), self.count.to_string()));
        pairs.push(("_sort".into(), self.sort.to_query()));
        if self.summary != Summary::False {
            pairs.push(("_summary".into(), self.summary.as_str().into()));
        }
        if self.total != Total::Accurate {
            pairs.push(("_total".into(), self.total.as_str().into()));
        }
        if let Some(elements) = &self.elements {
            pairs.push(("_elements".into(), elements.join(",")));
        }
        pairs.extend(self.includes.iter().map(|i| i.to_query_pair(false)));
        pairs.extend(self.revincludes.iter().map(|i| i.to_query_pair(true)));
        pairs
    }
}

fn token_code<'a>(value: &'a SearchValue, system: Option<&str>) -> Option<&'a str> {
    match value {
        SearchValue::Token(TokenValue {
            system: s,
            code: Some(code),
        }) if s.as_deref() == system || system.is_none() && s.is_none() => Some(code),
        _ => None,
    }
}

fn unsupported(
    strict: bool,
    notes: &mut Vec<Issue>,
    param: &str,
    reason: String,
) -> Result<(), SearchError> {
    if strict {
        return Err(SearchError::Unsupported {
            param: param.to_string(),
            reason,
        });
    }
    notes.push(
        Issue::warning("not-supported", format!("{reason}; it was ignored")).with_expression(param),
    );
    Ok(())
}

fn parse_count(
    raw: &str,
    limits: PageLimits,
    request: &mut SearchRequest,
) -> Result<usize, SearchError> {
    let count: usize = raw.parse().map_err(|_| SearchError::InvalidValue {
        param: "_count".into(),
        reason: format!("_count must be a whole number, not '{raw}'"),
    })?;
    if count == 0 {
        request.summary = Summary::Count;
        return Ok(limits.default_count);
    }
    if count > limits.max_count {
        request.notes.push(
            Issue::information(
                "informational",
                format!(
                    "_count={count} is above the maximum page size; pages hold {}",
                    limits.max_count
                ),
            )
            .with_expression("_count"),
        );
        return Ok(limits.max_count);
    }
    Ok(count)
}

fn parse_sort(
    resource_type: ResourceType,
    raw: &str,
    strict: bool,
    notes: &mut Vec<Issue>,
) -> Result<SortOrder, SearchError> {
    let default = if resource_type.is_clinical() {
        SortOrder {
            field: SortField::Date,
            descending: true,
        }
    } else {
        SortOrder {
            field: SortField::LastUpdated,
            descending: true,
        }
    };
    let keys: Vec<&str> = raw.split(',').collect();
    let (descending, name) = match keys[0].strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, keys[0]),
    };
    let field = match name {
        "date" if resource_type.is_clinical() => SortField::Date,
        "_lastUpdated" => SortField::LastUpdated,
        _ => {
            unsupported(
                strict,
                notes,
                "_sort",
                format!(
                    "sorting {resource_type} by '{name}' is not supported (date, -date, _lastUpdated, -_lastUpdated)"
                ),
            )?;
            return Ok(default);
        }
    };
    if keys.len() > 1 {
        unsupported(
            strict,
            notes,
            "_sort",
            "only the first _sort key is used".to_string(),
        )?;
    }
    Ok(SortOrder { field, descending })
}

/// `Source:param[:Target]`. An `_include`'s source is the searched type (or, with
/// `:iterate`, a type an earlier include brings); a `_revinclude`'s param must be
/// able to point at the searched type.
fn parse_include(
    searched: ResourceType,
    raw: &str,
    reverse: bool,
    iterate: bool,
    request: &SearchRequest,
) -> Result<Include, String> {
    let mut parts = raw.split(':');
    let (Some(source), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "'{raw}' is not Type:parameter (wildcards are not supported)"
        ));
    };
    let source: ResourceType = source
        .parse()
        .map_err(|_| format!("'{source}' is not a served resource type"))?;
    let param = Registry::get()
        .lookup(source, code)
        .filter(|p| p.kind == ParamKind::Reference)
        .ok_or_else(|| format!("{source} has no reference parameter '{code}'"))?;
    let target = match parts.next() {
        None => None,
        Some(t) => Some(
            t.parse::<ResourceType>()
                .map_err(|_| format!("'{t}' is not a served resource type"))?,
        ),
    };
    if parts.next().is_some() {
        return Err(format!("'{raw}' has too many parts"));
    }
    let include = Include {
        source,
        param,
        target,
        iterate,
    };
    let brought: Vec<ResourceType> = request
        .includes
        .iter()
        .flat_map(|i| i.param.targets.iter().filter_map(|t| t.parse().ok()))
        .collect();
    let fits = match reverse {
        false => source == searched || (iterate && brought.contains(&source)),
        true => {
            include.reaches(searched) || (iterate && brought.iter().any(|t| include.reaches(*t)))
        }
    };
    if !fits {
        return Err(format!("it does not apply to a search of {searched}"));
    }
    if target.is_some_and(|t| !param.targets.iter().any(|p| p == t.as_str())) {
        return Err(format!(
            "{source}:{code} does not point at {}",
            target.map_or("", |t| t.as_str())
        ));
    }
    if include.param.names_patient() && !reverse {
        return Err("the patient is not included (read Patient/{NHS number})".into());
    }
    Ok(include)
}

/// `_summary` and `_elements` on a read (`GET [type]/[id]`): how much of the record
/// to show. Any other parameter but the format's is refused when `strict`.
pub fn read_controls(
    pairs: &[(String, String)],
    strict: bool,
) -> Result<(Summary, Option<Vec<String>>), SearchError> {
    let mut summary = Summary::False;
    let mut elements = None;
    for (name, raw) in pairs {
        match name.as_str() {
            _ if raw.is_empty() || TRANSPORT_PARAMS.contains(&name.as_str()) => {}
            "_summary" => summary = Summary::parse(raw)?,
            "_elements" => elements = Some(parse_elements(raw)?),
            other => unsupported(
                strict,
                &mut Vec::new(),
                other,
                format!("a read takes _summary, _elements and _format, not '{other}'"),
            )?,
        }
    }
    match (summary, &elements) {
        (Summary::Count, _) => Err(SearchError::InvalidValue {
            param: "_summary".into(),
            reason: "_summary=count is for searches; a read returns one record".into(),
        }),
        (Summary::False, _) | (_, None) => Ok((summary, elements)),
        _ => Err(SearchError::InvalidValue {
            param: "_elements".into(),
            reason: "_elements and _summary cannot be used together".into(),
        }),
    }
}

fn parse_elements(raw: &str) -> Result<Vec<String>, SearchError> {
    raw.split(',')
        .map(str::trim)
        .map(|e| {
            let valid = e.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && e.chars().all(|c| c.is_ascii_alphanumeric());
            if valid {
                Ok(e.to_string())
            } else {
                Err(SearchError::InvalidValue {
                    param: "_elements".into(),
                    reason: format!("_elements: '{e}' is not an element name"),
                })
            }
        })
        .collect()
}

/// Parses one `name[:modifier]=values` pair: None (with a note) if it is not a
/// supported parameter, unless `strict`.
pub fn parse_criterion(
    resource_type: ResourceType,
    name: &str,
    raw: &str,
    strict: bool,
    notes: &mut Vec<Issue>,
) -> Result<Option<Criterion>, SearchError> {
    if let Some((head, chained)) = name.split_once('.') {
        return parse_chain(resource_type, name, head, chained, raw, strict, notes);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    };
    let Some(param) = Registry::get().lookup(resource_type, code) else {
        unsupported(
            strict,
            notes,
            name,
            format!("{resource_type} has no search parameter '{code}'"),
        )?;
        return Ok(None);
    };
    let invalid = |reason: String| SearchError::InvalidValue {
        param: code.to_string(),
        reason: format!("{code}: {reason}"),
    };
    // `subject:Patient=9000000009`: the type a reference must point at.
    let reference_type = modifier.filter(|m| {
        param.kind == ParamKind::Reference
            && param.modifiers.iter().any(|pm| pm == "type")
            && param.targets.iter().any(|t| t == m)
    });
    let modifier = match modifier {
        None => None,
        Some(_) if reference_type.is_some() => None,
        Some(m) => match Modifier::parse(m).filter(|_| param.modifiers.iter().any(|pm| pm == m)) {
            Some(m) => Some(m),
            None => {
                unsupported(
                    strict,
                    notes,
                    name,
                    format!("modifier ':{m}' is not supported on '{code}'"),
                )?;
                return Ok(None);
            }
        },
    };
    let values = split_unescaped(raw, ',')
        .into_iter()
        .map(|v| match (modifier, param.kind) {
            (Some(Modifier::Missing), _) => match v {
                "true" => Ok(SearchValue::Missing(true)),
                "false" => Ok(SearchValue::Missing(false)),
                other => Err(format!(":missing is true or false, not '{other}'")),
            },
            (Some(Modifier::Text), _) => Ok(SearchValue::String(value::unescape(v))),
            (_, ParamKind::Token) => TokenValue::parse(v).map(SearchValue::Token),
            (_, ParamKind::Date) => crate::fhir::date::DateValue::parse(v).map(SearchValue::Date),
            (_, ParamKind::String) => Ok(SearchValue::String(value::unescape(v))),
            (_, ParamKind::Quantity) => QuantityValue::parse(v).map(SearchValue::Quantity),
            (_, ParamKind::Reference) => {
                let mut reference = ReferenceValue::parse(v)?;
                if let Some(wanted) = reference_type {
                    match reference.resource_type.as_deref() {
                        Some(given) if given != wanted => {
                            return Err(format!("'{v}' is not a reference to a {wanted}"));
                        }
                        _ => reference.resource_type = Some(wanted.to_string()),
                    }
                }
                Ok(SearchValue::Reference(reference))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    Ok(Some(Criterion {
        param,
        modifier,
        values,
    }))
}

/// A chained parameter. The one chain the facade can answer is the patient's NHS
/// number (`patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009`, also
/// `subject:Patient.identifier`), which names the same patient as
/// `patient=Patient/9000000009`; any other chain would need the facade to search the
/// chained type first, and is refused.
fn parse_chain(
    resource_type: ResourceType,
    name: &str,
    head: &str,
    chained: &str,
    raw: &str,
    strict: bool,
    notes: &mut Vec<Issue>,
) -> Result<Option<Criterion>, SearchError> {
    let (code, target) = head.split_once(':').unwrap_or((head, "Patient"));
    let param = Registry::get()
        .lookup(resource_type, code)
        .filter(|p| p.names_patient() && target == "Patient" && chained == "identifier");
    let Some(param) = param else {
        unsupported(
            strict,
            notes,
            name,
            format!(
                "the chain '{name}' is not supported on {resource_type}; only patient.identifier with an NHS number"
            ),
        )?;
        return Ok(None);
    };
    let values = split_unescaped(raw, ',')
        .into_iter()
        .map(|v| {
            let token = TokenValue::parse(v).ok();
            let nhs = token
                .as_ref()
                .filter(|t| t.system.as_deref() == Some(NHS_NUMBER_SYSTEM))
                .and_then(|t| t.code.clone());
            nhs.map(|id| {
                SearchValue::Reference(ReferenceValue {
                    resource_type: Some("Patient".into()),
                    id,
                })
            })
            .ok_or_else(|| SearchError::InvalidValue {
                param: name.to_string(),
                reason: format!("{name}: '{v}' is not {NHS_NUMBER_SYSTEM}|{{NHS number}}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Criterion {
        param,
        modifier: None,
        values,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PageLimits = PageLimits {
        default_count: 50,
        max_count: 200,
    };

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn parse(t: ResourceType, q: &str, strict: bool) -> Result<SearchRequest, SearchError> {
        SearchRequest::parse(t, &pairs(q), strict, LIMITS)
    }

    #[test]
    fn clinical_search_needs_one_valid_patient() {
        let r = parse(
            ResourceType::named("Observation"),
            "patient=Patient/9000000009&code=http://loinc.org|8480-6",
            false,
        )
        .unwrap();
        assert_eq!(r.patient.unwrap().as_str(), "9000000009");
        let r = parse(
            ResourceType::named("AllergyIntolerance"),
            "subject=9000000009",
            false,
        )
        .unwrap();
        assert_eq!(r.patient.unwrap().as_str(), "9000000009");
        assert!(matches!(
            parse(ResourceType::named("Observation"), "code=1234", false),
            Err(SearchError::MissingPatient(_))
        ));
        assert!(matches!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000008",
                false
            ),
            Err(SearchError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse(
                ResourceType::named("Observation"),
                "patient=Group/9000000009",
                false
            ),
            Err(SearchError::InvalidValue { .. })
        ));
        assert_eq!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&subject=9000000017",
                false
            )
            .unwrap_err(),
            SearchError::SeveralPatients
        );
    }

    #[test]
    fn unknown_parameters_warn_or_fail_under_strict() {
        let r = parse(
            ResourceType::named("Observation"),
            "patient=9000000009&colour=blue&_include=Observation:subject",
            false,
        )
        .unwrap();
        assert_eq!(r.notes.len(), 2);
        assert!(r.notes.iter().all(|n| n.code == "not-supported"));
        assert!(matches!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&colour=blue",
                true
            ),
            Err(SearchError::Unsupported { .. })
        ));
        assert!(matches!(
            parse(ResourceType::patient(), "family:phonetic=smith", true),
            Err(SearchError::Unsupported { .. })
        ));
    }

    #[test]
    fn controls_are_parsed_and_bounded() {
        let r = parse(
            ResourceType::named("Observation"),
            "patient=9000000009&_count=500&_sort=date&_elements=code,status",
            false,
        )
        .unwrap();
        assert_eq!(r.count, 200);
        assert_eq!(
            r.sort,
            SortOrder {
                field: SortField::Date,
                descending: false
            }
        );
        assert_eq!(r.elements.unwrap(), vec!["code", "status"]);
        assert!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&_count=0",
                false
            )
            .unwrap()
            .summary
                == Summary::Count
        );
        assert!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&_count=-1",
                false
            )
            .is_err()
        );
        assert!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&date=yesterday",
                false
            )
            .is_err()
        );
        assert!(
            parse(
                ResourceType::named("Observation"),
                "patient=9000000009&_elements=a.b",
                false
            )
            .is_err()
        );
    }

    #[test]
    fn named_patients_come_from_id_or_nhs_identifier() {
        let r = parse(
            ResourceType::patient(),
            "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009",
            false,
        )
        .unwrap();
        assert_eq!(r.named_patients().unwrap().len(), 1);
        let r = parse(ResourceType::patient(), "_id=9000000009,9000000017", false).unwrap();
        assert_eq!(r.named_patients().unwrap().len(), 2);
        let r = parse(ResourceType::patient(), "family=Jones", false).unwrap();
        assert!(r.named_patients().is_none());
        let r = parse(ResourceType::patient(), "_id=notanhs", false).unwrap();
        assert_eq!(r.named_patients().unwrap().len(), 0);
    }

    #[test]
    fn query_pairs_round_trip() {
        let r = parse(
            ResourceType::named("Observation"),
            "patient=9000000009&date=ge2024-01&date=lt2025&code=a|b,c&_count=10",
            false,
        )
        .unwrap();
        let again = SearchRequest::parse(
            ResourceType::named("Observation"),
            &r.to_query_pairs(),
            true,
            LIMITS,
        )
        .unwrap();
        assert_eq!(again.to_query_pairs(), r.to_query_pairs());
        assert_eq!(again.criteria.len(), 4);
    }
}
