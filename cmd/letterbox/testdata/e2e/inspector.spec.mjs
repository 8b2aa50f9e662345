// End-to-end test of the web inspector in headless Chromium, driven by playwright-core.
// TestInspectorInBrowser (cmd/letterbox) starts `letterbox serve --testing`, creates the
// user and runs this script with:
//
//   INSPECTOR_URL  http://127.0.0.1:PORT
//   LMTP_PORT, POP3_PORT, MAIL_USER, MAIL_PASSWORD
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// It opens a folder page, delivers a message over LMTP and sees its row appear without a
// reload; deletes it over POP3 (DELE, QUIT) by the UIDL the page shows and sees it go; and
// checks that a hostile Subject is shown as text and never runs. Exit status 0: passed.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('INSPECTOR_URL');
const user = env('MAIL_USER');
const here = dirname(fileURLToPath(import.meta.url));
const timeout = 20000; // ms: how long the page may take to follow a change

function mail(...args) {
  execFileSync('python3', [join(here, 'mail.py'), ...args], { stdio: 'inherit' });
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

const profile = mkdtempSync(join(tmpdir(), 'letterbox-chromium-'));
// A persistent context is how Playwright takes a profile directory: a fresh one per run.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  let loads = 0;
  page.on('load', () => { loads++; });

  const folder = `${base}/accounts/${encodeURIComponent(user)}/folders/INBOX`;
  await page.goto(folder);
  await page.waitForSelector('#live-status[data-state="live"]', { timeout });
  check(await page.locator('#messages tbody tr').count() === 0, 'the INBOX starts empty');
  // A reload would lose this; the page must change without one.
  await page.evaluate(() => { window.stillTheSamePage = true; });

  // Delivered over LMTP: the row appears.
  const subject = `Inspector e2e ${Date.now()}`;
  mail('deliver', env('LMTP_PORT'), user, subject);
  const row = page.locator('#messages tbody tr', { hasText: subject });
  await row.waitFor({ timeout });
  check(true, 'the message delivered over LMTP appeared');
  const uidl = (await row.locator('td.uidl').innerText()).trim();
  check(/^\S+$/.test(uidl) && uidl !== '—', `the row shows the POP3 UIDL ${uidl}`);

  // The message page, open in a second tab, follows it too.
  const msgPage = await browser.newPage();
  await msgPage.goto(await row.locator('td.subject a').evaluate((a) => a.href));
  await msgPage.waitForSelector('#live-status[data-state="live"]', { timeout });
  check((await msgPage.locator('h1').innerText()) === subject, 'the message page shows it');

  // Deleted over POP3 by the UIDL the page showed: the row goes.
  mail('dele', env('POP3_PORT'), user, env('MAIL_PASSWORD'), uidl);
  await row.waitFor({ state: 'detached', timeout });
  check(true, 'the message deleted over POP3 disappeared');
  await msgPage.getByText('expunged').waitFor({ timeout });
  check(true, 'the open message page says it is gone');
  check(await page.evaluate(() => window.stillTheSamePage === true) && loads === 1,
    'without reloading the page');

  // A hostile Subject is text, never markup.
  const hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  mail('deliver', env('LMTP_PORT'), user, hostile);
  await page.locator('#messages td.subject', { hasText: '<script>' }).waitFor({ timeout });
  check(await page.evaluate(() => window.pwned === undefined), 'the hostile Subject did not run');
  check(await page.locator('#messages img').count() === 0, 'nor became an element');

  check(problems.length === 0, `no script errors or CSP violations ${JSON.stringify(problems)}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
