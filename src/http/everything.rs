//! `GET /fhir/Patient/{nhs}/$everything`: the Patient and every served record of
//! theirs, from every partner, in one paged searchset.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::error::ApiError;
use super::includes::IncludePlan;
use super::links::{PartnerLinks, release};
use super::read::read_patient;
use super::respond::{Output, is_strict, query_pairs};
use super::searchset::{PageRequest, searchset};
use super::{AppState, Viewer, admit_to_gather, audit, permit_clinical, principal};
use crate::auth::scopes::Interaction;
use crate::federation::everything_query;
use crate::fhir::outcome::Issue;
use crate::fhir::search::{SortField, SortOrder, Summary, Total};
use crate::fhir::{NhsNumber, ResourceType};
use crate::policy::access::Grant;

pub async fn everything(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = query_pairs(req.query_string());
    Output::answer(&req, &pairs, run(&req, &state, &path, pairs.clone())).await
}

async fn run(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    pairs: Vec<(String, String)>,
) -> Result<Value, ApiError> {
    let principal = principal(req, state).await?;
    permit_clinical(&principal, ResourceType::patient(), Interaction::Read)?;
    let nhs = NhsNumber::parse(id).map_err(|_| ApiError::NotFound(format!("Patient/{id}")))?;
    audit::note_patients(req, [&nhs]);
    let Some(known) = admit_to_gather(state, &principal, &nhs).await? else {
        return Err(ApiError::NotFound(format!("Patient/{nhs}")));
    };
    let target = format!("Patient/{nhs}/$everything");
    let format_param = pairs
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.clone());
    // Every type the token may search, each with what its scopes cover.
    let grants: Vec<(ResourceType, Grant)> = ResourceType::all()
        .iter()
        .copied()
        .filter_map(|t| Some((t, permit_clinical(&principal, t, Interaction::Search).ok()?)))
        .collect();
    let viewer = Viewer::new(&principal, grants);
    let (pairs, link) = PageRequest::open_cursor(state, &viewer, &target, pairs)?;

    let mut count = state.page_limits.default_count;
    let mut types: Vec<ResourceType> = ResourceType::all().to_vec();
    let mut notes = Vec::new();
    for (name, value) in &pairs {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "_count must be a positive whole number, not '{value}'"
                        ))
                    })?
                    .min(state.page_limits.max_count)
            }
            "_type" => {
                types = value
                    .split(',')
                    .map(|t| {
                        t.trim().parse::<ResourceType>().map_err(|_| {
                            ApiError::BadRequest(format!(
                                "_type: '{t}' is not a served resource type"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "_format" | "_pretty" => {}
            other if is_strict(req) => {
                return Err(ApiError::BadRequest(format!(
                    "$everything does not support '{other}'"
                )));
            }
            other => notes.push(
                Issue::warning(
                    "not-supported",
                    format!("$everything does not support '{other}'; it was ignored"),
                )
                .with_expression(other),
            ),
        }
    }

    // The Patient and the clinical records are gathered at the same time; only the
    // types shown are asked for (links are judged by reference, whatever is shown).
    let permitted = |t: &ResourceType| viewer.permits(*t);
    let clinical: Vec<ResourceType> = types
        .iter()
        .copied()
        .filter(|t| t.is_clinical() && permitted(t))
        .collect();
    let wants_patient =
        types.contains(&ResourceType::patient()) && permitted(&ResourceType::patient());
    let scope = super::scope(state, &principal);
    let scope = &scope;
    // Said before the patient is read beside them: a partner answering every type
    // in one call (GP Connect) is then asked once.
    scope.expect(clinical.iter().copied());
    let (patient, gathered) = tokio::join!(
        async {
            match wants_patient {
                true => read_patient(state, nhs.as_str(), scope).await,
                false => Ok(None),
            }
        },
        state
            .federation
            .gather_clinical(&nhs, known, &clinical, everything_query, None, scope)
    );
    let mut candidates = Vec::new();
    match patient? {
        Some(patient) => candidates.push(patient),
        None if wants_patient => return Err(ApiError::NotFound(format!("Patient/{nhs}"))),
        None => {}
    }
    let gathered = gathered?;
    candidates.extend(gathered.resources);
    let links = PartnerLinks {
        federation: &state.federation,
        patients: gathered.patients.clone(),
        scope,
    };
    let released = release(req, state, &viewer, candidates, Vec::new(), links).await;

    let mut query = vec![("_count".to_string(), count.to_string())];
    if types.len() != ResourceType::all().len() {
        query.push((
            "_type".into(),
            types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    let page = PageRequest {
        target,
        query,
        count,
        sort: SortOrder {
            field: SortField::Date,
            descending: true,
        },
        summary: Summary::False,
        total: Total::Accurate,
        elements: None,
        link,
        notes,
        format_param,
        ordered: Vec::new(),
    };
    // The directory records the released records point at (medicines, the practice,
    // clinicians) come too, as FHIR's $everything describes.
    let plan = IncludePlan {
        includes: &[],
        revincludes: &[],
        directory: true,
        patients: &gathered.patients,
        scope,
    };
    Ok(searchset(req, state, &viewer, page, released, &gathered.reports, plan).await)
}
