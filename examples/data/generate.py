#!/usr/bin/env python3
"""Writes the synthetic partner data in examples/data/<partner id>/.

Run from anywhere: python3 examples/data/generate.py. The output is committed; the
tests rely on its contents (see README.md here), so change both together.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

SDS_USER = "https://fhir.nhs.uk/Id/sds-user-id"
GMC = "https://fhir.hl7.org.uk/Id/gmc-number"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DIAG_CAT = "http://terminology.hl7.org/CodeSystem/v2-0074"

GP, ACUTE, COMMUNITY = "riverside-gp", "northgate-acute", "valley-community"
# The registered practice and GP, as the GP's own records name them (the practice's
# directory is served by the GP); the trusts know the practice by its ODS code only.
GP_PRACTICE = {"reference": "Organization/riverside", "type": "Organization",
               "identifier": {"system": ODS, "value": "A81001"}, "display": "Riverside Medical Practice"}
GP_DOCTOR = {"reference": "Practitioner/dr-okafor", "type": "Practitioner",
             "identifier": {"system": SDS_USER, "value": "G8133438"}, "display": "Dr Adaeze Okafor"}
GP_ORG = {"type": "Organization", "identifier": {"system": ODS, "value": "A81001"},
          "display": "Riverside Medical Practice"}

# NHS numbers in the 999 test range, valid check digits.
PATIENTS = {
    "alice": dict(nhs="9990000018", family="Jones", given=["Alice", "Mary"], gender="female", birth="1958-04-12",
                  at={GP: "P1001", ACUTE: "MRN100234", COMMUNITY: "C-0007"}),
    "brian": dict(nhs="9990000026", family="Patel", given=["Brian"], gender="male", birth="1971-09-30",
                  at={GP: "P1002", ACUTE: "MRN100871"}),
    "chloe": dict(nhs="9990000034", family="Smith", given=["Chloe"], gender="female", birth="1995-02-14",
                  at={GP: "P1003"}),
    "david": dict(nhs="9990000042", family="Evans", given=["David", "John"], gender="male", birth="1984-11-02",
                  at={GP: "P1004", ACUTE: "MRN101552", COMMUNITY: "C-0031"}),
    "emma": dict(nhs="9990000050", family="Wilson", given=["Emma"], gender="female", birth="1989-06-21",
                 at={GP: "P1005", ACUTE: "MRN102210"}),
    "farah": dict(nhs="9990000069", family="Khan", given=["Farah"], gender="female", birth="2001-03-08",
                  at={ACUTE: "MRN103007"}),
    "sam": dict(nhs="9990000077", family="Brown", given=["Sam"], gender="male", birth="1992-07-19",
                at={GP: "P1007", ACUTE: "MRN103390"}),
    "hannah": dict(nhs="9990000085", family="Taylor", given=["Hannah"], gender="female", birth="1966-12-01",
                   at={GP: "P1008", ACUTE: "MRN104118", COMMUNITY: "C-0102"}),
    "ian": dict(nhs="9990000093", family="Morris", given=["Ian"], gender="male", birth="1949-01-25",
                at={COMMUNITY: "C-0150"}),
}

bundles = {}  # (partner, patient key) -> [resources]


def add(partner, who, resource, updated="2025-01-15T09:00:00Z", security=None):
    resource.setdefault("meta", {})["lastUpdated"] = updated
    if security:
        resource["meta"]["security"] = [{"system": CONF, "code": security}]
    bundles.setdefault((partner, who), []).append(resource)


def subject(partner, who):
    return {"reference": f"Patient/{PATIENTS[who]['at'][partner]}"}


def cc(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def patient(partner, who):
    p = PATIENTS[who]
    local = p["at"][partner]
    identifiers = [{"system": NHS, "value": p["nhs"]}]
    if partner == ACUTE:
        identifiers.append({"system": "https://northgate.nhs.example/Id/mrn", "value": local})
    resource = {
        "resourceType": "Patient", "id": local, "identifier": identifiers,
        "name": [{"use": "official", "family": p["family"], "given": p["given"]}],
        "gender": p["gender"], "birthDate": p["birth"],
        "generalPractitioner": [GP_PRACTICE, GP_DOCTOR] if partner == GP else [GP_ORG],
        "link": [{"other": {"reference": f"Patient/{local}-old"}, "type": "replaces"}],
    }
    if partner == GP:
        resource["managingOrganization"] = GP_PRACTICE
        resource["telecom"] = [{"system": "phone", "value": "01632 960" + p["nhs"][-3:], "use": "home"}]
        resource["address"] = [{"line": [f"{int(p['nhs'][-3:])} Mill Lane"], "city": "Riverside", "postalCode": "RV1 4AB"}]
    else:
        # Older demographics at the hospital and community trusts: the GP is authoritative.
        resource["name"][0]["given"] = p["given"][:1]
        resource["address"] = [{"line": ["Old address"], "city": "Northgate", "postalCode": "NG9 9ZZ"}]
    add(partner, who, resource, updated="2024-06-01T12:00:00Z")


def medication(partner, who, id, code, display, start, status="active", reason=None, security=None):
    r = {"resourceType": "MedicationStatement", "id": id, "status": status,
         "category": cc("http://terminology.hl7.org/CodeSystem/medication-statement-category", "community", "Community"),
         "medicationCodeableConcept": cc(SCT, code, display), "subject": subject(partner, who),
         "effectivePeriod": {"start": start}, "dateAsserted": start}
    if reason:
        r["reasonCode"] = [cc(SCT, *reason)]
    add(partner, who, r, security=security)


def allergy(partner, who, id, code, display, category, recorded, identifier=None):
    r = {"resourceType": "AllergyIntolerance", "id": id,
         "clinicalStatus": cc(ALLERGY_CLINICAL, "active", "Active"),
         "verificationStatus": cc(ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
         "category": [category], "code": cc(SCT, code, display), "patient": subject(partner, who),
         "recordedDate": recorded}
    if identifier:
        r["identifier"] = [identifier]
    add(partner, who, r)


def observation(partner, who, id, system, code, display, when, value=None, unit=None, ucum=None,
                category="vital-signs", coded_value=None, security=None):
    r = {"resourceType": "Observation", "id": id, "status": "final",
         "category": [cc(OBS_CAT, category, category.replace("-", " ").capitalize())],
         "code": cc(system, code, display), "subject": subject(partner, who), "effectiveDateTime": when}
    if value is not None:
        r["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": ucum}
    if coded_value:
        r["valueCodeableConcept"] = cc(SCT, *coded_value)
    add(partner, who, r, updated=when if "T" in when else when + "T12:00:00Z", security=security)


def encounter(partner, who, id, cls, code, display, start, end, security=None):
    r = {"resourceType": "Encounter", "id": id, "status": "finished",
         "class": {"system": ACT, "code": cls},
         "type": [cc(SCT, code, display)], "subject": subject(partner, who),
         "period": {"start": start, "end": end}}
    if partner == ACUTE:
        r["serviceProvider"] = {"reference": "Organization/northgate", "display": "Northgate Hospitals NHS Trust"}
        r["participant"] = [{"individual": CONSULTANT}]
    add(partner, who, r, security=security)
    return r


def careplan(partner, who, id, category, title, activity, start, status="active", security=None):
    r = {"resourceType": "CarePlan", "id": id, "status": status, "intent": "plan", "title": title,
         "category": [cc(SCT, *category)], "subject": subject(partner, who),
         "period": {"start": start}, "activity": [{"detail": {"status": "in-progress", "code": cc(SCT, *activity)}}]}
    add(partner, who, r, security=security)


def condition(partner, who, id, system, code, display, onset, recorded=None, status="active", security=None):
    r = {"resourceType": "Condition", "id": id,
         "clinicalStatus": cc(COND_CLINICAL, status, status.capitalize()),
         "verificationStatus": cc(COND_VERIFICATION, "confirmed", "Confirmed"),
         "category": [cc(COND_CATEGORY, "problem-list-item", "Problem List Item")],
         "code": cc(system, code, display), "subject": subject(partner, who),
         "onsetDateTime": onset, "recordedDate": recorded or onset}
    if status == "resolved":
        r["abatementDateTime"] = recorded or onset
    add(partner, who, r, security=security)
    return r


def immunization(partner, who, id, code, display, when, status="completed"):
    r = {"resourceType": "Immunization", "id": id, "status": status,
         "vaccineCode": cc(SCT, code, display), "patient": subject(partner, who),
         "occurrenceDateTime": when, "primarySource": True}
    if status == "not-done":
        r["statusReason"] = cc(SCT, "591000119102", "Vaccine refused by patient")
    add(partner, who, r)


def prescription(partner, who, id, medication_id, start, requester=None, reason=None, status="active"):
    r = {"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
         "medicationReference": {"reference": f"Medication/{medication_id}"},
         "subject": subject(partner, who), "authoredOn": start,
         "dosageInstruction": [{"text": "As directed"}]}
    if requester:
        r["requester"] = requester
    if reason:
        r["reasonReference"] = [{"reference": reason}]
    add(partner, who, r)


def procedure(partner, who, id, code, display, when, status="completed", part_of_encounter=None,
              security=None):
    r = {"resourceType": "Procedure", "id": id, "status": status,
         "category": cc(SCT, "387713003", "Surgical procedure"),
         "code": cc(SCT, code, display), "subject": subject(partner, who), "performedDateTime": when}
    if part_of_encounter:
        r["encounter"] = {"reference": f"Encounter/{part_of_encounter}"}
    add(partner, who, r, security=security)


def report(partner, who, id, code, display, when, results, category="LAB"):
    r = {"resourceType": "DiagnosticReport", "id": id, "status": "final",
         "category": [cc(DIAG_CAT, category, {"LAB": "Laboratory", "HM": "Haematology", "CUS": "Cardiac Ultrasound"}.get(category, category))],
         "code": cc(LOINC, code, display), "subject": subject(partner, who),
         "effectiveDateTime": when, "issued": when + "T17:00:00Z" if "T" not in when else when,
         "result": [{"reference": f"Observation/{o}"} for o in results]}
    add(partner, who, r)


def referral(partner, who, id, code, display, when, requester=None, status="active"):
    r = {"resourceType": "ServiceRequest", "id": id, "status": status, "intent": "order",
         "category": [cc(SCT, "3457005", "Patient referral")],
         "code": cc(SCT, code, display), "subject": subject(partner, who), "authoredOn": when}
    if requester:
        r["requester"] = requester
    add(partner, who, r)


def directory(partner, resource):
    resource.setdefault("meta", {})["lastUpdated"] = "2024-01-01T00:00:00Z"
    bundles.setdefault((partner, "directory"), []).append(resource)


for who, p in PATIENTS.items():
    for partner in p["at"]:
        patient(partner, who)

# The GP practice's directory: the practice, its GP and her role there; the
# medicines its prescriptions name.
directory(GP, {"resourceType": "Organization", "id": "riverside", "active": True,
               "identifier": [{"system": ODS, "value": "A81001"}],
               "type": [cc("https://fhir.nhs.uk/CodeSystem/organisation-role", "76", "GP Practice")],
               "name": "Riverside Medical Practice",
               "address": [{"line": ["1 Surgery Lane"], "city": "Riverside", "postalCode": "RV1 1AA"}]})
directory(GP, {"resourceType": "Practitioner", "id": "dr-okafor", "active": True,
               "identifier": [{"system": SDS_USER, "value": "G8133438"}, {"system": GMC, "value": "7023214"}],
               "name": [{"family": "Okafor", "given": ["Adaeze"], "prefix": ["Dr"]}]})
directory(GP, {"resourceType": "PractitionerRole", "id": "role-okafor", "active": True,
               "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "100192515119"}],
               "practitioner": {"reference": "Practitioner/dr-okafor"},
               "organization": {"reference": "Organization/riverside"},
               "code": [cc(SCT, "62247001", "General practitioner")]})
MEDICINES = {
    "medication-amlodipine": ("319283006", "Amlodipine 5mg tablets"),
    "medication-atorvastatin": ("320000009", "Atorvastatin 20mg tablets"),
    "medication-ramipril": ("318902002", "Ramipril 5mg capsules"),
    "medication-salbutamol": ("320176004", "Salbutamol 100micrograms/dose inhaler"),
    "medication-sertraline": ("321961002", "Sertraline 50mg tablets"),
    "medication-folic": ("319771009", "Folic acid 400microgram tablets"),
    "medication-testosterone": ("3456711000001103", "Testosterone 50mg/5g gel"),
    "medication-levothyroxine": ("315262001", "Levothyroxine 100microgram tablets"),
}
for id, (code, display) in MEDICINES.items():
    directory(GP, {"resourceType": "Medication", "id": id, "code": cc(SCT, code, display),
                   "form": cc(SCT, "385055001", "Tablet") if "tablets" in display else None})
for resource in bundles[(GP, "directory")]:
    if resource.get("form") is None:
        resource.pop("form", None)
# The hospital's directory: itself and a consultant.
directory(ACUTE, {"resourceType": "Organization", "id": "northgate", "active": True,
                  "identifier": [{"system": ODS, "value": "RX1"}],
                  "type": [cc("https://fhir.nhs.uk/CodeSystem/organisation-role", "197", "NHS Trust")],
                  "name": "Northgate Hospitals NHS Trust"})
directory(ACUTE, {"resourceType": "Practitioner", "id": "dr-hughes", "active": True,
                  "identifier": [{"system": GMC, "value": "4412908"}],
                  "name": [{"family": "Hughes", "given": ["Gareth"], "prefix": ["Dr"]}]})
CONSULTANT = {"reference": "Practitioner/dr-hughes", "display": "Dr Gareth Hughes"}
GP_REQUESTER = {"reference": "Practitioner/dr-okafor", "display": "Dr Adaeze Okafor"}

# Alice: at all three partners, the richest record; used for paging and merge tests.
for month in range(1, 13):
    observation(GP, "alice", f"obs-alice-bp-{month:02d}", LOINC, "8480-6", "Systolic blood pressure",
                f"2024-{month:02d}-10T09:30:00Z", 128 + month, "mmHg", "mm[Hg]")
for i in range(8):
    observation(ACUTE, "alice", f"obs-alice-hr-{i + 1}", LOINC, "8867-4", "Heart rate",
                f"2024-{i + 3:02d}-21T14:00:00Z", 72 + i, "beats/minute", "/min")
for i in range(6):
    observation(COMMUNITY, "alice", f"obs-alice-wt-{i + 1}", LOINC, "29463-7", "Body weight",
                f"2023-{i * 2 + 1:02d}-05", 71.5 + i / 2, "kg", "kg")
observation(GP, "alice", "obs-alice-hba1c", LOINC, "59261-8", "Haemoglobin A1c level (IFCC)", "2024-05-02",
            48, "mmol/mol", "mmol/mol", category="laboratory")
medication(GP, "alice", "med-alice-amlodipine", "319283006", "Amlodipine 5mg tablets", "2021-03-01")
medication(GP, "alice", "med-alice-atorvastatin", "320000009", "Atorvastatin 20mg tablets", "2022-07-15")
medication(ACUTE, "alice", "med-alice-metformin", "325278007", "Metformin 500mg tablets", "2024-05-20")
medication(COMMUNITY, "alice", "med-alice-paracetamol", "322236009", "Paracetamol 500mg tablets", "2023-01-05",
           status="completed")
# The same penicillin allergy at the GP and (copied via GP Connect) at the hospital.
shared_allergy = {"system": "https://riverside.nhs.example/Id/allergy", "value": "ALG-1001"}
allergy(GP, "alice", "alg-alice-penicillin", "91936005", "Allergy to penicillin", "medication", "2009-02-11",
        identifier=shared_allergy)
allergy(ACUTE, "alice", "alg-alice-pen-copy", "91936005", "Allergy to penicillin", "medication", "2009-02-11",
        identifier=shared_allergy)
allergy(ACUTE, "alice", "alg-alice-latex", "300916003", "Latex allergy", "environment", "2024-05-18")
encounter(GP, "alice", "enc-alice-review", "AMB", "185389009", "Follow-up visit", "2024-05-02T10:00:00Z",
          "2024-05-02T10:15:00Z")
encounter(ACUTE, "alice", "enc-alice-admission", "IMP", "183452005", "Emergency hospital admission",
          "2024-05-17T22:10:00Z", "2024-05-21T11:00:00Z")
encounter(COMMUNITY, "alice", "enc-alice-dn-visit", "HH", "439708006", "Home visit", "2024-06-03T09:00:00Z",
          "2024-06-03T09:40:00Z")
careplan(GP, "alice", "cp-alice-diabetes", ("734163000", "Care plan"), "Type 2 diabetes care plan",
         ("698360004", "Diabetes self management plan"), "2024-05-02")
careplan(COMMUNITY, "alice", "cp-alice-wound", ("734163000", "Care plan"), "Leg ulcer dressing plan",
         ("225358003", "Wound care"), "2024-06-03", status="completed")

# Brian: GP and hospital. Sexual health clinic attendance at the hospital (sensitive).
medication(GP, "brian", "med-brian-ramipril", "318902002", "Ramipril 5mg capsules", "2019-10-01")
allergy(GP, "brian", "alg-brian-peanut", "91935009", "Allergy to peanuts", "food", "1990-04-01")
observation(GP, "brian", "obs-brian-bp", LOINC, "8480-6", "Systolic blood pressure", "2025-02-11T08:50:00Z",
            142, "mmHg", "mm[Hg]")
encounter(ACUTE, "brian", "enc-brian-gum", "AMB", "431654006", "Genitourinary medicine clinic",
          "2024-11-04T15:00:00Z", "2024-11-04T15:30:00Z")
encounter(ACUTE, "brian", "enc-brian-fracture", "EMER", "50849002", "Emergency room admission",
          "2023-08-12T19:00:00Z", "2023-08-12T23:45:00Z")

# Chloe: GP only. Sexual health: chlamydia diagnosis, GUM attendance, treatment.
observation(GP, "chloe", "obs-chloe-chlamydia", SCT, "312099009", "Genitourinary chlamydia infection",
            "2024-09-09", category="exam", coded_value=("10828004", "Positive"))
encounter(GP, "chloe", "enc-chloe-gum", "AMB", "185180001", "Seen in GUM clinic", "2024-09-05T11:00:00Z",
          "2024-09-05T11:20:00Z")
medication(GP, "chloe", "med-chloe-doxycycline", "324481003", "Doxycycline 100mg capsules", "2024-09-09",
           status="completed", reason=("312099009", "Genitourinary chlamydia infection"))
medication(GP, "chloe", "med-chloe-salbutamol", "320176004", "Salbutamol 100micrograms/dose inhaler",
           "2015-03-01")
observation(GP, "chloe", "obs-chloe-peak-flow", LOINC, "19935-6", "Peak expiratory flow", "2024-02-14",
            420, "L/min", "L/min")

# David: all three. Mental health care at the community trust, labelled restricted.
medication(GP, "david", "med-david-sertraline", "321961002", "Sertraline 50mg tablets", "2022-01-10")
observation(GP, "david", "obs-david-phq9", LOINC, "44261-6", "PHQ-9 total score", "2024-10-01", 14,
            "{score}", "{score}", category="survey")
encounter(ACUTE, "david", "enc-david-ed", "EMER", "50849002", "Emergency room admission", "2024-10-20T02:00:00Z",
          "2024-10-20T06:00:00Z")
encounter(COMMUNITY, "david", "enc-david-crisis", "AMB", "703978000", "Mental health crisis assessment",
          "2024-10-21T10:00:00Z", "2024-10-21T11:30:00Z", security="V")
careplan(COMMUNITY, "david", "cp-david-mh", ("718347000", "Mental health care plan"), "Crisis and recovery plan",
         ("410225009", "Psychotherapy"), "2024-10-21", security="R")

# Emma: GP and hospital. IVF treatment (sensitive: fertility).
careplan(ACUTE, "emma", "cp-emma-ivf", ("734163000", "Care plan"), "Fertility treatment plan",
         ("393132003", "In vitro fertilisation"), "2024-02-01", security="R")
encounter(ACUTE, "emma", "enc-emma-embryo", "AMB", "75456002", "Embryo transfer", "2024-04-16T09:00:00Z",
          "2024-04-16T10:00:00Z")
medication(GP, "emma", "med-emma-progesterone", "126109000", "Progesterone 400mg pessaries", "2024-04-16",
           status="completed", reason=("393132003", "In vitro fertilisation"))
medication(GP, "emma", "med-emma-folic", "319771009", "Folic acid 400microgram tablets", "2023-12-01")
allergy(GP, "emma", "alg-emma-latex", "300916003", "Latex allergy", "environment", "2012-06-30")

# Farah: hospital only. Termination of pregnancy (sensitive), labelled very restricted.
encounter(ACUTE, "farah", "enc-farah-top", "AMB", "57797005", "Induced termination of pregnancy",
          "2024-07-08T08:30:00Z", "2024-07-08T13:00:00Z", security="V")
medication(ACUTE, "farah", "med-farah-mifepristone", "327036005", "Mifepristone 200mg tablets", "2024-07-06",
           status="completed", reason=("57797005", "Induced termination of pregnancy"))
careplan(ACUTE, "farah", "cp-farah-top-follow-up", ("734163000", "Care plan"), "Follow-up after procedure",
         ("57797005", "Induced termination of pregnancy"), "2024-07-08", status="completed")
observation(ACUTE, "farah", "obs-farah-hb", LOINC, "718-7", "Haemoglobin", "2024-07-06T08:00:00Z", 121, "g/L",
            "g/L", category="laboratory")

# Sam: GP and hospital. Gender identity clinic and gender reassignment (sensitive).
observation(GP, "sam", "obs-sam-dysphoria", SCT, "93461009", "Gender dysphoria", "2021-05-05",
            category="exam", coded_value=("52101004", "Present"), security="R")
encounter(ACUTE, "sam", "enc-sam-gic", "AMB", "1101621000000101", "Seen in gender identity clinic",
          "2022-01-12T14:00:00Z", "2022-01-12T15:00:00Z")
medication(GP, "sam", "med-sam-testosterone", "3456711000001103", "Testosterone 50mg/5g gel",
           "2022-03-01", reason=("93461009", "Gender dysphoria"))
careplan(GP, "sam", "cp-sam-gender", ("734163000", "Care plan"), "Shared care plan",
         ("282272009", "Gender reassignment patient"), "2022-03-01")
observation(GP, "sam", "obs-sam-bp", LOINC, "8480-6", "Systolic blood pressure", "2025-01-20T10:00:00Z", 118,
            "mmHg", "mm[Hg]")

# Hannah: all three. She will object to sharing (recorded by the privacy officer).
medication(GP, "hannah", "med-hannah-levothyroxine", "315262001", "Levothyroxine 100microgram tablets",
           "2010-08-01")
observation(ACUTE, "hannah", "obs-hannah-tsh", LOINC, "3016-3", "Thyroid stimulating hormone", "2024-03-01",
            2.1, "mU/L", "m[IU]/L", category="laboratory")
encounter(COMMUNITY, "hannah", "enc-hannah-physio", "AMB", "308447003", "Referral to physiotherapist",
          "2024-04-10T13:00:00Z", "2024-04-10T13:45:00Z")
careplan(COMMUNITY, "hannah", "cp-hannah-physio", ("734163000", "Care plan"), "Back pain rehabilitation",
         ("91251008", "Physical therapy procedure"), "2024-04-10")

# Ian: community only (district nursing).
encounter(COMMUNITY, "ian", "enc-ian-dn", "HH", "439708006", "Home visit", "2025-03-03T10:00:00Z",
          "2025-03-03T10:30:00Z")
careplan(COMMUNITY, "ian", "cp-ian-pressure", ("734163000", "Care plan"), "Pressure area care",
         ("225365006", "Care of pressure area"), "2025-03-03")
observation(COMMUNITY, "ian", "obs-ian-smoking", LOINC, "72166-2", "Tobacco smoking status", "2025-03-03",
            category="social-history", coded_value=("8517006", "Ex-smoker"))

# Problems, immunisations and prescriptions at the GP; procedures, reports with their
# results, and referrals at the hospital; the community trust's own for Ian.
condition(GP, "alice", "cond-alice-diabetes", SCT, "44054006", "Type 2 diabetes mellitus", "2019-03-14")
condition(GP, "alice", "cond-alice-hypertension", SCT, "38341003", "Hypertensive disorder", "2015-06-01")
immunization(GP, "alice", "imm-alice-flu", "1181000221105", "Influenza vaccine", "2024-10-04")
immunization(GP, "alice", "imm-alice-covid", "1119349007", "SARS-CoV-2 mRNA vaccine", "2024-10-04")
prescription(GP, "alice", "rx-alice-amlodipine", "medication-amlodipine", "2024-09-01", GP_REQUESTER,
             reason="Condition/cond-alice-hypertension")
prescription(GP, "alice", "rx-alice-atorvastatin", "medication-atorvastatin", "2024-09-01", GP_REQUESTER)
report(ACUTE, "alice", "rep-alice-ecg", "11524-6", "EKG study", "2024-05-18",
       ["obs-alice-hr-1", "obs-alice-hr-2"], category="CUS")
procedure(ACUTE, "alice", "proc-alice-angiogram", "33367005", "Coronary angiography", "2024-05-19T10:00:00Z",
          part_of_encounter="enc-alice-admission")
referral(ACUTE, "alice", "ref-alice-cardiac-rehab", "183314002", "Referral to cardiac rehabilitation",
         "2024-05-21", requester=CONSULTANT)
condition(COMMUNITY, "alice", "cond-alice-ulcer", SCT, "402863005", "Venous leg ulcer", "2024-06-03")

condition(GP, "brian", "cond-brian-hypertension", SCT, "38341003", "Hypertensive disorder", "2019-09-30")
immunization(GP, "brian", "imm-brian-flu", "1181000221105", "Influenza vaccine", "2024-10-11",
             status="not-done")
prescription(GP, "brian", "rx-brian-ramipril", "medication-ramipril", "2024-10-01", GP_REQUESTER,
             reason="Condition/cond-brian-hypertension")
# A sexually transmitted infection at the hospital, and an ordinary-looking review
# whose reason is that Condition: both withheld.
condition(ACUTE, "brian", "cond-brian-syphilis", ICD10, "A53.9", "Syphilis, unspecified", "2024-11-04")
review = encounter(ACUTE, "brian", "enc-brian-review", "AMB", "185389009", "Follow-up visit",
                   "2024-12-02T10:00:00Z", "2024-12-02T10:20:00Z")
review["reasonReference"] = [{"reference": "Condition/cond-brian-syphilis"}]
observation(ACUTE, "brian", "obs-brian-xray", LOINC, "36643-5", "XR Chest 2 Views", "2023-08-12T20:00:00Z",
            category="imaging", coded_value=("17621005", "Normal"))
report(ACUTE, "brian", "rep-brian-xray", "36643-5", "XR Chest 2 Views", "2023-08-12",
       ["obs-brian-xray"], category="RAD")
procedure(ACUTE, "brian", "proc-brian-cast", "26517008", "Application of cast", "2023-08-12T21:00:00Z",
          part_of_encounter="enc-brian-fracture")
referral(ACUTE, "brian", "ref-brian-fracture-clinic", "306106000", "Referral to fracture clinic", "2023-08-12",
         requester=CONSULTANT)

condition(GP, "chloe", "cond-chloe-asthma", SCT, "195967001", "Asthma", "2005-01-20")
condition(GP, "chloe", "cond-chloe-chlamydia", SCT, "312099009", "Genitourinary chlamydia infection",
          "2024-09-09", status="resolved")
immunization(GP, "chloe", "imm-chloe-hpv", "428741008", "Human papillomavirus vaccine", "2008-09-15")
prescription(GP, "chloe", "rx-chloe-salbutamol", "medication-salbutamol", "2024-02-14", GP_REQUESTER,
             reason="Condition/cond-chloe-asthma")

condition(GP, "david", "cond-david-depression", SCT, "35489007", "Depressive disorder", "2021-11-01")
immunization(GP, "david", "imm-david-tetanus", "333621002", "Tetanus vaccine", "2018-06-01")
prescription(GP, "david", "rx-david-sertraline", "medication-sertraline", "2024-10-01", GP_REQUESTER,
             reason="Condition/cond-david-depression")
observation(ACUTE, "david", "obs-david-paracetamol-level", LOINC, "3298-7", "Paracetamol level",
            "2024-10-20T03:00:00Z", 12, "mg/L", "mg/L", category="laboratory")
report(ACUTE, "david", "rep-david-tox", "24323-8", "Comprehensive metabolic panel", "2024-10-20",
       ["obs-david-paracetamol-level"])
procedure(ACUTE, "david", "proc-david-suture", "30549001", "Suture of wound", "2024-10-20T04:00:00Z",
          part_of_encounter="enc-david-ed")
referral(ACUTE, "david", "ref-david-mh", "183524004", "Referral to psychiatry service", "2024-10-20",
         requester=CONSULTANT)

condition(GP, "emma", "cond-emma-anaemia", SCT, "87522002", "Iron deficiency anaemia", "2023-11-20")
immunization(GP, "emma", "imm-emma-pertussis", "1303503001", "Pertussis vaccine", "2023-12-10")
prescription(GP, "emma", "rx-emma-folic", "medication-folic", "2023-12-01", GP_REQUESTER)
observation(ACUTE, "emma", "obs-emma-ferritin", LOINC, "2276-4", "Ferritin", "2024-01-10T09:00:00Z", 9,
            "ug/L", "ug/L", category="laboratory")
report(ACUTE, "emma", "rep-emma-bloods", "24360-0", "Hemoglobin and Hematocrit panel", "2024-01-10",
       ["obs-emma-ferritin"], category="HM")
procedure(ACUTE, "emma", "proc-emma-scan", "268445003", "Ultrasound scan of pelvis", "2024-01-25T11:00:00Z")
referral(ACUTE, "emma", "ref-emma-gynae", "183546000", "Referral to gynaecology service", "2023-12-15",
         requester=CONSULTANT)

# Farah: a termination of pregnancy as a Procedure, and an ordinary-looking blood
# result that is part of it, in a report: all withheld.
condition(ACUTE, "farah", "cond-farah-anaemia", SCT, "87522002", "Iron deficiency anaemia", "2024-07-06")
proc = {"resourceType": "Procedure", "id": "proc-farah-top", "status": "completed",
        "code": cc(SCT, "386639001", "Termination of pregnancy"), "subject": subject(ACUTE, "farah"),
        "performedDateTime": "2024-07-08T10:00:00Z"}
add(ACUTE, "farah", proc)
observation(ACUTE, "farah", "obs-farah-hb-post", LOINC, "718-7", "Haemoglobin", "2024-07-08T15:00:00Z", 112,
            "g/L", "g/L", category="laboratory")
bundles[(ACUTE, "farah")][-1]["partOf"] = [{"reference": "Procedure/proc-farah-top"}]
report(ACUTE, "farah", "rep-farah-fbc", "58410-2", "Complete blood count panel", "2024-07-08",
       ["obs-farah-hb-post"], category="HM")
report(ACUTE, "farah", "rep-farah-preop", "58410-2", "Complete blood count panel", "2024-07-06",
       ["obs-farah-hb"], category="HM")
immunization(ACUTE, "farah", "imm-farah-hepb", "34689006", "Hepatitis B vaccine", "2024-07-06")
prescription(ACUTE, "farah", "rx-farah-iron", "medication-ferrous", "2024-07-08", CONSULTANT,
             reason="Condition/cond-farah-anaemia")
directory(ACUTE, {"resourceType": "Medication", "id": "medication-ferrous",
                  "code": cc(SCT, "325173008", "Ferrous sulfate 200mg tablets")})
referral(ACUTE, "farah", "ref-farah-gp", "306206005", "Referral to general practitioner", "2024-07-08",
         requester=CONSULTANT)

condition(GP, "sam", "cond-sam-asthma", SCT, "195967001", "Asthma", "2001-05-10", status="inactive")
# Gender dysphoria as a problem, and an ordinary-looking prescription whose reason it
# is: both withheld.
condition(GP, "sam", "cond-sam-dysphoria", SCT, "93461009", "Gender dysphoria", "2021-05-05")
prescription(GP, "sam", "rx-sam-testosterone", "medication-testosterone", "2024-03-01", GP_REQUESTER,
             reason="Condition/cond-sam-dysphoria")
immunization(GP, "sam", "imm-sam-flu", "1181000221105", "Influenza vaccine", "2024-10-20")
observation(ACUTE, "sam", "obs-sam-lipids", LOINC, "2093-3", "Cholesterol", "2024-02-02T09:00:00Z", 4.8,
            "mmol/L", "mmol/L", category="laboratory")
report(ACUTE, "sam", "rep-sam-lipids", "57698-3", "Lipid panel", "2024-02-02", ["obs-sam-lipids"])
procedure(ACUTE, "sam", "proc-sam-mole", "177302008", "Excision of skin lesion", "2024-02-20T14:00:00Z")
referral(ACUTE, "sam", "ref-sam-derm", "183528001", "Referral to dermatology service", "2024-01-10",
         requester=CONSULTANT)

condition(GP, "hannah", "cond-hannah-hypothyroid", SCT, "40930008", "Hypothyroidism", "2010-07-20")
immunization(GP, "hannah", "imm-hannah-flu", "1181000221105", "Influenza vaccine", "2024-10-10")
prescription(GP, "hannah", "rx-hannah-levothyroxine", "medication-levothyroxine", "2024-08-01", GP_REQUESTER,
             reason="Condition/cond-hannah-hypothyroid")
report(ACUTE, "hannah", "rep-hannah-tft", "24348-5", "Thyroid function panel", "2024-03-01", ["obs-hannah-tsh"])
procedure(ACUTE, "hannah", "proc-hannah-injection", "90105005", "Soft tissue injection", "2024-03-15T10:00:00Z")
referral(ACUTE, "hannah", "ref-hannah-physio", "308447003", "Referral to physiotherapist", "2024-03-15",
         requester=CONSULTANT)

# Ian: the community trust's district nurses record his problems, vaccinations, wound
# care, bloods, referrals and nurse prescriptions.
condition(COMMUNITY, "ian", "cond-ian-pressure-ulcer", SCT, "399912005", "Pressure ulcer", "2025-02-20")
immunization(COMMUNITY, "ian", "imm-ian-flu", "1181000221105", "Influenza vaccine", "2024-10-15")
procedure(COMMUNITY, "ian", "proc-ian-dressing", "182531007", "Dressing of wound", "2025-03-03T10:10:00Z",
          part_of_encounter="enc-ian-dn")
observation(COMMUNITY, "ian", "obs-ian-albumin", LOINC, "1751-7", "Albumin", "2025-02-25", 33, "g/L", "g/L",
            category="laboratory")
report(COMMUNITY, "ian", "rep-ian-bloods", "24323-8", "Comprehensive metabolic panel", "2025-02-25",
       ["obs-ian-albumin"])
referral(COMMUNITY, "ian", "ref-ian-dietitian", "103699006", "Referral to dietitian", "2025-03-03")
ian_rx = {"resourceType": "MedicationRequest", "id": "rx-ian-dressings", "status": "active", "intent": "order",
          "medicationCodeableConcept": cc(SCT, "3391711000001104", "Silicone foam dressing"),
          "subject": subject(COMMUNITY, "ian"), "authoredOn": "2025-03-03",
          "reasonReference": [{"reference": "Condition/cond-ian-pressure-ulcer"}]}
add(COMMUNITY, "ian", ian_rx)

for (partner, who), resources in sorted(bundles.items()):
    folder = HERE / partner
    folder.mkdir(exist_ok=True)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    (folder / f"{who}.json").write_text(json.dumps(bundle, indent=1) + "\n")
    print(f"{partner}/{who}.json: {len(resources)} resources")

# The GP Connect practice's structured records (STU3), in their own module.
import gp_connect  # noqa: E402

gp_connect.write(HERE)
