#!/usr/bin/env node
// dashboard.js: load the mqlb admin dashboard in Debian's headless Chromium
// (driven by playwright-core), report what it shows, click one backend's
// Drain button and wait until the page shows that backend as drained.
//
//   node dashboard.js BASE_URL POOL BACKEND
//
// Prints one JSON object on stdout:
//   {"rows": [{pool, backend, state, badge}, ...]      before the click,
//    "after": [...]                                     after it,
//    "requests": [url, ...]    every request the page made,
//    "errors": [text, ...]}    console errors and page errors
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
  })));
}

async function main() {
  const [base, pool, backend] = process.argv.slice(2);
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
      if (m.type() === "error") errors.push("console: " + m.text());
    });
    page.on("pageerror", (e) => errors.push("page: " + e.message));

    await page.goto(base + "/", { waitUntil: "load" });
    await page.waitForSelector("tr[data-backend]");
    const before = await rows(page);

    const sel = (extra) => `tr[data-pool="${pool}"][data-backend="${backend}"]` + extra;
    await page.click(sel(" button:text-is('Drain')"));
    await page.waitForSelector(sel("[data-state='drain'] .badge.state-drain"));
    const after = await rows(page);

    process.stdout.write(JSON.stringify({ rows: before, after, requests, errors }) + "\n");
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
