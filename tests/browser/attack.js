#!/usr/bin/env node
// attack.js: what a web page in the operator's browser tries against the
// admin port, in Debian's headless Chromium (driven by playwright-core).
//
//   node attack.js ADMIN_PORT EVIL_URL POOL BACKEND
//
// 1. DNS rebinding: Chromium resolves rebind.test to 127.0.0.1 (as an
//    attacker's DNS would after the page loaded) and opens
//    http://rebind.test:ADMIN_PORT/status; the status code is reported.
// 2. Cross-site POST: from a page of EVIL_URL (another origin), fetch()
//    POSTs .../pools/POOL/backends/BACKEND/drain to the admin port, as a
//    "simple" request that needs no CORS preflight.
// Prints {"rebind_status": N, "rebind_body": text, "post": "sent"|error}.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15000;

async function main() {
  const [port, evil, pool, backend] = process.argv.slice(2);
  if (!port || !evil || !pool || !backend) {
    throw new Error("usage: attack.js ADMIN_PORT EVIL_URL POOL BACKEND");
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mqlb-chromium-"));
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: EXECUTABLE,
      headless: true,
      timeout: STEP_TIMEOUT_MS,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-quic",
             "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
    });
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

    const resp = await page.goto("http://rebind.test:" + port + "/status");
    const rebindStatus = resp.status();
    const rebindBody = await resp.text();

    await page.goto(evil, { waitUntil: "load" });
    const target = "http://127.0.0.1:" + port + "/pools/" + pool +
                   "/backends/" + backend + "/drain";
    const post = await page.evaluate(async (url) => {
      try {
        await fetch(url, { method: "POST", mode: "no-cors" });
        return "sent";
      } catch (e) {
        return "error: " + e.message;
      }
    }, target);

    process.stdout.write(JSON.stringify({ rebind_status: rebindStatus,
                                          rebind_body: rebindBody,
                                          post }) + "\n");
  } finally {
    if (context !== null) {
      await context.close().catch(() => {});
    }
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write("attack.js: " + (e && e.stack || e) + "\n");
  process.exit(1);
});
