// SMART App Launch of the shipped app, in Debian's headless Chromium, against a
// running demo. Usage: node launch.mjs <FHIR base> <issuer URL> <screenshot path>
// Prints one line per check, "ok ..." or "FAIL ...", then "N passed, N failed";
// exits non-zero on any failure.
import { chromium } from "playwright-core";

const [base, issuer, screenshot] = process.argv.slice(2);
const origin = new URL(issuer).origin;
const app = `${origin}/apps/record/`;
const results = [];
const check = (name, ok, detail = "") => {
  results.push(ok);
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok || !detail ? "" : `: ${detail}`}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

// Waits for the app to say it is done (ready, refused or failed).
async function settled(page) {
  await page.waitForFunction(() => document.body && document.body.dataset.ready, null, { timeout: 20000 });
  return page.evaluate(() => document.body && document.body.dataset.ready);
}

async function standalone(patient, user = "clinician", tamper) {
  const page = await browser.newPage();
  let code;
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.pathname.endsWith("/apps/record/index.html") && url.searchParams.get("code")) {
      code = url.searchParams.get("code");
    }
  });
  if (tamper) {
    // The authorization server's answer to the sign-in, with its state changed.
    await page.route(`${issuer}/authorize`, async (route) => {
      if (route.request().method() !== "POST") return route.continue();
      const response = await route.fetch({ maxRedirects: 0 });
      const location = new URL(response.headers()["location"]);
      location.searchParams.set("state", "tampered-" + location.searchParams.get("state"));
      await route.fulfill({ status: 302, headers: { location: location.toString() } });
    });
  }
  await page.goto(`${app}launch.html?iss=${encodeURIComponent(base)}`);
  await page.waitForSelector("#allow");
  await page.check(`input[name=user][value=${user}]`);
  await page.check(`input[name=patient][value="${patient}"]`);
  await page.click("#allow");
  return { page, state: await settled(page), code };
}

try {
  // Standalone launch: sign in, pick Alice, her record.
  {
    const { page, state, code } = await standalone("9990000018");
    const observations = await page.locator("#Observation tr[data-id]").count();
    const partners = await page.locator("#partners tbody tr").count();
    const notice = await page.locator("#notice").textContent();
    check("standalone launch ends with Alice's observations on the page", state === "true" && observations > 0, `state ${state}, ${observations} observations`);
    check("each partner's status is shown", partners >= 3, `${partners} partners`);
    check("the constant notice is shown", /never shared/.test(notice || ""), notice);
    check("the patient banner names her", /Alice/.test(await page.locator("#patient").textContent()));
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
    // The code fhirclient exchanged, once more: refused.
    const again = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, client_id: "shcr-record-app", redirect_uri: `${app}index.html`, code_verifier: "x".repeat(43) }),
    });
    const body = await again.json();
    check("a reused code is refused", again.status === 400 && body.error === "invalid_grant", JSON.stringify(body));
    await page.close();
  }
  // EHR launch: the launcher picks Ian and a nurse; the app opens in his context.
  {
    const page = await browser.newPage();
    await page.goto(`${origin}/launcher`);
    await page.check('input[name=patient][value="9990000093"]');
    await page.check("input[name=user][value=nurse]");
    await page.click("#launch");
    const state = await settled(page);
    const observations = await page.locator("#Observation tr[data-id]").count();
    const fromGp = await page.locator('#Observation tr[data-id^="meadowbank-gp."]').count();
    check("EHR launch ends with Ian's observations on the page", state === "true" && observations > 0, `state ${state}, ${observations}`);
    check("his GP's records arrive over GP Connect", fromGp > 0, `${fromGp}`);
    check("the banner names Ian", /Ian/.test(await page.locator("#patient").textContent()));
    await page.close();
  }
  // A patient who objected: the facade's own words.
  {
    const { page, state } = await standalone("9990000085");
    const refused = await page.locator("#refused").textContent();
    check("a launch for Hannah, who objected, ends with the objection message", state === "refused" && /objected/i.test(refused || ""), `${state}: ${refused}`);
    await page.close();
  }
  // A tampered state: the app refuses the answer.
  {
    const { page, state } = await standalone("9990000018", "clinician", true);
    const refused = await page.locator("#refused").textContent();
    check("a tampered state is refused", state === "failed", `${state}: ${refused}`);
    await page.close();
  }
  // A redirect URI the app did not register: shown to the person, not sent anywhere.
  {
    const page = await browser.newPage();
    const params = new URLSearchParams({ response_type: "code", client_id: "shcr-record-app", redirect_uri: "http://evil.example/steal", scope: "launch/patient openid fhirUser patient/*.rs", state: "s1", aud: base, code_challenge: "x".repeat(43), code_challenge_method: "S256" });
    const response = await page.goto(`${issuer}/authorize?${params}`);
    check("a wrong redirect_uri is refused on the page", response.status() === 400 && /not registered/.test(await page.locator("#error").textContent()) && page.url().startsWith(issuer), page.url());
    await page.close();
  }
  // PKCE with the plain method: back to the app with invalid_request.
  {
    const page = await browser.newPage();
    const params = new URLSearchParams({ response_type: "code", client_id: "shcr-record-app", redirect_uri: `${app}index.html`, scope: "launch/patient openid fhirUser patient/*.rs", state: "s2", aud: base, code_challenge: "x".repeat(43), code_challenge_method: "plain" });
    const sent = [];
    page.on("request", (r) => sent.push(r.url()));
    await page.goto(`${issuer}/authorize?${params}`);
    await page.waitForLoadState();
    const back = sent.find((u) => u.startsWith(`${app}index.html`)) || "";
    const url = back ? new URL(back) : null;
    check("a plain PKCE method is refused", !!url && url.searchParams.get("error") === "invalid_request" && url.searchParams.get("state") === "s2" && !url.searchParams.get("code"), back);
    await page.close();
  }
} catch (error) {
  check("the launches ran", false, error && error.stack || String(error));
} finally {
  await browser.close();
}
const passed = results.filter(Boolean).length;
console.log(`browser: ${passed} passed, ${results.length - passed} failed`);
process.exit(results.every(Boolean) ? 0 : 1);
