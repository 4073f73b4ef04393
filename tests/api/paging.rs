//! Paging across partners: opaque sealed links, consistent pages, any instance.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Value, json};
use shcr_facade::sim::{Faults, PartnerData};

use crate::harness::*;

/// Walks every page of `first`: the ids shown, in order, and the pages.
async fn walk(h: &Harness, first: &str) -> (Vec<String>, Vec<Value>) {
    let (ids, pages, _) = walk_asking(h, first).await;
    (ids, pages)
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

/// A patient with a long record: 50 dated observations at each of three partners,
/// interleaved in time (some at day precision), 12 more at the GP on one instant,
/// 3 undated, and chlamydia results (a burst of 12 at the hospital, one at the GP)
/// that the policy withholds.
const LONG_RECORD: &str = "9990000182";
const LONG_RECORD_SHOWN: usize = 50 * 3 + 12 + 3;

fn long_record(partner: &str) -> PartnerData {
    let mut data = PartnerData::load(&examples().join("data").join(partner)).unwrap();
    let Some(k) = [GP, ACUTE, COMMUNITY].iter().position(|p| *p == partner) else {
        return data;
    };
    let local = format!("long-{k}");
    data.add(json!({"resourceType": "Patient", "id": local,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": LONG_RECORD}],
        "name": [{"family": "Long", "given": ["Record"]}], "birthDate": "1950-05-05"}));
    let observation = |id: String, date: Option<String>, code: (&str, &str)| {
        let mut r = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": code.0, "code": code.1}]},
            "subject": {"reference": format!("Patient/{local}")}});
        if let Some(date) = date {
            r["effectiveDateTime"] = json!(date);
        }
        r
    };
    let heart_rate = ("http://loinc.org", "8867-4");
    let chlamydia = ("http://snomed.info/sct", "312099009");
    let start = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap();
    // Held oldest first, as a partner that is not asked to sort would answer.
    for i in 0..50 {
        let at = start + chrono::Duration::hours(((i * 3 + k) * 17) as i64);
        let date = match i % 10 {
            0 => at.format("%Y-%m-%d").to_string(),
            _ => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        };
        data.add(observation(
            format!("long-{k}-{i:02}"),
            Some(date),
            heart_rate,
        ));
        // A burst of results the policy withholds at the hospital, minutes apart: a
        // window there reaches only minutes back, and the page must stop there.
        if partner == ACUTE && i == 25 {
            for j in 1..=12 {
                let date = (at - chrono::Duration::minutes(j)).format("%Y-%m-%dT%H:%M:%SZ");
                let id = format!("long-burst-{j:02}");
                data.add(observation(id, Some(date.to_string()), chlamydia));
            }
        }
    }
    if partner == GP {
        for i in 0..12 {
            let id = format!("long-tie-{i:02}");
            data.add(observation(
                id,
                Some("2021-02-01T09:00:00Z".into()),
                heart_rate,
            ));
        }
        let withheld = observation(
            "long-sensitive".into(),
            Some("2021-01-15".into()),
            chlamydia,
        );
        data.add(withheld);
    }
    for i in 0..[2, 1, 0][k] {
        data.add(observation(
            format!("long-{k}-undated-{i}"),
            None,
            heart_rate,
        ));
    }
    data
}

/// Requests each partner received for Observation since `before` (counts by partner).
fn observation_queries(h: &Harness, before: &[usize]) -> Vec<Vec<Vec<(String, String)>>> {
    [GP, ACUTE, COMMUNITY]
        .iter()
        .zip(before)
        .map(|(p, n)| partner_queries(h.sim(p), "/Observation")[*n..].to_vec())
        .collect()
}

fn asked_so_far(h: &Harness) -> Vec<usize> {
    [GP, ACUTE, COMMUNITY]
        .iter()
        .map(|p| partner_queries(h.sim(p), "/Observation").len())
        .collect()
}

fn has(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(k, _)| k == name)
}

/// The ids of the long record's observations in one page that holds them all, in
/// the order `sort` (`""` or `"&_sort=..."`) asks for.
async fn whole_record(h: &Harness, sort: &str) -> Vec<String> {
    ids(&h
        .ok(&format!(
            "Observation?patient={LONG_RECORD}&_count=200{sort}"
        ))
        .await)
}

/// Walks every page of `first`, recording what each page asked of each partner.
async fn walk_asking(
    h: &Harness,
    first: &str,
) -> (
    Vec<String>,
    Vec<Value>,
    Vec<Vec<Vec<Vec<(String, String)>>>>,
) {
    let mut pages = Vec::new();
    let mut asked = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next {
        let before = asked_so_far(h);
        let page = h.ok(&url).await;
        asked.push(observation_queries(h, &before));
        next = link(&page, "next");
        pages.push(page);
        assert!(pages.len() < 60, "paging does not end");
    }
    (pages.iter().flat_map(ids).collect(), pages, asked)
}

#[tokio::test]
async fn later_pages_ask_sorting_partners_only_for_what_follows_the_page() {
    let h = Harness::with_data(long_record, |_| {}).await;
    let whole = whole_record(&h, "").await;
    assert_eq!(whole.len(), LONG_RECORD_SHOWN);
    assert!(!whole.iter().any(|id| id.ends_with("long-sensitive")));

    let first = format!("Observation?patient={LONG_RECORD}&_count=10");
    let (paged, pages, asked) = walk_asking(&h, &first).await;
    assert_eq!(
        paged, whole,
        "the same entries in the same order, once each"
    );
    for page in &pages {
        assert_eq!(
            page["total"], LONG_RECORD_SHOWN,
            "every page carries the count"
        );
    }
    // The first page gathers every partner whole, asking it to sort.
    for queries in &asked[0] {
        assert!(queries.iter().all(|q| has(q, "_sort") && !has(q, "date")));
    }
    // A later page asks each partner once, for 11 records from the page key on,
    // except where a partner's dated records run out or all sit at the key's date.
    let windowed = asked[1..]
        .iter()
        .filter(|page| {
            page.iter().all(|queries| {
                queries.len() == 1
                    && has(&queries[0], "date")
                    && queries[0].contains(&("_count".into(), "11".into()))
                    && queries[0].contains(&("_sort".into(), "-date".into()))
            })
        })
        .count();
    assert!(
        windowed >= pages.len() - 6,
        "{windowed} of {} later pages asked each partner once: {asked:?}",
        pages.len() - 1
    );
    for page in &asked[1..] {
        for queries in page {
            assert!(queries.len() <= 2, "at most a window and a whole gather");
        }
    }
    // Page 10 costs no more partner requests than page 1.
    let count = |page: &Vec<Vec<Vec<(String, String)>>>| page.iter().map(Vec::len).sum::<usize>();
    assert!(count(&asked[9]) <= count(&asked[0]), "{asked:?}");

    // Walking back from the last page gives every entry again, in order. (A page
    // going forward may stop short at a partner's window; one going back is whole,
    // so the pages themselves need not line up.)
    let mut page = pages.last().unwrap().clone();
    let mut backward = ids(&page);
    while let Some(previous) = link(&page, "previous") {
        page = h.ok(&previous).await;
        backward.splice(0..0, ids(&page));
        assert!(
            backward.len() <= whole.len(),
            "walking back repeats entries"
        );
    }
    assert_eq!(backward, whole);

    // Oldest first, too.
    let oldest_first = format!("Observation?patient={LONG_RECORD}&_count=10&_sort=date");
    let (paged, _, asked) = walk_asking(&h, &oldest_first).await;
    let whole_oldest = whole_record(&h, "&_sort=date").await;
    assert_eq!(paged, whole_oldest);
    assert!(asked[5].iter().all(|q| q.len() == 1 && has(&q[0], "date")));
    h.stop().await;
}

/// A partner whose whole answer fitted in a page is asked for the whole again on a
/// later page, once, rather than for a window that would run out and need a second
/// request: a slow partner with few records costs a page one round trip, not two.
#[tokio::test]
async fn a_partner_whose_answer_fits_a_page_is_asked_once_per_later_page() {
    let h = Harness::with_data(long_record, |_| {}).await;
    let whole = whole_record(&h, "").await;
    // At 60 a page, the community trust's 50 records fit; the GP's 65 and the
    // hospital's 63 (withheld ones included) do not.
    let first = format!("Observation?patient={LONG_RECORD}&_count=60");
    let (paged, pages, asked) = walk_asking(&h, &first).await;
    assert_eq!(paged, whole);
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let community = 2;
    for (n, page) in asked.iter().enumerate().skip(1) {
        let queries = &page[community];
        assert_eq!(queries.len(), 1, "page {}: {queries:?}", n + 1);
        assert!(
            has(&queries[0], "_sort") && !has(&queries[0], "date"),
            "page {}: the whole answer, sorted: {queries:?}",
            n + 1
        );
    }
    // The larger partners are still asked only for what follows the page key.
    assert!(asked[1][..community].iter().all(|q| has(&q[0], "date")));
    h.stop().await;
}

#[tokio::test]
async fn partners_that_do_not_sort_or_filter_are_gathered_whole() {
    let h = Harness::with_data(long_record, |_| {}).await;
    let whole = whole_record(&h, "").await;
    // The GP ignores _sort, the hospital the date filter, the community trust
    // refuses _sort outright.
    h.sim(GP).set_faults(Faults {
        ignore_sort: true,
        ..Faults::default()
    });
    h.sim(ACUTE).set_faults(Faults {
        ignore_criteria: true,
        ..Faults::default()
    });
    h.sim(COMMUNITY).set_faults(Faults {
        refuse_sort: true,
        ..Faults::default()
    });
    let first = format!("Observation?patient={LONG_RECORD}&_count=10");
    let (paged, pages, asked) = walk_asking(&h, &first).await;
    assert_eq!(
        paged, whole,
        "the same entries in the same order, once each"
    );
    for page in &pages {
        assert_eq!(page["total"], LONG_RECORD_SHOWN);
        assert!(
            warnings(page)
                .iter()
                .all(|w| !w.contains("holds more records")),
            "no partner is reported incomplete"
        );
    }
    let [gp, acute, community] = [0, 1, 2];
    // Seen not to sort on the first page: never asked for a window.
    assert!(
        asked
            .iter()
            .all(|page| page[gp].iter().all(|q| !has(q, "date")))
    );
    // Ignores the filter: its first window holds by chance (the GP's newest records
    // are newer than all of its own), the second shows the filter ignored, and it is
    // gathered whole from then on.
    let acute_windows = asked
        .iter()
        .flat_map(|page| &page[acute])
        .filter(|q| has(q, "date"))
        .count();
    assert_eq!(acute_windows, 2, "{asked:?}");
    // Refused _sort: asked again without it, every page.
    for page in &asked {
        assert_eq!(page[community].len(), 2);
        assert!(!has(&page[community][1], "_sort"));
    }
    h.stop().await;
}
