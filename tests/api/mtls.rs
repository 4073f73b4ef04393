//! Mutual TLS to a partner: a partner on HTTPS that demands a client certificate from
//! its own CA, reached with the certificate and CA the configuration names.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use serde_json::json;
use shcr_facade::config::{CredentialsConfig, PartnerConfig, PartnerKind};
use shcr_facade::fhir::ResourceType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

use crate::harness::*;

const SEARCH: &str = "Observation?patient=9990000018&_count=100";

/// A certificate authority of the test's own, and certificates it issues.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A certificate for `names` (and 127.0.0.1) and its key.
    fn issue(&self, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        (params.signed_by(&key, &self.ca).unwrap(), key)
    }
}

/// A minimal HTTPS partner that answers only clients with a certificate from `pki`:
/// one Patient (Alice) and one Observation. Counts requests it answered.
async fn start_tls_partner(pki: &Pki) -> (String, Arc<AtomicUsize>) {
    let provider = Arc::new(crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let (certificate, key) = pki.issue(&["localhost"]);
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}/fhir", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // no or a foreign client certificate
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let target = String::from_utf8_lossy(&head)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let entries = if target.starts_with("/fhir/Patient") {
                    vec![json!({"resourceType": "Patient", "id": "lab-p1",
                        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": ALICE}],
                        "name": [{"family": "Jones", "given": ["Alice"]}], "birthDate": "1958-03-14"})]
                } else if target.starts_with("/fhir/Observation") {
                    vec![
                        json!({"resourceType": "Observation", "id": "lab-o1", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Haemoglobin"}]},
                        "subject": {"reference": "Patient/lab-p1"},
                        "effectiveDateTime": "2025-02-01T09:00:00Z",
                        "valueQuantity": {"value": 131, "unit": "g/L"}}),
                    ]
                } else {
                    Vec::new()
                };
                let bundle = json!({"resourceType": "Bundle", "type": "searchset",
                    "entry": entries.into_iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>()})
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{bundle}",
                    bundle.len()
                );
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (base, answered)
}

fn lab(base: &str, credentials: CredentialsConfig) -> PartnerConfig {
    PartnerConfig {
        id: "lab".into(),
        name: "Valley Pathology Network".into(),
        ods_code: "RLAB1".into(),
        kind: PartnerKind::Fhir,
        base_url: base.into(),
        resource_types: vec![ResourceType::named("Observation")],
        timeout_ms: 700,
        mapping: None,
        credentials,
        gp_connect: None,
    }
}

#[tokio::test]
async fn a_partner_demanding_a_client_certificate_gets_ours() {
    let pki = Pki::new();
    let (base, answered) = start_tls_partner(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let (certificate, key) = pki.issue(&["shcr-facade"]);
    let identity = dir.path().join("facade.pem");
    std::fs::write(
        &identity,
        format!("{}{}", certificate.pem(), key.serialize_pem()),
    )
    .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca.pem()).unwrap();

    let with_certificate = CredentialsConfig {
        client_certificate_file: Some(identity),
        ca_certificate_file: Some(ca.clone()),
        ..CredentialsConfig::default()
    };
    let partner = lab(&base, with_certificate);
    let h = Harness::with(move |c| c.partners.push(partner)).await;
    let bundle = h.ok(SEARCH).await;
    assert_eq!(partner_status(&bundle, "RLAB1").as_deref(), Some("ok"));
    assert!(ids(&bundle).contains(&"lab.lab-o1".to_string()));
    assert!(
        answered.load(Ordering::SeqCst) >= 2,
        "patient lookup and search"
    );
    h.stop().await;

    // Trusting the partner's CA but presenting no certificate: the handshake fails, and
    // the user sees the others' records with a warning.
    let before = answered.load(Ordering::SeqCst);
    let partner = lab(
        &base,
        CredentialsConfig {
            ca_certificate_file: Some(ca),
            ..CredentialsConfig::default()
        },
    );
    let h = Harness::with(move |c| c.partners.push(partner)).await;
    let reply = h.get(SEARCH).await;
    assert_eq!(reply.status, 200);
    let bundle = reply.fhir();
    assert_eq!(
        partner_status(&bundle, "RLAB1").as_deref(),
        Some("unreachable")
    );
    assert!(!ids(&bundle).contains(&"lab.lab-o1".to_string()));
    assert!(!entries(&bundle).is_empty());
    assert_eq!(answered.load(Ordering::SeqCst), before, "nothing answered");
    h.stop().await;
}
