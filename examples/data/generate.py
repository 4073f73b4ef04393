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

GP, ACUTE, COMMUNITY = "riverside-gp", "northgate-acute", "valley-community"
GP_ORG = {"reference": "Organization/riverside", "identifier": {"system": ODS, "value": "A81001"},
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
        "generalPractitioner": [GP_ORG],
        "link": [{"other": {"reference": f"Patient/{local}-old"}, "type": "replaces"}],
    }
    if partner == GP:
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
    add(partner, who, r, security=security)


def careplan(partner, who, id, category, title, activity, start, status="active", security=None):
    r = {"resourceType": "CarePlan", "id": id, "status": status, "intent": "plan", "title": title,
         "category": [cc(SCT, *category)], "subject": subject(partner, who),
         "period": {"start": start}, "activity": [{"detail": {"status": "in-progress", "code": cc(SCT, *activity)}}]}
    add(partner, who, r, security=security)


for who, p in PATIENTS.items():
    for partner in p["at"]:
        patient(partner, who)

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

for (partner, who), resources in sorted(bundles.items()):
    folder = HERE / partner
    folder.mkdir(exist_ok=True)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    (folder / f"{who}.json").write_text(json.dumps(bundle, indent=1) + "\n")
    print(f"{partner}/{who}.json: {len(resources)} resources")
