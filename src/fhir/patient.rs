//! One Patient per NHS number, merged from every partner that knows the patient.
//!
//! Demographics come from the authoritative partner when it knows the patient, and
//! from the others (in configuration order) for whatever it lacks. Identifiers and
//! origin tags come from all of them.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::NhsNumber;

/// Elements that describe the partner's own record keeping, not the person.
const PARTNER_ONLY: [&str; 4] = ["id", "meta", "text", "link"];

/// Merges Patients already in facade form, most authoritative first.
pub fn merge(nhs: &NhsNumber, sources: Vec<Value>) -> Option<Value> {
    let mut iter = sources.into_iter();
    let mut merged = iter.next()?;
    let mut tags = take_tags(&mut merged);
    let mut security = take_security(&mut merged);
    let mut last_updated = merged["meta"]["lastUpdated"].as_str().map(str::to_string);
    if let Some(object) = merged.as_object_mut() {
        for key in PARTNER_ONLY {
            object.shift_remove(key);
        }
    }
    for mut other in iter {
        tags.extend(take_tags(&mut other));
        security.extend(take_security(&mut other));
        if let Some(lu) = other["meta"]["lastUpdated"].as_str()
            && last_updated.as_deref().is_none_or(|current| lu > current)
        {
            last_updated = Some(lu.to_string());
        }
        let (Some(target), Some(source)) = (merged.as_object_mut(), other.as_object_mut()) else {
            continue;
        };
        for (key, value) in std::mem::take(source) {
            if PARTNER_ONLY.contains(&key.as_str()) {
                continue;
            }
            if key == "identifier" {
                let identifiers = target.entry("identifier").or_insert_with(|| json!([]));
                if let (Some(list), Some(new)) = (identifiers.as_array_mut(), value.as_array()) {
                    for identifier in new {
                        let same = list.iter_mut().find(|i| {
                            i["system"] == identifier["system"] && i["value"] == identifier["value"]
                        });
                        match same {
                            // The same NHS number: a verification status only one
                            // partner gives is kept.
                            Some(known) => {
                                if known.get("extension").is_none()
                                    && let Some(extension) = identifier.get("extension")
                                {
                                    known["extension"] = extension.clone();
                                }
                            }
                            None => list.push(identifier.clone()),
                        }
                    }
                }
            } else {
                target.entry(key).or_insert(value);
            }
        }
    }
    tags.dedup_by(|a, b| a["code"] == b["code"] && a["system"] == b["system"]);
    let mut meta = json!({ "tag": tags });
    // Every partner's security labels stay with the person they describe.
    let mut labels: Vec<Value> = Vec::new();
    for label in security {
        if !labels
            .iter()
            .any(|l| l["code"] == label["code"] && l["system"] == label["system"])
        {
            labels.push(label);
        }
    }
    if !labels.is_empty() {
        meta["security"] = json!(labels);
    }
    if let Some(lu) = last_updated {
        meta["lastUpdated"] = json!(lu);
    }
    let mut patient = json!({ "resourceType": "Patient", "id": nhs.as_str(), "meta": meta });
    if let (Some(out), Some(fields)) = (patient.as_object_mut(), merged.as_object_mut()) {
        for (key, value) in std::mem::take(fields) {
            out.entry(key).or_insert(value);
        }
    }
    if let Some(practitioners) = patient.get_mut("generalPractitioner") {
        type_references(practitioners);
    }
    Some(patient)
}

/// Gives each literal reference its `type` (R4 Reference.type) where it lacks one:
/// a client need not parse `Organization/...` to know a GP practice from a GP.
fn type_references(references: &mut Value) {
    for reference in references.as_array_mut().into_iter().flatten() {
        let named = reference["reference"]
            .as_str()
            .and_then(|r| r.rsplit('/').nth(1))
            .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
            .map(str::to_string);
        if let (Some(t), true) = (named, reference.get("type").is_none()) {
            reference["type"] = json!(t);
        }
    }
}

/// The youngest the patient can be on `today`, in whole years, from a birth date that
/// may be partial (`2013`, `2013-12`): age rules must hold however late in that
/// period the patient was born. None without a readable birth date.
pub fn youngest_age(patient: &Value, today: NaiveDate) -> Option<u32> {
    let born = patient["birthDate"].as_str()?;
    let range = super::date::parse_range(born)?;
    // The last day the date covers (its range is half-open).
    let latest = chrono::DateTime::from_timestamp_millis(range.end - 1)?.date_naive();
    today.years_since(latest)
}

fn take_security(resource: &mut Value) -> Vec<Value> {
    resource["meta"]["security"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

fn take_tags(resource: &mut Value) -> Vec<Value> {
    resource["meta"]["tag"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_birth_dates_give_the_youngest_possible_age() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let age = |born: &str| youngest_age(&json!({"birthDate": born}), today);
        assert_eq!(age("2013"), Some(12), "born as late as 2013-12-31");
        assert_eq!(age("2013-12"), Some(12));
        assert_eq!(age("2013-11"), Some(13));
        assert_eq!(age("2013-12-01"), Some(13));
        assert_eq!(age("2013-12-02"), Some(12));
        assert_eq!(age("2027"), None, "not born yet");
        assert_eq!(youngest_age(&json!({}), today), None);
        assert_eq!(age("sometime"), None);
    }

    #[test]
    fn authoritative_demographics_with_fallback_and_all_identifiers() {
        let nhs = NhsNumber::parse("9000000009").unwrap();
        let gp = json!({"resourceType": "Patient", "id": "9000000009", "meta": {"tag": [{"code": "A81001"}], "lastUpdated": "2024-01-01T00:00:00Z"},
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "name": [{"family": "Jones"}], "generalPractitioner": [{"display": "Riverside"}]});
        let acute = json!({"resourceType": "Patient", "id": "9000000009", "meta": {"tag": [{"code": "RX1"}], "lastUpdated": "2025-01-01T00:00:00Z"},
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}, {"system": "urn:mrn", "value": "M1"}],
            "name": [{"family": "Jonas"}], "telecom": [{"system": "phone", "value": "0"}], "link": []});
        let merged = merge(&nhs, vec![gp, acute]).unwrap();
        assert_eq!(merged["id"], "9000000009");
        assert_eq!(merged["name"][0]["family"], "Jones");
        assert_eq!(merged["telecom"][0]["value"], "0");
        assert_eq!(merged["identifier"].as_array().unwrap().len(), 2);
        assert_eq!(merged["meta"]["tag"].as_array().unwrap().len(), 2);
        assert_eq!(merged["meta"]["lastUpdated"], "2025-01-01T00:00:00Z");
        assert!(merged.get("link").is_none());
        assert_eq!(merged["generalPractitioner"][0]["display"], "Riverside");
        assert!(merged["meta"].get("security").is_none());
    }

    #[test]
    fn verification_status_security_labels_and_typed_practitioners_survive() {
        let nhs = NhsNumber::parse("9000000009").unwrap();
        let verified = json!({"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
            "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": "01"}]}});
        let gp = json!({"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "generalPractitioner": [{"reference": "Organization/gp.A81001"}, {"reference": "Practitioner/gp.G1", "type": "Practitioner"}]});
        let acute = json!({"resourceType": "Patient", "id": "p2", "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009", "extension": [verified]}]});
        let merged = merge(&nhs, vec![gp, acute]).unwrap();
        assert_eq!(merged["identifier"][0]["extension"][0], verified);
        assert_eq!(merged["meta"]["security"][0]["code"], "R");
        assert_eq!(merged["generalPractitioner"][0]["type"], "Organization");
        assert_eq!(merged["generalPractitioner"][1]["type"], "Practitioner");
        let alone = merge(&nhs, vec![json!({"resourceType": "Patient", "id": "p3"})]).unwrap();
        assert!(alone.get("generalPractitioner").is_none());
    }
}
