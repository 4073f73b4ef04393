//! Bad input gets a precise OperationOutcome and the right status; nothing leaks.

use crate::harness::*;

#[tokio::test]
async fn bad_parameter_values_are_400_value() {
    let h = Harness::start().await;
    for (query, expression) in [
        ("date=yesterday", "date"),
        ("date=sa2024", "date"),
        ("_count=-3", "_count"),
        ("_count=many", "_count"),
        ("code=a|b|c", "code"),
        ("_elements=valueQuantity.value", "_elements"),
        ("_lastUpdated=2024-13", "_lastUpdated"),
    ] {
        let reply = h.get(&format!("Observation?patient={ALICE}&{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        let issue = outcome_issue(&reply);
        assert_eq!(issue["code"], "value", "{query}");
        assert_eq!(issue["expression"][0], expression, "{query}");
        assert!(!issue["details"]["text"].as_str().unwrap().is_empty());
    }
    h.stop().await;
}

#[tokio::test]
async fn wrong_paths_methods_bodies_and_media_types() {
    let h = Harness::start().await;
    let unknown = h.get("nothing/here/at/all").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(outcome_issue(&unknown)["code"], "not-found");
    let root = h
        .client
        .get(h.base.replace("/fhir", "/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 404);

    for (method, path, allow) in [
        ("POST", "Observation", "GET"),
        ("DELETE", "Observation/x", "GET"),
        ("PUT", "metadata", "GET"),
        ("GET", "Observation/_search", "POST"),
    ] {
        let reply = h
            .client
            .request(method.parse().unwrap(), format!("{}/{path}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405, "{method} {path}");
        assert_eq!(reply.headers()["allow"], allow);
        let body: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
        assert_eq!(body["issue"][0]["code"], "not-supported");
    }

    let json_body = h
        .post_form(
            "Observation/_search",
            "{\"patient\":\"x\"}",
            "application/json",
        )
        .await;
    assert_eq!(json_body.status, 415);
    assert_eq!(outcome_issue(&json_body)["code"], "not-supported");

    let huge = format!("patient={ALICE}&code={}", "x".repeat(70 * 1024));
    let too_large = h
        .post_form(
            "Observation/_search",
            &huge,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(outcome_issue(&too_large)["code"], "too-long");
    h.stop().await;
}

#[tokio::test]
async fn errors_carry_no_internals() {
    let h = Harness::start().await;
    let replies = [
        h.get("Observation?patient=123").await,
        h.get("Observation/riverside-gp.nope").await,
        h.get("Observation?_cursor=AAAA").await,
        h.get("Foo").await,
    ];
    for reply in replies {
        assert!(reply.status.is_client_error());
        for internal in ["127.0.0.1", "panicked", "src/", "reqwest", "serde", "P1001"] {
            assert!(
                !reply.text.contains(internal),
                "{internal} in {}",
                reply.text
            );
        }
    }
    h.stop().await;
}
