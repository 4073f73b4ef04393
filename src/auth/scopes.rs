//! SMART on FHIR scopes, v2 (`patient/Observation.rs?category=laboratory`) and v1
//! (`user/*.read`): which types and interactions a token grants.
//!
//! Anything that is not a SMART clinical scope (`openid`, `launch`, `fhirUser`, ...)
//! grants nothing here and is ignored; a malformed clinical scope grants nothing.

use std::fmt;

/// Whose data a scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Only the patient in the token's launch context.
    Patient,
    /// What the signed-in user may see.
    User,
    /// A backend service, no user.
    System,
}

/// The interactions of SMART v2 (`c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Interaction {
    fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }
}

/// One clinical scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub level: Level,
    /// None for `*`.
    pub resource_type: Option<String>,
    /// Letters of `cruds` granted.
    interactions: String,
    /// Fine-grained restriction (`?category=laboratory`): resources must match every pair.
    pub restriction: Vec<(String, String)>,
}

impl Scope {
    /// Parses one scope; None if it is not a well-formed SMART clinical scope.
    pub fn parse(raw: &str) -> Option<Scope> {
        let (level, rest) = raw.split_once('/')?;
        let level = match level {
            "patient" => Level::Patient,
            "user" => Level::User,
            "system" => Level::System,
            _ => return None,
        };
        let (body, query) = match rest.split_once('?') {
            Some((body, query)) => (body, Some(query)),
            None => (rest, None),
        };
        let (resource, access) = body.rsplit_once('.')?;
        let resource_type = match resource {
            "*" => None,
            name if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Some(name.to_string())
            }
            _ => return None,
        };
        let interactions = match access {
            // SMART v1
            "read" => "rs".to_string(),
            "write" => "cud".to_string(),
            "*" => "cruds".to_string(),
            // SMART v2: a non-empty subsequence of "cruds", in that order
            v2 if is_ordered_subset(v2, "cruds") => v2.to_string(),
            _ => return None,
        };
        if query.is_some() && resource_type.is_none() {
            return None; // a restriction needs a type to be understood
        }
        let restriction = match query {
            None => Vec::new(),
            Some(q) => {
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect();
                if pairs.is_empty() {
                    return None;
                }
                pairs
            }
        };
        Some(Scope {
            level,
            resource_type,
            interactions,
            restriction,
        })
    }

    pub fn grants(&self, resource_type: &str, interaction: Interaction) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
            && self.interactions.contains(interaction.letter())
    }
}

fn is_ordered_subset(candidate: &str, of: &str) -> bool {
    if candidate.is_empty() {
        return false;
    }
    let mut rest = of.chars();
    candidate.chars().all(|c| rest.by_ref().any(|o| o == c))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Patient => "patient",
            Level::User => "user",
            Level::System => "system",
        };
        let resource = self.resource_type.as_deref().unwrap_or("*");
        write!(f, "{level}/{resource}.{}", self.interactions)?;
        if !self.restriction.is_empty() {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.restriction)
                .finish();
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// All clinical scopes of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// From the space-separated `scope` claim (or an array of them).
    pub fn parse(claim: &str) -> Scopes {
        Scopes(claim.split_whitespace().filter_map(Scope::parse).collect())
    }

    /// The scopes that grant `interaction` on `resource_type`.
    pub fn granting(&self, resource_type: &str, interaction: Interaction) -> Vec<&Scope> {
        self.0
            .iter()
            .filter(|s| s.grants(resource_type, interaction))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_grant_their_letters_only() {
        let s = Scope::parse("patient/Observation.rs").unwrap();
        assert_eq!(s.level, Level::Patient);
        assert!(s.grants("Observation", Interaction::Read));
        assert!(s.grants("Observation", Interaction::Search));
        assert!(!s.grants("Observation", Interaction::Create));
        assert!(!s.grants("Encounter", Interaction::Read));
        let s = Scope::parse("user/*.cruds").unwrap();
        assert!(s.grants("Consent", Interaction::Update));
        assert!(
            Scope::parse("system/Consent.cu")
                .unwrap()
                .grants("Consent", Interaction::Create)
        );
    }

    #[test]
    fn v1_scopes_map_to_v2() {
        let read = Scope::parse("patient/*.read").unwrap();
        assert!(read.grants("CarePlan", Interaction::Search));
        assert!(!read.grants("CarePlan", Interaction::Update));
        let write = Scope::parse("user/Consent.write").unwrap();
        assert!(write.grants("Consent", Interaction::Create));
        assert!(!write.grants("Consent", Interaction::Read));
        assert!(
            Scope::parse("user/Observation.*")
                .unwrap()
                .grants("Observation", Interaction::Delete)
        );
    }

    #[test]
    fn fine_grained_restriction_is_kept() {
        let s = Scope::parse("patient/Observation.rs?category=laboratory").unwrap();
        assert_eq!(
            s.restriction,
            vec![("category".into(), "laboratory".into())]
        );
        assert_eq!(s.to_string(), "patient/Observation.rs?category=laboratory");
    }

    #[test]
    fn malformed_or_other_scopes_grant_nothing() {
        for raw in [
            "openid",
            "launch/patient",
            "fhirUser",
            "offline_access",
            "patient/Observation.sr", // out of order
            "patient/Observation.x",
            "patient/Observation.",
            "doctor/Observation.rs",
            "patient/Obs-ervation.rs",
            "user/*.rs?category=x",
            "patient/Observation.rs?",
        ] {
            assert_eq!(Scope::parse(raw), None, "{raw}");
        }
        let scopes = Scopes::parse("openid fhirUser patient/Observation.rs launch");
        assert_eq!(scopes.iter().count(), 1);
    }
}
