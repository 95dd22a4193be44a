// What every page of a journey is checked for, at a desktop's width and at a phone's:
// no two visible text boxes overlap, nothing scrolls sideways outside a table's own
// scrolling region, and axe-core finds nothing serious; and the header links the Guida. Screenshots at both widths stay
// in the artifacts folder, so that a failure can be seen, not only read.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const WIDTHS = [
  { name: 'desktop', width: 1280, height: 900, suffix: '' },
  { name: 'telefono', width: 375, height: 812, suffix: '-375' },
];

// The elements a person reads as one piece of text. Containers (div, form, section) are
// left out: they hold these, and a container around its own text is not an overlap.
const TEXT_SELECTOR = [
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'label', 'legend', 'p', 'small', '.form-text',
  '.invalid-feedback', 'button', 'a', 'th', 'td', 'caption', 'dt', 'dd', 'li', 'summary',
].join(',');

/**
 * Runs in the page. Returns the overlapping pairs and what makes the page scroll
 * sideways, each described so that the failure names the element without a screenshot.
 */
function inspect(selector) {
  const TOLERANCE_PX = 1;
  const viewportWidth = document.documentElement.clientWidth;

  const describe = (el, r) => ({
    tag: el.tagName.toLowerCase() + (el.id ? `#${el.id}` : ''),
    text: (el.innerText || el.getAttribute('aria-label') || '').replace(/\s+/g, ' ').trim().slice(0, 60),
    rect: [r.left, r.top, r.right, r.bottom].map((v) => Math.round(v)),
  });

  // Hidden for the eye: not rendered, transparent, or clipped to a pixel as
  // .visually-hidden does (a skip link shows itself only when focused).
  const hiddenCache = new Map();
  const hidden = (el) => {
    if (!el || el === document.documentElement) return false;
    if (hiddenCache.has(el)) return hiddenCache.get(el);
    const s = getComputedStyle(el);
    const result = s.display === 'none' || s.visibility === 'hidden' || Number(s.opacity) === 0
      || (s.position === 'absolute' && el.offsetWidth <= 1 && el.offsetHeight <= 1)
      || hidden(el.parentElement);
    hiddenCache.set(el, result);
    return result;
  };

  // The box of what the element shows: a button or a cell is its whole box (its
  // background is part of it); other elements are the union of their visible text's
  // line boxes, so that a full-width heading does not "overlap" a column beside its text.
  const boxOf = (el) => {
    const own = el.getBoundingClientRect();
    if (own.width < 2 || own.height < 2) return null;
    if (el.matches('button, .btn, th, td')) return own;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let box = null;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || hidden(node.parentElement)) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        if (r.width < 1 || r.height < 1) continue;
        box = box
          ? { left: Math.min(box.left, r.left), top: Math.min(box.top, r.top), right: Math.max(box.right, r.right), bottom: Math.max(box.bottom, r.bottom) }
          : { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
      }
    }
    // A glyph's content area may reach past its line box (tall fonts, tight line
    // heights); what a reader sees as the text's place is the part inside the element.
    return box && {
      left: Math.max(box.left, own.left), top: Math.max(box.top, own.top),
      right: Math.min(box.right, own.right), bottom: Math.min(box.bottom, own.bottom),
    };
  };

  // Inside a scrolling table region only the part in view counts.
  const clipToRegion = (el, box) => {
    const region = el.closest('.table-responsive');
    if (!region) return box;
    const c = region.getBoundingClientRect();
    const clipped = {
      left: Math.max(box.left, c.left), top: Math.max(box.top, c.top),
      right: Math.min(box.right, c.right), bottom: Math.min(box.bottom, c.bottom),
    };
    return clipped.right - clipped.left >= 1 && clipped.bottom - clipped.top >= 1 ? clipped : null;
  };

  const items = [];
  for (const el of document.querySelectorAll(selector)) {
    if (hidden(el)) continue;
    const raw = boxOf(el);
    const box = raw && clipToRegion(el, raw);
    if (box && box.right - box.left >= 1 && box.bottom - box.top >= 1) items.push({ el, box });
  }
  // Sweep by top edge: only boxes whose vertical spans meet can overlap.
  items.sort((a, b) => a.box.top - b.box.top);
  const overlaps = [];
  for (let i = 0; i < items.length; i += 1) {
    const a = items[i];
    for (let j = i + 1; j < items.length && items[j].box.top < a.box.bottom - TOLERANCE_PX; j += 1) {
      const b = items[j];
      if (a.el.contains(b.el) || b.el.contains(a.el)) continue;
      const w = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
      const h = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
      if (w > TOLERANCE_PX && h > TOLERANCE_PX) {
        overlaps.push([describe(a.el, a.box), describe(b.el, b.box)]);
      }
    }
  }

  // What reaches past the right edge, outside the regions meant to scroll; the
  // outermost such elements name the cause.
  const wide = [];
  const scrollWidth = document.documentElement.scrollWidth;
  if (scrollWidth > viewportWidth + TOLERANCE_PX) {
    for (const el of document.body.querySelectorAll('*')) {
      if (el.parentElement.closest('.table-responsive') || hidden(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.right > viewportWidth + TOLERANCE_PX && !wide.some((w) => w.el.contains(el))) {
        wide.push({ el, r });
      }
    }
  }
  return {
    overlaps,
    scrollWidth,
    viewportWidth,
    wide: wide.slice(0, 5).map((w) => describe(w.el, w.r)),
  };
}

const show = (d) => `<${d.tag}> «${d.text}» [${d.rect.join(', ')}]`;

/**
 * The auditor of one browser page: `audit(name)` checks the page as it is now at both
 * widths, leaves the viewport at the desktop's width, and adds what it finds to `problems`.
 */
export function auditor({ page, artifacts, problems, log = console.log }) {
  let step = 0;
  // `guide`: the page is Cessio's own and must link the Guida from its header (the
  // identity provider's pages are not).
  async function audit(name, { guide = true } = {}) {
    step += 1;
    if (guide && (await page.locator('header a[href="/guida"]').count()) !== 1) {
      problems.push(`no link to the Guida in the header of ${name} (${page.url()})`);
    }
    const prefix = `${String(step).padStart(2, '0')}-${name}`;
    await page.evaluate(() => document.fonts.ready);
    const summary = [];
    for (const w of WIDTHS) {
      await page.setViewportSize({ width: w.width, height: w.height });
      await page.screenshot({ path: join(artifacts, `${prefix}${w.suffix}.png`), fullPage: true });
      const where = `${name} at ${w.width} px (${page.url()})`;
      const layout = await page.evaluate(inspect, TEXT_SELECTOR);
      for (const [a, b] of layout.overlaps.slice(0, 5)) {
        problems.push(`overlap on ${where}: ${show(a)} and ${show(b)}`);
      }
      if (layout.overlaps.length > 5) {
        problems.push(`overlap on ${where}: ${layout.overlaps.length - 5} more pairs`);
      }
      if (layout.scrollWidth > layout.viewportWidth + 1) {
        problems.push(`horizontal scroll on ${where}: ${layout.scrollWidth} px wide in ${layout.viewportWidth}; ${layout.wide.map(show).join('; ')}`);
      }
      // Evaluated through the DevTools protocol, which the page's CSP does not govern.
      await page.evaluate(AXE);
      const result = await page.evaluate(async () =>
        // eslint-disable-next-line no-undef
        axe.run(document, { resultTypes: ['violations'] }));
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of bad) {
        problems.push(`axe ${v.impact} on ${where}: ${v.id} — ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
      }
      summary.push(`${w.width}px: ${layout.overlaps.length} overlaps, axe ${result.violations.length}/${bad.length}`);
    }
    await page.setViewportSize({ width: WIDTHS[0].width, height: WIDTHS[0].height });
    log(`ok ${step} ${name} (${page.url()}) ${summary.join('; ')}`);
  }
  return { audit, steps: () => step };
}
