"""The Python SMART client (PyPI fhirclient) completes a standalone launch against a
running demo with its own OAuth code: it finds the endpoints in the
CapabilityStatement's oauth-uris, sends PKCE, and exchanges the code. This script
plays the browser's part on the sign-in page.

Usage: python fhirclient_launch.py <FHIR base>. Prints "fhirclient: N passed, N failed".
"""
import re
import sys
import urllib.parse

import requests
from fhirclient import client
from fhirclient.models.observation import Observation

BASE = sys.argv[1]
ALICE = "9990000018"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("ok   " if ok else "FAIL ") + name + ("" if ok or not detail else f": {detail}"))


smart = client.FHIRClient(settings={
    "app_id": "dev-public-app",
    "api_base": BASE,
    "redirect_uri": "http://127.0.0.1:9/callback",
    "scope": "launch/patient openid fhirUser patient/*.rs",
})
try:
    authorize_url = smart.authorize_url
    check("the OAuth endpoints are found in the CapabilityStatement", authorize_url and "/authorize?" in authorize_url, authorize_url)
    sign_in = requests.get(authorize_url, allow_redirects=False)
    pending = re.search(r'name="pending" value="([^"]+)"', sign_in.text)
    endpoint = authorize_url.split("?")[0]
    answer = requests.post(endpoint, data={"pending": pending.group(1), "user": "clinician", "patient": ALICE, "decision": "allow"}, allow_redirects=False)
    callback = answer.headers.get("location", "")
    check("the sign-in sends a code back", "code=" in callback, callback)
    smart.handle_callback(callback)
    check("the token names the patient picked", smart.ready and smart.patient_id == ALICE, smart.patient_id)
    bundle = Observation.where(struct={"patient": ALICE}).perform(smart.server)
    observations = [e.resource for e in (bundle.entry or []) if e.search and e.search.mode == "match"]
    check("her observations are read with the token", len(observations) > 0, len(observations))
except Exception as error:  # the failure is the report
    check("the launch ran", False, repr(error))
passed = sum(results)
print(f"fhirclient: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if all(results) and len(results) == 4 else 1)
