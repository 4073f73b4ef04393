//! The release stage's way to the partners: linked records the request did not
//! gather are fetched through federation, under the request's deadline.

use super::{AppState, Viewer};
use crate::federation::Federation;
use crate::federation::linked::PatientIds;
use crate::federation::scope::RequestScope;
use crate::policy::release::{Fetched, Link, LinkSource, Released, Unavailable};

/// Linked records for one request: from the partners, with what is known of the
/// patient's ids there.
pub struct PartnerLinks<'a> {
    pub federation: &'a Federation,
    pub patients: PatientIds,
    pub scope: &'a RequestScope,
}

impl LinkSource for PartnerLinks<'_> {
    fn follows(&self, link: &Link) -> bool {
        self.federation.follows(link.partner_id(), &link.type_name)
    }

    async fn fetch(&self, links: Vec<Link>) -> Fetched {
        let wanted = links.into_iter().map(|l| (l.type_name, l.id)).collect();
        let linked = self
            .federation
            .fetch_linked(wanted, &self.patients, self.scope)
            .await;
        let mut records = linked.found;
        records.extend(linked.context);
        Fetched {
            records,
            unavailable: linked
                .missing
                .into_iter()
                .map(|((type_name, id), failed)| {
                    let why = match failed {
                        Some(organisation) => Unavailable::Failed { organisation },
                        None => Unavailable::NotFound,
                    };
                    (Link { type_name, id }, why)
                })
                .collect(),
        }
    }

    fn organisation(&self, partner_id: &str) -> String {
        self.federation.organisation(partner_id)
    }
}

/// Releases `candidates` for `viewer`: judged (with `in_hand` and whatever they point
/// at), then narrowed to what the viewer's scopes cover. What was withheld is noted
/// for the audit trail.
pub async fn release(
    req: &actix_web::HttpRequest,
    state: &AppState,
    viewer: &Viewer,
    candidates: Vec<serde_json::Value>,
    in_hand: Vec<serde_json::Value>,
    links: PartnerLinks<'_>,
) -> Released {
    let mut released = state
        .policy
        .release(candidates, in_hand, &links, viewer.clearance)
        .await;
    super::audit::note_withheld(req, released.withheld(), released.unjudged());
    crate::metrics::Metrics::get().withheld(released.withheld(), released.unjudged());
    released.retain(|r| viewer.covers(r));
    released
}
