//! `shcr-facade demo`: the example configuration, with each partner replaced by a
//! simulator serving examples/data/<partner id>/, and requests to paste.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};

use serde_json::Value;
use shcr_facade::config::{Config, IssuerConfig, PartnerKind};
use shcr_facade::fhir::ResourceType;
use shcr_facade::sim::authorization::PickablePatient;
use shcr_facade::sim::issuer::{DevIssuer, Profile, TokenRequest};
use shcr_facade::sim::{
    CouncilData, Faults, GpConnectPractice, LegacyPartner, PartnerData, PracticeRecords, SimPartner,
};

/// A running simulated partner of either kind, kept alive while the demo runs.
enum Simulator {
    Fhir(SimPartner),
    Legacy(LegacyPartner),
    GpConnect(GpConnectPractice),
}

impl Simulator {
    fn base_url(&self) -> &str {
        match self {
            Simulator::Fhir(sim) => &sim.base_url,
            Simulator::Legacy(sim) => &sim.base_url,
            Simulator::GpConnect(sim) => &sim.base_url,
        }
    }
}

/// examples/ next to the working directory, or in the source tree.
fn examples_dir() -> PathBuf {
    let local = PathBuf::from("examples");
    if local.join("shcr.toml").exists() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
    }
}

/// Faults per partner id, from a TOML file of `[partner-id]` tables.
fn load_faults(path: &Path, config: &Config) -> Result<HashMap<String, Faults>, String> {
    let faults: HashMap<String, Faults> = Figment::from(Toml::file(path))
        .extract()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match faults
        .keys()
        .find(|id| !config.partners.iter().any(|p| &&p.id == id))
    {
        Some(unknown) => Err(format!(
            "{}: '{unknown}' is not a partner id",
            path.display()
        )),
        None => Ok(faults),
    }
}

pub async fn run(
    port: u16,
    partner_latency_ms: u64,
    faults: Option<PathBuf>,
    issuer_port: Option<u16>,
) -> Result<(), String> {
    let examples = examples_dir();
    let mut config = Config::load(Some(&examples.join("shcr.toml"))).map_err(|e| e.to_string())?;
    let mut faults = match faults {
        Some(path) => load_faults(&path, &config)?,
        None => HashMap::new(),
    };
    // The ports asked for are bound before the simulated partners take ephemeral
    // ones, so a partner can never hold the port the facade was told to use.
    config.server.port = port;
    let address = format!("{}:{port}", config.server.host);
    let listener = TcpListener::bind(&address)
        .map_err(|e| format!("cannot listen on {address}: {e} (try --port)"))?;
    // The development issuer mints any token for anyone: loopback only, always.
    let issuer_address = format!(
        "127.0.0.1:{}",
        // Beside the facade's port, or ephemeral when the facade's is.
        issuer_port.unwrap_or(if port == 0 { 0 } else { port.saturating_add(1) })
    );
    let issuer_listener = TcpListener::bind(&issuer_address)
        .map_err(|e| format!("cannot listen on {issuer_address}: {e} (try --issuer-port)"))?;
    let mut partners = Vec::new();
    // Everyone the partners know, for the SMART sign-in and launcher pages.
    let mut people: Vec<Value> = Vec::new();
    for partner in &mut config.partners {
        let dir = examples.join("data").join(&partner.id);
        let unreadable = |e: std::io::Error| format!("{}: {e}", dir.display());
        let partner_faults = faults
            .remove(&partner.id)
            .unwrap_or_else(|| Faults::latency(partner_latency_ms));
        let (simulator, records) = match partner.kind {
            PartnerKind::Fhir => {
                let data = PartnerData::load(&dir).map_err(unreadable)?;
                let records = data.len();
                people.extend(data.of_type(ResourceType::patient()).cloned());
                let sim = SimPartner::start(data, partner_faults).map_err(|e| e.to_string())?;
                (Simulator::Fhir(sim), records)
            }
            PartnerKind::Legacy => {
                let data = CouncilData::load(&dir).map_err(unreadable)?;
                let records = data.len();
                let sim = LegacyPartner::start(data, partner_faults).map_err(|e| e.to_string())?;
                (Simulator::Legacy(sim), records)
            }
            PartnerKind::GpConnect => {
                let data = PracticeRecords::load(&dir).map_err(unreadable)?;
                let records = data.len();
                people.extend(data.records.values().flatten().cloned());
                let sim =
                    GpConnectPractice::start(data, partner_faults).map_err(|e| e.to_string())?;
                (Simulator::GpConnect(sim), records)
            }
        };
        partner.base_url = simulator.base_url().to_string();
        println!(
            "partner  {:<48} {records:>3} records at {}{}",
            format!("{} ({})", partner.name, partner.ods_code),
            partner.base_url,
            match partner.kind {
                PartnerKind::Legacy => " (legacy JSON API)",
                PartnerKind::GpConnect => " (GP Connect, FHIR STU3)",
                PartnerKind::Fhir => "",
            }
        );
        partners.push(simulator);
    }
    let base = format!(
        "http://{}/fhir",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let issuer = DevIssuer::start(issuer_listener, &base).map_err(|e| e.to_string())?;
    issuer.set_patients(PickablePatient::from_resources(&people));
    config.auth.dev_mode = true;
    config.auth.audience = Some(base.clone());
    config.auth.issuers = vec![IssuerConfig {
        issuer: issuer.issuer.clone(),
        acr_values: Vec::new(),
    }];
    println!("issuer   development tokens at {}", issuer.issuer);
    println!("database {}", config.database.url);
    let (server, base) = shcr_facade::server(config, listener).map_err(|e| e.to_string())?;
    print_tokens(&issuer);
    print_smart(&issuer, &base);
    print_requests(&base);
    server.await.map_err(|e| e.to_string())
}

/// `shcr-facade token`: asks a running demo's issuer for a token and prints it.
pub async fn token(
    issuer: &str,
    profile: Profile,
    patient: Option<String>,
    scope: Option<String>,
) -> Result<(), String> {
    let mut form = vec![("profile", profile_name(profile).to_string())];
    form.extend(patient.map(|p| ("patient", p)));
    form.extend(scope.map(|s| ("scope", s)));
    let url = format!("{}/token", issuer.trim_end_matches('/'));
    let body = reqwest::Client::new()
        .post(&url)
        .form(&form)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{url}: {e} (is `shcr-facade demo` running?)"))?
        .bytes()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let answer: Value = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
    let token = answer["access_token"]
        .as_str()
        .ok_or_else(|| format!("{url}: no access_token in the answer"))?;
    println!("{token}");
    Ok(())
}

fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Clinician => "clinician",
        Profile::SmartApp => "smart-app",
        Profile::PrivacyOfficer => "privacy-officer",
        Profile::Nurse => "nurse",
        Profile::Backend => "backend",
    }
}

/// Where to launch SMART apps from, in a browser.
fn print_smart(issuer: &DevIssuer, base: &str) {
    println!("\n# SMART App Launch, in a browser (README \"Launching a SMART app\")");
    println!("# EHR launch: pick a patient, a user and an app, as a clinical system would");
    println!("{}", issuer.launcher_url());
    println!("# standalone launch of the shipped app: sign in and pick a patient");
    println!("{}launch.html?iss={base}", issuer.app_url());
}

/// Shell lines that put a development token of each kind in a variable.
fn print_tokens(issuer: &DevIssuer) {
    println!(
        "\n# development tokens (valid 8 hours; `shcr-facade token --issuer {} --profile ...` mints more)",
        issuer.issuer
    );
    for (variable, profile) in [
        ("CLINICIAN", Profile::Clinician),
        ("SMART_APP", Profile::SmartApp),
        ("OFFICER", Profile::PrivacyOfficer),
    ] {
        let token = issuer.token(&TokenRequest {
            profile: Some(profile),
            lifetime_s: Some(8 * 3600),
            ..TokenRequest::default()
        });
        println!("export {variable}='{token}'");
    }
}

fn print_requests(base: &str) {
    let requests = [
        ("CapabilityStatement", format!("curl -s '{base}/metadata'")),
        (
            "Alice Jones, merged from three partners",
            format!("curl -s '{base}/Patient/9990000018'"),
        ),
        (
            "find a patient by NHS number",
            format!(
                "curl -s '{base}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018'"
            ),
        ),
        (
            "find patients by demographics",
            format!("curl -s '{base}/Patient?family=jones&birthdate=1958'"),
        ),
        (
            "her observations, newest first, 5 a page (follow link.next)",
            format!("curl -s '{base}/Observation?patient=Patient/9990000018&_count=5'"),
        ),
        (
            "blood pressure since June 2024",
            format!(
                "curl -s '{base}/Observation?patient=9990000018&code=http://loinc.org|8480-6&date=ge2024-06'"
            ),
        ),
        (
            "active medication",
            format!("curl -s '{base}/MedicationStatement?patient=9990000018&status=active'"),
        ),
        (
            "allergies, by POST (one record held twice is shown once)",
            format!("curl -s -X POST '{base}/AllergyIntolerance/_search' -d 'patient=9990000018'"),
        ),
        (
            "everything, in XML",
            format!(
                "curl -s -H 'Accept: application/fhir+xml' '{base}/Patient/9990000018/$everything?_count=20'"
            ),
        ),
        (
            "read one encounter by facade id",
            format!("curl -s '{base}/Encounter/northgate-acute.enc-alice-admission'"),
        ),
        (
            "Alice's problems (Condition: onset-date, not date)",
            format!("curl -s '{base}/Condition?patient=9990000018&onset-date=ge2019'"),
        ),
        (
            "her vaccinations",
            format!("curl -s '{base}/Immunization?patient=9990000018'"),
        ),
        (
            "her test results: reports with their result Observations",
            format!(
                "curl -s '{base}/DiagnosticReport?patient=9990000018&_include=DiagnosticReport:result'"
            ),
        ),
        (
            "her referrals",
            format!("curl -s '{base}/ServiceRequest?patient=9990000018'"),
        ),
        (
            "her procedures, with the encounters they were done in",
            format!("curl -s '{base}/Procedure?patient=9990000018&_include=Procedure:encounter'"),
        ),
        (
            "her prescriptions, with the medicines they name",
            format!(
                "curl -s '{base}/MedicationRequest?patient=9990000018&_include=MedicationRequest:medication'"
            ),
        ),
        (
            "her GP practice and GP",
            format!(
                "curl -s '{base}/Patient?_id=9990000018&_include=Patient:general-practitioner'"
            ),
        ),
        (
            "Ian's GP record, from his practice over GP Connect (STU3, converted)",
            format!("curl -s '{base}/Patient/9990000093/$everything'"),
        ),
        (
            "Kofi dissented from sharing at his practice (patient-dissent)",
            format!("curl -s '{base}/Condition?patient=9990001014'"),
        ),
        (
            "Grace's GP record is still arriving from her previous practice",
            format!("curl -s '{base}/AllergyIntolerance?patient=9990001006'"),
        ),
        (
            "Brian's encounters: the review whose reason is a withheld diagnosis is absent",
            format!("curl -s '{base}/Encounter?patient=9990000026'"),
        ),
        (
            "Ian Morris's care plans: the community trust's and the council's care packages (legacy JSON API)",
            format!("curl -s '{base}/CarePlan?patient=9990000093'"),
        ),
        (
            "the council's assessments and home visits for Ian since 2024",
            format!("curl -s '{base}/Encounter?patient=9990000093&date=ge2024-01-01'"),
        ),
        (
            "read one council home visit by facade id",
            format!("curl -s '{base}/Encounter/eastshire-asc.EC10450.visit-V-90211'"),
        ),
        (
            "count only",
            format!("curl -s '{base}/Observation?patient=9990000018&_summary=count'"),
        ),
        (
            "a SMART app launched for Alice sees her allergies",
            format!(
                "curl -s -H \"Authorization: Bearer $SMART_APP\" '{base}/AllergyIntolerance?patient=9990000018'"
            ),
        ),
        (
            "refused: the same app asking about another patient (403)",
            format!(
                "curl -s -H \"Authorization: Bearer $SMART_APP\" '{base}/Observation?patient=9990000026'"
            ),
        ),
        (
            "a privacy officer reads Alice's objection record (none yet: 404)",
            format!("curl -s -H \"Authorization: Bearer $OFFICER\" '{base}/Consent/9990000018'"),
        ),
        (
            "refused: no token (401)",
            format!("curl -s '{base}/Observation?patient=9990000018'"),
        ),
        (
            "SMART App Launch discovery (no token needed)",
            format!("curl -s '{base}/.well-known/smart-configuration'"),
        ),
        (
            "refused: no patient (400)",
            format!("curl -s '{base}/Observation?code=8480-6'"),
        ),
        (
            "refused under strict handling (400)",
            format!(
                "curl -s -H 'Prefer: handling=strict' '{base}/Observation?patient=9990000018&colour=blue'"
            ),
        ),
    ];
    println!("\nshcr-facade demo: FHIR base {base}\n");
    for (what, curl) in requests {
        // Clinical requests go as the clinician unless they say otherwise.
        let needs_token = !curl.contains("Authorization")
            && !what.contains("(401)")
            && !what.contains("no token needed")
            && !curl.contains("/metadata'");
        let curl = match needs_token {
            true => curl.replacen(
                "curl -s ",
                "curl -s -H \"Authorization: Bearer $CLINICIAN\" ",
                1,
            ),
            false => curl,
        };
        println!("# {what}\n{curl}\n");
    }
    println!(
        "Each searchset ends with an OperationOutcome entry (search.mode = outcome) reporting every partner consulted.\nCtrl-C stops the demo."
    );
}
