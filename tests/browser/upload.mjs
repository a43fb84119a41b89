// Drive tests/browser/page.html in headless Chromium (driven by tests/browser.rs).
//
// usage: node tests/browser/upload.mjs <page_url> <screenshot.png>
//
// Prints the page's result JSON ({dialect: {ok, status, error, ...}}) on stdout and exits
// 0 only if every dialect succeeded. Diagnostics (page console, errors) go to stderr.
// Needs `npm ci` in tests/browser (playwright-core, no bundled browsers) and /usr/bin/chromium.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [pageUrl, screenshot] = process.argv.slice(2);
if (!pageUrl || !screenshot) {
  console.error('usage: node upload.mjs <page_url> <screenshot.png>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const TIMEOUT_MS = 60_000;

// A fresh profile for every run: no cache, cookies or service workers from a previous one.
const profile = mkdtempSync(join(tmpdir(), 'presign-gw-chromium-'));
let context;
let code = 1;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
    viewport: { width: 1280, height: 480 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page exception] ${e}`));
  page.on('requestfailed', (r) => console.error(`[request failed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));

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
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
