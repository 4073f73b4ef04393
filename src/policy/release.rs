//! The release stage: what of the records gathered for a request may leave the
//! facade. Every output path (search, read, `$everything`, later pages, included
//! records) hands its candidates here and renders only the `Released` that comes
//! back, which nothing outside `policy` can make.
//!
//! A record is judged by itself (its codes, its labels) and by everything it points
//! at. Every reference it makes, in any element and in contained resources, to a
//! record of the same partner is followed: the record is taken from what the request
//! already gathered or fetched from the partner (`LinkSource`), judged, and its own
//! references followed in turn, to a depth bound. A record that points at a withheld
//! one is withheld; one whose links could not all be judged (the partner failed or
//! timed out, the record was not found, the depth bound was reached) is withheld too,
//! and reported as unjudged. References to directory records (Medication,
//! Organization, Practitioner...) are followed where the partner serves that type;
//! elsewhere they are judged by the codes the reference itself carries, which are
//! part of the referring record. References to the patient are not links.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use serde_json::Value;

use super::{Clearance, Policy};
use crate::fhir::ResourceType;
use crate::fhir::id::split_facade_id;
use crate::fhir::reference::references;

/// A record pointed at: its type (as the reference names it) and facade id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Link {
    pub type_name: String,
    pub id: String,
}

impl Link {
    /// `Type/id` of a facade reference, if it names another partner record.
    fn parse(reference: &str) -> Option<Link> {
        let (type_name, id) = reference.split_once('/')?;
        let id = id.split('/').next()?;
        let is_type = type_name.starts_with(|c: char| c.is_ascii_uppercase())
            && type_name.chars().all(|c| c.is_ascii_alphanumeric());
        // The patient is not a link; a merged Patient's id is an NHS number, not a
        // facade id.
        (is_type && type_name != ResourceType::patient().as_str() && split_facade_id(id).is_some())
            .then(|| Link {
                type_name: type_name.to_string(),
                id: id.to_string(),
            })
    }

    fn address(&self) -> String {
        format!("{}/{}", self.type_name, self.id)
    }

    /// The partner holding it (the facade id's prefix).
    pub fn partner_id(&self) -> &str {
        split_facade_id(&self.id).map_or("", |(partner, _)| partner)
    }
}

/// Why a linked record could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The partner says there is no such record.
    NotFound,
    /// The partner failed, timed out or the request's deadline passed; the
    /// organisation as clients may see it named.
    Failed { organisation: String },
}

/// What a `LinkSource` found for a batch of links.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Records found, in facade form.
    pub records: Vec<Value>,
    pub unavailable: Vec<(Link, Unavailable)>,
}

/// Where linked records not gathered with the request come from (the partners,
/// through federation). Each record is asked for at most once per request.
pub trait LinkSource {
    /// Whether references of this type at this partner are followed: always for
    /// patient records; for directory records only where the partner serves them.
    fn follows(&self, link: &Link) -> bool;

    /// Fetches every link, batched per partner as it can.
    fn fetch(&self, links: Vec<Link>) -> impl Future<Output = Fetched>;

    /// The organisation a partner id stands for, as clients may see it named.
    fn organisation(&self, partner_id: &str) -> String;
}

/// What may be shown of a request's candidates, with what the audit trail records
/// of what was not. Only `Policy::release` makes one.
#[derive(Debug, Default)]
pub struct Released {
    records: Vec<Value>,
    withheld: usize,
    unjudged: usize,
    /// Organisations whose records could not all be checked (for the warning).
    unjudged_at: Vec<String>,
}

impl Released {
    /// The records that may be shown, in the order they were given.
    pub fn records(&self) -> &[Value] {
        &self.records
    }

    pub fn into_records(self) -> Vec<Value> {
        self.records
    }

    /// Keeps only the records `keep` accepts (what the token's scopes cover): scopes
    /// decide what is shown of what was released, never what is judged.
    pub fn retain(&mut self, keep: impl Fn(&Value) -> bool) {
        self.records.retain(|r| keep(r));
    }

    /// Candidates withheld by the policy itself (categories, labels, links to
    /// withheld records).
    pub fn withheld(&self) -> usize {
        self.withheld
    }

    /// Candidates withheld because a record they point at could not be judged.
    pub fn unjudged(&self) -> usize {
        self.unjudged
    }

    /// The organisations whose records could not all be checked, each once.
    pub fn unjudged_at(&self) -> &[String] {
        &self.unjudged_at
    }

    /// Adds records released by another call (included records) to this one.
    pub fn extend(&mut self, other: Released) {
        self.records.extend(other.records);
        self.withheld += other.withheld;
        self.unjudged += other.unjudged;
        for organisation in other.unjudged_at {
            if !self.unjudged_at.contains(&organisation) {
                self.unjudged_at.push(organisation);
            }
        }
    }
}

/// How a record in the pool was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Shown,
    Withheld,
    /// Could not be judged; the organisation to name.
    Unjudged(String),
}

/// Every record the release may look at: the request's own (borrowed, never
/// copied) and those fetched for links.
struct Pool<'a> {
    gathered: HashMap<String, &'a Value>,
    fetched: HashMap<String, Value>,
}

impl<'a> Pool<'a> {
    fn new(records: impl Iterator<Item = &'a Value>) -> Pool<'a> {
        let mut gathered = HashMap::new();
        for record in records {
            gathered.entry(address(record)).or_insert(record);
        }
        Pool {
            gathered,
            fetched: HashMap::new(),
        }
    }

    fn get(&self, at: &str) -> Option<&Value> {
        self.gathered
            .get(at)
            .copied()
            .or_else(|| self.fetched.get(at))
    }

    fn contains(&self, at: &str) -> bool {
        self.gathered.contains_key(at) || self.fetched.contains_key(at)
    }
}

impl Policy {
    /// Judges `candidates` (in facade form) and everything they point at, and
    /// returns what may be shown. `in_hand` holds the other records the request
    /// gathered: links to them need no fetch, and they are never returned from here.
    pub async fn release(
        &self,
        candidates: Vec<Value>,
        in_hand: Vec<Value>,
        links: &impl LinkSource,
        clearance: Clearance,
    ) -> Released {
        let mut pool = Pool::new(candidates.iter().chain(&in_hand));
        // Each record's links, as far as the depth bound: what is not in hand is
        // fetched, one round per level. Only what the candidates reach is judged.
        let mut edges: HashMap<String, Vec<Link>> = HashMap::new();
        let mut unavailable: HashMap<String, Unavailable> = HashMap::new();
        let mut frontier: Vec<String> = candidates.iter().map(address).collect();
        frontier.sort();
        frontier.dedup();
        let mut beyond_bound: HashSet<String> = HashSet::new();
        for depth in 0..=self.link_depth {
            let mut wanted: Vec<Link> = Vec::new();
            let mut next = Vec::new();
            for at in &frontier {
                if edges.contains_key(at) {
                    continue;
                }
                let Some(record) = pool.get(at) else { continue };
                let followed: Vec<Link> = references(record)
                    .iter()
                    .filter_map(|r| Link::parse(r))
                    .filter(|l| links.follows(l))
                    .collect();
                for link in &followed {
                    let target = link.address();
                    if !pool.contains(&target) && !unavailable.contains_key(&target) {
                        if depth == self.link_depth {
                            beyond_bound.insert(at.clone());
                        } else if !wanted.contains(link) {
                            wanted.push(link.clone());
                        }
                    }
                    next.push(target);
                }
                edges.insert(at.clone(), followed);
            }
            if depth < self.link_depth && !wanted.is_empty() {
                let fetched = links.fetch(wanted.clone()).await;
                for record in fetched.records {
                    pool.fetched.entry(address(&record)).or_insert(record);
                }
                for (link, why) in fetched.unavailable {
                    unavailable.insert(link.address(), why);
                }
                // Asked for and neither found nor reported: not found.
                for link in wanted {
                    let target = link.address();
                    if !pool.contains(&target) {
                        unavailable.entry(target).or_insert(Unavailable::NotFound);
                    }
                }
            }
            frontier = next;
        }
        let verdicts = self.verdicts(&pool, &edges, &unavailable, &beyond_bound, links, clearance);
        let mut released = Released::default();
        let mut seen = HashSet::new();
        for record in candidates {
            let at = address(&record);
            if !seen.insert(at.clone()) {
                continue;
            }
            let verdict = verdicts
                .get(&at)
                .cloned()
                .unwrap_or_else(|| Verdict::Unjudged(links.organisation(partner_of(&at))));
            match verdict {
                Verdict::Shown => released.records.push(record),
                Verdict::Withheld => released.withheld += 1,
                Verdict::Unjudged(organisation) => {
                    released.unjudged += 1;
                    if !released.unjudged_at.contains(&organisation) {
                        released.unjudged_at.push(organisation);
                    }
                }
            }
        }
        released
    }

    /// The verdict on every record the candidates reach: its own, then withheld if
    /// anything it points at is, else unjudged if anything it points at could not be
    /// judged, to a fixpoint (links may form cycles).
    fn verdicts(
        &self,
        pool: &Pool,
        edges: &HashMap<String, Vec<Link>>,
        unavailable: &HashMap<String, Unavailable>,
        beyond_bound: &HashSet<String>,
        links: &impl LinkSource,
        clearance: Clearance,
    ) -> HashMap<String, Verdict> {
        let mut verdicts: HashMap<String, Verdict> = HashMap::new();
        let judge = |at: &str, verdicts: &mut HashMap<String, Verdict>| {
            if verdicts.contains_key(at) {
                return;
            }
            let verdict = match (unavailable.get(at), pool.get(at)) {
                (Some(Unavailable::Failed { organisation }), _) => {
                    Verdict::Unjudged(organisation.clone())
                }
                (Some(Unavailable::NotFound), _) | (None, None) => {
                    Verdict::Unjudged(links.organisation(partner_of(at)))
                }
                (None, Some(record)) if !self.may_show(record, clearance) => Verdict::Withheld,
                (None, Some(_)) if beyond_bound.contains(at) => {
                    Verdict::Unjudged(links.organisation(partner_of(at)))
                }
                (None, Some(_)) => Verdict::Shown,
            };
            verdicts.insert(at.to_string(), verdict);
        };
        for (at, targets) in edges {
            judge(at, &mut verdicts);
            for target in targets {
                judge(&target.address(), &mut verdicts);
            }
        }
        // Withholding spreads first (it outranks not being judged), then the rest.
        loop {
            let mut changed = false;
            for (at, targets) in edges {
                let current = verdicts.get(at).cloned().unwrap_or(Verdict::Shown);
                if current == Verdict::Withheld {
                    continue;
                }
                let mut worst = current.clone();
                for target in targets.iter().filter_map(|l| verdicts.get(&l.address())) {
                    match target {
                        Verdict::Withheld => worst = Verdict::Withheld,
                        Verdict::Unjudged(o) if worst == Verdict::Shown => {
                            worst = Verdict::Unjudged(o.clone())
                        }
                        _ => {}
                    }
                }
                if worst != current {
                    verdicts.insert(at.clone(), worst);
                    changed = true;
                }
            }
            if !changed {
                return verdicts;
            }
        }
    }
}

/// `Type/id` of a resource in facade form.
pub fn address(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

fn partner_of(address: &str) -> &str {
    address
        .split_once('/')
        .and_then(|(_, id)| split_facade_id(id))
        .map_or("", |(partner, _)| partner)
}
