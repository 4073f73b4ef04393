//! Code lists a deployer gives the facade (`[[policy.code_lists]]`), read at start:
//! SNOMED CT RF2 simple refsets as NHS TRUD distributes them, FHIR R4 ValueSets, and
//! CSV `system,code`; and the RF2 relationship snapshot, whose active is-a rows make
//! every descendant of a listed concept match as the concept does. A file that
//! cannot be read stops the start, naming the file and line.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::categories::{CodeList, SNOMED, SensitiveCategory, value_set_codes};

/// The header of an RF2 simple refset file (extended refsets add columns after).
const REFSET_HEADER: [&str; 6] = [
    "id",
    "effectiveTime",
    "active",
    "moduleId",
    "refsetId",
    "referencedComponentId",
];
/// The header of an RF2 relationship file.
const RELATIONSHIP_HEADER: [&str; 10] = [
    "id",
    "effectiveTime",
    "active",
    "moduleId",
    "sourceId",
    "destinationId",
    "relationshipGroup",
    "typeId",
    "characteristicTypeId",
    "modifierId",
];
/// SNOMED CT's is-a relationship type.
const IS_A: &str = "116680003";

/// A problem with a code list file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

fn problem(file: &Path, line: Option<usize>, reason: impl Into<String>) -> Problem {
    Problem {
        file: file.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// Reads one code list for `category`, its format told by its content: an RF2
/// refset header, a JSON ValueSet, or CSV.
pub fn load(file: &Path, category: SensitiveCategory) -> Result<CodeList, Problem> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| problem(file, None, format!("cannot be read: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let first = text.lines().next().unwrap_or_default();
    let codes = if first.split('\t').take(6).eq(REFSET_HEADER) {
        refset(file, text)?
    } else if text.trim_start().starts_with('{') {
        value_set(file, text)?
    } else {
        csv(file, text)?
    };
    if codes.is_empty() {
        return Err(problem(file, None, "lists no active codes"));
    }
    Ok(CodeList {
        category,
        source: file.display().to_string(),
        codes,
    })
}

/// An RF2 simple refset: the latest row (by effectiveTime) of each member id wins,
/// and only active members are listed.
fn refset(file: &Path, text: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut latest: HashMap<&str, (&str, bool, &str)> = HashMap::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let line_no = Some(number + 1);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        if fields.len() < REFSET_HEADER.len() {
            return Err(problem(
                file,
                line_no,
                "fewer than the 6 columns of a simple refset",
            ));
        }
        let (id, time, active, component) = (fields[0], fields[1], fields[2], fields[5]);
        check_time(file, line_no, time)?;
        let active = parse_active(file, line_no, active)?;
        check_sctid(file, line_no, "referencedComponentId", component)?;
        if latest.get(id).is_none_or(|(t, _, _)| time >= *t) {
            latest.insert(id, (time, active, component));
        }
    }
    let mut codes: Vec<(String, String)> = latest
        .into_values()
        .filter(|(_, active, _)| *active)
        .map(|(_, _, component)| (SNOMED.to_string(), component.to_string()))
        .collect();
    codes.sort();
    codes.dedup();
    Ok(codes)
}

fn value_set(file: &Path, text: &str) -> Result<Vec<(String, String)>, Problem> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| problem(file, Some(e.line()), format!("not JSON: {e}")))?;
    if value["resourceType"] != "ValueSet" {
        return Err(problem(file, None, "JSON, but not a FHIR ValueSet"));
    }
    fhir_codec::validate_r4_json(&value)
        .map_err(|e| problem(file, None, format!("not a valid R4 ValueSet: {e}")))?;
    value_set_codes(&value).map_err(|e| problem(file, None, e))
}

/// `system,code` per line; a header line `system,code` is allowed.
fn csv(file: &Path, text: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut codes = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (number == 0 && line.eq_ignore_ascii_case("system,code")) {
            continue;
        }
        let unquote = |s: &str| s.trim().trim_matches('"').to_string();
        let Some((system, code)) = line.split_once(',') else {
            return Err(problem(
                file,
                Some(number + 1),
                "not system,code (nor an RF2 refset or a ValueSet)",
            ));
        };
        let (system, code) = (unquote(system), unquote(code));
        if !system.contains(':') || code.is_empty() || code.contains(',') {
            return Err(problem(
                file,
                Some(number + 1),
                "not system,code: the system is a URI (http://snomed.info/sct), the code one value",
            ));
        }
        if system == SNOMED {
            check_sctid(file, Some(number + 1), "code", &code)?;
        }
        codes.push((system, code));
    }
    Ok(codes)
}

/// The is-a hierarchy from an RF2 relationship file (snapshot, or full: the latest
/// row of each relationship id wins): parent concept -> its children, active is-a
/// rows only.
pub fn load_relationships(file: &Path) -> Result<HashMap<u64, Vec<u64>>, Problem> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| problem(file, None, format!("cannot be read: {e}")))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim_end_matches('\r');
    if !header.split('\t').eq(RELATIONSHIP_HEADER) {
        return Err(problem(
            file,
            Some(1),
            "not an RF2 relationship file (id effectiveTime active moduleId sourceId destinationId relationshipGroup typeId characteristicTypeId modifierId)",
        ));
    }
    let mut latest: HashMap<&str, (&str, bool, u64, u64)> = HashMap::new();
    for (number, line) in lines.enumerate() {
        let line_no = Some(number + 2);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        if fields.len() != RELATIONSHIP_HEADER.len() {
            return Err(problem(
                file,
                line_no,
                "not the 10 columns of a relationship file",
            ));
        }
        if fields[7] != IS_A {
            continue;
        }
        let (id, time) = (fields[0], fields[1]);
        check_time(file, line_no, time)?;
        let active = parse_active(file, line_no, fields[2])?;
        let source = check_sctid(file, line_no, "sourceId", fields[4])?;
        let destination = check_sctid(file, line_no, "destinationId", fields[5])?;
        if latest.get(id).is_none_or(|(t, ..)| time >= *t) {
            latest.insert(id, (time, active, source, destination));
        }
    }
    let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
    for (_, active, child, parent) in latest.into_values() {
        if active {
            children.entry(parent).or_default().push(child);
        }
    }
    Ok(children)
}

fn check_time(file: &Path, line: Option<usize>, time: &str) -> Result<(), Problem> {
    match time.len() == 8 && time.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(()),
        false => Err(problem(
            file,
            line,
            format!("effectiveTime '{time}' is not YYYYMMDD"),
        )),
    }
}

fn parse_active(file: &Path, line: Option<usize>, active: &str) -> Result<bool, Problem> {
    match active {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(problem(
            file,
            line,
            format!("active '{other}' is not 0 or 1"),
        )),
    }
}

/// A SNOMED CT id: 6 to 18 digits (kept as text elsewhere: a spreadsheet once
/// turned such codes into `1.69E+16`).
fn check_sctid(file: &Path, line: Option<usize>, column: &str, id: &str) -> Result<u64, Problem> {
    let digits = (6..=18).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
    match digits.then(|| id.parse::<u64>().ok()).flatten() {
        Some(id) => Ok(id),
        None => Err(problem(
            file,
            line,
            format!("{column} '{id}' is not a SNOMED CT id (6-18 digits)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn refsets_keep_the_latest_active_row_of_each_member() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "der2_Refset_SimpleSnapshot.txt",
            "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\n\
             a\t20200101\t1\t999000011000000103\t999004381000000103\t111111\n\
             a\t20230101\t0\t999000011000000103\t999004381000000103\t111111\n\
             b\t20230101\t1\t999000011000000103\t999004381000000103\t222222\n\
             c\t20230101\t0\t999000011000000103\t999004381000000103\t333333\n\
             c\t20240101\t1\t999000011000000103\t999004381000000103\t333333\n",
        );
        let list = load(&file, SensitiveCategory::SexualHealth).unwrap();
        let codes: Vec<&str> = list.codes.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(codes, ["222222", "333333"]);
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let header = "id\teffectiveTime\tactive\tmoduleId\trefsetId\treferencedComponentId\n";
        for (text, line, says) in [
            (format!("{header}a\t20200101\t1\tm\tr\t1.69E+16\n"), Some(2), "not a SNOMED CT id"),
            (format!("{header}a\t2020\t1\tm\tr\t123456\n"), Some(2), "YYYYMMDD"),
            (format!("{header}a\t20200101\tyes\tm\tr\t123456\n"), Some(2), "not 0 or 1"),
            ("system,code\nhttp://snomed.info/sct 123456\n".to_string(), Some(2), "not system,code"),
            ("{\"resourceType\": \"ValueSet\",\n \"status\": }".to_string(), Some(2), "not JSON"),
            ("{\"resourceType\": \"CodeSystem\", \"status\": \"active\", \"content\": \"complete\"}".to_string(), None, "not a FHIR ValueSet"),
        ] {
            let file = write(&dir, "list.txt", &text);
            let found = load(&file, SensitiveCategory::Gender).unwrap_err();
            assert_eq!(found.line, line, "{found}");
            assert!(found.to_string().contains(says), "{found}");
            assert!(found.to_string().contains("list.txt"), "{found}");
        }
    }

    #[test]
    fn csv_and_value_sets_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            &dir,
            "list.csv",
            "system,code\nhttp://hl7.org/fhir/sid/icd-10,A63.0\n\"http://snomed.info/sct\",\"123456\"\n",
        );
        assert_eq!(
            load(&csv, SensitiveCategory::SexualHealth)
                .unwrap()
                .codes
                .len(),
            2
        );
        let value_set = write(
            &dir,
            "vs.json",
            r#"{"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": "http://snomed.info/sct", "concept": [{"code": "123456"}, {"code": "234567"}]}]}}"#,
        );
        assert_eq!(
            load(&value_set, SensitiveCategory::Fertility)
                .unwrap()
                .codes
                .len(),
            2
        );
    }

    #[test]
    fn relationships_give_active_is_a_children() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "sct2_Relationship_Snapshot.txt",
            "id\teffectiveTime\tactive\tmoduleId\tsourceId\tdestinationId\trelationshipGroup\ttypeId\tcharacteristicTypeId\tmodifierId\n\
             r1\t20200101\t1\t900000000000207008\t222222\t111111\t0\t116680003\t900000000000011006\t900000000000451002\n\
             r2\t20200101\t1\t900000000000207008\t333333\t111111\t0\t363698007\t900000000000011006\t900000000000451002\n\
             r3\t20200101\t1\t900000000000207008\t444444\t111111\t0\t116680003\t900000000000011006\t900000000000451002\n\
             r3\t20220101\t0\t900000000000207008\t444444\t111111\t0\t116680003\t900000000000011006\t900000000000451002\n",
        );
        let children = load_relationships(&file).unwrap();
        assert_eq!(
            children[&111111],
            vec![222222],
            "is-a only, inactive rows dropped"
        );
    }
}
