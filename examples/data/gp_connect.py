"""GP Connect structured records (FHIR STU3) for the simulated GP Connect practice,
Meadowbank Surgery: one collection Bundle per registered patient, holding every
clinical area with its SNOMED CT-coded List, as a practice's whole record would. The
simulator answers each request with the areas it asks for.

Written by generate.py into examples/data/meadowbank-gp/.
"""
import json

SCT = "http://snomed.info/sct"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE = "https://fhir.nhs.uk/Id/sds-role-profile-id"
UCUM = "http://unitsofmeasure.org"
STU3_SD = "https://fhir.nhs.uk/STU3/StructureDefinition/"
HL7UK_SD = "https://fhir.hl7.org.uk/STU3/StructureDefinition/"
WARNING = STU3_SD + "Extension-CareConnect-GPC-ListWarningCode-1"
DATA_ID = "https://meadowbank.nhs.example/Id/record"

PRACTICE_ODS = "B82005"
PRACTICE = "Organization/meadowbank"
GP = "Practitioner/dr-rahman"


def cc(code, display, system=SCT):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def ref(target):
    return {"reference": target}


def ident(value):
    return [{"system": DATA_ID, "value": value}]


def profile(name):
    return {"profile": [STU3_SD + f"CareConnect-GPC-{name}-1"]}


def a_list(list_id, code, title, patient, items, warnings=(), contained=None, encounter=None, extension=None):
    resource = {"resourceType": "List", "id": list_id, "meta": profile("List"), "status": "current",
                "mode": "snapshot", "title": title, "code": cc(code, title), "subject": ref(patient),
                "date": "2025-06-01", "orderedBy": cc("event-date", "Sorted by Event Date",
                                                      "http://hl7.org/fhir/list-order")}
    if encounter:
        resource["encounter"] = ref(encounter)
    ext = [{"url": WARNING, "valueCode": w} for w in warnings]
    if extension:
        ext.extend(extension)
    if ext:
        resource["extension"] = ext
    if contained:
        resource["contained"] = contained
    if items:
        resource["entry"] = [{"item": ref(i)} for i in items]
    else:
        resource["emptyReason"] = cc("no-content-recorded", "No Content Recorded",
                                     "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-ListEmptyReasonCode-1")
        resource["note"] = [{"text": "Information not available"}]
    return resource


def directory():
    return [
        {"resourceType": "Organization", "id": "meadowbank", "meta": profile("Organization"),
         "identifier": [{"system": ODS, "value": PRACTICE_ODS}], "name": "Meadowbank Surgery",
         "telecom": [{"system": "phone", "value": "01632 960700", "use": "work"}],
         "address": [{"line": ["2 Meadow Road"], "city": "Meadowbank", "postalCode": "MB1 2CD"}]},
        {"resourceType": "Practitioner", "id": "dr-rahman", "meta": profile("Practitioner"),
         "identifier": [{"system": SDS_USER, "value": "G8888881"}],
         "name": [{"use": "usual", "family": "Rahman", "given": ["Nadia"], "prefix": ["Dr"]}], "gender": "female"},
        {"resourceType": "PractitionerRole", "id": "dr-rahman-role", "meta": profile("PractitionerRole"),
         "identifier": [{"system": SDS_ROLE, "value": "100200300400"}],
         "practitioner": ref(GP), "organization": ref(PRACTICE),
         "code": [cc("R0260", "General Medical Practitioner",
                     "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1")]},
        {"resourceType": "Location", "id": "meadowbank-site", "meta": profile("Location"),
         "name": "Meadowbank Surgery", "managingOrganization": ref(PRACTICE)},
    ]


def patient(pid, nhs, family, given, gender, birth):
    return {"resourceType": "Patient", "id": pid, "meta": profile("Patient"),
            "extension": [{"url": STU3_SD + "Extension-CareConnect-GPC-RegistrationDetails-1",
                           "extension": [{"url": "registrationPeriod", "valuePeriod": {"start": "2012-04-01"}},
                                         {"url": "registrationType", "valueCodeableConcept": cc(
                                             "R", "Regular", "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1")}]}],
            "identifier": [{"system": NHS, "value": nhs, "extension": [{
                "url": HL7UK_SD + "Extension-CareConnect-NHSNumberVerificationStatus-1",
                "valueCodeableConcept": cc("01", "Number present and verified",
                                           "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1")}]}],
            "name": [{"use": "official", "family": family, "given": given}], "gender": gender, "birthDate": birth,
            "address": [{"use": "home", "line": ["9 Orchard Close"], "city": "Meadowbank", "postalCode": "MB1 4EF"}],
            "generalPractitioner": [ref(GP)], "managingOrganization": ref(PRACTICE)}


def encounter(eid, pat, code, display, start, end):
    return {"resourceType": "Encounter", "id": eid, "meta": profile("Encounter"), "identifier": ident(eid),
            "status": "finished", "type": [cc(code, display)], "subject": ref(pat),
            "participant": [
                {"type": [cc("REC", "recorder", "https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-ParticipantType-1")],
                 "individual": ref(GP)},
                {"type": [cc("PPRF", "primary performer", "http://hl7.org/fhir/v3/ParticipationType")],
                 "individual": ref(GP)}],
            "period": {"start": start, "end": end}, "location": [{"location": ref("Location/meadowbank-site")}],
            "serviceProvider": ref(PRACTICE)}


def consultation(cid, enc, title, pat, topics):
    """A consultation's structure: the consultation List and one topic List per
    (problem, items) pair."""
    lists = []
    topic_ids = []
    for n, (problem, items) in enumerate(topics, 1):
        tid = f"{cid}-topic-{n}"
        topic_ids.append(f"List/{tid}")
        ext = []
        if problem:
            ext = [{"url": HL7UK_SD + "Extension-CareConnect-RelatedProblemHeader-1",
                    "extension": [{"url": "target", "valueReference": ref(problem)}]}]
        lists.append(a_list(tid, "25851000000105", "Topic (extended)", pat, items, encounter=enc, extension=ext))
    lists.insert(0, a_list(cid, "325851000000107", title, pat, topic_ids, encounter=enc))
    return lists


def medication(mid, code, display):
    return {"resourceType": "Medication", "id": mid, "meta": profile("Medication"), "code": cc(code, display)}


def plan_and_statement(key, pat, med, start, status, dose, enc=None, issues=(), end=None):
    plan = {"resourceType": "MedicationRequest", "id": f"mr-{key}-plan", "meta": profile("MedicationRequest"),
            "identifier": ident(f"mr-{key}-plan"),
            "extension": [{"url": STU3_SD + "Extension-CareConnect-GPC-PrescriptionType-1",
                           "valueCodeableConcept": cc("repeat", "Repeat",
                                                      "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-PrescriptionType-1")}],
            "status": status, "intent": "plan", "medicationReference": ref(f"Medication/{med}"),
            "subject": ref(pat), "authoredOn": start, "requester": {"agent": ref(GP)}, "recorder": ref(GP),
            "dosageInstruction": [{"text": dose}],
            "dispenseRequest": {"validityPeriod": {"start": start},
                                "quantity": {"value": 28, "unit": "capsule"},
                                "expectedSupplyDuration": {"value": 28, "unit": "day", "system": UCUM, "code": "d"}}}
    if enc:
        plan["context"] = ref(enc)
    statement = {"resourceType": "MedicationStatement", "id": f"ms-{key}", "meta": profile("MedicationStatement"),
                 "identifier": ident(f"ms-{key}"),
                 "extension": [{"url": STU3_SD + "Extension-CareConnect-GPC-PrescribingAgency-1",
                                "valueCodeableConcept": cc("prescribed-at-gp-practice", "Prescribed at GP practice",
                                                           "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-PrescribingAgency-1")}],
                 "basedOn": [ref(f"MedicationRequest/mr-{key}-plan")], "status": status,
                 "medicationReference": ref(f"Medication/{med}"),
                 "effectivePeriod": {"start": start, **({"end": end} if end else {})},
                 "dateAsserted": start, "subject": ref(pat), "taken": "unk",
                 "dosage": [{"text": dose, "patientInstruction": "Take with water"}]}
    if enc:
        statement["context"] = ref(enc)
    orders = []
    for n, date in enumerate(issues, 1):
        orders.append({"resourceType": "MedicationRequest", "id": f"mr-{key}-issue-{n}",
                       "meta": profile("MedicationRequest"), "identifier": ident(f"mr-{key}-issue-{n}"),
                       "basedOn": [ref(f"MedicationRequest/mr-{key}-plan")], "status": "completed", "intent": "order",
                       "medicationReference": ref(f"Medication/{med}"), "subject": ref(pat), "authoredOn": date,
                       "requester": {"agent": ref(GP)}, "recorder": ref(GP),
                       "dosageInstruction": [{"text": dose}],
                       "dispenseRequest": {"validityPeriod": {"start": date},
                                           "quantity": {"value": 28, "unit": "capsule"}}})
    return [statement, plan] + orders


def problem(pid, pat, code, display, onset, status, related=(), enc=None, abated=None, system=SCT):
    condition = {"resourceType": "Condition", "id": pid, "meta": {"profile": [STU3_SD + "CareConnect-GPC-ProblemHeader-Condition-1"]},
                 "identifier": ident(pid),
                 "extension": [{"url": HL7UK_SD + "Extension-CareConnect-ProblemSignificance-1", "valueCode": "major"}]
                 + [{"url": HL7UK_SD + "Extension-CareConnect-RelatedClinicalContent-1", "valueReference": ref(r)}
                    for r in related],
                 "clinicalStatus": status,
                 "category": [cc("problem-list-item", "Problem List Item",
                                 "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-ConditionCategory-1")],
                 "code": cc(code, display, system), "subject": ref(pat), "onsetDateTime": onset,
                 "assertedDate": onset, "asserter": ref(GP)}
    if enc:
        condition["context"] = ref(enc)
    if abated:
        condition["abatementDateTime"] = abated
    return condition


def immunisation(iid, pat, code, display, date, procedure, given=True, enc=None):
    imm = {"resourceType": "Immunization", "id": iid, "meta": profile("Immunization"), "identifier": ident(iid),
           "extension": [{"url": HL7UK_SD + "Extension-CareConnect-VaccinationProcedure-1",
                          "valueCodeableConcept": cc(*procedure)},
                         {"url": STU3_SD + "Extension-CareConnect-GPC-DateRecorded-1", "valueDateTime": date}],
           "status": "completed", "notGiven": not given, "vaccineCode": cc(code, display), "patient": ref(pat),
           "date": date, "primarySource": True,
           "practitioner": [{"role": cc("EP", "Entering Provider", "http://hl7.org/fhir/v2/0443"), "actor": ref(GP)}]}
    if given:
        imm["vaccinationProtocol"] = [{"doseSequence": 1, "targetDisease": [cc("6142004", "Influenza")],
                                       "doseStatus": cc("count", "Counts", "http://hl7.org/fhir/vaccination-protocol-dose-status")}]
    else:
        imm["explanation"] = {"reasonNotGiven": [cc("591000119102", "Vaccine refused by patient")]}
    if enc:
        imm["encounter"] = ref(enc)
    return imm


def ian():
    pat = "Patient/ian-2"
    out = [patient("ian-2", "9990000093", "Morris", ["Ian"], "male", "1949-01-25")] + directory()
    out.append({"resourceType": "Organization", "id": "northgate-resp", "identifier": [{"system": ODS, "value": "RX1"}],
                "name": "Northgate Hospitals NHS Trust respiratory clinic"})
    out += [encounter("cons-1", pat, "185317003", "Telephone encounter", "2025-03-10T10:00:00+00:00",
                      "2025-03-10T10:15:00+00:00"),
            encounter("cons-2", pat, "11429006", "Consultation", "2016-08-02T11:00:00+01:00",
                      "2016-08-02T11:20:00+01:00")]
    # Allergies: one active, one ended (contained in its List, as GP Connect sends it).
    penicillin = {"resourceType": "AllergyIntolerance", "id": "alg-penicillin", "meta": profile("AllergyIntolerance"),
                  "identifier": ident("alg-penicillin"),
                  "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/encounter-associatedEncounter",
                                 "valueReference": ref("Encounter/cons-1")}],
                  "clinicalStatus": "active", "verificationStatus": "unconfirmed", "category": ["medication"],
                  "code": cc("91936005", "Allergy to penicillin"), "patient": ref(pat),
                  "onsetDateTime": "2001-05-01", "assertedDate": "2001-05-03", "recorder": ref(GP),
                  "reaction": [{"manifestation": [cc("271807003", "Eruption of skin")], "severity": "moderate"}]}
    latex = {"resourceType": "AllergyIntolerance", "id": "alg-latex", "meta": profile("AllergyIntolerance"),
             "extension": [{"url": STU3_SD + "Extension-CareConnect-GPC-AllergyIntoleranceEnd-1",
                            "extension": [{"url": "endDate", "valueDateTime": "2019-02-01"},
                                          {"url": "reasonEnded", "valueString": "No longer reacts"}]}],
             "clinicalStatus": "resolved", "verificationStatus": "unconfirmed", "category": ["environment"],
             "code": cc("300916003", "Latex allergy"), "patient": ref(pat), "assertedDate": "2008-01-10",
             "recorder": ref(GP)}
    out.append(penicillin)
    out.append(a_list("list-allergies", "886921000000105", "Allergies and adverse reactions", pat,
                      ["AllergyIntolerance/alg-penicillin"]))
    out.append(a_list("list-ended-allergies", "1103671000000101", "Ended allergies", pat,
                      ["#alg-latex"], contained=[latex]))
    # Medications: ramipril (repeats, issues), and a course from the 2016 consultation.
    out += [medication("med-ramipril", "408051007", "Ramipril 5mg capsules"),
            medication("med-benzathine", "39732311000001104", "Benzathine benzylpenicillin 2.4million unit injection")]
    ramipril = plan_and_statement("ramipril", pat, "med-ramipril", "2019-05-01", "active",
                                  "One capsule once a day", enc="Encounter/cons-1", issues=["2025-02-01", "2025-03-01"])
    benzathine = plan_and_statement("benzathine", pat, "med-benzathine", "2016-08-02", "completed",
                                    "Single injection", enc="Encounter/cons-2", end="2016-08-02")
    out += ramipril + benzathine
    out.append(a_list("list-medications", "933361000000108", "Medications and medical devices", pat,
                      ["MedicationStatement/ms-ramipril", "MedicationStatement/ms-benzathine"]))
    # Problems. The practice withheld one item itself (confidential-items); the 2016
    # syphilis problem it did not, and the facade's own lists must.
    out += [problem("prob-copd", pat, "13645005", "Chronic obstructive lung disease", "2015-11-01", "active",
                    related=["Observation/obs-smoking"]),
            problem("prob-hypertension", pat, "38341003", "Hypertensive disorder", "2019-05-01", "active",
                    related=["MedicationStatement/ms-ramipril", "Observation/obs-bp"], enc="Encounter/cons-1"),
            problem("prob-syphilis", pat, "76272004", "Syphilis", "2016-08-02", "inactive",
                    related=["MedicationStatement/ms-benzathine"], enc="Encounter/cons-2", abated="2016-11-01")]
    out.append(a_list("list-problems", "717711000000103", "Problems", pat,
                      ["Condition/prob-copd", "Condition/prob-hypertension", "Condition/prob-syphilis"],
                      warnings=["confidential-items"]))
    # Immunisations: one given, one declined in a consultation.
    out += [immunisation("imm-flu", pat, "1181000221105", "Influenza vaccine", "2024-10-12",
                         ("822851000000102", "Seasonal influenza vaccination")),
            immunisation("imm-shingles", pat, "871910009", "Herpes zoster vaccine", "2025-03-10",
                         ("868631000000102", "Herpes zoster vaccination"), given=False, enc="Encounter/cons-1")]
    out.append(a_list("list-immunisations", "1102181000000102", "Immunisations", pat,
                      ["Immunization/imm-flu", "Immunization/imm-shingles"]))
    # Uncategorised data.
    out += [{"resourceType": "Observation", "id": "obs-bp", "meta": profile("Observation"), "identifier": ident("obs-bp"),
             "status": "final", "code": cc("75367002", "Blood pressure"), "subject": ref(pat),
             "context": ref("Encounter/cons-1"), "effectiveDateTime": "2025-03-10T10:05:00+00:00",
             "issued": "2025-03-10T10:10:00+00:00", "performer": [ref(GP)],
             "component": [
                 {"code": cc("72313002", "Systolic arterial pressure"),
                  "valueQuantity": {"value": 138, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
                 {"code": cc("1091811000000102", "Diastolic arterial pressure"),
                  "valueQuantity": {"value": 84, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}]},
            {"resourceType": "Observation", "id": "obs-smoking", "meta": profile("Observation"),
             "identifier": ident("obs-smoking"), "status": "final", "code": cc("8517006", "Ex-smoker"),
             "subject": ref(pat), "effectiveDateTime": "2015-11-01", "issued": "2015-11-01T09:00:00+00:00",
             "performer": [ref(GP)], "comment": "Stopped in 2005"}]
    out.append(a_list("list-uncategorised", "826501000000100", "Uncategorised data", pat,
                      ["Observation/obs-bp", "Observation/obs-smoking"]))
    # Investigations: a full blood count with its request, specimen, group and result.
    out += [{"resourceType": "ProcedureRequest", "id": "pr-fbc", "meta": profile("ProcedureRequest"),
             "identifier": ident("pr-fbc"), "status": "active", "intent": "order",
             "code": cc("26604007", "Full blood count"), "subject": ref(pat), "authoredOn": "2025-02-20",
             "requester": {"agent": ref(GP)}},
            {"resourceType": "Specimen", "id": "spec-blood", "meta": profile("Specimen"),
             "accessionIdentifier": {"system": DATA_ID, "value": "SPEC-0001"}, "status": "available",
             "type": cc("119297000", "Blood specimen"), "subject": ref(pat),
             "collection": {"collectedDateTime": "2025-02-21T08:30:00+00:00"}},
            {"resourceType": "DiagnosticReport", "id": "rep-fbc", "meta": profile("DiagnosticReport"),
             "identifier": ident("rep-fbc"), "basedOn": [ref("ProcedureRequest/pr-fbc")], "status": "final",
             "category": cc("LAB", "Laboratory", "http://hl7.org/fhir/v2/0074"),
             "code": cc("721981007", "Diagnostic studies report"), "subject": ref(pat),
             "issued": "2025-02-22T12:00:00+00:00", "performer": [{"actor": ref(PRACTICE)}],
             "specimen": [ref("Specimen/spec-blood")], "result": [ref("Observation/obs-fbc")],
             "conclusion": "Normal"},
            {"resourceType": "Observation", "id": "obs-fbc", "meta": profile("Observation"), "identifier": ident("obs-fbc"),
             "status": "final", "code": cc("26604007", "Full blood count"), "subject": ref(pat),
             "effectiveDateTime": "2025-02-21T08:30:00+00:00", "issued": "2025-02-22T12:00:00+00:00",
             "performer": [ref(PRACTICE)], "related": [{"type": "has-member", "target": ref("Observation/obs-hb")}]},
            {"resourceType": "Observation", "id": "obs-hb", "meta": profile("Observation"), "identifier": ident("obs-hb"),
             "status": "final", "code": cc("1022431000000105", "Haemoglobin estimation"), "subject": ref(pat),
             "effectiveDateTime": "2025-02-21T08:30:00+00:00", "issued": "2025-02-22T12:00:00+00:00",
             "performer": [ref(PRACTICE)], "specimen": ref("Specimen/spec-blood"),
             "valueQuantity": {"value": 138, "unit": "g/L", "system": UCUM, "code": "g/L"},
             "interpretation": cc("N", "Normal", "http://hl7.org/fhir/v2/0078"),
             "referenceRange": [{"low": {"value": 130, "unit": "g/L", "system": UCUM, "code": "g/L"},
                                 "high": {"value": 170, "unit": "g/L", "system": UCUM, "code": "g/L"}}],
             "related": [{"type": "derived-from", "target": ref("Observation/obs-fbc")}]}]
    out.append(a_list("list-investigations", "887191000000108", "Investigations and results", pat,
                      ["DiagnosticReport/rep-fbc"]))
    # Referrals.
    out.append({"resourceType": "ReferralRequest", "id": "ref-respiratory", "meta": profile("ReferralRequest"),
                "identifier": [{"system": "https://fhir.nhs.uk/Id/ubr-number", "value": "000012345678"}],
                "status": "unknown", "intent": "order", "priority": "routine",
                "reasonCode": [cc("183516009", "Referral to respiratory clinic")], "subject": ref(pat),
                "context": ref("Encounter/cons-1"), "authoredOn": "2025-03-10",
                "requester": {"agent": ref(GP)}, "recipient": [ref("Organization/northgate-resp")],
                "description": "Worsening breathlessness"})
    out.append(a_list("list-referrals", "792931000000107", "Outbound referral", pat,
                      ["ReferralRequest/ref-respiratory"]))
    # Consultations and their structure.
    out.append(a_list("list-consultations", "1149501000000101", "List of consultations", pat,
                      ["Encounter/cons-1", "Encounter/cons-2"]))
    out += consultation("cons-1-structure", "Encounter/cons-1", "Telephone encounter", pat,
                        [("Condition/prob-hypertension", ["MedicationRequest/mr-ramipril-plan", "Observation/obs-bp",
                                                          "Immunization/imm-shingles",
                                                          "ReferralRequest/ref-respiratory"])])
    out += consultation("cons-2-structure", "Encounter/cons-2", "Consultation", pat,
                        [("Condition/prob-syphilis", ["MedicationRequest/mr-benzathine-plan"])])
    return out


def grace():
    """Registered last month: the transfer from her previous practice is not complete."""
    pat = "Patient/grace-7"
    out = [patient("grace-7", "9990001006", "Hall", ["Grace"], "female", "1980-09-14")] + directory()
    out.append({"resourceType": "AllergyIntolerance", "id": "alg-nka", "meta": profile("AllergyIntolerance"),
                "clinicalStatus": "active", "verificationStatus": "unconfirmed", "category": ["medication"],
                "code": cc("716186003", "No known allergy"), "patient": ref(pat), "assertedDate": "2025-11-03",
                "recorder": ref(GP)})
    transit = ["data-in-transit"]
    out.append(a_list("list-allergies", "886921000000105", "Allergies and adverse reactions", pat,
                      ["AllergyIntolerance/alg-nka"], warnings=transit))
    for list_id, code, title in [("list-medications", "933361000000108", "Medications and medical devices"),
                                 ("list-problems", "717711000000103", "Problems"),
                                 ("list-immunisations", "1102181000000102", "Immunisations"),
                                 ("list-consultations", "1149501000000101", "List of consultations"),
                                 ("list-uncategorised", "826501000000100", "Uncategorised data"),
                                 ("list-investigations", "887191000000108", "Investigations and results"),
                                 ("list-referrals", "792931000000107", "Outbound referral")]:
        out.append(a_list(list_id, code, title, pat, [], warnings=transit))
    return out


def kofi():
    """Has dissented from sharing his GP record: the practice refuses (practice.json)."""
    pat = "Patient/kofi-9"
    out = [patient("kofi-9", "9990001014", "Mensah", ["Kofi"], "male", "1987-02-27")] + directory()
    out.append(problem("prob-asthma", pat, "195967001", "Asthma", "2003-06-01", "active"))
    out.append(a_list("list-problems", "717711000000103", "Problems", pat, ["Condition/prob-asthma"]))
    return out


def write(here):
    folder = here / "meadowbank-gp"
    folder.mkdir(exist_ok=True)
    for who, resources in [("ian", ian()), ("grace", grace()), ("kofi", kofi())]:
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        (folder / f"{who}.json").write_text(json.dumps(bundle, indent=1) + "\n")
        print(f"meadowbank-gp/{who}.json: {len(resources)} STU3 resources")
    practice = {"asid": "918999198993", "dissented": ["9990001014"], "disabled": []}
    (folder / "practice.json").write_text(json.dumps(practice, indent=1) + "\n")
