// Drives Debian's chromium, headless, through playwright-core over the dashboard of a running
// ingestd, for tests/integration/test_dashboard.py, which starts the daemon, reloads it when told
// and checks what this prints. Every wait has a deadline.
//
//   node check.js URL SCREENSHOT NEW_COMPONENT
//
// Protocol (one JSON object per stdout line):
//   {"phase":"drawn", ...}   the page draws data: rates per component as drawn, chart points
//   <- reads one line on stdin: the daemon was reloaded with NEW_COMPONENT added
//   {"phase":"done", ...}    the page shows NEW_COMPONENT; the screenshot is saved
// and always, last: {"phase":"errors","errors":[...]}: console errors, page errors, failed
// requests and HTTP errors the page met. Exit 0 when every step was reached, 1 otherwise.
'use strict';

const readline = require('readline');
const {chromium} = require('playwright-core');

const [url, screenshot, added] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 45000;

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function nextLine() {
  const rl = readline.createInterface({input: process.stdin});
  return new Promise((resolve, reject) => {
    rl.once('line', (line) => {
      resolve(line);  // first: close() emits 'close' at once
      rl.close();
    });
    rl.once('close', () => reject(new Error('stdin closed before the reload')));
  });
}

async function main() {
  const errors = [];
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // Root in CI: chromium's sandbox needs a user namespace it may not get.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({viewport: {width: 1280, height: 900}});
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure().errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    await page.goto(url, {waitUntil: 'load', timeout: TIMEOUT_MS});

    // The charts draw data: 5 rate points per component, windows of 3 groups, a rate above 0.
    await page.waitForFunction(() => {
      const num = (id, key) => Number(document.getElementById(id).dataset[key] || 0);
      const gen = document.querySelector('#graph g.node[data-component="gen"]');
      return num('rates', 'points') >= 5 && num('queues', 'points') >= 5 &&
          num('aggchart', 'points') >= 3 && num('aggchart', 'series') >= 3 &&
          gen && Number(gen.dataset.rate) > 0;
    }, null, {timeout: TIMEOUT_MS, polling: 200});
    const drawn = await page.evaluate(() => {
      const rates = {};
      for (const g of document.querySelectorAll('#graph g.node'))
        rates[g.dataset.component] = Number(g.dataset.rate);
      const edges = [...document.querySelectorAll('#graph path.edge')].map(
          (p) => [p.dataset.from, p.dataset.to]);
      const table = {};
      for (const tr of document.querySelectorAll('#components tbody tr'))
        table[tr.dataset.component] = Number(tr.querySelector('[data-rate]').dataset.rate);
      const chart = (id) => {
        const d = document.getElementById(id).dataset;
        return {points: Number(d.points), series: Number(d.series), max: Number(d.max)};
      };
      return {
        rates, edges, table,
        charts: {rates: chart('rates'), queues: chart('queues'), aggchart: chart('aggchart')},
        aggregator: document.getElementById('agg').value,
        field: document.getElementById('agg-field').value,
        paths: document.querySelectorAll('#rates path.series').length,
      };
    });
    say({phase: 'drawn', ...drawn});

    await nextLine();
    await page.waitForSelector(`#graph g.node[data-component="${added}"]`, {timeout: TIMEOUT_MS});
    await page.waitForSelector(`#components tr[data-component="${added}"]`, {timeout: TIMEOUT_MS});
    // A few more polls, so that the new component has rate points of its own.
    const polls = await page.evaluate(() => Number(document.body.dataset.polls));
    await page.waitForFunction(
        (n) => Number(document.body.dataset.polls) >= n + 3, polls, {timeout: TIMEOUT_MS});
    const after = await page.evaluate((name) => ({
      components: Number(document.getElementById('summary').dataset.components),
      edges: [...document.querySelectorAll('#graph path.edge')].map((p) => [p.dataset.from, p.dataset.to]),
      rate: Number(document.querySelector(`#graph g.node[data-component="${name}"]`).dataset.rate),
      summary: document.getElementById('summary').textContent,
    }), added);
    await page.screenshot({path: screenshot, fullPage: true});
    say({phase: 'done', ...after});
  } finally {
    say({phase: 'errors', errors});
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`check.js: ${e.stack || e}\n`);
  process.exit(1);
});
