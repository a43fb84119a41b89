// Drive tests/browser/page.html in headless Chromium (driven by tests/browser.rs).
//
// usage: node tests/browser/upload.mjs <page_url> <screenshot.png>
//
// Prints the page's result JSON ({dialect: {ok, status, error, ...}}) on stdout and exits
// 0 only if every dialect succeeded. Diagnostics (page console, errors) go to stderr.
// Needs `npm ci` in tests/browser (playwright-core, no bundled browsers) and /usr/bin/chromium.

import { openPage } from './chromium.mjs';

const [pageUrl, screenshot] = process.argv.slice(2);
if (!pageUrl || !screenshot) {
  console.error('usage: node upload.mjs <page_url> <screenshot.png>');
  process.exit(2);
}
const TIMEOUT_MS = 60_000;

let browser;
let code = 1;
try {
  browser = await openPage('presign-gw-chromium-');
  const { page } = browser;

  await page.goto(pageUrl, { timeout: TIMEOUT_MS });
  let result;
  try {
    await page.waitForFunction(() => window.done === true, null, { timeout: TIMEOUT_MS });
    result = await page.evaluate(() => window.result);
  } catch (e) {
    console.error(`page did not finish: ${e}`);
    result = { error: `page did not finish within ${TIMEOUT_MS} ms` };
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(result));
  const dialects = ['apimall', 'octopusx', 'ctxfy', 'memories'];
  code = dialects.every((d) => result?.[d]?.ok === true) ? 0 : 1;
} catch (e) {
  console.error(`browser run failed: ${e?.stack ?? e}`);
  code = 1;
} finally {
  if (browser) await browser.close();
}
process.exit(code);
