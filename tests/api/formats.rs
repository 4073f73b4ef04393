//! JSON and XML, chosen by Accept or _format; both round-trip.

use crate::harness::*;

#[tokio::test]
async fn xml_by_accept_or_format_round_trips_to_the_json_answer() {
    let h = Harness::start().await;
    let path = format!("Encounter/{ACUTE}.enc-alice-admission");
    let json = h.ok(&path).await;
    for (query, accept) in [
        ("", "application/fhir+xml"),
        ("?_format=xml", "application/json"),
        ("?_format=application/fhir%2Bxml", "*/*"),
    ] {
        let reply = h
            .get_with(&format!("{path}{query}"), &[("accept", accept)])
            .await;
        assert_eq!(reply.status, 200, "{query} {accept}");
        assert_eq!(reply.content_type, "application/fhir+xml; charset=utf-8");
        assert!(reply.text.starts_with("<?xml"), "{}", reply.text);
        let back = fhir_codec::read_xml(reply.text.as_bytes()).expect("facade XML is R4");
        assert_eq!(back, json, "{query} {accept}");
    }
    h.stop().await;
}

#[tokio::test]
async fn searchsets_in_xml_hold_the_same_entries() {
    let h = Harness::start().await;
    let path = format!("Observation?patient={ALICE}&_count=100");
    let json = h.ok(&path).await;
    let reply = h
        .get_with(&path, &[("accept", "application/fhir+xml")])
        .await;
    let xml = fhir_codec::read_xml(reply.text.as_bytes()).expect("searchset XML is R4");
    assert_eq!(ids(&xml), ids(&json));
    assert_eq!(
        entries(&xml),
        entries(&json),
        "decimals, codes and references survive XML"
    );
    assert_eq!(issues(&xml).len(), issues(&json).len());
    // Page links keep the format asked for.
    let paged = h
        .get(&format!("Observation?patient={ALICE}&_count=5&_format=xml"))
        .await;
    let paged = fhir_codec::read_xml(paged.text.as_bytes()).unwrap();
    assert!(link(&paged, "next").unwrap().ends_with("&_format=xml"));
    h.stop().await;
}

#[tokio::test]
async fn json_for_every_json_like_accept_and_pretty_on_request() {
    let h = Harness::start().await;
    for accept in [
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/json+fhir",
        "text/html;q=0.5, application/fhir+json",
    ] {
        let reply = h.get_with("metadata", &[("accept", accept)]).await;
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(
            reply.content_type, "application/fhir+json; charset=utf-8",
            "{accept}"
        );
        reply.fhir();
    }
    let compact = h.get("metadata").await;
    let pretty = h.get("metadata?_pretty=true").await;
    assert!(!compact.text.contains('\n') && pretty.text.contains("\n  "));
    h.stop().await;
}

#[tokio::test]
async fn unsupported_formats_are_406_with_an_outcome() {
    let h = Harness::start().await;
    for (path, accept) in [
        ("metadata", "text/html"),
        ("metadata?_format=turtle", "*/*"),
        (&*format!("Observation?patient={ALICE}"), "application/pdf"),
    ] {
        let reply = h.get_with(path, &[("accept", accept)]).await;
        assert_eq!(reply.status, 406, "{path} {accept}");
        assert_eq!(outcome_issue(&reply)["code"], "not-supported");
    }
    h.stop().await;
}
