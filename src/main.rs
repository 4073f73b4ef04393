//! The `shcr-facade` command: serve, demo, token, check, migrate, audit verify.

mod demo;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shcr_facade::config::{Config, PartnerKind};

#[derive(Parser)]
#[command(
    name = "shcr-facade",
    version,
    about = "FHIR R4 facade for a regional Shared Care Record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the facade with a configuration file (SHCR_* variables override it).
    Serve {
        #[arg(long, env = "SHCR_CONFIG")]
        config: PathBuf,
        /// Listen on this port instead of server.port.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the facade with its simulated partners (a GP practice, the hospital trust,
    /// the community and mental-health trust, the council's legacy system, and a GP
    /// practice over GP Connect), its development token issuer and SMART launcher, on
    /// an embedded SQLite database, and print requests to try.
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Delay each simulated partner adds to every answer.
        #[arg(long, default_value_t = 20)]
        partner_latency_ms: u64,
        /// TOML file of faults per partner id (see examples/demo-faults.toml).
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Port of the development token issuer (default: the facade's port + 1; ephemeral with --port 0).
        #[arg(long)]
        issuer_port: Option<u16>,
    },
    /// Mint a development access token from a running demo's issuer.
    Token {
        /// The demo's development issuer, as `demo` prints it.
        #[arg(long, default_value = "http://127.0.0.1:8081/dev-issuer")]
        issuer: String,
        #[arg(long, value_enum, default_value = "clinician")]
        profile: shcr_facade::sim::issuer::Profile,
        /// NHS number in launch context (smart-app).
        #[arg(long)]
        patient: Option<String>,
        /// Space-separated scopes instead of the profile's own.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Apply the database migrations the configuration's database lacks.
    Migrate {
        #[arg(long, env = "SHCR_CONFIG")]
        config: PathBuf,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Validate a configuration and ask each partner for its CapabilityStatement.
    Check {
        #[arg(long, env = "SHCR_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walk the hash chain of audit events and name the first altered, removed or
    /// reordered one.
    Verify {
        #[arg(long, env = "SHCR_CONFIG")]
        config: PathBuf,
        /// A head printed by an earlier run (SEQUENCE:HASH), kept elsewhere: the
        /// chain must still reach it unchanged, so removing the newest events shows.
        #[arg(long)]
        anchor: Option<shcr_facade::audit::Anchor>,
    },
}

/// mimalloc rather than the system allocator: the request path allocates and frees
/// many small JSON values, which glibc's allocator spent a third of the CPU on
/// (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for them on its
/// heap, and the kernel's background collapser (khugepaged, a full pass over the
/// heap's address range in about ten minutes) then fills each 2 MiB range that holds
/// any live page: under steady load the heap grew by a third, once, about ten
/// minutes in, and never gave it back (README, Performance).
///
/// Called first in `main`, before the heap grows: pages already huge stay so.
fn keep_heap_in_small_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_thp_disable(true).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let small_pages = keep_heap_in_small_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: not in files, pipes or journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = small_pages {
        tracing::warn!(error = %e, "transparent huge pages could not be turned off");
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, port } => serve(config, port).await,
            Command::Demo {
                port,
                partner_latency_ms,
                faults,
                issuer_port,
            } => demo::run(port, partner_latency_ms, faults, issuer_port).await,
            Command::Token {
                issuer,
                profile,
                patient,
                scope,
            } => demo::token(&issuer, profile, patient, scope).await,
            Command::Check { config } => check(config).await,
            Command::Migrate { config } => migrate(config),
            Command::Audit {
                action: AuditAction::Verify { config, anchor },
            } => verify_audit(config, anchor),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shcr-facade: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, port: Option<u16>) -> Result<(), String> {
    let mut config = Config::load(Some(&path)).map_err(|e| e.to_string())?;
    if let Some(port) = port {
        config.server.port = port;
    }
    let address = format!("{}:{}", config.server.host, config.server.port);
    let listener =
        TcpListener::bind(&address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let (server, base) = shcr_facade::server(config, listener).map_err(|e| e.to_string())?;
    tracing::info!(base, "shcr-facade serving");
    server.await.map_err(|e| e.to_string())
}

fn migrate(path: PathBuf) -> Result<(), String> {
    let config = Config::load(Some(&path)).map_err(|e| e.to_string())?;
    let store = shcr_facade::store::Store::connect(&config.database).map_err(|e| e.to_string())?;
    let applied = store.migrate().map_err(|e| e.to_string())?;
    match applied.as_slice() {
        [] => println!("database is up to date"),
        versions => println!("applied migrations: {}", versions.join(", ")),
    }
    let indexed = shcr_facade::audit::index_unkeyed(&store).map_err(|e| e.to_string())?;
    if indexed > 0 {
        println!("audit events given their search keys: {indexed}");
    }
    Ok(())
}

fn verify_audit(path: PathBuf, anchor: Option<shcr_facade::audit::Anchor>) -> Result<(), String> {
    let config = Config::load(Some(&path)).map_err(|e| e.to_string())?;
    let store = shcr_facade::store::Store::connect(&config.database).map_err(|e| e.to_string())?;
    match shcr_facade::audit::verify(&store, anchor.as_ref()).map_err(|e| e.to_string())? {
        Ok((count, head)) => {
            println!("audit chain intact: {count} events, head {count}:{head}");
            Ok(())
        }
        Err(broken) => Err(format!("audit chain broken at {broken}")),
    }
}

async fn check(path: PathBuf) -> Result<(), String> {
    let config = Config::load(Some(&path)).map_err(|e| e.to_string())?;
    println!(
        "configuration {} is valid: {} partners",
        path.display(),
        config.partners.len()
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut failures = 0;
    let credentials = match shcr_facade::federation::load_credentials(&config) {
        Ok(credentials) => credentials,
        Err(e) => {
            failures += 1;
            println!("  FAIL  {e}");
            Default::default()
        }
    };
    let mappings = match shcr_facade::federation::legacy::load_mappings(&config) {
        Ok(mappings) => mappings,
        Err(problems) => {
            failures += problems.len();
            for problem in &problems {
                println!("  FAIL  {problem}");
            }
            Default::default()
        }
    };
    match shcr_facade::policy::Policy::new(&config.policy) {
        Ok(policy) => {
            let counts = policy.code_counts();
            for (category, sources) in &counts.by_source {
                let total: usize = sources.iter().map(|(_, n)| n).sum();
                let from: Vec<String> = sources
                    .iter()
                    .map(|(source, n)| format!("{n} from {source}"))
                    .collect();
                let descendants = match counts.descendants.get(category) {
                    Some(n) => format!(", and {n} SNOMED CT descendants"),
                    None => String::new(),
                };
                println!(
                    "  ok    codes for {category}: {total} ({}){descendants}",
                    from.join(", ")
                );
            }
        }
        Err(problems) => {
            failures += problems.len();
            for problem in &problems {
                println!("  FAIL  code list {problem}");
            }
        }
    }
    for (id, mapping) in &mappings {
        let templates = 1 + mapping.resources.len();
        println!("  ok    {id}: mapping and {templates} templates load");
    }
    let authenticator = shcr_facade::auth::Authenticator::new(&config.auth, "");
    for issuer in authenticator.issuers() {
        match issuer.metadata().await {
            Ok(_) => println!("  ok    token issuer {}", issuer.config.issuer),
            Err(_) => {
                failures += 1;
                println!(
                    "  FAIL  token issuer {}: discovery or keys unreachable",
                    issuer.config.issuer
                );
            }
        }
    }
    let deployment_id = config
        .server
        .deployment_id
        .clone()
        .or_else(|| config.server.public_base_url.clone())
        .unwrap_or_else(|| "shcr-facade-check".to_string());
    for partner in &config.partners {
        if partner.kind == PartnerKind::GpConnect {
            // Spine headers, mutual TLS and a consumer JWT: the facade's own exchange.
            let Some(credentials) = credentials.get(&partner.id).cloned() else {
                continue;
            };
            let checked =
                shcr_facade::federation::check_gp_connect(partner, credentials, &deployment_id)
                    .await;
            match checked {
                Ok(took) => println!(
                    "  ok    {} ({}) GP Connect {} ms",
                    partner.name,
                    partner.ods_code,
                    took.as_millis()
                ),
                Err(e) => {
                    failures += 1;
                    println!(
                        "  FAIL  {} ({}): GP Connect {e}",
                        partner.name, partner.ods_code
                    );
                }
            }
            continue;
        }
        let base = partner.base_url.trim_end_matches('/');
        // A FHIR partner shows its CapabilityStatement; a legacy one its health path,
        // with the headers its mapping sends.
        let mut request = match mappings.get(&partner.id) {
            Some(mapping) => mapping.headers.iter().fold(
                client.get(format!(
                    "{base}/{}",
                    mapping.health.as_deref().unwrap_or_default()
                )),
                |r, (name, value)| r.header(name, value),
            ),
            None if partner.kind == PartnerKind::Legacy => continue,
            None => client
                .get(format!("{base}/metadata"))
                .header("accept", "application/fhir+json"),
        };
        request = request.timeout(partner.timeout());
        let started = std::time::Instant::now();
        let answer = request.send().await;
        let ms = started.elapsed().as_millis();
        match answer {
            Ok(r) if r.status().is_success() => {
                println!("  ok    {} ({}) {ms} ms", partner.name, partner.ods_code)
            }
            Ok(r) => {
                failures += 1;
                println!(
                    "  FAIL  {} ({}): HTTP {}",
                    partner.name,
                    partner.ods_code,
                    r.status().as_u16()
                );
            }
            Err(e) => {
                failures += 1;
                println!(
                    "  FAIL  {} ({}): {}",
                    partner.name,
                    partner.ods_code,
                    if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    }
                );
            }
        }
    }
    if failures > 0 {
        Err(format!("{failures} check(s) failed"))
    } else {
        Ok(())
    }
}
