//! The clinical areas of a GP Connect structured record, and which of them a request
//! for some FHIR types must ask for.

use crate::fhir::ResourceType;

/// An `include*` parameter of `$gpc.getstructuredrecord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Allergies,
    Medication,
    Problems,
    Immunisations,
    Consultations,
    Uncategorised,
    Investigations,
    Referrals,
}

impl Area {
    pub const ALL: [Area; 8] = [
        Area::Allergies,
        Area::Medication,
        Area::Problems,
        Area::Immunisations,
        Area::Consultations,
        Area::Uncategorised,
        Area::Investigations,
        Area::Referrals,
    ];

    /// The request parameter that asks for the area.
    pub fn parameter(self) -> &'static str {
        match self {
            Area::Allergies => "includeAllergies",
            Area::Medication => "includeMedication",
            Area::Problems => "includeProblems",
            Area::Immunisations => "includeImmunisations",
            Area::Consultations => "includeConsultations",
            Area::Uncategorised => "includeUncategorisedData",
            Area::Investigations => "includeInvestigations",
            Area::Referrals => "includeReferrals",
        }
    }

    /// As a professional would name it.
    pub fn label(self) -> &'static str {
        match self {
            Area::Allergies => "allergies",
            Area::Medication => "medications",
            Area::Problems => "problems",
            Area::Immunisations => "immunisations",
            Area::Consultations => "consultations",
            Area::Uncategorised => "uncategorised data",
            Area::Investigations => "investigations",
            Area::Referrals => "referrals",
        }
    }

    /// The area whose SNOMED CT List code this is (the primary Lists of a record).
    pub fn of_list_code(code: &str) -> Option<Area> {
        Some(match code {
            "886921000000105" | "1103671000000101" => Area::Allergies,
            "933361000000108" => Area::Medication,
            "717711000000103" => Area::Problems,
            "1102181000000102" => Area::Immunisations,
            "1149501000000101" => Area::Consultations,
            "826501000000100" => Area::Uncategorised,
            "887191000000108" => Area::Investigations,
            "792931000000107" => Area::Referrals,
            _ => return None,
        })
    }

    /// The area a parameter name (or `name.part`) belongs to.
    pub fn of_parameter(name: &str) -> Option<Area> {
        let top = name.split('.').next().unwrap_or(name);
        Area::ALL.into_iter().find(|a| a.parameter() == top)
    }

    /// The areas that hold records of `resource_type` (none: it comes with every
    /// record, as the patient and the practice's directory do).
    pub fn holding(resource_type: ResourceType) -> &'static [Area] {
        match resource_type.as_str() {
            "AllergyIntolerance" => &[Area::Allergies],
            "MedicationStatement" | "MedicationRequest" | "Medication" => &[Area::Medication],
            "Condition" => &[Area::Problems],
            "Immunization" => &[Area::Immunisations],
            "Encounter" => &[Area::Consultations],
            "Observation" => &[Area::Uncategorised, Area::Investigations],
            "DiagnosticReport" => &[Area::Investigations],
            "ServiceRequest" => &[Area::Referrals, Area::Investigations],
            _ => &[],
        }
    }
}

/// A set of areas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas(u16);

impl Areas {
    pub fn with(mut self, area: Area) -> Areas {
        self.0 |= 1 << area as u16;
        self
    }

    pub fn contains(self, area: Area) -> bool {
        self.0 & (1 << area as u16) != 0
    }

    pub fn union(self, other: Areas) -> Areas {
        Areas(self.0 | other.0)
    }

    pub fn covers(self, other: Areas) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Area> {
        Area::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// What to ask for so that records of `types` arrive and can be judged by what
    /// they point at: each clinical item names the consultation it was recorded in,
    /// a consultation the problems it was about, a problem the items of any area
    /// linked to it; so one clinical type needs every area. Only the patient and the
    /// practice's directory, which come with every record, need none.
    pub fn needed_for(types: impl IntoIterator<Item = ResourceType>) -> Areas {
        match types.into_iter().any(|t| !Area::holding(t).is_empty()) {
            true => Area::ALL.into_iter().fold(Areas::default(), Areas::with),
            false => Areas::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_clinical_type_needs_the_whole_record_and_the_directory_none() {
        let areas = Areas::needed_for([ResourceType::named("AllergyIntolerance")]);
        assert_eq!(areas.iter().collect::<Vec<_>>(), Area::ALL);
        assert!(Areas::needed_for([ResourceType::patient()]).is_empty());
        assert!(Areas::needed_for([ResourceType::named("Organization")]).is_empty());
        assert!(areas.covers(Areas::needed_for([ResourceType::named("Encounter")])));
        assert_eq!(
            Area::holding(ResourceType::named("Observation")),
            [Area::Uncategorised, Area::Investigations]
        );
    }

    #[test]
    fn lists_and_parameters_name_their_areas() {
        assert_eq!(
            Area::of_list_code("1103671000000101"),
            Some(Area::Allergies)
        );
        assert_eq!(
            Area::of_parameter("includeMedication.medicationSearchFromDate"),
            Some(Area::Medication)
        );
        assert_eq!(Area::of_parameter("includeDiaryEntries"), None);
    }
}
