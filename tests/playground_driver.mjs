// Drives the browser playground in headless Chromium with playwright-core (no browser
// download: Debian's Chromium). Usage: node playground_driver.mjs PLAN.json
// PLAN: {url, chromium, user_data_dir, out, screenshot, before, after, wall: [x, y],
// controls, slip}. Plays `before` episodes, edits the level by real clicks (a wall on the
// canvas, the controls select, the slip slider), plays `after` more, saves a screenshot and
// writes window.playground's log to `out`.
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const context = await chromium.launchPersistentContext(plan.user_data_dir, {
  executablePath: plan.chromium, headless: true, viewport: { width: 1060, height: 720 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
const messages = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => messages.push(`pageerror: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith(plan.url)) messages.push(`remote: ${r.url()}`); });
  await page.goto(plan.url);
  await page.waitForFunction(() => window.playground.ready || window.playground.error, null, { timeout: 90000 });
  const failed = await page.evaluate(() => window.playground.error);
  if (failed) throw new Error(`the page failed: ${failed}`);
  await page.selectOption("#speed", "0");
  const play = async (episodes) => {
    const target = (await page.evaluate(() => window.playground.episodesDone)) + episodes;
    await page.click("#play");
    await page.waitForFunction((n) => window.playground.episodesDone >= n || window.playground.error,
      target, { timeout: 120000 });
    await page.click("#play"); // pause
    await page.evaluate(() => window.playground.idle());
  };
  await play(plan.before);
  await page.click("#step"); // one step into an episode: the edit below cuts it
  await page.evaluate(() => window.playground.idle());
  const cell = await page.evaluate(([x, y]) => window.playground.cellCenter(x, y), plan.wall);
  await page.mouse.click(cell.x, cell.y);
  await page.evaluate(() => window.playground.idle());
  await page.selectOption("#controls", plan.controls);
  await page.evaluate(() => window.playground.idle());
  await page.fill("#slip", plan.slip);
  await page.evaluate(() => window.playground.idle());
  await play(plan.after);
  await page.screenshot({ path: plan.screenshot });
  const state = await page.evaluate(() => ({ log: window.playground.log, plotted: window.playground.plotted,
    family: window.playground.family, error: window.playground.error, refused: window.playground.refused,
    layout: window.playground.layout(), episodesDone: window.playground.episodesDone,
    family_text: document.getElementById("family").textContent,
    carries: document.getElementById("carries").textContent }));
  writeFileSync(plan.out, JSON.stringify({ ...state, messages }));
} catch (error) {
  writeFileSync(plan.out, JSON.stringify({ error: String(error?.stack || error), messages }));
  process.exitCode = 1;
} finally {
  await context.close();
}
