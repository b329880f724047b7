#!/usr/bin/env node
// charts.js: load the mqlb dashboard in Debian's headless Chromium (through
// playwright-core) and wait until its charts have data: the pool's
// "active" chart at least MIN_POINTS points and its sessions/s chart one
// point above zero. With TOKEN, type it into the token field first.
//
//   node charts.js BASE_URL POOL MIN_POINTS [TOKEN]
//
// Prints one JSON object on stdout:
//   {"pool_charts": [{label, cls, points, max_y}],   the pool's charts
//    "backend_trends": {backend: [points, ...]},      each row's sparklines
//    "generation": text, "loaded": text,             the header
//    "requests": [url, ...], "errors": [text, ...]}
// and exits 0; on a timeout or failure prints the error and exits 1. The
// python test (tests/integration/test_metrics.py) makes the assertions.
"use strict";

const { withPage, run } = require("./launch");

const WAIT_MS = 30000;

async function main() {
  const [base, pool, minPoints, token] = process.argv.slice(2);
  if (!base || !pool || !minPoints) {
    throw new Error("usage: charts.js BASE_URL POOL MIN_POINTS [TOKEN]");
  }
  await withPage({ timeoutMs: WAIT_MS, ignore401: !!token }, async (page, seen) => {
    await page.goto(base + "/", { waitUntil: "load" });
    if (token) {
      await page.waitForSelector("#tokenbox.show", { state: "visible" });
      await page.fill("#token", token);
      await page.click("#tokenbox button[type=submit]");
    }
    await page.waitForFunction(([p, n]) => {
      const sec = document.querySelector(`section.pool[data-pool="${p}"]`);
      if (!sec) { return false; }
      const act = sec.querySelector(".charts svg.spark.active");
      const ses = sec.querySelector(".charts svg.spark.sessions polyline");
      if (!act || !ses || Number(act.dataset.points) < n) { return false; }
      // a rate above zero draws a point above the baseline (y < 23)
      return ses.getAttribute("points").split(" ").some((xy) =>
        xy !== "" && Number(xy.split(",")[1]) < 23);
    }, [pool, Number(minPoints)], { polling: 250 });
    const out = await page.evaluate((p) => {
      const sec = document.querySelector(`section.pool[data-pool="${p}"]`);
      const charts = Array.from(sec.querySelectorAll(".charts .chart")).map((c) => {
        const svg = c.querySelector("svg");
        const ys = (svg.querySelector("polyline").getAttribute("points") || "")
          .split(" ").filter((s) => s !== "").map((xy) => Number(xy.split(",")[1]));
        return { label: c.firstChild.textContent, cls: svg.getAttribute("class"),
                 points: Number(svg.dataset.points), max_y: ys.length ? 23 - Math.min(...ys) : 0 };
      });
      const trends = {};
      sec.querySelectorAll("tr[data-backend]").forEach((tr) => {
        trends[tr.dataset.backend] = Array.from(tr.querySelectorAll("td.trend svg"))
          .map((s) => Number(s.dataset.points));
      });
      return { pool_charts: charts, backend_trends: trends,
               generation: document.getElementById("generation").textContent,
               loaded: document.getElementById("loaded").textContent };
    }, pool);
    out.requests = seen.requests;
    out.errors = seen.errors;
    process.stdout.write(JSON.stringify(out) + "\n");
  });
}

run("charts.js", main);
