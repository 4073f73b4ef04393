//! A legacy partner's mapping file: the requests that fetch its records and the Liquid
//! templates that turn each record into one FHIR R4 resource.
//!
//! Loaded and checked at start and by `shcr-facade check`. Every problem found is
//! reported with its file and line, all at once, so an operator fixes them in one go.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;

use super::template::{Globals, RecordTemplate, Unmapped, UrlTemplate};
use crate::fhir::ResourceType;

/// One thing wrong with a mapping file or a template it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    /// Sent with every request (never a secret: those go in `[partners.credentials]`).
    #[serde(default)]
    headers: BTreeMap<Spanned<String>, Spanned<String>>,
    /// A path `shcr-facade check` asks to see that the system is up.
    health: Option<Spanned<String>>,
    patient: Option<Spanned<PatientFile>>,
    #[serde(default)]
    resources: Vec<Spanned<ResourceFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    path: Spanned<String>,
    #[serde(default)]
    query: BTreeMap<String, Spanned<String>>,
    /// JSON pointer to the records in the answer ("" for the whole answer).
    #[serde(default)]
    records: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientFile {
    lookup: RequestFile,
    read: Option<RequestFile>,
    template: Spanned<String>,
    sample: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceFile {
    #[serde(rename = "type")]
    resource_type: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    query: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    records: Option<Spanned<String>>,
    template: Spanned<String>,
    sample: Option<Spanned<String>>,
}

/// An HTTP GET to make: a path under the partner's base URL and query parameters,
/// each a Liquid template, and where the records sit in the answer.
#[derive(Debug)]
pub struct Request {
    pub path: UrlTemplate,
    pub query: Vec<(String, UrlTemplate)>,
    /// A JSON pointer.
    pub records: String,
}

#[derive(Debug)]
pub struct PatientMapping {
    /// Finds the partner's records of an NHS number (`nhs_number`).
    pub lookup: Request,
    /// Fetches one record by the partner's id (`patient.id`), if the system can.
    pub read: Option<Request>,
    pub template: RecordTemplate,
}

#[derive(Debug)]
pub struct ResourceMapping {
    pub resource_type: ResourceType,
    pub request: Request,
    pub template: RecordTemplate,
}

/// A legacy partner's whole mapping, ready to use.
#[derive(Debug)]
pub struct Mapping {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub health: Option<String>,
    pub patient: PatientMapping,
    pub resources: Vec<ResourceMapping>,
}

impl Mapping {
    pub fn for_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &ResourceMapping> {
        self.resources
            .iter()
            .filter(move |r| r.resource_type == resource_type)
    }
}

/// The variables each kind of request may use.
const LOOKUP_VARIABLES: &str = "nhs_number";
const READ_VARIABLES: &str = "patient.id";
const RESOURCE_VARIABLES: &str = "nhs_number, patient.id, date_from, date_to";

/// Reads the mapping file at `path` for a partner serving `serves`, with every
/// template it names.
pub fn load(path: &Path, serves: &[ResourceType]) -> Result<Mapping, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot be read: {e}"),
        }]
    })?;
    let file: MappingFile = toml::from_str(&text).map_err(|e| {
        vec![Problem {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(&text, s.start)),
            message: e.message().to_string(),
        }]
    })?;
    let mut loader = Loader {
        path,
        dir: path.parent().unwrap_or(Path::new(".")),
        text: &text,
        problems: Vec::new(),
    };
    let mapping = loader.mapping(file, serves);
    match (mapping, loader.problems.is_empty()) {
        (Some(mapping), true) => Ok(mapping),
        _ => Err(loader.problems),
    }
}

struct Loader<'a> {
    path: &'a Path,
    /// Templates and samples are named relative to the mapping file.
    dir: &'a Path,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Loader<'_> {
    fn problem(&mut self, at: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.path.to_path_buf(),
            line: Some(line_of(self.text, at)),
            message: message.into(),
        });
    }

    fn mapping(&mut self, file: MappingFile, serves: &[ResourceType]) -> Option<Mapping> {
        let headers = self.headers(&file.headers);
        let health = file.health.and_then(|h| {
            let at = h.span().start;
            self.relative_path(h.into_inner(), at)
        });
        let patient = match file.patient {
            Some(p) => self.patient(p),
            None => {
                self.problems.push(Problem {
                    file: self.path.to_path_buf(),
                    line: None,
                    message: "[patient] is missing: the facade finds a patient's records by NHS number through it".into(),
                });
                None
            }
        };
        let mut resources = Vec::new();
        let mut mapped = Vec::new();
        for entry in file.resources {
            let at = entry.span().start;
            let entry = entry.into_inner();
            let name = entry.resource_type.get_ref().clone();
            let resource_type = match name.parse::<ResourceType>() {
                Ok(t) if t.is_clinical() && serves.contains(&t) => {
                    mapped.push(t);
                    Some(t)
                }
                Ok(t) if t.is_patient() => {
                    self.problem(at, "Patient records are mapped in [patient]");
                    None
                }
                Ok(t) => {
                    self.problem(
                        at,
                        format!("{t} is not in the partner's resource_types in the configuration"),
                    );
                    None
                }
                Err(_) => {
                    self.problem(
                        at,
                        format!("'{name}' is not a resource type the facade serves"),
                    );
                    None
                }
            };
            let request = self.request(entry.path, entry.query, entry.records, RESOURCE_VARIABLES);
            let template = self.template(entry.template, entry.sample, resource_type);
            if let (Some(resource_type), Some(request), Some(template)) =
                (resource_type, request, template)
            {
                resources.push(ResourceMapping {
                    resource_type,
                    request,
                    template,
                });
            }
        }
        for t in serves.iter().filter(|t| t.is_clinical()) {
            if !mapped.contains(t) {
                self.problems.push(Problem {
                    file: self.path.to_path_buf(),
                    line: None,
                    message: format!(
                        "the configuration says this partner serves {t}, but no [[resources]] entry maps it"
                    ),
                });
            }
        }
        Some(Mapping {
            headers,
            health,
            patient: patient?,
            resources,
        })
    }

    fn headers(
        &mut self,
        headers: &BTreeMap<Spanned<String>, Spanned<String>>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        for (name, value) in headers {
            let at = name.span().start;
            let parsed = (
                HeaderName::from_bytes(name.get_ref().as_bytes()),
                HeaderValue::from_str(value.get_ref()),
            );
            match parsed {
                (Ok(n), _) if n == reqwest::header::AUTHORIZATION => self.problem(
                    at,
                    "Authorization is not written here: put the partner's secret in [partners.credentials]",
                ),
                (Ok(n), Ok(v)) => out.push((n, v)),
                (Err(_), _) => {
                    self.problem(at, format!("'{}' is not an HTTP header name", name.get_ref()))
                }
                (_, Err(_)) => self.problem(
                    at,
                    format!("the value of {} is not a valid header value", name.get_ref()),
                ),
            }
        }
        out
    }

    fn patient(&mut self, patient: Spanned<PatientFile>) -> Option<PatientMapping> {
        let patient = patient.into_inner();
        let lookup = self.request(
            patient.lookup.path,
            patient.lookup.query,
            patient.lookup.records,
            LOOKUP_VARIABLES,
        );
        let read = patient
            .read
            .map(|r| self.request(r.path, r.query, r.records, READ_VARIABLES));
        let template = self.template(
            patient.template,
            patient.sample,
            Some(ResourceType::patient()),
        );
        Some(PatientMapping {
            lookup: lookup?,
            read: match read {
                Some(r) => Some(r?),
                None => None,
            },
            template: template?,
        })
    }

    fn request(
        &mut self,
        path: Spanned<String>,
        query: BTreeMap<String, Spanned<String>>,
        records: Option<Spanned<String>>,
        variables: &str,
    ) -> Option<Request> {
        let sample = sample_variables(variables);
        let path_at = path.span().start;
        let path = self.url_template(path, &sample, variables);
        if let Some(rendered) = path.as_ref().and_then(|p| p.render(&sample).ok()) {
            self.relative_path(rendered, path_at)?;
        }
        let mut pairs = Vec::new();
        for (name, value) in query {
            pairs.push((name, self.url_template(value, &sample, variables)));
        }
        let records = match records {
            None => String::new(),
            Some(r) if r.get_ref().is_empty() || r.get_ref().starts_with('/') => r.into_inner(),
            Some(r) => {
                self.problem(
                    r.span().start,
                    format!(
                        "records '{}' is not a JSON pointer (\"\" or \"/clients\", \"/data/items\")",
                        r.get_ref()
                    ),
                );
                return None;
            }
        };
        let query = pairs
            .into_iter()
            .map(|(name, t)| t.map(|t| (name, t)))
            .collect::<Option<Vec<_>>>()?;
        Some(Request {
            path: path?,
            query,
            records,
        })
    }

    /// A path must stay under the partner's base URL; parameters go in `query`.
    fn relative_path(&mut self, path: String, at: usize) -> Option<String> {
        let bad = path.starts_with('/')
            || path.contains("://")
            || path.contains('?')
            || path.contains('#')
            || path.split('/').any(|s| s == "..");
        if bad {
            self.problem(
                at,
                format!("path '{path}' must be relative to base_url, with parameters in query"),
            );
            return None;
        }
        Some(path)
    }

    /// Parses a URL template and renders it once with sample values, so an unknown
    /// variable is found now rather than on a clinician's request.
    fn url_template(
        &mut self,
        source: Spanned<String>,
        sample: &Globals,
        variables: &str,
    ) -> Option<UrlTemplate> {
        let at = source.span().start;
        let template = match UrlTemplate::parse(source.get_ref()) {
            Ok(t) => t,
            Err(e) => {
                self.problem(at, format!("'{}': {e}", source.get_ref()));
                return None;
            }
        };
        if let Err(e) = template.render(sample) {
            self.problem(
                at,
                format!(
                    "'{}': {e} (this request may use {variables})",
                    source.get_ref()
                ),
            );
            return None;
        }
        Some(template)
    }

    /// Loads a record template; renders its sample record, if one is named, and
    /// checks that the result is valid R4 of the right type.
    fn template(
        &mut self,
        name: Spanned<String>,
        sample: Option<Spanned<String>>,
        resource_type: Option<ResourceType>,
    ) -> Option<RecordTemplate> {
        let file = self.dir.join(name.get_ref());
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                self.problem(
                    name.span().start,
                    format!("template {}: {e}", file.display()),
                );
                return None;
            }
        };
        let template = match RecordTemplate::parse(&file, &text) {
            Ok(t) => t,
            Err((line, message)) => {
                self.problems.push(Problem {
                    file,
                    line,
                    message,
                });
                return None;
            }
        };
        if let (Some(sample), Some(resource_type)) = (sample, resource_type) {
            self.try_sample(&template, sample, resource_type);
        }
        Some(template)
    }

    fn try_sample(
        &mut self,
        template: &RecordTemplate,
        sample: Spanned<String>,
        resource_type: ResourceType,
    ) {
        let at = sample.span().start;
        let file = self.dir.join(sample.get_ref());
        let record: Value = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(record) => record,
            Err(e) => {
                self.problem(at, format!("sample {}: {e}", file.display()));
                return;
            }
        };
        let patient = json!({"id": "sample-patient", "nhs_number": "9000000009"});
        let partner = json!({"id": "sample", "name": "Sample", "ods_code": "X00"});
        match template.render(&record, Some(&patient), &partner) {
            Ok(resource) if resource["resourceType"] == resource_type.as_str() => {}
            Ok(resource) => self.problems.push(Problem {
                file: template.file.clone(),
                line: None,
                message: format!(
                    "with sample {} it makes a {}, not a {resource_type}",
                    file.display(),
                    resource["resourceType"]
                ),
            }),
            Err(e) => {
                // The sample is the operator's own, so its output may be shown.
                let shown = match &e {
                    Unmapped::NotJson { line, .. } => template
                        .render_text(&record, Some(&patient), &partner)
                        .ok()
                        .and_then(|t| t.lines().nth(line - 1).map(|l| format!(": `{}`", l.trim())))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                self.problems.push(Problem {
                    file: template.file.clone(),
                    line: None,
                    message: format!("with sample {}: {e}{shown}", file.display()),
                })
            }
        }
    }
}

/// Values standing in for each variable a request may use, for checking at load.
fn sample_variables(variables: &str) -> Globals {
    let mut globals = serde_json::Map::new();
    for name in variables.split(", ") {
        match name.split_once('.') {
            Some((object, field)) => {
                globals.insert(object.into(), json!({ field: "sample" }));
            }
            None => {
                globals.insert(name.into(), json!("2024-01-01"));
            }
        }
    }
    Globals::new(Value::Object(globals))
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
