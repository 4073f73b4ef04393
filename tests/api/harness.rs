//! Starts the example's simulated partners (three FHIR servers and the council's
//! legacy system, serving examples/data) and a facade, all on 127.0.0.1 ephemeral
//! ports, and speaks HTTP to them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use reqwest::StatusCode;
use serde_json::Value;
use shcr_facade::config::{Config, IssuerConfig};
use shcr_facade::sim::issuer::{DevIssuer, Profile, TokenRequest};
use shcr_facade::sim::{
    CouncilData, Faults, GpConnectPractice, LegacyPartner, PartnerData, PracticeRecords, SimPartner,
};

pub const ALICE: &str = "9990000018";
pub const GP: &str = "riverside-gp";
pub const ACUTE: &str = "northgate-acute";
pub const COMMUNITY: &str = "valley-community";
/// The council's social-care system, a legacy (non-FHIR) partner.
pub const COUNCIL: &str = "eastshire-asc";
pub const COUNCIL_ODS: &str = "LA909";
/// The GP practice answering GP Connect Access Record: Structured (FHIR STU3).
pub const PRACTICE: &str = "meadowbank-gp";
pub const PRACTICE_ODS: &str = "B82005";
/// The audience every test facade expects (instances of one deployment share it).
pub const AUDIENCE: &str = "https://shcr.test/fhir";

pub struct Harness {
    pub base: String,
    /// Sends a clinician's token unless a request sets its own `Authorization`.
    pub client: reqwest::Client,
    pub config: Config,
    /// The development issuer the facade trusts.
    pub issuer: DevIssuer,
    _database: tempfile::TempDir,
    sims: Vec<(String, SimPartner)>,
    council: Option<LegacyPartner>,
    practice: Option<GpConnectPractice>,
    facade: ServerHandle,
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub elapsed: Duration,
}

impl Reply {
    /// The body as JSON, checked to be valid FHIR R4 (strict).
    pub fn fhir(&self) -> Value {
        let value: Value = serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text));
        if let Err(e) = fhir_codec::validate_r4_json(&value) {
            panic!("not valid R4: {e}\n{}", self.text);
        }
        value
    }
}

pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A fresh SQLite database file, removed with the returned directory.
pub fn sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("shcr.db").display());
    (dir, url)
}

/// The example configuration with test-sized timeouts; partners not yet started.
pub fn test_config() -> Config {
    let mut config =
        Config::load(Some(&examples().join("shcr.toml"))).expect("example config loads");
    config.server.workers = 2;
    config.search.deadline_ms = 1500;
    for p in &mut config.partners {
        p.timeout_ms = 700;
    }
    config
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(|_| {}).await
    }

    /// Starts partners and a facade; `tweak` adjusts the configuration first.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Harness {
        Harness::with_data(
            |partner| {
                PartnerData::load(&examples().join("data").join(partner))
                    .expect("partner data loads")
            },
            tweak,
        )
        .await
    }

    /// Starts partners serving `data(partner id)`, and a facade.
    pub async fn with_data(
        data: impl Fn(&str) -> PartnerData,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::with_council(data, council_data(), tweak).await
    }

    /// Starts partners serving `data(partner id)`, the council serving `council`,
    /// and a facade.
    pub async fn with_council(
        data: impl Fn(&str) -> PartnerData,
        council: CouncilData,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        let mut config = test_config();
        let (database, url) = sqlite_url();
        config.database.url = url;
        let issuer = start_issuer();
        trust(&mut config, &issuer);
        tweak(&mut config);
        let mut sims = Vec::new();
        // The example's partners are simulated; any a test adds is its own.
        for partner in config
            .partners
            .iter_mut()
            .filter(|p| [GP, ACUTE, COMMUNITY].contains(&p.id.as_str()))
        {
            let data = data(&partner.id);
            let sim = SimPartner::start(data, Faults::default()).expect("simulator starts");
            partner.base_url = sim.base_url.clone();
            sims.push((partner.id.clone(), sim));
        }
        let council = match config.partners.iter_mut().find(|p| p.id == COUNCIL) {
            Some(partner) => {
                let sim = LegacyPartner::start(council, Faults::default()).expect("council starts");
                partner.base_url = sim.base_url.clone();
                Some(sim)
            }
            None => None,
        };
        let practice = match config.partners.iter_mut().find(|p| p.id == PRACTICE) {
            Some(partner) => {
                let sim = GpConnectPractice::start(practice_records(), Faults::default())
                    .expect("the GP Connect practice starts");
                partner.base_url = sim.base_url.clone();
                Some(sim)
            }
            None => None,
        };
        let (base, facade) = start_facade(config.clone());
        Harness {
            base,
            client: client_as(&token(&issuer, Profile::Clinician)),
            config,
            issuer,
            _database: database,
            sims,
            council,
            practice,
            facade,
        }
    }

    pub fn practice(&self) -> &GpConnectPractice {
        self.practice
            .as_ref()
            .expect("the GP Connect practice is a partner")
    }

    /// Stops the GP Connect practice's system: its port then refuses connections.
    pub async fn stop_practice(&mut self) {
        if let Some(sim) = self.practice.take() {
            sim.stop().await;
        }
    }

    pub fn sim(&self, id: &str) -> &SimPartner {
        &self
            .sims
            .iter()
            .find(|(i, _)| i == id)
            .expect("known partner")
            .1
    }

    /// The same faults at every simulated FHIR partner (GP, hospital, community).
    pub fn set_faults_everywhere(&self, faults: Faults) {
        for (_, sim) in &self.sims {
            sim.set_faults(faults.clone());
        }
    }

    pub fn council(&self) -> &LegacyPartner {
        self.council.as_ref().expect("the council is a partner")
    }

    /// Stops the council's system: its port then refuses connections.
    pub async fn stop_council(&mut self) {
        if let Some(sim) = self.council.take() {
            sim.stop().await;
        }
    }

    /// Stops one partner: its port then refuses connections.
    pub async fn stop_partner(&mut self, id: &str) {
        let index = self
            .sims
            .iter()
            .position(|(i, _)| i == id)
            .expect("known partner");
        let (_, sim) = self.sims.remove(index);
        sim.stop().await;
    }

    /// A development token of `profile`.
    pub fn token(&self, profile: Profile) -> String {
        token(&self.issuer, profile)
    }

    /// GET as the holder of `token`.
    pub async fn get_as(&self, path: &str, token: &str) -> Reply {
        self.get_with(path, &[("authorization", &format!("Bearer {token}"))])
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path)
        };
        let mut request = self.client.get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        send(request).await
    }

    pub async fn post_form(&self, path: &str, body: &str, content_type: &str) -> Reply {
        send(
            self.client
                .post(format!("{}/{}", self.base, path))
                .header("content-type", content_type)
                .body(body.to_string()),
        )
        .await
    }

    /// GET, expect 200, return the R4-checked JSON body.
    pub async fn ok(&self, path: &str) -> Value {
        self.ok_as(path, &self.token(Profile::Clinician)).await
    }

    /// `ok` as the holder of `token`.
    pub async fn ok_as(&self, path: &str, token: &str) -> Value {
        let reply = self.get_as(path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        reply.fhir()
    }

    /// A second facade over this harness's partners and database, its configuration
    /// changed by `tweak`, asked as a clinician.
    pub fn other_facade(&self, tweak: impl FnOnce(&mut Config)) -> OtherFacade {
        let mut config = self.config.clone();
        tweak(&mut config);
        let (base, handle) = start_facade(config);
        OtherFacade {
            base,
            handle,
            client: client_as(&self.token(Profile::Clinician)),
        }
    }

    pub async fn stop(self) {
        self.facade.stop(false).await;
        for (_, sim) in self.sims {
            sim.stop().await;
        }
        if let Some(council) = self.council {
            council.stop().await;
        }
        if let Some(practice) = self.practice {
            practice.stop().await;
        }
        self.issuer.stop().await;
    }
}

/// A facade started beside the harness's own (`Harness::other_facade`).
pub struct OtherFacade {
    base: String,
    handle: ServerHandle,
    client: reqwest::Client,
}

impl OtherFacade {
    /// GET, expect 200, return the R4-checked JSON body.
    pub async fn ok(&self, path: &str) -> Value {
        let reply = send(self.client.get(format!("{}/{path}", self.base))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        reply.fhir()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The GP Connect practice's example records.
pub fn practice_records() -> PracticeRecords {
    PracticeRecords::load(&examples().join("data").join(PRACTICE)).expect("practice records load")
}

/// The council's example clients.
pub fn council_data() -> CouncilData {
    CouncilData::load(&examples().join("data").join(COUNCIL)).expect("council data loads")
}

/// A development issuer on an ephemeral loopback port, minting for `AUDIENCE`.
pub fn start_issuer() -> DevIssuer {
    DevIssuer::start(TcpListener::bind("127.0.0.1:0").expect("bind"), AUDIENCE)
        .expect("issuer starts")
}

/// Makes `config` trust `issuer` in development mode, expecting `AUDIENCE`.
pub fn trust(config: &mut Config, issuer: &DevIssuer) {
    config.auth.dev_mode = true;
    config.auth.audience = Some(AUDIENCE.into());
    config.auth.issuers = vec![IssuerConfig {
        issuer: issuer.issuer.clone(),
        acr_values: Vec::new(),
    }];
}

pub fn token(issuer: &DevIssuer, profile: Profile) -> String {
    issuer.token(&TokenRequest {
        profile: Some(profile),
        ..TokenRequest::default()
    })
}

/// A token of `profile` as an ordinary identity provider would issue it: without the
/// development marker, for a facade that trusts the issuer by configuration alone.
pub fn production_token(issuer: &DevIssuer, profile: Profile) -> String {
    let mut claims = issuer.claims(&TokenRequest {
        profile: Some(profile),
        ..TokenRequest::default()
    });
    claims
        .as_object_mut()
        .expect("claims")
        .remove(shcr_facade::auth::DEV_CLAIM);
    issuer.sign(&claims)
}

/// A client that sends `token` with every request that sets no `Authorization`.
pub fn client_as(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A facade on an ephemeral port; returns its FHIR base and handle.
pub fn start_facade(config: Config) -> (String, ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, base) = shcr_facade::server(config, listener).expect("facade starts");
    let handle = server.handle();
    tokio::spawn(server);
    (base, handle)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let started = Instant::now();
    let response = request.send().await.expect("facade answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.expect("body");
    Reply {
        status,
        content_type,
        text,
        elapsed: started.elapsed(),
    }
}

/// Facade ids of the match entries.
pub fn ids(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Resources of the match entries.
pub fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"].clone())
        .collect()
}

/// Issues of the outcome entry.
pub fn issues(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "outcome")
        .flat_map(|e| {
            e["resource"]["issue"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

pub fn warnings(bundle: &Value) -> Vec<String> {
    issues(bundle)
        .iter()
        .filter(|i| i["severity"] == "warning")
        .map(|i| {
            i["details"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The partner status code reported for an organisation (by ODS code).
pub fn partner_status(bundle: &Value, ods: &str) -> Option<String> {
    issues(bundle).iter().find_map(|i| {
        let report = i["extension"].as_array()?.first()?["extension"]
            .as_array()?
            .clone();
        let field = |name: &str| report.iter().find(|f| f["url"] == name).cloned();
        (field("organization")?["valueIdentifier"]["value"] == ods).then(|| {
            field("status").unwrap()["valueCode"]
                .as_str()
                .unwrap()
                .to_string()
        })
    })
}

pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

/// The first issue of an OperationOutcome reply.
pub fn outcome_issue(reply: &Reply) -> Value {
    let outcome = reply.fhir();
    assert_eq!(
        outcome["resourceType"], "OperationOutcome",
        "{}",
        reply.text
    );
    outcome["issue"][0].clone()
}

/// Query pairs of the requests a partner received for a path.
pub fn partner_queries(sim: &SimPartner, path_suffix: &str) -> Vec<Vec<(String, String)>> {
    sim.requests()
        .iter()
        .filter_map(|r| r.split_once('?'))
        .filter(|(path, _)| path.ends_with(path_suffix))
        .map(|(_, q)| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .collect()
}
