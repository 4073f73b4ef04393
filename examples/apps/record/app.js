// The Shared Care Record app: after a SMART launch, the patient's merged record by
// type, each partner's status from the searchset's report, the constant notice, and
// the facade's own words when it refuses (an objection's 403, for one).
"use strict";

const REPORT = "https://shcr-facade.example.org/fhir/StructureDefinition/partner-report";
const TYPES = [
  ["AllergyIntolerance", "Allergies"],
  ["MedicationStatement", "Medications"],
  ["MedicationRequest", "Prescriptions"],
  ["Condition", "Problems and diagnoses"],
  ["Immunization", "Immunisations"],
  ["Observation", "Observations and test results"],
  ["DiagnosticReport", "Reports"],
  ["Encounter", "Encounters: admissions, clinics, consultations"],
  ["ServiceRequest", "Referrals"],
  ["Procedure", "Procedures"],
  ["CarePlan", "Care plans"],
];

const $ = (id) => document.getElementById(id);
const text = (tag, value, cls) => {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (cls) el.className = cls;
  return el;
};

function concept(c) {
  if (!c) return "";
  const list = Array.isArray(c) ? c : [c];
  return list.map((x) => x.text || (x.coding || []).map((d) => d.display || d.code).find(Boolean) || "").filter(Boolean).join(", ");
}

function what(r) {
  return concept(r.code) || concept(r.vaccineCode) || concept(r.medicationCodeableConcept)
    || (r.medicationReference && r.medicationReference.display) || concept(r.type) || concept(r.category) || r.title || r.id;
}

function when(r) {
  const p = (x) => x && (x.start || x.end);
  return r.effectiveDateTime || p(r.effectivePeriod) || r.onsetDateTime || r.recordedDate || r.occurrenceDateTime
    || r.authoredOn || p(r.period) || r.performedDateTime || p(r.performedPeriod) || r.issued || r.dateAsserted || "";
}

function status(r) {
  return r.status || concept(r.clinicalStatus) || "";
}

// The facade's partner id is the first part of every facade id.
function from(r) {
  return r.id && r.id.includes(".") ? r.id.split(".")[0] : "";
}

// What the facade said when it refused: its OperationOutcome's words.
function refusal(error) {
  const message = String(error && error.message || error);
  const at = message.indexOf("\n\n{");
  if (at >= 0) {
    try {
      const outcome = JSON.parse(message.slice(at + 2));
      const issue = (outcome.issue || [])[0] || {};
      return (issue.details && issue.details.text) || issue.diagnostics || message;
    } catch (_) { /* not JSON */ }
  }
  return message;
}

const reports = new Map();
const warnings = new Set();

function absorb(bundle) {
  for (const entry of bundle.entry || []) {
    if (!entry.search || entry.search.mode !== "outcome") continue;
    for (const issue of entry.resource.issue || []) {
      const words = (issue.details && issue.details.text) || issue.diagnostics || "";
      const report = (issue.extension || []).find((e) => e.url === REPORT);
      if (report) {
        const field = (name) => (report.extension.find((e) => e.url === name) || {});
        const org = words.split(":")[0];
        const entries = field("entries").valueUnsignedInt || 0;
        const seen = reports.get(org) || { status: field("status").valueCode, entries: 0, latency: 0 };
        seen.entries += entries;
        seen.latency = Math.max(seen.latency, (field("latency").valueDuration || {}).value || 0);
        if (seen.status === "ok" || seen.status === "patient-not-known") seen.status = field("status").valueCode;
        reports.set(org, seen);
      } else if (issue.severity === "information" && words) {
        $("notice").textContent = words;
        $("notice").hidden = false;
      } else if (issue.severity === "warning" && words) {
        warnings.add(words);
      }
    }
  }
}

function showReports() {
  const body = $("partners").querySelector("tbody");
  body.replaceChildren();
  for (const [org, r] of reports) {
    const row = document.createElement("tr");
    const tone = r.status === "ok" ? "status-ok" : r.status === "patient-not-known" ? "status-none" : "status-bad";
    row.append(text("td", org), text("td", r.status, tone), text("td", r.entries), text("td", `${r.latency} ms`));
    body.append(row);
  }
  $("warnings").replaceChildren(...[...warnings].map((w) => text("li", w)));
  $("partners").hidden = reports.size === 0;
}

function section(type, title, resources) {
  const wrap = document.createElement("section");
  wrap.id = type;
  wrap.append(text("h2", `${title} (${resources.length})`));
  if (resources.length === 0) return wrap;
  const table = document.createElement("table");
  const head = document.createElement("tr");
  head.append(text("th", "What"), text("th", "When"), text("th", "Status"), text("th", "From"));
  table.append(head);
  for (const r of resources) {
    const row = document.createElement("tr");
    row.dataset.id = r.id;
    row.append(text("td", what(r)), text("td", when(r)), text("td", status(r)), text("td", from(r), "from"));
    table.append(row);
  }
  wrap.append(table);
  return wrap;
}

async function show(client) {
  const patient = await client.patient.read();
  const name = (patient.name || [])[0] || {};
  const nhs = ((patient.identifier || []).find((i) => i.system === "https://fhir.nhs.uk/Id/nhs-number") || {}).value;
  $("patient").textContent = `${(name.given || []).join(" ")} ${name.family || ""} · NHS ${nhs || patient.id} · born ${patient.birthDate || "?"}`;
  for (const [type, title] of TYPES) {
    const bundle = await client.request(`${type}?patient=${encodeURIComponent(client.patient.id)}&_count=200`);
    absorb(bundle);
    const matches = (bundle.entry || []).filter((e) => e.search && e.search.mode === "match").map((e) => e.resource);
    $("record").append(section(type, title, matches));
  }
  showReports();
  document.body.dataset.ready = "true";
}

FHIR.oauth2.ready()
  .then((client) => show(client).catch((error) => {
    $("patient").textContent = "";
    $("refused").textContent = refusal(error);
    $("refused").hidden = false;
    document.body.dataset.ready = "refused";
  }))
  .catch((error) => {
    $("patient").textContent = "";
    $("refused").textContent = `The launch did not complete: ${error && error.message || error}`;
    $("refused").hidden = false;
    document.body.dataset.ready = "failed";
  });
