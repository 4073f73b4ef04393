//! Two regional records joined: another shcr-facade configured as a FHIR partner. The
//! first returns the second's records with objection and exclusions holding end to
//! end; records joined both ways (or to themselves) refuse the loop, never follow it.

use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use serde_json::json;
use shcr_facade::config::{Config, CredentialsConfig, CredentialsKind, PartnerConfig, PartnerKind};
use shcr_facade::fhir::ResourceType;
use shcr_facade::sim::issuer::{DevIssuer, Profile};
use shcr_facade::sim::{Faults, PartnerData, SimPartner};

use crate::harness::*;

const SEARCH: &str = "Observation?patient=9990000018&_count=100";

/// One regional record: a facade with its own simulated partners (or none), bound
/// before it starts so that others can be pointed at it.
struct Region {
    base: String,
    listener: Option<TcpListener>,
    config: Config,
    sims: Vec<SimPartner>,
    handle: Option<ServerHandle>,
    _database: tempfile::TempDir,
}

impl Region {
    /// `with_partners`: whether it has the three simulated partners of its own.
    fn new(id: &str, issuer: &DevIssuer, with_partners: bool) -> Region {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/fhir", listener.local_addr().unwrap());
        let mut config = test_config();
        // Each region's own FHIR partners are enough to show the join.
        config.partners.retain(|p| p.kind == PartnerKind::Fhir);
        let (database, url) = sqlite_url();
        config.database.url = url;
        config.server.deployment_id = Some(id.into());
        config.search.deadline_ms = 3000;
        trust(&mut config, issuer);
        let mut sims = Vec::new();
        if with_partners {
            for partner in &mut config.partners {
                let data = PartnerData::load(&examples().join("data").join(&partner.id)).unwrap();
                let sim = SimPartner::start(data, Faults::default()).unwrap();
                partner.base_url = sim.base_url.clone();
                sims.push(sim);
            }
        } else {
            config.partners.clear();
        }
        Region {
            base,
            listener: Some(listener),
            config,
            sims,
            handle: None,
            _database: database,
        }
    }

    /// Adds `other` as a FHIR partner, reached with a backend token read from a file.
    fn join(&mut self, other: &Region, id: &str, ods_code: &str, token_file: &std::path::Path) {
        self.config.partners.push(PartnerConfig {
            id: id.into(),
            name: format!("Shared Care Record {id}"),
            ods_code: ods_code.into(),
            kind: PartnerKind::Fhir,
            base_url: other.base.clone(),
            resource_types: vec![
                ResourceType::named("MedicationStatement"),
                ResourceType::named("AllergyIntolerance"),
                ResourceType::named("Observation"),
                ResourceType::named("Encounter"),
                ResourceType::named("CarePlan"),
            ],
            timeout_ms: 2500,
            mapping: None,
            gp_connect: None,
            credentials: CredentialsConfig {
                kind: CredentialsKind::Bearer,
                token_file: Some(token_file.to_path_buf()),
                ..CredentialsConfig::default()
            },
        });
        if self.config.partners.len() == 1 {
            self.config.demographics_authority = id.into();
        }
    }

    fn start(&mut self) {
        let listener = self.listener.take().unwrap();
        let (server, _) = shcr_facade::server(self.config.clone(), listener).unwrap();
        self.handle = Some(server.handle());
        tokio::spawn(server);
    }

    async fn stop(self) {
        if let Some(handle) = self.handle {
            handle.stop(false).await;
        }
        for sim in self.sims {
            sim.stop().await;
        }
    }
}

async fn get(region: &Region, path: &str, token: &str) -> Reply {
    let h = Harness::start().await;
    let reply = h.get_as(&format!("{}/{path}", region.base), token).await;
    h.stop().await;
    reply
}

fn backend_token_file(issuer: &DevIssuer, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("backend-token");
    std::fs::write(&path, token(issuer, Profile::Backend)).unwrap();
    path
}

#[tokio::test]
async fn one_record_returns_anothers_with_its_policy_intact() {
    let issuer = start_issuer();
    let dir = tempfile::tempdir().unwrap();
    let token_file = backend_token_file(&issuer, &dir);
    let clinician = token(&issuer, Profile::Clinician);
    let officer = token(&issuer, Profile::PrivacyOfficer);

    let mut south = Region::new("south", &issuer, true);
    let mut north = Region::new("north", &issuer, false);
    north.join(&south, "south", "QSOUTH", &token_file);
    south.start();
    north.start();

    let direct = get(&south, SEARCH, &clinician).await.fhir();
    let through = get(&north, SEARCH, &clinician).await;
    assert_eq!(through.status, 200, "{}", through.text);
    let through = through.fhir();
    assert_eq!(through["total"], direct["total"]);
    let mut expected: Vec<String> = ids(&direct)
        .iter()
        .map(|id| format!("south.{id}"))
        .collect();
    let mut got = ids(&through);
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(partner_status(&through, "QSOUTH").as_deref(), Some("ok"));
    // The south's requests came marked with the north's hop, and the north's own token.
    let hops: Vec<_> = south.sims[0]
        .received()
        .into_iter()
        .filter_map(|r| r.hops)
        .collect();
    assert!(hops.iter().any(|h| h == "north,south"), "{hops:?}");

    // A read by the north's id goes to the south and comes back under the same id.
    let id = &got[0];
    let read = get(&north, &format!("Observation/{id}"), &clinician).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.fhir()["id"], id.as_str());

    // Withheld items stay withheld through both.
    let chloe = get(&north, "Observation?patient=9990000034", &clinician).await;
    assert!(!chloe.text.contains("obs-chloe-chlamydia"));
    let encounters = get(&north, "Encounter?patient=9990000034", &clinician).await;
    assert_eq!(encounters.status, 200);
    assert!(!encounters.text.contains("enc-chloe-gum"));

    // An objection recorded in the south is honoured by the south: the north gets nothing.
    let consent = crate::objection::objection(
        ALICE,
        "active",
        json!({"reference": format!("Patient/{ALICE}")}),
    );
    let created = client()
        .post(format!("{}/Consent", south.base))
        .bearer_auth(&officer)
        .header("content-type", "application/fhir+json")
        .body(consent.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let withheld = get(&north, SEARCH, &clinician).await;
    assert_eq!(
        withheld.status, 200,
        "the north has no objection of its own"
    );
    let withheld = withheld.fhir();
    assert!(entries(&withheld).is_empty());
    assert_eq!(
        partner_status(&withheld, "QSOUTH").as_deref(),
        Some("error-response")
    );
    north.stop().await;
    south.stop().await;
    issuer.stop().await;
}

#[tokio::test]
async fn records_joined_both_ways_refuse_the_loop() {
    let issuer = start_issuer();
    let dir = tempfile::tempdir().unwrap();
    let token_file = backend_token_file(&issuer, &dir);
    let clinician = token(&issuer, Profile::Clinician);

    let mut east = Region::new("east", &issuer, true);
    let mut west = Region::new("west", &issuer, true);
    east.join(&west, "west", "QWEST", &token_file);
    west.join(&east, "east", "QEAST", &token_file);
    east.start();
    west.start();

    let own = get(&west, SEARCH, &clinician).await;
    east.sims[0].clear_requests();
    let reply = get(&east, SEARCH, &clinician).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.elapsed < std::time::Duration::from_secs(3));
    let bundle = reply.fhir();
    // The east's own records and the west's: the west's call back to the east was refused.
    let west_ids = ids(&bundle)
        .into_iter()
        .filter(|id| id.starts_with("west."))
        .count();
    let west_own = ids(&own.fhir())
        .into_iter()
        .filter(|id| !id.starts_with("east."))
        .count();
    assert!(west_own > 0);
    assert_eq!(west_ids, west_own);
    assert!(
        ids(&bundle).iter().all(|id| !id.starts_with("west.east.")),
        "nothing came back round"
    );
    // The east's own partners were asked by the east alone, never again through the loop.
    let hops: Vec<Option<String>> = east.sims[0]
        .received()
        .into_iter()
        .map(|r| r.hops)
        .collect();
    assert!(!hops.is_empty());
    assert!(
        hops.iter().all(|h| h.as_deref() == Some("east")),
        "{hops:?}"
    );

    // A request that says it has been here already is refused outright.
    let h = Harness::start().await;
    let refused = h
        .get_with(
            &format!("{}/{SEARCH}", east.base),
            &[
                ("authorization", &format!("Bearer {clinician}")),
                ("x-shcr-hop", "west,east"),
            ],
        )
        .await;
    assert_eq!(refused.status, 508);
    assert_eq!(outcome_issue(&refused)["code"], "processing");
    // What is not a record's id is dropped from the header, not passed on.
    east.sims[0].clear_requests();
    let odd = h
        .get_with(
            &format!("{}/{SEARCH}", east.base),
            &[
                ("authorization", &format!("Bearer {clinician}")),
                ("x-shcr-hop", "<script>,a b"),
            ],
        )
        .await;
    assert_eq!(odd.status, 200);
    assert!(
        east.sims[0]
            .received()
            .iter()
            .all(|r| r.hops.as_deref() == Some("east"))
    );
    h.stop().await;
    east.stop().await;
    west.stop().await;
    issuer.stop().await;
}
