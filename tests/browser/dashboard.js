#!/usr/bin/env node
// dashboard.js: load the mqlb admin dashboard in Debian's headless Chromium
// (driven by playwright-core), report what it shows, click one backend's
// Drain button and wait until the page shows that backend as drained.
// With TOKEN, the page must ask for it (its token field appears when the
// API answers 401); the script types it in and goes on.
//
//   node dashboard.js BASE_URL POOL BACKEND [TOKEN]
//
// Prints one JSON object on stdout:
//   {"rows": [{pool, backend, state, badge, health, admin, reason}, ...]
//                                                       before the click,
//    "after": [...]                                     after it,
//    "asked_token": bool       the token field appeared before any data,
//    "token_visible": bool     the token field is shown with the data,
//    "requests": [url, ...]    every request the page made,
//    "errors": [text, ...]}    console errors and page errors (a 401 the
//                              page answers by asking is not one)
// and exits 0, or prints the error on stderr and exits 1. The python test
// (tests/integration/test_admin.py) makes the assertions.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15000;

async function rows(page) {
  return page.$$eval("tr[data-backend]", (trs) => trs.map((tr) => ({
    pool: tr.dataset.pool,
    backend: tr.dataset.backend,
    state: tr.dataset.state,
    badge: (tr.querySelector(".badge") || {}).textContent || "",
    health: tr.dataset.health,
    admin: tr.dataset.admin,
    reason: (tr.querySelector(".reason.why") || {}).textContent || "",
  })));
}

async function main() {
  const [base, pool, backend, token] = process.argv.slice(2);
  if (!base || !pool || !backend) {
    throw new Error("usage: dashboard.js BASE_URL POOL BACKEND");
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mqlb-chromium-"));
  const requests = [];
  const errors = [];
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: EXECUTABLE,
      headless: true,
      timeout: STEP_TIMEOUT_MS,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-quic"],
    });
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("request", (r) => requests.push(r.url()));
    page.on("console", (m) => {
      // Chromium logs the 401 that makes the page ask for the token.
      if (m.type() === "error" && !(token && /status of 401/.test(m.text()))) {
        errors.push("console: " + m.text());
      }
    });
    page.on("pageerror", (e) => errors.push("page: " + e.message));

    await page.goto(base + "/", { waitUntil: "load" });
    let askedToken = false;
    if (token) {
      await page.waitForSelector("#tokenbox.show", { state: "visible" });
      askedToken = (await page.$$("tr[data-backend]")).length === 0;
      await page.fill("#token", token);
      await page.click("#tokenbox button[type=submit]");
    }
    await page.waitForSelector("tr[data-backend]");
    const tokenVisible = await page.isVisible("#tokenbox");
    const before = await rows(page);

    const sel = (extra) => `tr[data-pool="${pool}"][data-backend="${backend}"]` + extra;
    await page.click(sel(" button:text-is('Drain')"));
    await page.waitForSelector(sel("[data-state='drain'] .badge.state-drain"));
    const after = await rows(page);

    process.stdout.write(JSON.stringify({ rows: before, after, requests, errors,
                                          asked_token: askedToken,
                                          token_visible: tokenVisible }) + "\n");
  } finally {
    if (context !== null) {
      await context.close().catch(() => {});
    }
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write("dashboard.js: " + (e && e.stack || e) + "\n");
  process.exit(1);
});
