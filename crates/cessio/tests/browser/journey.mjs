// The user guide's journey in a real browser (headless Chromium). Every page is audited
// at 1280 and 375 px (audit.mjs: overlapping text, sideways scrolling, axe-core); those
// findings, console errors (a Content-Security-Policy violation is one) and server
// errors fail the run.
//
// Usage: node journey.mjs BASE_URL ARTIFACTS_DIR
// The server must be `cessio serve --demo --clock 2025-02-03T10:00` (fresh demo data).

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { auditor } from './audit.mjs';

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node journey.mjs BASE_URL ARTIFACTS_DIR');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const PASSWORD = 'cessio-demo-2024';
const PIN = '246810';
const BIANCHI = '00743110157';
const BANCA = '03189950961';
const ROSSI = 'RSSMRA45C12F205C';
const CONDOMINIO = '10427800114';
// The ecobonus rata of 2025 Bianchi holds in the demo register: not tracciabile, so
// cedible in part and answerable at once.
const RATA = '8';

const problems = [];

function fail(message) {
  throw new Error(message);
}

function expect(condition, message) {
  if (!condition) fail(message);
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
page.on('console', (msg) => {
  // A refused form answers 4xx on purpose; the browser logs that, and it is not a fault.
  if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) {
    problems.push(`console error on ${page.url()}: ${msg.text()}`);
  }
});
page.on('pageerror', (err) => problems.push(`script error on ${page.url()}: ${err.message}`));
page.on('response', (r) => {
  if (r.status() >= 500) problems.push(`server error ${r.status()} for ${r.url()}`);
  else if (r.status() >= 400 && r.request().resourceType() !== 'document') {
    problems.push(`${r.status()} for ${r.request().resourceType()} ${r.url()}`);
  }
});

const { audit, steps } = auditor({ page, artifacts, problems });

/**
 * The README's pictures (docs/screenshots/ holds copies): the top of the page as it is
 * now, at the desktop's width or at a phone's.
 */
async function readmeShot(file, { phone = false } = {}) {
  if (phone) await page.setViewportSize({ width: 375, height: 812 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(artifacts, file), fullPage: false });
  if (phone) await page.setViewportSize({ width: 1280, height: 900 });
}

async function text() {
  return page.locator('main').innerText();
}

async function login(username) {
  await page.goto(`${base}/accesso`);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Accedi' }).click();
  await page.waitForLoadState('load');
  expect(!page.url().includes('/accesso'), `login of ${username} failed: ${page.url()}`);
}

async function logout() {
  await page.getByRole('button', { name: 'Esci' }).click();
  await page.waitForURL(/\/accesso/);
}

async function cede(amount, pins) {
  await page.goto(`${base}/soggetti/${BIANCHI}/cessione`);
  await page.locator(`#sel_${RATA}`).check();
  await page.locator(`#importo_${RATA}`).fill(amount);
  await page.locator(`#cf_${RATA}`).fill(BANCA);
  await page.getByRole('button', { name: 'Prosegui al riepilogo' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Riepilogo della cessione'), 'no summary page');
  for (const [i, pin] of pins.entries()) {
    if (i === 0) await page.locator('label[for=autorizzo]').click();
    await page.locator('#pin').fill(pin);
    await page.getByRole('button', { name: 'Conferma la cessione' }).click();
    await page.waitForLoadState('load');
    if (pin !== PIN) {
      const body = await text();
      expect(body.includes('PIN errato'), `wrong PIN not refused: ${body.slice(0, 300)}`);
      const field = page.locator('#pin-errore');
      expect(await field.count() === 1, 'PIN error not next to the field');
      if (i === 0) await audit('cessione-pin-errato');
    }
  }
  const body = await text();
  expect(body.includes('Cessione comunicata'), `no receipt: ${body.slice(0, 400)}`);
  expect(body.includes('Protocollo dell\'operazione'), 'receipt without protocol');
}

/** The text of a PDF, page after page, as pdf.js reads it. */
async function pdfText(bytes) {
  const doc = await getDocument({ data: new Uint8Array(bytes), isEvalSupported: false, verbosity: 0 }).promise;
  const pages = [];
  for (let i = 1; i <= doc.numPages; i += 1) {
    const content = await (await doc.getPage(i)).getTextContent();
    pages.push(content.items.map((item) => item.str).join(' '));
  }
  await doc.destroy();
  return pages.join('\n');
}

/**
 * The notice of the operation just confirmed offers its receipt: downloaded as a person
 * would, read back as text, it names the operation's protocol and the rata's codice univoco.
 */
async function downloadReceipt() {
  const notice = await text();
  const protocol = /Protocollo dell'operazione\s+(\d+)/.exec(notice)?.[1];
  const code = /Rata\s+(\S+)/.exec(notice)?.[1];
  expect(protocol && code, `notice without protocol or rata: ${notice.slice(0, 400)}`);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Scarica ricevuta (PDF)' }).click(),
  ]);
  const file = join(artifacts, `ricevuta-${protocol}.pdf`);
  await download.saveAs(file);
  const bytes = readFileSync(file);
  expect(bytes.subarray(0, 5).toString() === '%PDF-', 'the receipt is not a PDF');
  const pdf = await pdfText(bytes);
  writeFileSync(join(artifacts, `ricevuta-${protocol}.txt`), pdf);
  expect(pdf.includes(protocol), `the receipt does not name protocol ${protocol}: ${pdf.slice(0, 400)}`);
  expect(pdf.includes(code), `the receipt does not name codice univoco ${code}: ${pdf.slice(0, 400)}`);
  expect(pdf.includes('1.000,00 €'), `the receipt does not show the amount: ${pdf.slice(0, 400)}`);
  expect(pdf.includes('Posizione nel registro'), 'the receipt does not give the log position');
}

/**
 * A bulk job's page follows the job by reloading itself; this waits, as a person would,
 * until it shows the outcome.
 */
async function jobOutcome() {
  await page.waitForURL(/\/lavori\/\d+/);
  for (let i = 0; i < 240; i += 1) {
    const shown = await text();
    if (!shown.includes('Lavoro in corso')) return shown;
    await page.waitForTimeout(500);
    await page.reload();
  }
  throw new Error('the bulk job did not end');
}

async function answer(accept) {
  await page.goto(`${base}/soggetti/${BANCA}/accettazione?tipo=ecobonus`);
  const row = page.locator('tr', { hasText: 'Ecobonus' }).filter({ hasText: '2025' }).filter({ hasText: BIANCHI });
  expect(await row.count() === 1, 'the cession is not in Accettazione');
  expect((await row.innerText()).includes('1.000,00 €'), 'wrong amount in Accettazione');
  await row.getByRole('button', { name: accept ? /^Accetta/ : /^Rifiuta/ }).click();
  await page.waitForLoadState('load');
  const confirm = await text();
  expect(confirm.includes('irreversibile'), 'the confirmation does not say it is irreversible');
  await audit(accept ? 'accettazione-conferma' : 'rifiuto-conferma');
  await page.locator('#pin').fill(PIN);
  await page.getByRole('button', { name: accept ? "Confermo l'accettazione" : 'Confermo il rifiuto' }).click();
  await page.waitForLoadState('load');
  const done = await text();
  expect(done.includes(accept ? 'Crediti accettati' : 'Crediti rifiutati'), `answer not confirmed: ${done.slice(0, 300)}`);
  await audit(accept ? 'accettazione-esito' : 'rifiuto-esito');
}

try {
  // 1. Password login, home, Monitoraggio.
  await page.goto(`${base}/`);
  expect(page.url().endsWith('/accesso'), 'the root does not lead to the login');
  await audit('accesso');
  // The guide is open before the login too.
  await page.getByRole('link', { name: 'Guida', exact: true }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Che cosa fare dopo un errore'), 'the Guida does not open from the login page');
  await audit('guida');
  await readmeShot('guida.png');
  // The Guida leads to the rules behind the refusals, each with its source.
  await page.locator('main').getByRole('link', { name: 'Regole', exact: true }).first().click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Le regole della piattaforma'), 'the Regole page does not open from the Guida');
  expect(await page.locator('#r-partial').count() === 1, 'the Regole page has no entry for R-PARTIAL');
  await audit('regole');
  await login('bianchi');
  expect(page.url().endsWith(`/soggetti/${BIANCHI}`), `bianchi not at its home: ${page.url()}`);
  await audit('home');
  await page.getByRole('link', { name: 'Monitoraggio crediti' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Residuo cedibile'), 'Monitoraggio without its table');
  expect(await page.locator('svg.cessio-chart').count() === 1, 'Monitoraggio without its chart');
  await audit('monitoraggio');
  await readmeShot('monitoraggio.png');

  // 2. Cessione with PIN: the list, the summary, the receipt.
  await page.goto(`${base}/soggetti/${BIANCHI}/cessione`);
  const max = await page.locator(`#importo_${RATA}`).inputValue();
  expect(max === '3.000,05', `amount not prefilled with the maximum: ${max}`);
  await page.locator(`#sel_${RATA}`).check();
  await page.locator(`#importo_${RATA}`).fill('1.000,00');
  await page.locator(`#cf_${RATA}`).fill(BANCA);
  await page.locator(`#cf_${RATA}-verifica`).getByText('valido e registrato').waitFor();
  await audit('cessione');
  await readmeShot('cessione.png');
  await readmeShot('cessione-telefono.png', { phone: true });
  // A malformed code is refused next to its row, nothing is ceded.
  await page.locator(`#cf_${RATA}`).fill('RSSMRA45C12F205X');
  await page.getByRole('button', { name: 'Prosegui al riepilogo' }).click();
  await page.waitForLoadState('load');
  expect(await page.locator(`#cf_${RATA}-errore`).count() === 1, 'bad CF not shown next to the field');
  await audit('cessione-errore');
  await cede('1.000,00', [PIN]);
  await audit('cessione-ricevuta');
  await downloadReceipt();
  await logout();

  // 3. The cessionario sees it in Accettazione and refuses it.
  await login('banca');
  await page.goto(`${base}/soggetti/${BANCA}/accettazione`);
  await audit('accettazione');
  await answer(false);
  await logout();

  // 4. The amount is back with the cedente; cede again, with three wrong PINs first.
  await login('bianchi');
  await page.goto(`${base}/soggetti/${BIANCHI}/cessione`);
  expect(await page.locator(`#importo_${RATA}`).inputValue() === '3.000,05', 'refused amount not back with the cedente');
  await cede('1.000,00', ['111111', '222222', '333333', PIN]);

  // 4b. Gestione F24: an F24 over the available amount is refused whole (R-F24-OVER);
  //     then one within it is reserved and confirmed.
  await page.goto(`${base}/soggetti/${BIANCHI}/f24`);
  await audit('f24');
  await page.locator('#codice_0').fill('7712');
  await page.locator('#anno_0').fill('2025');
  await page.locator('#importo_0').fill('99.999,00');
  await page.locator('#pin').fill(PIN);
  await page.getByRole('button', { name: 'Prenota il modello F24' }).click();
  await page.waitForLoadState('load');
  // The refusal is plain Italian; its rule is a link to the Regole page.
  expect(!(await text()).includes('(R-F24-OVER)'), 'the refusal carries its rule id in the sentence');
  expect(await page.locator('main a[href="/regole#r-f24-over"]').count() > 0, 'an F24 above the available amount was not refused with a link to R-F24-OVER');
  await audit('f24-rifiutato');
  // The debit side: credits above what the form pays are refused (R-F24-BALANCE).
  await page.locator('#codice_0').fill('7712');
  await page.locator('#anno_0').fill('2025');
  await page.locator('#importo_0').fill('500,00');
  await page.locator('#debito_sezione_0').selectOption('erario');
  await page.locator('#debito_codice_0').fill('1040');
  await page.locator('#debito_importo_0').fill('100,00');
  await page.locator('#pin').fill(PIN);
  await page.getByRole('button', { name: 'Prenota il modello F24' }).click();
  await page.waitForLoadState('load');
  expect(await page.locator('main a[href="/regole#r-f24-balance"]').count() > 0, 'credits above the debits were not refused with a link to R-F24-BALANCE');
  await page.locator('#codice_0').fill('7712');
  await page.locator('#anno_0').fill('2025');
  await page.locator('#importo_0').fill('500,00');
  await page.locator('#debito_sezione_0').selectOption('erario');
  await page.locator('#debito_codice_0').fill('1040');
  await page.locator('#debito_importo_0').fill('500,00');
  await page.locator('#pin').fill(PIN);
  await page.getByRole('button', { name: 'Prenota il modello F24' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Modello F24 prenotato'), `F24 not reserved: ${(await text()).slice(0, 400)}`);
  expect((await text()).includes('A debito, sezione Erario codice 1040'), 'the reservation does not show the debit line');
  await audit('f24-prenotato');
  await page.locator('#pin-fine').fill(PIN);
  await page.getByRole('button', { name: "Conferma l'utilizzo" }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Modello F24 confermato'), 'F24 not confirmed');
  await audit('f24-confermato');
  await logout();

  // 5. Accept by list (Risposta per elenco): the bank's back office pastes the rata's
  //    codice univoco, sees what the row answers, confirms with the PIN and gets each
  //    row's outcome. Then export the list as CSV and check it.
  await login('banca');
  const waiting = await page.request.get(`${base}/api/v1/parties/${BANCA}/movements?type_key=ecobonus&year=2025&cedente_cf=${BIANCHI}&state=in_attesa`);
  expect(waiting.ok(), `F4 over the API: ${waiting.status()}`);
  const codes = (await waiting.json()).map((m) => m.codice_univoco);
  expect(codes.length === 1, `one cession awaits the bank: ${codes}`);
  await page.goto(`${base}/soggetti/${BANCA}/accettazione`);
  await page.getByRole('link', { name: /Rispondi per elenco/ }).click();
  await page.waitForLoadState('load');
  await audit('elenco');
  await page.locator('#codici').fill(`${codes[0]}\nNON-ESISTE`);
  await page.locator('label[for=esito-accetta]').click();
  await page.getByRole('button', { name: "Verifica l'elenco" }).click();
  await page.waitForLoadState('load');
  const preview = await text();
  expect(preview.includes('irreversibile') && preview.includes('1.000,00 €'), `no list preview: ${preview.slice(0, 400)}`);
  expect(preview.includes('Non eseguibile'), 'the unknown code is not refused on its row');
  await audit('elenco-conferma');
  await page.locator('#pin').fill(PIN);
  await page.getByRole('button', { name: "Confermo l'accettazione" }).click();
  const listed = await jobOutcome();
  expect(listed.includes('Crediti accettati per elenco') && listed.includes('Esito di ogni riga'), `list answer not done: ${listed.slice(0, 400)}`);
  expect(listed.includes('Eseguite 1,') && listed.includes('scartate 1'), `list answer counts: ${listed.slice(0, 400)}`);
  await audit('elenco-esito');
  // The job's page offers the receipt of the operation that answered the list.
  const operation = /Operazione (\d+):/.exec(listed)?.[1];
  expect(operation, `no operation on the job page: ${listed.slice(0, 400)}`);
  const [listReceipt] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Scarica ricevuta (PDF)' }).click(),
  ]);
  const listFile = join(artifacts, `ricevuta-elenco-${operation}.pdf`);
  await listReceipt.saveAs(listFile);
  const listPdf = await pdfText(readFileSync(listFile));
  writeFileSync(join(artifacts, `ricevuta-elenco-${operation}.txt`), listPdf);
  expect(listPdf.includes(codes[0]), `the list's receipt does not name ${codes[0]}: ${listPdf.slice(0, 400)}`);
  expect(listPdf.includes('Posizione nel registro'), "the list's receipt does not give the log position");
  // 5b. F6: the bank splits 1.000,00 of its 2025 Superbonus rata into ten rate, sees the
  //     recap first, confirms, then annuls the split and gets the rata back.
  await page.goto(`${base}/soggetti/${BANCA}/rateazione`);
  await audit('rateazione');
  await page.locator('#rata-split').selectOption('3');
  await page.locator('#importo-split').fill('1.000,01');
  await page.getByRole('button', { name: 'Vedi il riepilogo' }).click();
  await page.waitForLoadState('load');
  const recap = await text();
  expect(recap.includes('Le dieci rate') && recap.includes('7771'), `no split recap: ${recap.slice(0, 500)}`);
  expect(recap.includes('100,01 €'), 'the remainder cent is not on the first rata');
  await audit('rateazione-riepilogo');
  await page.locator('#pin').first().fill(PIN);
  await page.getByRole('button', { name: 'Conferma la rateazione' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Rateazione registrata'), `split not registered: ${(await text()).slice(0, 500)}`);
  await audit('rateazione-registrata');
  await page.locator('#rata-originaria').fill('3');
  await page.locator('section', { hasText: 'Annullare una rateazione' }).locator('input[name=pin]').fill(PIN);
  await page.getByRole('button', { name: 'Annulla la rateazione' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Rateazione annullata'), `split not annulled: ${(await text()).slice(0, 500)}`);
  await audit('rateazione-annullata');
  // The guide, signed in: the same page, with the user's header.
  await page.getByRole('link', { name: 'Guida', exact: true }).click();
  await page.waitForLoadState('load');
  expect((await page.locator('header').innerText()).includes('Esci'), 'the Guida loses the signed-in header');
  await page.goto(`${base}/soggetti/${BANCA}/movimenti?tipo=ecobonus&anno=2025&cedente=${BIANCHI}`);
  await audit('movimenti');
  await readmeShot('movimenti.png');
  const rows = page.locator('main table tbody tr');
  expect(await rows.count() === 2, `expected 2 movements, found ${await rows.count()}`);
  const href = await page.getByRole('link', { name: 'Esporta in CSV' }).getAttribute('href');
  const csv = await page.request.get(new URL(href, base).toString());
  expect(csv.status() === 200, `CSV export failed: ${csv.status()}`);
  const content = (await csv.text()).replace(/^\uFEFF/, '');
  writeFileSync(join(artifacts, 'lista-movimenti.csv'), content);
  const lines = content.trim().split(/\r?\n/);
  expect(lines.length === 3, `CSV should have a header and 2 rows: ${lines.length}`);
  expect(lines[0].includes(';'), 'CSV not separated by semicolons');
  expect(lines.slice(1).every((l) => l.includes(BIANCHI) && l.includes(BANCA)), 'CSV rows without the parties');
  expect(lines.slice(1).every((l) => /1000[,.]00/.test(l)), 'CSV rows without the amount');
  expect(content.includes('Accettato') && content.includes('Rifiutato'), 'CSV without both states');
  await logout();

  // 6. The operator loads a file of communications for Mario Rossi: more than 1,000
  //    operations await the bank, so Accettazione asks for filters first (R-1000).
  await login('operatore');
  await audit('operatore-cerca');
  await page.locator('#q').fill(ROSSI);
  await page.getByRole('button', { name: 'Apri' }).click();
  await page.waitForURL(new RegExp(`/soggetti/${ROSSI}$`));
  await audit('operatore-soggetto');
  await page.goto(`${base}/soggetti/${ROSSI}/comunicazioni`);
  await audit('comunicazioni');
  const header = 'cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione';
  const body = [header];
  for (let i = 0; i < 1001; i += 1) {
    const type = i < 600 ? 'sanificazione' : 'adeguamento_ambienti';
    body.push(`${ROSSI};${type};2020;cessione;${BANCA};${100 + i},00;01/02/2025`);
  }
  const file = join(artifacts, 'comunicazioni.csv');
  writeFileSync(file, `${body.join('\n')}\n`);
  await page.locator('#file').setInputFiles(file);
  await page.locator('#pin-file').fill(PIN);
  await page.getByRole('button', { name: 'Carica il file' }).click();
  const report = await jobOutcome();
  expect(report.includes('Registrate 1001'), `upload report: ${report.slice(0, 500)}`);
  expect(report.includes('Esito riga per riga'), `upload rows: ${report.slice(0, 500)}`);
  await audit('comunicazioni-esito');
  await page.goto(`${base}/operatore`);
  await audit('operatore');
  await page.goto(`${base}/operatore/controlli`);
  expect((await text()).includes('Segnalazioni dei controlli di rischio'), 'no controls page');
  await audit('operatore-controlli');
  await page.goto(`${base}/operatore`);
  await page.locator('#sblocco-username').fill('bianchi');
  await page.getByRole('button', { name: 'Sblocca il PIN' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('PIN sbloccato'), 'PIN unlock not confirmed');
  await audit('operatore-pin-sbloccato');
  await logout();

  await login('banca');
  await page.goto(`${base}/soggetti/${BANCA}/accettazione`);
  const warning = await text();
  expect(/sono 10\d\d/.test(warning) && !warning.includes('(R-1000)'), `no R-1000 filter page: ${warning.slice(0, 400)}`);
  expect(await page.locator('main a[href="/regole#r-1000"]').count() === 1, 'the filter page does not link R-1000');
  expect(await page.locator('main table').count() === 0, 'the list is shown above 1,000');
  await audit('accettazione-filtri');
  await page.locator('#tipo').selectOption('sanificazione');
  await page.getByRole('button', { name: 'Filtra' }).click();
  await page.waitForLoadState('load');
  const filtered = page.locator('main table tbody tr');
  expect(await filtered.count() === 1, 'filtered groups not shown');
  expect((await filtered.innerText()).includes('600'), 'the group does not count 600 operations');
  await audit('accettazione-filtrata');
  await logout();

  // 7. An intermediary picks the party it works for; it stays named on every page.
  await login('studio.verdi');
  expect(page.url().endsWith('/soggetti'), 'an intermediary should choose a party');
  await audit('scegli-soggetto');
  await page.getByRole('link', { name: /Condominio Via Roma 12/ }).click();
  await page.waitForLoadState('load');
  await page.getByRole('link', { name: 'Lista movimenti' }).click();
  await page.waitForLoadState('load');
  const banner = await page.locator('.cessio-party-banner').innerText();
  expect(banner.includes(CONDOMINIO), 'the party is not named on the page');
  await audit('movimenti-filtri');

  // 7b. R-RENT: the rent-credit calculator for a shop whose March turnover halved.
  await page.goto(`${base}/soggetti/${CONDOMINIO}/canoni`);
  await page.locator('#ricavi').fill('800.000,00');
  await page.locator('#canone_3').fill('2.000,00');
  await page.locator('#prima_3').fill('50.000,00');
  await page.locator('#dopo_3').fill('20.000,00');
  await page.locator('#pagato_3').fill('31/03/2020');
  await page.getByRole('button', { name: 'Calcola' }).click();
  await page.waitForLoadState('load');
  expect((await text()).includes('Credito spettante: 1.200,00 €'), `rent credit: ${(await text()).slice(0, 600)}`);
  await audit('canoni');
  await logout();

  // 8. Strong login through the project's OpenID provider: no PIN asked afterwards.
  await page.goto(`${base}/accesso`);
  await page.getByRole('link', { name: /SPID o CIE/ }).click();
  await page.waitForLoadState('load');
  await audit('provider-identita', { guide: false });
  await page.getByRole('button', { name: 'Entra come Mario Rossi' }).click();
  await page.waitForURL(new RegExp(`/soggetti/${ROSSI}$`));
  await page.goto(`${base}/soggetti/${ROSSI}/comunicazioni`);
  expect(await page.locator('#pin').count() === 0, 'a strong login is still asked for the PIN');
  expect((await text()).includes('non serve il PIN'), 'the page does not say the PIN is not needed');
  await audit('comunicazioni-spid');
  await logout();
} catch (e) {
  problems.push(`journey stopped after step ${steps()} (${page.url()}): ${e.message}`);
  await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

if (problems.length > 0) {
  console.error(`${problems.length} problem(s):`);
  for (const p of problems) console.error(`- ${p}`);
  process.exit(1);
}
console.log(`journey passed: ${steps()} pages checked at both widths`);
