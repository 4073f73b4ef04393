//! The CapabilityStatement says what is really implemented.

use crate::harness::*;

#[tokio::test]
async fn capability_statement_is_r4_and_matches_what_works() {
    let h = Harness::start().await;
    let cs = h.ok("metadata").await;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["implementation"]["url"], h.base);
    let formats: Vec<&str> = cs["format"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        formats.contains(&"application/fhir+json") && formats.contains(&"application/fhir+xml")
    );
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    // Includes each type honours, as data from the search parameters' targets.
    let of = |t: &str, key: &str| -> Vec<String> {
        resources
            .iter()
            .find(|r| r["type"] == t)
            .and_then(|r| r[key].as_array())
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    for (t, include) in [
        ("MedicationRequest", "MedicationRequest:medication"),
        ("MedicationStatement", "MedicationStatement:medication"),
        ("DiagnosticReport", "DiagnosticReport:result"),
        ("Condition", "Condition:encounter"),
        ("Encounter", "Encounter:participant"),
        ("Patient", "Patient:general-practitioner"),
    ] {
        assert!(
            of(t, "searchInclude").contains(&include.to_string()),
            "{t} {include}"
        );
    }
    assert!(of("Encounter", "searchRevInclude").contains(&"Observation:encounter".to_string()));
    assert!(
        of("Medication", "searchRevInclude").contains(&"MedicationRequest:medication".to_string())
    );
    // Every served type, then the register and the trail.
    assert_eq!(
        resources.len(),
        shcr_facade::fhir::ResourceType::all().len() + 2
    );
    let consent = resources
        .iter()
        .find(|r| r["type"] == "Consent")
        .expect("the objection register");
    let consent_interactions: Vec<&str> = consent["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        consent_interactions,
        [
            "read",
            "vread",
            "update",
            "create",
            "search-type",
            "history-instance"
        ]
    );
    // The audit trail: every advertised parameter accepted, for a privacy officer.
    let audit = resources
        .iter()
        .find(|r| r["type"] == "AuditEvent")
        .expect("the audit trail");
    let officer = h.token(shcr_facade::sim::issuer::Profile::PrivacyOfficer);
    for param in audit["searchParam"].as_array().unwrap() {
        let name = param["name"].as_str().unwrap();
        let value = match name {
            "date" => "ge2020",
            "patient" => ALICE,
            "outcome" => "0",
            _ => "x",
        };
        let reply = h
            .get_as(&format!("AuditEvent?{name}={value}"), &officer)
            .await;
        assert_eq!(reply.status, 200, "AuditEvent?{name}: {}", reply.text);
    }
    for resource in resources
        .iter()
        .filter(|r| r["type"] != "Consent" && r["type"] != "AuditEvent")
    {
        let t = resource["type"].as_str().unwrap();
        let interactions: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(interactions, ["read", "search-type"], "{t}");
        // Every advertised search parameter is accepted, strict as searches are.
        for param in resource["searchParam"].as_array().unwrap() {
            let name = param["name"].as_str().unwrap();
            let value = match param["type"].as_str().unwrap() {
                "date" => "ge2020",
                "reference" => ALICE,
                "quantity" => "gt5.4|http://unitsofmeasure.org|mmol/L",
                _ => "x",
            };
            let clinical = t
                .parse::<shcr_facade::fhir::ResourceType>()
                .unwrap()
                .is_clinical();
            let patient = if !clinical || name == "patient" || name == "subject" {
                String::new()
            } else {
                format!("&patient={ALICE}")
            };
            let reply = h
                .get_with(
                    &format!("{t}?{name}={value}{patient}"),
                    &[("prefer", "handling=strict")],
                )
                .await;
            assert_eq!(reply.status, 200, "{t}?{name}: {}", reply.text);
        }
    }
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    assert_eq!(patient["operation"][0]["name"], "everything");
    // The XML form is R4 too.
    let xml = h
        .get_with("metadata", &[("accept", "application/fhir+xml")])
        .await;
    assert_eq!(fhir_codec::read_xml(xml.text.as_bytes()).unwrap(), cs);
    h.stop().await;
}

#[test]
fn profile_artefacts_are_r4_and_codes_are_strings_of_digits() {
    let dir = examples().parent().unwrap().join("fhir-profiles");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            if value["resourceType"] != "CapabilityStatement" {
                fhir_codec::validate_r4_json(&value)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}

#[test]
fn synthetic_data_is_r4_with_valid_nhs_numbers() {
    let mut resources = 0;
    for partner in [GP, ACUTE, COMMUNITY] {
        for entry in std::fs::read_dir(examples().join("data").join(partner)).unwrap() {
            let path = entry.unwrap().path();
            let bundle: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            fhir_codec::validate_r4_json(&bundle)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for e in bundle["entry"].as_array().unwrap() {
                resources += 1;
                let r = &e["resource"];
                if r["resourceType"] == "Patient" {
                    let nhs = r["identifier"][0]["value"].as_str().unwrap();
                    assert!(
                        nhs.starts_with("999") && shcr_facade::fhir::NhsNumber::parse(nhs).is_ok(),
                        "{nhs}"
                    );
                }
            }
        }
    }
    assert_eq!(resources, 173);
}
