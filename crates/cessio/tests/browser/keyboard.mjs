// The journey of a person who uses no mouse: log in, choose the party, cede one rata with
// the PIN and read the receipt, moving only with Tab and Shift+Tab and acting only with
// Enter and Space (text is typed into the focused field). After every key the focused
// element must show a visible focus indicator, and each Tab must move forward in the
// page's order. The skip link must be the first stop and must move focus to the content.
//
// Usage: node keyboard.mjs BASE_URL ARTIFACTS_DIR
// The server must be `cessio serve --demo --clock 2025-02-03T10:00` (fresh demo data).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { auditor } from './audit.mjs';

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node keyboard.mjs BASE_URL ARTIFACTS_DIR');
  process.exit(2);
}
const shots = join(artifacts, 'tastiera');
mkdirSync(shots, { recursive: true });

const PASSWORD = 'cessio-demo-2024';
const PIN = '246810';
const BIANCHI = '00743110157';
const BANCA = '03189950961';
// Bianchi's ecobonus rata of 2025: not tracciabile, ceded here for its whole amount.
const RATA = '8';
// A page has fewer stops than this; more means focus is stuck or looping.
const MAX_TABS = 80;

const problems = [];

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ locale: 'it-IT', viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.on('pageerror', (err) => problems.push(`script error on ${page.url()}: ${err.message}`));
page.on('response', (r) => {
  if (r.status() >= 500) problems.push(`server error ${r.status()} for ${r.url()}`);
});
const { audit, steps } = auditor({ page, artifacts: shots, problems });

/**
 * The focused element as the page shows it: its description, its position in document
 * order, and whether a focus indicator is drawn (an outline or a box shadow on it, or on
 * the label that stands for a design-system checkbox or radio, which hides the input).
 */
async function focused() {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const drawn = (e) => {
      const s = getComputedStyle(e);
      const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
      const shadow = s.boxShadow && s.boxShadow !== 'none';
      return outline || shadow;
    };
    let shown = drawn(el);
    if (!shown && el.matches('input[type=checkbox], input[type=radio]')) {
      const label = el.id && document.querySelector(`label[for="${el.id}"]`);
      shown = Boolean(label && drawn(label));
    }
    const all = [...document.querySelectorAll('*')];
    const name = (el.innerText || el.value || el.getAttribute('aria-label') || '').replace(/\s+/g, ' ').trim().slice(0, 50);
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      type: el.getAttribute('type') || '',
      name,
      href: el.getAttribute('href') || '',
      order: all.indexOf(el),
      shown,
      main: el.id === 'contenuto',
      beforeMain: Boolean(document.querySelector('main').compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING),
    };
  });
}

const show = (f) => (f ? `<${f.tag}${f.id ? `#${f.id}` : ''}${f.type ? ` type=${f.type}` : ''}> «${f.name}»` : 'nothing');

/** One key, then the focus must be visible (the main region, reached by the skip link, is exempt: it is not a control). */
async function press(key) {
  await page.keyboard.press(key);
  const f = await focused();
  if (f && !f.shown && !f.main) problems.push(`focus not visible after ${key} on ${page.url()}: ${show(f)}`);
  return f;
}

/**
 * Tabs (forward or, with `back`, backward) until `wanted` matches the focused element.
 * Each forward step must land later in the document than the last one, except when
 * focus wraps around to the top.
 */
async function tabTo(wanted, what, { back = false } = {}) {
  let last = await focused();
  for (let i = 0; i < MAX_TABS; i += 1) {
    const f = await press(back ? 'Shift+Tab' : 'Tab');
    if (!f) continue;
    // Wrapping round to the header is order; any other step back is not.
    if (!back && last && f.order < last.order && !f.beforeMain) {
      problems.push(`focus went backwards on ${page.url()}: from ${show(last)} to ${show(f)}`);
    }
    if (wanted(f)) return f;
    last = f;
  }
  throw new Error(`${what} not reached with ${back ? 'Shift+Tab' : 'Tab'} on ${page.url()}`);
}

/** Presses a key that submits a form or follows a link, and waits for the new page. */
async function activate(key = 'Enter') {
  await Promise.all([page.waitForEvent('load'), page.keyboard.press(key)]);
}

async function mainText() {
  return page.locator('main').innerText();
}

try {
  // The skip link: the first Tab stop, and Enter takes focus to the page's content.
  await page.goto(`${base}/accesso`);
  await audit('accesso');
  const first = await press('Tab');
  expect(first && /Vai al contenuto/.test(first.name), `the first Tab stop is not the skip link: ${show(first)}`);
  await page.keyboard.press('Enter');
  const target = await focused();
  expect(target && target.main, `the skip link did not move focus to the content: ${show(target)}`);
  // From the content, the next Tab is inside it: the login form, not the header again.
  await tabTo((f) => f.id === 'username', 'the username field');
  await page.keyboard.type('studio.verdi');
  await tabTo((f) => f.id === 'password', 'the password field');
  await page.keyboard.type(PASSWORD);
  // Back to the username and forward again, as a person checking what they typed.
  await tabTo((f) => f.id === 'username', 'the username field', { back: true });
  await tabTo((f) => f.tag === 'button' && f.name === 'Accedi', 'the Accedi button');
  await activate();
  expect(page.url().endsWith('/soggetti'), `the intermediary is not asked to choose a party: ${page.url()}`);
  await audit('scegli-soggetto');

  // Choose the party.
  await tabTo((f) => f.tag === 'a' && f.href.endsWith(`/soggetti/${BIANCHI}`), 'the link to Bianchi');
  await activate();
  expect(page.url().endsWith(`/soggetti/${BIANCHI}`), `not at Bianchi's home: ${page.url()}`);
  await audit('home');
  await tabTo((f) => f.tag === 'a' && f.href.endsWith('/cessione'), 'the link to Cessione');
  await activate();
  await audit('cessione');

  // Select the rata with Space, leave its amount at the maximum, type the cessionario.
  await tabTo((f) => f.id === `sel_${RATA}`, 'the rata\'s checkbox');
  await press('Space');
  expect(await page.locator(`#sel_${RATA}`).isChecked(), 'Space did not select the rata');
  await tabTo((f) => f.id === `cf_${RATA}`, 'the cessionario field');
  await page.keyboard.type(BANCA);
  await tabTo((f) => f.tag === 'button' && /Prosegui al riepilogo/.test(f.name), 'Prosegui al riepilogo');
  await activate();
  expect((await mainText()).includes('Riepilogo della cessione'), 'no summary page');
  await audit('cessione-riepilogo');

  // The authorisation with Space, the PIN typed, confirmed with Enter.
  await tabTo((f) => f.id === 'autorizzo', 'the authorisation checkbox');
  await press('Space');
  expect(await page.locator('#autorizzo').isChecked(), 'Space did not tick the authorisation');
  await tabTo((f) => f.id === 'pin', 'the PIN field');
  await page.keyboard.type(PIN);
  await tabTo((f) => f.tag === 'button' && /Conferma la cessione/.test(f.name), 'Conferma la cessione');
  await activate();

  // The receipt.
  const receipt = await mainText();
  expect(receipt.includes('Cessione comunicata'), `no receipt: ${receipt.slice(0, 400)}`);
  expect(receipt.includes('Protocollo dell\'operazione'), 'receipt without protocol');
  await audit('cessione-ricevuta');

  // The guide is linked from the header of every page.
  await tabTo((f) => f.tag === 'a' && f.href === '/guida', 'the link to the Guida');
  await activate();
  expect((await mainText()).includes('Guida'), 'the Guida did not open');
} catch (e) {
  problems.push(`keyboard journey stopped after step ${steps()} (${page.url()}): ${e.message}`);
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

if (problems.length > 0) {
  console.error(`${problems.length} problem(s):`);
  for (const p of problems) console.error(`- ${p}`);
  process.exit(1);
}
console.log(`keyboard journey passed: ${steps()} pages checked at both widths`);
