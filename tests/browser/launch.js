// launch.js: one headless Chromium for the dashboard tests (Debian's
// chromium through playwright-core), with the flags this closed network
// needs, a fresh profile, and every request and console error recorded.
//
//   const { withPage } = require("./launch");
//   await withPage({ timeoutMs, ignore401 }, async (page, seen) => { ... });
//
// <seen> is {requests: [url], errors: [text]}; a console 401 is not an
// error when <ignore401> (the page asks for the token on it).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";

async function withPage(opts, body) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mqlb-chromium-"));
  const seen = { requests: [], errors: [] };
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: EXECUTABLE,
      headless: true,
      timeout: opts.timeoutMs,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-quic"],
    });
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(opts.timeoutMs);
    page.on("request", (r) => seen.requests.push(r.url()));
    page.on("console", (m) => {
      if (m.type() === "error" && !(opts.ignore401 && /status of 401/.test(m.text()))) {
        seen.errors.push("console: " + m.text());
      }
    });
    page.on("pageerror", (e) => seen.errors.push("page: " + e.message));
    return await body(page, seen);
  } finally {
    if (context !== null) {
      await context.close().catch(() => {});
    }
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// Run <main>; print its error and exit 1 if it throws, else exit 0.
function run(name, main) {
  main().then(() => process.exit(0), (e) => {
    process.stderr.write(name + ": " + (e && e.stack || e) + "\n");
    process.exit(1);
  });
}

module.exports = { withPage, run };
