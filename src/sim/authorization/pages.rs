//! The development authorization server's pages: sign-in (who you are, and for a
//! standalone launch which patient), the EHR launcher, and errors that cannot go back
//! to the app. Plain HTML forms; every value shown is escaped.

use super::clients::USERS;

/// A patient one may pick.
#[derive(Debug, Clone)]
pub struct PickablePatient {
    pub nhs_number: String,
    pub name: String,
}

impl PickablePatient {
    /// The patients among `resources` (Patient resources, R4 or STU3), each NHS number
    /// once, in NHS number order.
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> Vec<PickablePatient> {
        let mut found: std::collections::BTreeMap<String, String> = Default::default();
        for patient in resources
            .into_iter()
            .filter(|r| r["resourceType"] == "Patient")
        {
            let Some(nhs) = crate::federation::identity::nhs_number_of(patient) else {
                continue;
            };
            let name = &patient["name"][0];
            let given: Vec<&str> = name["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str())
                .collect();
            let label = format!(
                "{} {}, born {}",
                given.join(" "),
                name["family"].as_str().unwrap_or_default(),
                patient["birthDate"].as_str().unwrap_or("?")
            );
            found.entry(nhs.to_string()).or_insert(label);
        }
        found
            .into_iter()
            .map(|(nhs_number, name)| PickablePatient { nhs_number, name })
            .collect()
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1d2a33; }}
h1 {{ font-size: 1.4rem; }} fieldset {{ border: 1px solid #c8d1d8; margin: 1rem 0; padding: .8rem 1rem; }}
label {{ display: block; margin: .35rem 0; }} .note {{ color: #55626c; font-size: .9rem; }}
button {{ font-size: 1rem; padding: .45rem 1.1rem; margin-right: .6rem; }} input[type=url] {{ width: 100%; }}
.dev {{ background: #fff4d6; border: 1px solid #e6c35c; padding: .5rem .8rem; }}
</style></head>
<body><p class="dev">Development sign-in of the shcr-facade demo: no passwords, test data only.</p>
{body}</body></html>"#,
        title = escape(title)
    )
}

fn users(selected: Option<&str>) -> String {
    USERS
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let checked = match selected {
                Some(key) => key == u.key,
                None => i == 0,
            };
            format!(
                r#"<label><input type="radio" name="user" value="{}"{}> {}</label>"#,
                u.key,
                if checked { " checked" } else { "" },
                escape(u.label)
            )
        })
        .collect()
}

fn patients(list: &[PickablePatient]) -> String {
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                r#"<label><input type="radio" name="patient" value="{}"{}> {} <span class="note">NHS {}</span></label>"#,
                escape(&p.nhs_number),
                if i == 0 { " checked" } else { "" },
                escape(&p.name),
                escape(&p.nhs_number)
            )
        })
        .collect()
}

/// Sign-in for a pending authorization: the user, and the patient when the app asked
/// for one (`launch/patient`).
pub fn sign_in(
    pending: &str,
    app: &str,
    scopes: &str,
    pick_patient: Option<&[PickablePatient]>,
) -> String {
    let patient_part = match pick_patient {
        Some(list) => format!(
            r#"<fieldset><legend>Patient (standalone launch: <code>launch/patient</code>)</legend>{}</fieldset>"#,
            patients(list)
        ),
        None => String::new(),
    };
    page(
        "Sign in",
        &format!(
            r#"<h1>Sign in to the Shared Care Record</h1>
<p><strong>{app}</strong> asks for <code>{scopes}</code>.</p>
<form method="post" action="authorize">
<input type="hidden" name="pending" value="{pending}">
<fieldset><legend>Who you are</legend>{users}</fieldset>
{patient_part}
<p class="note">The scopes granted are those asked for that the user may have.</p>
<button type="submit" name="decision" value="allow" id="allow">Sign in and allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>"#,
            app = escape(app),
            scopes = escape(scopes),
            pending = escape(pending),
            users = users(None),
        ),
    )
}

/// The EHR launcher: a patient, a user and an app, launched with `launch` and `iss`.
pub fn launcher(list: &[PickablePatient], app_url: &str, fhir_base: &str) -> String {
    page(
        "EHR launcher",
        &format!(
            r#"<h1>EHR launcher</h1>
<p>Launches a SMART app as a clinical system would: in a patient's context, for the
signed-in user, with <code>launch</code> and <code>iss</code>.</p>
<form method="post" action="launcher">
<fieldset><legend>Patient</legend>{patients}</fieldset>
<fieldset><legend>User</legend>{users}</fieldset>
<fieldset><legend>App</legend>
<label>Launch URL <input type="url" name="app" value="{app_url}"></label>
<label>FHIR server (<code>iss</code>) <input type="url" name="iss" value="{fhir_base}"></label>
</fieldset>
<button type="submit" id="launch">Launch</button>
</form>"#,
            patients = patients(list),
            users = users(None),
            app_url = escape(app_url),
            fhir_base = escape(fhir_base),
        ),
    )
}

/// An error that must not be sent to the app (its client or redirect URI is not
/// registered), shown to the person instead.
pub fn error(title: &str, detail: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1><p id=\"error\">{}</p>",
            escape(title),
            escape(detail)
        ),
    )
}
