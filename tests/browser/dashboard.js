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

const { withPage, run } = require("./launch");

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
  await withPage({ timeoutMs: STEP_TIMEOUT_MS, ignore401: !!token },
                 async (page, seen) => {
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

    process.stdout.write(JSON.stringify({ rows: before, after,
                                          requests: seen.requests,
                                          errors: seen.errors,
                                          asked_token: askedToken,
                                          token_visible: tokenVisible }) + "\n");
  });
}

run("dashboard.js", main);
