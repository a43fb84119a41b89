// Headless Chromium for the browser tests (upload.mjs, uppy.mjs): one set of launch flags,
// a fresh profile per run, and the page's console, errors and failed requests on stderr.
// Needs `npm ci` here (playwright-core, no bundled browsers) and /usr/bin/chromium (or
// CHROMIUM_BIN).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

// Without the background-networking flags Chromium tries hosts this closed network refuses.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/// A page in a fresh profile (no cache, cookies or service workers from a previous run);
/// `close()` ends the browser and removes the profile.
export async function openPage(profilePrefix) {
  const profile = mkdtempSync(join(tmpdir(), profilePrefix));
  let context;
  const close = async () => {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
      headless: true,
      // CHROMIUM_EXTRA_ARGS: one flag per line (the https test's trust of its certificate).
      args: [...ARGS, ...(process.env.CHROMIUM_EXTRA_ARGS ?? '').split('\n').filter(Boolean)],
      viewport: { width: 1280, height: 480 },
    });
  } catch (e) {
    await close();
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page exception] ${e}`));
  page.on('requestfailed', (r) => console.error(`[request failed] ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  return { page, close };
}
