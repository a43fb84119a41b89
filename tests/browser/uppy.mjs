// Drive tests/browser/uppy.html in headless Chromium (driven by tests/uppy_browser.rs).
//
// usage: node tests/browser/uppy.mjs <page_url> <screenshot.png>
//
// Talks to the test over stdin/stdout, one line each:
//   stdout `READY <json>`  the cancelled upload is held after its part 1 ({uploadId, key, part1})
//   stdin  any line        the test has looked at it: cancel it (window.cancelNow())
//   stdout `RESULT <json>` the page's result (window.result), or {error} if it did not finish
// Exits 0 only if the page says ok. Diagnostics (page console, errors) go to stderr.
// Needs `npm ci` in tests/browser (playwright-core, uppy; no bundled browsers) and
// /usr/bin/chromium.

import { createInterface } from 'node:readline';
import { openPage } from './chromium.mjs';

const [pageUrl, screenshot] = process.argv.slice(2);
if (!pageUrl || !screenshot) {
  console.error('usage: node uppy.mjs <page_url> <screenshot.png>');
  process.exit(2);
}
const TIMEOUT_MS = 180_000;

const lines = createInterface({ input: process.stdin });
const nextLine = () =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line on stdin within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
    lines.once('close', () => { clearTimeout(timer); reject(new Error('stdin closed')); });
  });

let browser;
let code = 1;
let result;
try {
  browser = await openPage('presign-gw-uppy-');
  const { page } = browser;

  await page.goto(pageUrl, { timeout: TIMEOUT_MS });
  try {
    await page.waitForFunction(() => window.cancelReady || window.done === true, null, { timeout: TIMEOUT_MS });
    const ready = await page.evaluate(() => window.cancelReady ?? null);
    if (ready) {
      console.log(`READY ${JSON.stringify(ready)}`);
      await nextLine();
      await page.evaluate(() => window.cancelNow());
    }
    await page.waitForFunction(() => window.done === true, null, { timeout: TIMEOUT_MS });
    result = await page.evaluate(() => window.result);
  } catch (e) {
    console.error(`page did not finish: ${e}`);
    const partial = await page.evaluate(() => window.result ?? null).catch(() => null);
    result = { ok: false, error: `page did not finish: ${e}`, partial };
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  code = result?.ok === true ? 0 : 1;
} catch (e) {
  console.error(`browser run failed: ${e?.stack ?? e}`);
  result = { ok: false, error: `browser run failed: ${e}` };
  code = 1;
} finally {
  if (browser) await browser.close();
}
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(code);
