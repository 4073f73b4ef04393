//! Paging across partners: opaque sealed links, consistent pages, any instance.

use std::collections::HashSet;

use base64::Engine;
use serde_json::Value;

use crate::harness::*;

async fn walk(h: &Harness, first: &str) -> (Vec<String>, Vec<Value>) {
    let mut pages = vec![h.ok(first).await];
    while let Some(next) = link(pages.last().unwrap(), "next") {
        pages.push(h.ok(&next).await);
        assert!(pages.len() < 50, "paging does not end");
    }
    (pages.iter().flat_map(ids).collect(), pages)
}

#[tokio::test]
async fn pages_hold_every_entry_once_in_order_and_walk_back() {
    let h = Harness::start().await;
    let all = ids(&h
        .ok(&format!("Observation?patient={ALICE}&_count=100"))
        .await);
    let (paged, pages) = walk(&h, &format!("Observation?patient={ALICE}&_count=5")).await;
    assert_eq!(pages.len(), 6);
    assert_eq!(
        paged, all,
        "same entries, same order, no duplicates, no gaps"
    );
    assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 27);
    for page in &pages {
        assert_eq!(page["total"], 27);
    }
    assert!(link(&pages[0], "previous").is_none());
    // Walking back from the last page gives the earlier pages again.
    let mut page = pages.last().unwrap().clone();
    for expected in pages.iter().rev().skip(1) {
        page = h.ok(&link(&page, "previous").expect("previous link")).await;
        assert_eq!(ids(&page), ids(expected));
    }
    h.stop().await;
}

#[tokio::test]
async fn page_links_reveal_no_partner_or_identifier() {
    let h = Harness::start().await;
    let first = h.ok(&format!("Observation?patient={ALICE}&_count=5")).await;
    let next = link(&first, "next").unwrap();
    let token = next.split("_cursor=").nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .expect("token is base64url");
    let raw = String::from_utf8_lossy(&raw);
    let query = next.split_once('?').unwrap().1;
    for secret in [
        ALICE,
        GP,
        ACUTE,
        COMMUNITY,
        "P1001",
        "127.0.0.1",
        "obs-alice",
        "patient",
    ] {
        assert!(
            !raw.contains(secret) && !query.contains(secret),
            "{secret} visible in {next}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn tampered_foreign_or_extended_tokens_are_refused() {
    let h = Harness::start().await;
    let first = h.ok(&format!("Observation?patient={ALICE}&_count=5")).await;
    let next = link(&first, "next").unwrap();
    let token = next.split("_cursor=").nth(1).unwrap().to_string();
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    for path in [
        format!("Observation?_cursor={tampered}"),
        "Observation?_cursor=not-a-token".to_string(),
        format!("Encounter?_cursor={token}"),
        format!("Observation?_cursor={token}&patient=9990000026"),
    ] {
        let reply = h.get(&path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(outcome_issue(&reply)["code"], "invalid", "{path}");
    }
    h.stop().await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let h = Harness::with(|c| c.paging.token_ttl_s = 1).await;
    let first = h.ok(&format!("Observation?patient={ALICE}&_count=5")).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = h.get(&link(&first, "next").unwrap()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(outcome_issue(&reply)["code"], "expired");
    h.stop().await;
}

#[tokio::test]
async fn a_page_link_works_on_another_instance_sharing_the_key() {
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let h = Harness::with(|c| c.paging.key = Some(key.clone())).await;
    let first = h.ok(&format!("Observation?patient={ALICE}&_count=5")).await;
    let next = link(&first, "next").unwrap();
    // A second facade over the same partners, as behind a load balancer.
    let (other_base, other) = start_facade(h.config.clone());
    let on_other = next.replace(&h.base, &other_base);
    let reply = h.get(&on_other).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let on_first = h.ok(&next).await;
    assert_eq!(ids(&reply.fhir()), ids(&on_first));
    other.stop(false).await;
    h.stop().await;
}

#[tokio::test]
async fn everything_pages_through_all_types_patient_first() {
    let h = Harness::start().await;
    let (paged, pages) = walk(&h, &format!("Patient/{ALICE}/$everything?_count=10")).await;
    assert_eq!(pages[0]["total"], 49);
    assert_eq!(
        paged.len(),
        49,
        "48 distinct clinical records and the Patient"
    );
    assert_eq!(paged[0], ALICE);
    let types: HashSet<String> = pages
        .iter()
        .flat_map(entries)
        .map(|r| r["resourceType"].as_str().unwrap().to_string())
        .collect();
    // The Patient and every clinical type Alice's partners hold of her.
    assert_eq!(types.len(), 12, "{types:?}");
    let only = h
        .ok(&format!(
            "Patient/{ALICE}/$everything?_type=MedicationStatement,AllergyIntolerance"
        ))
        .await;
    assert_eq!(only["total"], 6);
    let unknown = h.get("Patient/9990000107/$everything").await;
    assert_eq!(unknown.status, 404);
    h.stop().await;
}

#[tokio::test]
async fn partner_paging_is_followed_up_to_the_cap() {
    let h = Harness::with(|c| c.search.partner_page_size = 5).await;
    let bundle = h
        .ok(&format!("Observation?patient={ALICE}&_count=100"))
        .await;
    assert_eq!(
        bundle["total"], 27,
        "the GP's 13 observations arrive over 3 pages"
    );
    assert_eq!(partner_queries(h.sim(GP), "/Observation").len(), 3);
    h.stop().await;

    let h = Harness::with(|c| {
        c.search.partner_page_size = 5;
        c.search.max_partner_pages = 2;
    })
    .await;
    let bundle = h
        .ok(&format!("Observation?patient={ALICE}&_count=100"))
        .await;
    assert_eq!(
        bundle["total"],
        10 + 8 + 6,
        "the GP's third page is not fetched"
    );
    assert_eq!(
        partner_status(&bundle, "A81001").as_deref(),
        Some("incomplete")
    );
    assert!(
        warnings(&bundle)
            .iter()
            .any(|w| w.starts_with("Riverside Medical Practice (A81001): holds more records"))
    );
    h.stop().await;
}
